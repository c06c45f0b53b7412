package dir4j.retrieval.image;

import static dir4j.retrieval.image.ImageFixtures.assertSameImage;
import static dir4j.retrieval.image.ImageFixtures.expected;
import static dir4j.retrieval.image.ImageFixtures.path;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dir4j.engine.Tensor;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/**
 * Resizing equals PIL's resize byte for byte; sizes follow the reference's Scale rounding; crops
 * follow PIL's crop (round half to even, black outside); normalisation is ImageNet's.
 */
class PreprocessingTest {

    @Test
    void resizeEqualsPilByteForByte() throws IOException {
        RgbImage src = ImageDecoder.read(path("images/resize_src.png"));
        check(src, "down16_bilinear", 16, Resampler.Filter.BILINEAR);
        check(src, "down16_bicubic", 16, Resampler.Filter.BICUBIC);
        check(src, "down30_bilinear", 30, Resampler.Filter.BILINEAR);
        check(src, "up50_bilinear", 50, Resampler.Filter.BILINEAR);
        check(src, "up50_bicubic", 50, Resampler.Filter.BICUBIC);
    }

    private static void check(RgbImage src, String name, int size, Resampler.Filter filter) {
        int[] s = Preprocessing.referenceScale(src.width(), src.height(), size);
        assertSameImage(name, expected("images/resize_" + name + ".npy"), Resampler.resize(src, s[0], s[1], filter));
    }

    @Test
    void scaleSizesFollowTheReferenceRounding() {
        // Scale(size, largest=True): longer side = size, shorter = int(0.5 + size * short / long)
        assertArrayEquals(new int[] {16, 10}, Preprocessing.referenceScale(37, 23, 16)); // 9.946 -> 10
        assertArrayEquals(new int[] {1024, 768}, Preprocessing.referenceScale(2048, 1536, 1024));
        assertArrayEquals(new int[] {768, 1024}, Preprocessing.referenceScale(1536, 2048, 1024));
        assertArrayEquals(new int[] {1024, 768}, Preprocessing.referenceScale(1024, 768, 1024)); // unchanged
        assertArrayEquals(new int[] {2, 1}, Preprocessing.referenceScale(4, 1, 2)); // 0.5 + 0.5 -> 1
        assertArrayEquals(new int[] {3, 2}, Preprocessing.referenceScale(4, 2, 3)); // 1.5 + 0.5 -> 2
        assertArrayEquals(new int[] {10, 10}, Preprocessing.referenceScale(7, 7, 10));

        Preprocessing p = Preprocessing.imagenet(1024);
        // multi-scale: longer side int(0.5 + 1024 s), from the original
        assertArrayEquals(new int[] {724, 543}, p.outputSize(1024, 768, 1 / Math.sqrt(2)));
        assertArrayEquals(new int[] {512, 384}, p.outputSize(1024, 768, 0.5));
        assertArrayEquals(new int[] {1024, 683}, p.outputSize(3000, 2000, 1));
        // smaller than the maximum side: kept unless upscaling is asked for
        assertArrayEquals(new int[] {500, 300}, p.outputSize(500, 300, 1));
        assertArrayEquals(new int[] {1024, 614}, p.withUpscale(true).outputSize(500, 300, 1));
        // Scale's own rule: the shorter side must change for a resize to happen
        assertArrayEquals(new int[] {2000, 1}, p.outputSize(2000, 1, 1));
        // other scales are relative to the single-scale size, also for images kept at their size
        assertArrayEquals(new int[] {250, 150}, p.outputSize(500, 300, 0.5));
        assertArrayEquals(new int[] {354, 212}, p.outputSize(500, 300, 1 / Math.sqrt(2))); // 353.55 -> 354
        assertArrayEquals(new int[] {512, 341}, p.outputSize(3000, 2000, 0.5));
        assertArrayEquals(new int[] {1448, 1086}, p.outputSize(1024, 768, Math.sqrt(2))); // enlarging on request
        // maxSide 0: no size imposed; scale factors resize both sides
        Preprocessing none = Preprocessing.imagenet(0);
        assertArrayEquals(new int[] {1024, 768}, none.outputSize(1024, 768, 1));
        assertArrayEquals(new int[] {512, 384}, none.outputSize(1024, 768, 0.5));
        assertArrayEquals(new int[] {19, 12}, none.outputSize(37, 23, 0.5)); // 18.5 + 0.5, 11.5 + 0.5
    }

    /**
     * A panorama whose shorter side rounds to no pixel: 4000x20 at a longer side of 64 is
     * 64 x int(0.5 + 0.32) = 64x0, which PIL's resize refuses too ("height and width must be > 0");
     * the message says the sizes, at scale 1 as at other scales.
     */
    @Test
    void aPanoramaWhoseShortSideRoundsToNothingIsRefusedSayingSo() {
        Preprocessing p = Preprocessing.imagenet(64);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> p.outputSize(4000, 20, 1));
        assertEquals("a 4000x20 image resized to a longer side of 64 would be 64x0 pixels: too elongated to describe "
                + "at this size", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> p.outputSize(4000, 60, 0.5));
        assertEquals("a 4000x60 image at scale 0.5 would be 32x0 pixels: too elongated to describe at this size",
                e.getMessage());
        assertArrayEquals(new int[] {64, 1}, p.outputSize(4000, 60, 1)); // 0.96 + 0.5
    }

    @Test
    void resizeKeepsTheSameObjectWhenTheSizeDoesNotChange() throws IOException {
        RgbImage src = ImageDecoder.read(path("images/resize_src.png"));
        assertSame(src, Preprocessing.imagenet(64).resize(src, 1));
        assertSame(src, Resampler.resize(src, 37, 23, Resampler.Filter.BILINEAR));
    }

    @Test
    void cropFollowsPilIncludingRoundingAndBlackOutside() throws IOException {
        RgbImage src = ImageDecoder.read(path("images/resize_src.png"));
        BoundingBox inside = new BoundingBox(3.5, 2.5, 20.5, 15.4); // rounds to (4, 2, 20, 15)
        RgbImage crop = inside.crop(src);
        assertEquals(16, crop.width());
        assertEquals(13, crop.height());
        assertSameImage("crop inside", expected("images/crop_inside.npy"), crop);
        assertSameImage("crop outside", expected("images/crop_outside.npy"),
                new BoundingBox(30, -2, 40, 5).crop(src));
        // crop first, then Scale(16, largest=True), as the revisited protocol's queries
        Preprocessing p = Preprocessing.imagenet(16);
        assertSameImage("crop then resize", expected("images/crop_inside_down16.npy"), p.apply(src, inside, 1));
    }

    @Test
    void badBoxesAreRefused() throws IOException {
        RgbImage src = ImageDecoder.read(path("images/resize_src.png"));
        assertThrows(IllegalArgumentException.class, () -> new BoundingBox(5, 0, 4, 3));
        assertThrows(IllegalArgumentException.class, () -> new BoundingBox(0, 0, Double.NaN, 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new BoundingBox(2.6, 0, 3.4, 3).crop(src)); // rounds to (3, 0, 3, 3): empty
        assertEquals(true, e.getMessage().contains("empty"), e.getMessage());
    }

    @Test
    void normalisationIsImageNetMeanAndStd() {
        byte[] px = {(byte) 255, 0, (byte) 128, 10, 20, 30};
        RgbImage img = new RgbImage(2, 1, px);
        float[] chw = Preprocessing.imagenet(0).normalize(img);
        float[] m = RetrievalNet.RGB_MEANS;
        float[] s = RetrievalNet.RGB_STDS;
        float[] want = {
            (1f - m[0]) / s[0], (10 / 255f - m[0]) / s[0],
            (0f - m[1]) / s[1], (20 / 255f - m[1]) / s[1],
            (128 / 255f - m[2]) / s[2], (30 / 255f - m[2]) / s[2],
        };
        assertArrayEquals(want, chw, 1e-6f);
        assertEquals(2.2489083f, chw[0], 1e-6f); // (1 - 0.485) / 0.229
        try (Tensor t = img.toTensor()) {
            assertArrayEquals(new int[] {3, 1, 2}, t.shape());
            assertArrayEquals(new float[] {1f, 10 / 255f, 0f, 20 / 255f, 128 / 255f, 30 / 255f}, t.toFloatArray(), 1e-7f);
        }
    }
}
