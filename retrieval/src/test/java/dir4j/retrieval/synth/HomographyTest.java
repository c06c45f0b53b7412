package dir4j.retrieval.synth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The four-point homography the synthetic views are warped with, against maps known in closed form. */
class HomographyTest {

    private static void assertMaps(Homography h, double x, double y, double u, double v, String what) {
        double[] p = h.apply(x, y);
        assertEquals(u, p[0], 1e-9, what + ": x");
        assertEquals(v, p[1], 1e-9, what + ": y");
    }

    @Test
    void aScaleAndShiftIsRecoveredAndMapsEveryPoint() {
        double[] from = {0, 0, 10, 0, 10, 5, 0, 5};
        double[] to = new double[8];
        for (int i = 0; i < 4; i++) {
            to[2 * i] = 3 * from[2 * i] + 7;        // u = 3x + 7
            to[2 * i + 1] = -2 * from[2 * i + 1] + 1; // v = −2y + 1
        }
        Homography h = Homography.fromCorners(from, to);
        assertMaps(h, 4.5, 2.25, 3 * 4.5 + 7, -2 * 2.25 + 1, "an inner point");
        assertMaps(h, -3, 11, -2, -21, "a point outside the quad");
    }

    @Test
    void aProjectiveMapIsRecoveredFromItsCornersAndAppliedToOtherPoints() {
        // u = (x + 2y + 3) / (0.01x + 0.02y + 1), v = (−x + 0.5y + 4) / (0.01x + 0.02y + 1)
        java.util.function.BiFunction<Double, Double, double[]> map = (x, y) -> {
            double w = 0.01 * x + 0.02 * y + 1;
            return new double[] {(x + 2 * y + 3) / w, (-x + 0.5 * y + 4) / w};
        };
        double[] from = {1, 1, 20, 2, 18, 15, 3, 12};
        double[] to = new double[8];
        for (int i = 0; i < 4; i++) {
            double[] p = map.apply(from[2 * i], from[2 * i + 1]);
            to[2 * i] = p[0];
            to[2 * i + 1] = p[1];
        }
        Homography h = Homography.fromCorners(from, to);
        Random r = new Random(3);
        for (int i = 0; i < 20; i++) {
            double x = r.nextDouble() * 30 - 5;
            double y = r.nextDouble() * 30 - 5;
            double[] p = map.apply(x, y);
            assertMaps(h, x, y, p[0], p[1], "(" + x + ", " + y + ")");
        }
        for (int i = 0; i < 4; i++) {
            assertMaps(h, from[2 * i], from[2 * i + 1], to[2 * i], to[2 * i + 1], "corner " + i);
        }
    }

    @Test
    void collinearCornersAreRefused() {
        double[] line = {0, 0, 1, 1, 2, 2, 3, 3};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Homography.fromCorners(line, new double[] {0, 0, 1, 0, 1, 1, 0, 1}));
        assertEquals("degenerate homography (collinear corners)", e.getMessage());
    }
}
