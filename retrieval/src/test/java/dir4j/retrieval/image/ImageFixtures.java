package dir4j.retrieval.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** The files of tests/fixtures/make_image_fixtures.py (fixtures/images, fixtures/datasets). */
public final class ImageFixtures {
    private ImageFixtures() {}

    /** A fixture file under fixtures/. */
    public static Path path(String relative) {
        URL url = ImageFixtures.class.getResource("/fixtures/" + relative);
        if (url == null) {
            throw new IllegalStateException("missing fixture " + relative + " (run tests/fixtures/make_image_fixtures.py)");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** An expected uint8 H×W×3 array as an RgbImage. */
    public static RgbImage expected(String relative) {
        try (Tensor t = Npy.read(path(relative))) {
            int[] shape = t.shape();
            assertEquals(3, shape.length, relative);
            assertEquals(3, shape[2], relative);
            int[] v = t.toIntArray();
            byte[] b = new byte[v.length];
            for (int i = 0; i < v.length; i++) {
                b[i] = (byte) v[i];
            }
            return new RgbImage(shape[1], shape[0], b);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Largest absolute difference of two images of equal size (asserted). */
    public static int maxDiff(RgbImage expected, RgbImage actual) {
        assertEquals(expected.width(), actual.width(), "width");
        assertEquals(expected.height(), actual.height(), "height");
        int m = 0;
        byte[] a = expected.pixels();
        byte[] b = actual.pixels();
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((a[i] & 0xff) - (b[i] & 0xff)));
        }
        return m;
    }

    /** Mean absolute difference of two images of equal size. */
    public static double meanDiff(RgbImage expected, RgbImage actual) {
        assertEquals(expected.width(), actual.width(), "width");
        assertEquals(expected.height(), actual.height(), "height");
        double s = 0;
        byte[] a = expected.pixels();
        byte[] b = actual.pixels();
        for (int i = 0; i < a.length; i++) {
            s += Math.abs((a[i] & 0xff) - (b[i] & 0xff));
        }
        return s / a.length;
    }

    /** Asserts two images are equal byte for byte. */
    public static void assertSameImage(String what, RgbImage expected, RgbImage actual) {
        assertEquals(expected.width(), actual.width(), what + ": width");
        assertEquals(expected.height(), actual.height(), what + ": height");
        assertArrayEquals(expected.pixels(), actual.pixels(), what + ": pixels (max diff "
                + maxDiff(expected, actual) + ")");
    }

    /** Asserts the pixel's colour is within tol of (r, g, b). */
    public static void assertColour(String what, RgbImage img, int x, int y, int r, int g, int b, int tol) {
        int[] got = {img.get(x, y, 0), img.get(x, y, 1), img.get(x, y, 2)};
        int[] want = {r, g, b};
        for (int c = 0; c < 3; c++) {
            assertTrue(Math.abs(got[c] - want[c]) <= tol, what + ": pixel (" + x + ", " + y + ") is ("
                    + got[0] + ", " + got[1] + ", " + got[2] + "), expected about (" + r + ", " + g + ", " + b + ")");
        }
    }
}
