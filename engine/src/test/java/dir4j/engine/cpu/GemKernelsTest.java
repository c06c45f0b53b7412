package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The float32 GeM kernels with a learned p on planes chosen to take each of their paths (the
 * reduced ln/exp, the full exp where p·ln z may pass ±87, the full ln where a plane holds NaN, ∞
 * or values below the smallest normal float), each plane checked against a float64 computation
 * from the formula; a plane's special values never leak into its neighbours.
 */
class GemKernelsTest {
    private static final int HW = 7 * 5; // two full vectors and a tail at 16 lanes

    /** Plane contents: index 0 ordinary, 1 up to 1e14 (p·bound > 87, finite), 2 a NaN, 3 an ∞, 4 zeros (eps tiny). */
    private static float[] planes(Random rng) {
        float[] x = new float[5 * HW];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rng.nextDouble() * 2);
        }
        for (int i = 0; i < HW; i++) {
            x[HW + i] = (float) (1e14 * (0.5 + 0.5 * rng.nextDouble()));
        }
        x[2 * HW + 11] = Float.NaN;
        x[3 * HW + HW - 1] = Float.POSITIVE_INFINITY;
        for (int i = 0; i < HW; i += 2) {
            x[4 * HW + i] = 0f;
        }
        return x;
    }

    private static double reference(float[] x, int plane, double p, double eps) {
        double s = 0;
        for (int i = 0; i < HW; i++) {
            s += Math.pow(Math.max(x[plane * HW + i], eps), p);
        }
        return Math.pow(s / HW, 1 / p);
    }

    @Test
    void everyPathMatchesTheFormulaAndSpecialValuesStayInTheirPlane() {
        float[] x = planes(new Random(5));
        double p = 2.7;
        double eps = 1e-30; // below 2^-126 once raised: z^p underflows on plane 4, exp's full path
        try (MemoryScope s = MemoryScope.open()) {
            Tensor xt = Tensor.of(x, 1, 5, 7, 5).requiresGrad(true);
            Tensor pt = Tensor.of(new float[] {(float) p}, 1).requiresGrad(true);
            Tensor y = NnOps.gem(xt, pt, eps);
            float[] got = y.toFloatArray();
            for (int plane : new int[] {0, 1, 4}) {
                double want = reference(x, plane, p, eps);
                assertEquals(want, got[plane], 3e-6 * want, "plane " + plane);
            }
            assertTrue(Float.isNaN(got[2]), "NaN plane: " + got[2]);
            assertEquals(Float.POSITIVE_INFINITY, got[3]);

            Tensor upstream = Tensor.of(new float[] {1, 1, 0, 0, 1}, 1, 5);
            y.backward(upstream);
            float[] dx = xt.grad().toFloatArray();
            for (int plane : new int[] {0, 1, 4}) {
                double yv = reference(x, plane, p, eps);
                for (int i = 0; i < HW; i++) {
                    double xv = x[plane * HW + i];
                    double want = xv >= eps ? Math.pow(yv, 1 - p) * Math.pow(Math.max(xv, eps), p - 1) / HW : 0;
                    assertEquals(want, dx[plane * HW + i], 2e-5 * Math.abs(want) + 1e-30, "dx plane " + plane + " at " + i);
                }
            }
        }
    }

    @Test
    void theGradientOfPWithTheReducedPathMatchesFloat64() {
        Random rng = new Random(7);
        double[] xv = new double[3 * HW];
        for (int i = 0; i < xv.length; i++) {
            xv[i] = rng.nextDouble() * 3;
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x64 = Tensor.ofDoubles(xv, 1, 3, 7, 5);
            Tensor p64 = Tensor.ofDoubles(new double[] {3.3}, 1).requiresGrad(true);
            NnOps.gem(x64, p64, 1e-6).sum().backward();
            Tensor p32 = Tensor.of(new float[] {3.3f}, 1).requiresGrad(true);
            NnOps.gem(x64.to(dir4j.engine.DType.FLOAT32), p32, 1e-6).sum().backward();
            assertEquals(p64.grad().item(), p32.grad().item(), 1e-4 * Math.abs(p64.grad().item()));
        }
    }
}
