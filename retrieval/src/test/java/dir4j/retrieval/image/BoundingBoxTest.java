package dir4j.retrieval.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/**
 * Crops whose coordinates lie beyond int's range: refused with a message giving the real size
 * (they used to wrap around, or throw ArithmeticException), or, when small, cropped exactly
 * (black where outside the image); bad coordinates are refused when the box is made.
 */
class BoundingBoxTest {
    /** A 4x3 image whose pixel (x, y) is (10y + x, 100 + x, 200 + y). */
    private static RgbImage image() {
        byte[] px = new byte[4 * 3 * 3];
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 4; x++) {
                px[(y * 4 + x) * 3] = (byte) (10 * y + x);
                px[(y * 4 + x) * 3 + 1] = (byte) (100 + x);
                px[(y * 4 + x) * 3 + 2] = (byte) (200 + y);
            }
        }
        return new RgbImage(4, 3, px);
    }

    @Test
    void aBoxWiderThanIntsRangeIsRefusedWithItsRealSize() {
        IllegalArgumentException wide = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(-2e9, 0, 2e9, 10).crop(image()));
        assertEquals("bounding box (-2.0E9, 0.0, 2.0E9, 10.0) crops to 4000000000x10 pixels, more than one image can "
                + "hold (715827879 RGB pixels); check the coordinates (pixels of the original image: x1, y1, x2, y2)",
                wide.getMessage());
        // was an ArithmeticException from the byte count
        IllegalArgumentException large = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(0, 0, 3e9, 10).crop(image()));
        assertEquals("bounding box (0.0, 0.0, 3.0E9, 10.0) crops to 3000000000x10 pixels, more than one image can "
                + "hold (715827879 RGB pixels); check the coordinates (pixels of the original image: x1, y1, x2, y2)",
                large.getMessage());
        IllegalArgumentException huge = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(-1e300, -1e300, 1e300, 1e300).crop(image()));
        assertEquals("bounding box (-1.0E300, -1.0E300, 1.0E300, 1.0E300) crops to 2.0E300x2.0E300 pixels, more than "
                + "one image can hold (715827879 RGB pixels); check the coordinates (pixels of the original image: "
                + "x1, y1, x2, y2)", huge.getMessage());
        // just over the limit in area, each side fitting int
        assertThrows(IllegalArgumentException.class, () -> new BoundingBox(0, 0, 715827880, 1).crop(image()));
    }

    /** A box that fits one array but not the heap (a service with a small -Xmx) is refused, naming both. */
    @Test
    void aBoxLargerThanTheHeapIsRefusedBeforeItIsAllocated() {
        BoundingBox box = new BoundingBox(0, 0, 2048, 1024); // 6 MiB of RGB
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> box.crop(image(), 4L << 20));
        assertEquals("bounding box (0.0, 0.0, 2048.0, 1024.0) crops to 2048x1024 pixels, 6 MiB, more than this JVM's "
                + "heap (4 MiB, -Xmx) can hold; check the coordinates (pixels of the original image: x1, y1, x2, y2)",
                e.getMessage());
        RgbImage fits = box.crop(image(), 8L << 20);
        assertEquals(2048, fits.width());
        assertEquals(image().pixels()[3], fits.pixels()[3], "pixel (1, 0) copied");
    }

    @Test
    void emptyBoxesSayTheirRoundedSizeWithoutWrappingAround() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(3e9, 0, 3e9, 5).crop(image()));
        assertEquals("bounding box (3.0E9, 0.0, 3.0E9, 5.0) is empty once rounded to pixels (0x5)", e.getMessage());
        IllegalArgumentException rounded = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(2.6, 0, 3.4, 3).crop(image()));
        assertEquals("bounding box (2.6, 0.0, 3.4, 3.0) is empty once rounded to pixels (0x3)", rounded.getMessage());
    }

    @Test
    void aSmallBoxFarOutsideTheImageIsAllBlackAndOverlapsAreCopiedExactly() {
        // beyond int's range on both sides: rounding to int used to make these empty or wrong
        for (BoundingBox far : new BoundingBox[] {new BoundingBox(5e9, 0, 5e9 + 3, 2),
            new BoundingBox(-1e15, -3e9, -1e15 + 3, -3e9 + 2), new BoundingBox(0, 4e9, 3, 4e9 + 2)}) {
            RgbImage c = far.crop(image());
            assertEquals(3, c.width(), far.toString());
            assertEquals(2, c.height(), far.toString());
            assertArrayEquals(new byte[3 * 2 * 3], c.pixels(), far + " is all black");
        }
        // (-2, -1, 3, 2) on the 4x3 image: columns -2..2, rows -1..1; image pixels (0..2, 0..1) land at (2.., 1..)
        RgbImage c = new BoundingBox(-2, -1, 3, 2).crop(image());
        assertEquals(5, c.width());
        assertEquals(3, c.height());
        for (int y = 0; y < 3; y++) {
            for (int x = 0; x < 5; x++) {
                int sx = x - 2;
                int sy = y - 1;
                boolean inside = sx >= 0 && sy >= 0;
                assertEquals(inside ? 10 * sy + sx : 0, c.get(x, y, 0), "red at " + x + "," + y);
                assertEquals(inside ? 100 + sx : 0, c.get(x, y, 1), "green at " + x + "," + y);
                assertEquals(inside ? 200 + sy : 0, c.get(x, y, 2), "blue at " + x + "," + y);
            }
        }
        // a box covering the image and more on the right and bottom
        RgbImage all = new BoundingBox(0, 0, 6, 4).crop(image());
        assertEquals(10 * 2 + 3, all.get(3, 2, 0));
        assertEquals(0, all.get(4, 2, 0));
        assertEquals(0, all.get(3, 3, 1));
    }

    @Test
    void nanAndInfiniteCoordinatesAreRefusedWhenTheBoxIsMade() {
        IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(0, Double.NaN, 3, 3));
        assertEquals("bounding box coordinates must be finite: (0.0, NaN, 3.0, 3.0)", nan.getMessage());
        IllegalArgumentException inf = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(Double.NEGATIVE_INFINITY, 0, 3, 3));
        assertEquals("bounding box coordinates must be finite: (-Infinity, 0.0, 3.0, 3.0)", inf.getMessage());
    }
}
