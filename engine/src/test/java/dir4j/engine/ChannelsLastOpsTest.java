package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The channels-last inference ops of the Backend contract (conv2dNhwc with its fused bias,
 * residual and ReLU; maxPool2dNhwc) on the CPU backend against direct loops over the NHWC arrays
 * in double, written here from the definitions: y[n, i, j, o] = relu(Σ_{a, b, c} x[n, i·s − p + a,
 * j·s − p + b, c]·w[o, a, b, c] + bias[o] + z[n, i, j, o]); the pool's maximum over the clipped
 * window, NaN winning.
 */
class ChannelsLastOpsTest {

    /** The definition, in double. */
    private static double[] conv(float[] x, float[] w, float[] bias, float[] z, boolean relu, int n, int h, int wd,
                                 int ci, int co, int k, int s, int p, int ho, int wo) {
        double[] y = new double[n * ho * wo * co];
        for (int b = 0; b < n; b++) {
            for (int i = 0; i < ho; i++) {
                for (int j = 0; j < wo; j++) {
                    for (int o = 0; o < co; o++) {
                        double acc = bias[o];
                        for (int a = 0; a < k; a++) {
                            int r = i * s - p + a;
                            if (r < 0 || r >= h) {
                                continue;
                            }
                            for (int q = 0; q < k; q++) {
                                int c0 = j * s - p + q;
                                if (c0 < 0 || c0 >= wd) {
                                    continue;
                                }
                                for (int c = 0; c < ci; c++) {
                                    acc += (double) x[((b * h + r) * wd + c0) * ci + c] * w[((o * k + a) * k + q) * ci + c];
                                }
                            }
                        }
                        int at = ((b * ho + i) * wo + j) * co + o;
                        if (z != null) {
                            acc += z[at];
                        }
                        y[at] = relu ? Math.max(acc, 0) : acc;
                    }
                }
            }
        }
        return y;
    }

    @ParameterizedTest(name = "k{0} s{1} p{2} ci{3} co{4} {5}x{6} z={7} relu={8}")
    @CsvSource({
        "1, 1, 0, 8, 16, 5, 7, true, true",     // a bottleneck's conv3: residual and ReLU
        "1, 2, 0, 8, 12, 9, 6, false, false",   // a strided downsample: bias only, no ReLU
        "3, 1, 1, 5, 6, 6, 5, false, true",     // conv2 with padding
        "3, 2, 1, 4, 8, 9, 8, true, false",     // strided, residual without the ReLU
        "7, 2, 3, 3, 8, 13, 11, false, true",   // the stem
        "3, 1, 0, 2, 3, 4, 4, true, true"})     // no padding
    void fusedConvolutionMatchesTheDefinition(int k, int s, int p, int ci, int co, int h, int w, boolean withZ,
                                               boolean relu) {
        Random r = new Random(31L * k + 7L * s + ci);
        int n = 2;
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (w + 2 * p - k) / s + 1;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, n, h, w, ci);
            Tensor wt = Tensor.randn(r, co, k, k, ci);
            Tensor bias = Tensor.randn(r, co);
            Tensor z = withZ ? Tensor.randn(r, n, ho, wo, co) : null;
            Tensor y = Tensor.full(Double.NaN, n, ho, wo, co);
            x.backend().conv2dNhwc(x, wt, bias, z, relu, new ConvParams(s, s, p, p, 1, 1), y);
            double[] want = conv(x.toFloatArray(), wt.toFloatArray(), bias.toFloatArray(),
                    z == null ? null : z.toFloatArray(), relu, n, h, w, ci, co, k, s, p, ho, wo);
            Closeness.ACCUMULATED.assertClose("conv2dNhwc", want, y.toDoubleArray());
            if (relu) {
                assertTrue(java.util.Arrays.stream(want).anyMatch(v -> v == 0), "some outputs are cut by the ReLU");
            }
        }
    }

    @Test
    void badOperandsAreClearErrors() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.zeros(1, 5, 5, 4);
            Tensor w = Tensor.zeros(8, 3, 3, 4);
            Tensor b = Tensor.zeros(8);
            ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
            Backend be = x.backend();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> be.conv2dNhwc(x, Tensor.zeros(8, 4, 3, 3), b, null, true, p, Tensor.zeros(1, 5, 5, 8)));
            assertTrue(e.getMessage().contains("w [Co, kh, kw, Ci]") && e.getMessage().contains("w [8, 4, 3, 3]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> be.conv2dNhwc(x, w, b, null, true, p, Tensor.zeros(1, 3, 3, 8)));
            assertTrue(e.getMessage().contains("gives 5x5 outputs"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> be.conv2dNhwc(x.permute(0, 2, 1, 3), w, b, null, true, p, Tensor.zeros(1, 5, 5, 8)));
            assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> be.conv2dNhwc(x, w, b, Tensor.zeros(1, 5, 5, 4), true, p, Tensor.zeros(1, 5, 5, 8)));
            assertTrue(e.getMessage().contains("z must have y's shape"), e.getMessage());
            // y over z (an in-place residual): cuDNN's algorithm search would overwrite z before the fused call
            Tensor zy = Tensor.zeros(1, 5, 5, 8);
            e = assertThrows(IllegalArgumentException.class, () -> be.conv2dNhwc(x, w, b, zy, true, p, zy));
            assertTrue(e.getMessage().contains("must not share memory"), e.getMessage());
            // y and z disjoint parts of one buffer: fine; y over the memory of x: refused
            Tensor both = Tensor.zeros(2, 5, 5, 8);
            Tensor y0 = both.slice(0, 0, 1);
            Tensor z1 = both.slice(0, 1, 2);
            be.conv2dNhwc(x, w, b, z1, true, p, y0);
            Tensor xIn = both.viewOf(new int[] {1, 5, 5, 4}, new long[] {100, 20, 4, 1}, both.offset() + 250);
            e = assertThrows(IllegalArgumentException.class, () -> be.conv2dNhwc(xIn, w, b, null, true, p, z1));
            assertTrue(e.getMessage().contains("must not share memory"), e.getMessage());
        }
    }

    @Test
    void maxPoolMatchesTheWindowMaximumAndNaNWins() {
        Random r = new Random(5);
        int n = 2;
        int h = 9;
        int w = 8;
        int c = 6;
        int ho = (h + 2 - 3) / 2 + 1;
        int wo = (w + 2 - 3) / 2 + 1;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, n, h, w, c);
            x.backend().fill(x.slice(0, 1, 2).slice(1, 3, 4).slice(2, 3, 4).slice(3, 2, 3), Double.NaN);
            float[] xs = x.toFloatArray();
            Tensor y = Tensor.zeros(n, ho, wo, c);
            x.backend().maxPool2dNhwc(x, new PoolParams(3, 3, 2, 2, 1, 1), y, null);
            double[] got = y.toDoubleArray();
            int nans = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < ho; i++) {
                    for (int j = 0; j < wo; j++) {
                        for (int ch = 0; ch < c; ch++) {
                            double best = Double.NEGATIVE_INFINITY;
                            for (int a = Math.max(0, 2 * i - 1); a < Math.min(h, 2 * i + 2); a++) {
                                for (int q = Math.max(0, 2 * j - 1); q < Math.min(w, 2 * j + 2); q++) {
                                    float v = xs[((b * h + a) * w + q) * c + ch];
                                    best = Float.isNaN(v) || Double.isNaN(best) ? Double.NaN : Math.max(best, v);
                                }
                            }
                            double v = got[((b * ho + i) * wo + j) * c + ch];
                            if (Double.isNaN(best)) {
                                nans++;
                                assertTrue(Double.isNaN(v), "NaN wins its window at " + b + "," + i + "," + j + "," + ch);
                            } else {
                                assertEquals(best, v, 0, "max at " + b + "," + i + "," + j + "," + ch);
                            }
                        }
                    }
                }
            }
            assertEquals(4, nans, "the NaN at row 3, column 3 lies in 2x2 overlapping windows");
        }
    }
}
