package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backend;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The CPU backend's max pooling with the argmax (the training path) and its backward, float32
 * (the vectorised kernels) and float64 (the generic scan), against a reference written here:
 * per window, the first NaN in row-major order if there is one, else the first element equal to
 * the window's maximum (padding is −∞ and never chosen; floor mode). Values must be the chosen
 * element's exact bits and indices its flat h·W + w; the backward must be dy summed into dx in
 * row-major output order, in float arithmetic (float32) or double (float64).
 */
class MaxPoolArgmaxTest {

    /** The reference's choice: flat indices within the plane, per output, row-major. */
    private static int[] referenceArgmax(double[] plane, int h, int w, PoolParams p) {
        int ho = (h + 2 * p.padH() - p.kernelH()) / p.strideH() + 1;
        int wo = (w + 2 * p.padW() - p.kernelW()) / p.strideW() + 1;
        int[] out = new int[ho * wo];
        for (int i = 0; i < ho; i++) {
            for (int j = 0; j < wo; j++) {
                int a0 = Math.max(i * p.strideH() - p.padH(), 0);
                int a1 = Math.min(i * p.strideH() - p.padH() + p.kernelH(), h);
                int b0 = Math.max(j * p.strideW() - p.padW(), 0);
                int b1 = Math.min(j * p.strideW() - p.padW() + p.kernelW(), w);
                int firstNaN = -1;
                double max = Double.NEGATIVE_INFINITY;
                for (int a = a0; a < a1; a++) {
                    for (int b = b0; b < b1; b++) {
                        double v = plane[a * w + b];
                        if (Double.isNaN(v) && firstNaN < 0) {
                            firstNaN = a * w + b;
                        }
                        max = v > max ? v : max;
                    }
                }
                // else the first element equal to the maximum (−0 == +0); an all −∞ window: its first
                int pick = firstNaN;
                for (int e = 0; pick < 0; e++) {
                    int a = a0 + e / (b1 - b0);
                    int b = b0 + e % (b1 - b0);
                    if (plane[a * w + b] == max) {
                        pick = a * w + b;
                    }
                }
                out[i * wo + j] = pick;
            }
        }
        return out;
    }

    /**
     * Runs the backend's forward and backward on x [n, c, h, w] (given as float values; a slice of
     * a larger tensor, so the kernels see a non-zero offset) and checks both against the reference.
     */
    private static void check(String what, DType dtype, float[] values, int n, int c, int h, int w, PoolParams p,
                              Random r) {
        int ho = (h + 2 * p.padH() - p.kernelH()) / p.strideH() + 1;
        int wo = (w + 2 * p.padW() - p.kernelW()) / p.strideW() + 1;
        int planes = n * c;
        float[] padded = new float[values.length + c * h * w];
        System.arraycopy(values, 0, padded, c * h * w, values.length);
        float[] dyv = new float[planes * ho * wo];
        for (int k = 0; k < dyv.length; k++) {
            // magnitudes over six decades, so that summing in another order would round differently
            dyv[k] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(6) - 3));
        }
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(padded, n + 1, c, h, w).to(dtype).slice(0, 1, n + 1);
            Tensor dy = Tensor.of(dyv, n, c, ho, wo).to(dtype);
            Backend be = x.backend();
            Tensor y = Tensor.full(7.0, n, c, ho, wo).to(dtype);
            Tensor idx = Tensor.zeros(DType.INT32, Device.CPU, n, c, ho, wo);
            be.maxPool2d(x, p, y, idx);
            Tensor dx = Tensor.zeros(dtype, Device.CPU, n, c, h, w);
            be.maxPool2dBackward(dy, idx, p, dx);
            int[] gotIdx = idx.toIntArray();
            double[] gotY = y.toDoubleArray();
            double[] gotDx = dx.toDoubleArray();
            for (int pl = 0; pl < planes; pl++) {
                double[] plane = new double[h * w];
                for (int e = 0; e < h * w; e++) {
                    plane[e] = values[pl * h * w + e];
                }
                int[] want = referenceArgmax(plane, h, w, p);
                float[] dxf = new float[h * w];
                double[] dxd = new double[h * w];
                for (int o = 0; o < ho * wo; o++) {
                    int at = pl * ho * wo + o;
                    String where = what + " " + dtype + ": plane " + pl + ", output (" + o / wo + ", " + o % wo + ")";
                    if (gotIdx[at] != want[o]) {
                        fail(where + ": argmax " + gotIdx[at] + ", want " + want[o]);
                    }
                    float wantY = values[pl * h * w + want[o]];
                    long gotBits = Double.doubleToRawLongBits(gotY[at]);
                    long wantBits = Double.doubleToRawLongBits(wantY);
                    if (gotBits != wantBits) {
                        fail(where + ": value " + gotY[at] + ", want " + wantY + " (bits differ)");
                    }
                    dxf[want[o]] += dyv[at];
                    dxd[want[o]] += dyv[at];
                }
                for (int e = 0; e < h * w; e++) {
                    double wantDx = dtype == DType.FLOAT32 ? dxf[e] : dxd[e];
                    if (Double.doubleToRawLongBits(gotDx[pl * h * w + e]) != Double.doubleToRawLongBits(wantDx)) {
                        fail(what + " " + dtype + ": dx plane " + pl + " at " + e + ": " + gotDx[pl * h * w + e]
                                + ", want " + wantDx);
                    }
                }
            }
        }
    }

    private static float[] fill(int count, DoubleSupplier v) {
        float[] a = new float[count];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) v.getAsDouble();
        }
        return a;
    }

    /**
     * Kernels 2, 3, 5, strides 1–3, paddings up to half the kernel, over odd sizes and widths
     * around the 16-lane vectors, with gaussian values, values from {0, 1} (ties across rows and
     * columns of a window) and from {−0, +0} (the first zero's sign must survive).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void argmaxAndBackwardMatchTheReferenceOverGeometries(DType dtype) {
        Random r = new Random(3);
        int cases = 0;
        for (int k : new int[] {2, 3, 5}) {
            for (int s = 1; s <= 3; s++) {
                for (int p = 0; p <= k / 2; p++) {
                    for (int[] hw : new int[][] {{k, k}, {7, 5}, {13, 17}, {9, 33}, {11, 50}}) {
                        int h = hw[0];
                        int w = hw[1];
                        PoolParams pp = new PoolParams(k, k, s, s, p, p);
                        String g = "k" + k + " s" + s + " p" + p + " " + h + "x" + w;
                        int count = 2 * 3 * h * w;
                        check(g + " gaussian", dtype, fill(count, r::nextGaussian), 2, 3, h, w, pp, r);
                        check(g + " {0,1}", dtype, fill(count, () -> r.nextInt(2)), 2, 3, h, w, pp, r);
                        check(g + " {-0,+0}", dtype, fill(count, () -> r.nextBoolean() ? -0.0 : 0.0), 2, 3, h, w, pp,
                                r);
                        cases++;
                    }
                }
            }
        }
        assertEquals(105, cases, "geometries checked");
    }

    /**
     * NaN and ±∞ scattered densely (several NaNs per window: the first in row-major order wins even
     * when a later column holds one in an upper row), and planes that are all −∞ but for rare NaNs
     * (the window's first element is the argmax).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64"})
    void nanAndInfinitiesFollowTheScan(DType dtype) {
        Random r = new Random(4);
        for (int[] g : new int[][] {{3, 2, 1, 37, 41}, {3, 1, 1, 12, 35}, {2, 2, 0, 9, 35}, {5, 3, 2, 23, 50},
            {3, 3, 0, 17, 48}}) {
            PoolParams pp = new PoolParams(g[0], g[0], g[1], g[1], g[2], g[2]);
            String geo = "k" + g[0] + " s" + g[1] + " p" + g[2] + " " + g[3] + "x" + g[4];
            int count = 3 * 2 * g[3] * g[4];
            check(geo + " specials", dtype, fill(count, () -> {
                double u = r.nextDouble();
                return u < 0.08 ? Double.NaN : u < 0.16 ? Double.NEGATIVE_INFINITY : u < 0.22
                        ? Double.POSITIVE_INFINITY : r.nextInt(3);
            }), 3, 2, g[3], g[4], pp, r);
            check(geo + " all -inf", dtype, fill(count, () -> r.nextDouble() < 0.01 ? Double.NaN
                    : Double.NEGATIVE_INFINITY), 3, 2, g[3], g[4], pp, r);
        }
    }

    /**
     * Single windows derived by hand (3×3, stride 1, no padding, so one output): the values and
     * argmaxes the scan's definition gives, through the same check (which also compares with the
     * reference). The window sits at column 20 of 3 × 40 rows repeated, so the vectorised columns
     * and the gathers both see it.
     */
    @Test
    void handDerivedWindowsPickTheFirstNanOrTheFirstMaximum() {
        float nan = Float.NaN;
        float[][] windows = {
            {1, 5, nan, 2, 3, 4, 0, 0, 0}, // NaN after the maximum: the NaN, index 2
            {nan, 9, 9, 9, 9, 9, 9, 9, 9}, // NaN first: index 0
            {1, nan, 3, nan, 7, 7, 7, 7, 7}, // two NaNs: the first, index 1
            {0, 0, nan, nan, 0, 0, 0, 0, 0}, // NaNs in column 0 (row 1) and column 2 (row 0): index 2
            {0, 0, 5, 5, 0, 0, 0, 0, 0}, // ties across columns: row 0 first, index 2
            {-0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f}, // -0 and +0 tie: the first, -0
        };
        int[] wantIdx = {2, 0, 1, 2, 2, 0};
        int w = 40;
        PoolParams pp = new PoolParams(3, 3, 1, 1, 0, 0);
        for (int c = 0; c < windows.length; c++) {
            float[] plane = new float[3 * w];
            java.util.Arrays.fill(plane, Float.NEGATIVE_INFINITY);
            for (int e = 0; e < 9; e++) {
                plane[(e / 3) * w + 20 + e % 3] = windows[c][e];
            }
            check("window " + c, DType.FLOAT32, plane, 1, 1, 3, w, pp, new Random(c));
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor x = Tensor.of(plane, 1, 1, 3, w);
                Tensor y = Tensor.zeros(1, 1, 1, w - 2);
                Tensor idx = Tensor.zeros(DType.INT32, Device.CPU, 1, 1, 1, w - 2);
                x.backend().maxPool2d(x, pp, y, idx);
                int want = (wantIdx[c] / 3) * w + 20 + wantIdx[c] % 3;
                assertEquals(want, idx.toIntArray()[20], "window " + c + ": argmax");
                assertEquals(Float.floatToRawIntBits(windows[c][wantIdx[c]]),
                        Float.floatToRawIntBits(y.toFloatArray()[20]), "window " + c + ": value bits");
            }
        }
    }

    /**
     * More planes than threads, split into chunks of one plane (planes of 181×183, past the
     * kernel's minimum chunk) and of several (small planes), with a plane count that does not
     * divide evenly.
     */
    @Test
    void planesSplitOverThreadsAllMatch() {
        Random r = new Random(6);
        int planes = 2 * CpuThreads.threads() + 3;
        PoolParams stem = new PoolParams(3, 3, 2, 2, 1, 1);
        check("large planes", DType.FLOAT32, fill(planes * 181 * 183, r::nextGaussian), planes, 1, 181, 183, stem, r);
        check("small planes", DType.FLOAT32, fill(7 * planes * 15 * 17, () -> r.nextInt(4)), 7, planes, 15, 17,
                stem, r);
    }
}
