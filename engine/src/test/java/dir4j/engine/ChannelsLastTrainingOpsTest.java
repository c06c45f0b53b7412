package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The channels-last training ops: each Backend op on [N, H, W, C] tensors against its NCHW
 * counterpart on the same values (where the CPU backend runs that counterpart on permuted copies
 * the bits must agree exactly: this pins the layout plumbing; batch norm has its own float32 NHWC
 * kernels that sum in another order, so it is compared within float rounding and, at stress
 * shapes, against the float64 NCHW op), and each NnOps op's gradients against central
 * differences in float64 (GradCheck), which pins the rules themselves.
 */
class ChannelsLastTrainingOpsTest {

    /** A contiguous channels-last copy of an NCHW tensor. */
    private static Tensor nhwc(Tensor nchw) {
        return Ops.cloneDetached(nchw.permute(0, 2, 3, 1));
    }

    /** A contiguous NCHW copy of a channels-last tensor. */
    private static Tensor nchw(Tensor nhwc) {
        return Ops.cloneDetached(nhwc.permute(0, 3, 1, 2));
    }

    @ParameterizedTest(name = "k{0} s{1} p{2} ci{3} co{4} {5}x{6}")
    @CsvSource({
        "1, 1, 0, 8, 16, 5, 7",    // a bottleneck's 1x1
        "1, 2, 0, 6, 12, 9, 6",    // a strided downsample
        "3, 1, 1, 5, 6, 6, 5",     // 3x3 with padding, odd sizes
        "3, 2, 1, 4, 8, 9, 8",     // strided 3x3
        "7, 2, 3, 3, 8, 13, 11",   // the stem
        "3, 1, 0, 2, 3, 4, 4",     // no padding
        // the CPU's direct channels-last kernels: full and partial 32-channel blocks, many tiles
        "3, 1, 1, 64, 64, 14, 15", "1, 1, 0, 70, 33, 9, 13", "3, 2, 1, 48, 96, 15, 14", "1, 2, 0, 64, 130, 14, 14",
        "5, 1, 2, 17, 40, 11, 12", "3, 1, 2, 16, 16, 7, 9"})
    void convolutionDirectionsMatchTheNchwOps(int k, int s, int p, int ci, int co, int h, int w) {
        Random r = new Random(17L * k + 5L * s + ci);
        int n = 2;
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (w + 2 * p - k) / s + 1;
        ConvParams cp = new ConvParams(s, s, p, p, 1, 1);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, n, ci, h, w);
            Tensor wt = Tensor.randn(r, co, ci, k, k);
            Tensor dy = Tensor.randn(r, n, co, ho, wo);
            Backend be = x.backend();
            Tensor y = Tensor.zeros(n, co, ho, wo);
            Tensor dx = Tensor.zeros(n, ci, h, w);
            Tensor dw = Tensor.zeros(co, ci, k, k);
            be.conv2d(x, wt, cp, y);
            be.conv2dBackwardData(dy, wt, cp, dx);
            be.conv2dBackwardFilter(x, dy, cp, dw);

            Tensor xl = nhwc(x);
            Tensor wl = nhwc(wt);
            Tensor dyl = nhwc(dy);
            Tensor yl = Tensor.full(Double.NaN, n, ho, wo, co);
            Tensor dxl = Tensor.full(Double.NaN, n, h, w, ci);
            Tensor dwl = Tensor.full(Double.NaN, co, k, k, ci);
            be.conv2dNhwc(xl, wl, null, null, false, cp, yl);
            be.conv2dNhwcBackwardData(dyl, wl, cp, dxl);
            be.conv2dNhwcBackwardFilter(xl, dyl, cp, dwl);
            // the CPU's channels-last kernels sum in another order than the NCHW ones: within
            // float rounding of sums over k·k·Ci (forward), k·k·Co (data) or N·Ho·Wo (filter) terms
            assertClose(y.toFloatArray(), nchw(yl).toFloatArray(), "forward");
            assertClose(dx.toFloatArray(), nchw(dxl).toFloatArray(), "backward data");
            assertClose(dw.toFloatArray(), nchw(dwl).toFloatArray(), "backward filter");
        }
    }

    /** |a − b| ≤ 1e-4·(1 + |a|) elementwise (sums of up to a few thousand unit-scale products). */
    private static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (!(Math.abs(want[i] - got[i]) <= 1e-4 * (1 + Math.abs(want[i])))) {
                assertEquals(want[i], got[i], 1e-4 * (1 + Math.abs(want[i])), what + " at " + i);
            }
        }
    }

    @Test
    void recycledCopyBuffersNeverLeakIntoTheNextConvolution() {
        // [1, 6, 8, C] and [1, 8, 6, C] padded by 1 take buffers of one length with the padding
        // ring in different places: the CPU backend recycles its padded copies, so the second
        // convolution reads the first's buffer, which must be re-zeroed where its ring now is
        Random r = new Random(23);
        ConvParams cp = new ConvParams(1, 1, 1, 1, 1, 1);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor w = Tensor.randn(r, 32, 3, 3, 32);
            for (int[] hw : new int[][] {{6, 8}, {8, 6}, {6, 8}}) {
                Tensor x = Tensor.randn(r, 1, hw[0], hw[1], 32);
                Backend be = x.backend();
                Tensor y = Tensor.full(Double.NaN, 1, hw[0], hw[1], 32);
                be.conv2dNhwc(x, w, null, null, false, cp, y);
                Tensor want = Tensor.zeros(1, 32, hw[0], hw[1]);
                be.conv2d(nchw(x), nchw(w), cp, want);
                assertClose(want.toFloatArray(), nchw(y).toFloatArray(), "forward of " + hw[0] + "x" + hw[1]);
                Tensor dx = Tensor.full(Double.NaN, 1, hw[0], hw[1], 32);
                be.conv2dNhwcBackwardData(x, w, cp, dx);
                Tensor wantDx = Tensor.zeros(1, 32, hw[0], hw[1]);
                be.conv2dBackwardData(nchw(x), nchw(w), cp, wantDx);
                assertClose(wantDx.toFloatArray(), nchw(dx).toFloatArray(), "backward data of " + hw[0] + "x" + hw[1]);
            }
        }
    }

    @ParameterizedTest(name = "k{0} s{1} bias {2} residual {3} relu {4}")
    @CsvSource({"3, 1, true, true, true", "1, 1, false, true, true", "3, 2, true, false, true",
        "1, 2, true, true, false", "3, 1, false, false, false"})
    void fusedEpilogueMatchesTheSeparateOps(int k, int s, boolean withBias, boolean withResidual, boolean relu) {
        Random r = new Random(31L * k + s);
        int n = 2;
        int ci = 40;
        int co = 48;
        int h = 13;
        int w = 12;
        int p = k / 2;
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (w + 2 * p - k) / s + 1;
        ConvParams cp = new ConvParams(s, s, p, p, 1, 1);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, n, h, w, ci);
            Tensor wt = Tensor.randn(r, co, k, k, ci);
            Tensor bias = withBias ? Tensor.randn(r, co) : null;
            Tensor z = withResidual ? Tensor.randn(r, n, ho, wo, co).mul(5) : null;
            Backend be = x.backend();
            Tensor plain = Tensor.full(Double.NaN, n, ho, wo, co);
            be.conv2dNhwc(x, wt, null, null, false, cp, plain);
            Tensor want = plain;
            if (bias != null) {
                want = Ops.add(want, bias);
            }
            if (z != null) {
                want = Ops.add(want, z);
            }
            if (relu) {
                want = Ops.relu(want);
            }
            Tensor y = Tensor.full(Double.NaN, n, ho, wo, co);
            be.conv2dNhwc(x, wt, bias, z, relu, cp, y);
            assertClose(want.toFloatArray(), y.toFloatArray(), "fused epilogue");
            if (relu) {
                long zeros = java.util.Arrays.stream(y.toDoubleArray()).filter(v -> v == 0).count();
                assertTrue(zeros > 0 && zeros < y.numel(), "the ReLU must cut some values: " + zeros);
            }
        }
    }

    @Test
    void convolutionBackwardOperandsAreChecked() {
        try (MemoryScope scope = MemoryScope.open()) {
            Backend be = Tensor.zeros(1).backend();
            ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.conv2dNhwcBackwardData(
                    Tensor.zeros(1, 5, 5, 8), Tensor.zeros(8, 3, 3, 4), p, Tensor.zeros(1, 5, 5, 3)));
            assertTrue(e.getMessage().contains("w [Co, kh, kw, Ci]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> be.conv2dNhwcBackwardFilter(
                    Tensor.zeros(1, 5, 5, 4), Tensor.zeros(1, 4, 4, 8), p, Tensor.zeros(8, 3, 3, 4)));
            assertTrue(e.getMessage().contains("gives 5x5 outputs"), e.getMessage());
        }
    }

    @ParameterizedTest(name = "training={0}")
    @ValueSource(booleans = {true, false})
    void batchNormMatchesTheNchwOpWithRunningStatistics(boolean training) {
        Random r = new Random(training ? 3 : 4);
        int n = 3;
        int c = 5;
        int h = 4;
        int w = 7;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, n, c, h, w).mul(2).add(0.5);
            Tensor gamma = Tensor.randn(r, c);
            Tensor beta = Tensor.randn(r, c);
            Tensor dy = Tensor.randn(r, n, c, h, w);
            float[] rm0 = Tensor.randn(r, c).toFloatArray();
            float[] rv0 = Tensor.uniform(r, 0.5, 2, c).toFloatArray();
            Backend be = x.backend();

            Tensor rm = Tensor.of(rm0.clone(), c);
            Tensor rv = Tensor.of(rv0.clone(), c);
            Tensor y = Tensor.zeros(n, c, h, w);
            Tensor mean = Tensor.zeros(c);
            Tensor inv = Tensor.zeros(c);
            be.batchNorm2d(x, gamma, beta, rm, rv, training, 0.1, 1e-5, y, mean, inv);
            Tensor dx = Tensor.zeros(n, c, h, w);
            Tensor dg = Tensor.zeros(c);
            Tensor db = Tensor.zeros(c);
            be.batchNorm2dBackward(x, dy, gamma, mean, inv, training, dx, dg, db);

            Tensor rml = Tensor.of(rm0.clone(), c);
            Tensor rvl = Tensor.of(rv0.clone(), c);
            Tensor yl = Tensor.full(Double.NaN, n, h, w, c);
            Tensor meanl = Tensor.full(Double.NaN, c);
            Tensor invl = Tensor.full(Double.NaN, c);
            Tensor xl = nhwc(x);
            be.batchNorm2dNhwc(xl, gamma, beta, rml, rvl, training, 0.1, 1e-5, yl, meanl, invl);
            Tensor dxl = Tensor.full(Double.NaN, n, h, w, c);
            Tensor dgl = Tensor.full(Double.NaN, c);
            Tensor dbl = Tensor.full(Double.NaN, c);
            be.batchNorm2dNhwcBackward(xl, nhwc(dy), gamma, meanl, invl, training, dxl, dgl, dbl);

            // the CPU backend's float32 NHWC kernels sum across rows of channels, the NCHW ones along
            // planes: the same formulas in another summation order, so equal within float rounding
            // (values here are O(1): 1e-5 relative to max(1, |value|)), not bit for bit
            assertClose(y.toFloatArray(), nchw(yl).toFloatArray(), 1e-5, "y");
            assertClose(mean.toFloatArray(), meanl.toFloatArray(), 1e-5, "saved mean");
            assertClose(inv.toFloatArray(), invl.toFloatArray(), 1e-5, "saved 1/std");
            assertClose(rm.toFloatArray(), rml.toFloatArray(), 1e-5, "running mean");
            assertClose(rv.toFloatArray(), rvl.toFloatArray(), 1e-5, "running var");
            assertClose(dx.toFloatArray(), nchw(dxl).toFloatArray(), 1e-5, "dx");
            assertClose(dg.toFloatArray(), dgl.toFloatArray(), 1e-5, "dgamma");
            assertClose(db.toFloatArray(), dbl.toFloatArray(), 1e-5, "dbeta");
            if (training) {
                // the running statistics moved by momentum 0.1 towards the batch's (unbiased variance)
                double[] xs = x.toDoubleArray();
                double sum = 0;
                double sq = 0;
                int m = n * h * w;
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < h * w; i++) {
                        double v = xs[(b * c + 2) * h * w + i];
                        sum += v;
                        sq += v * v;
                    }
                }
                double mu = sum / m;
                double var = (sq - m * mu * mu) / (m - 1);
                assertEquals(0.9 * rm0[2] + 0.1 * mu, rml.toDoubleArray()[2], 1e-5, "running mean of channel 2");
                assertEquals(0.9 * rv0[2] + 0.1 * var, rvl.toDoubleArray()[2], 1e-4, "running var of channel 2");
            } else {
                assertArrayEquals(rm0, rml.toFloatArray(), "eval leaves the running mean");
            }
        }
    }

    /** |want − got| ≤ rel·max(1, |want|) elementwise. */
    private static void assertClose(float[] want, float[] got, double rel, String what) {
        assertEquals(want.length, got.length, what + " length");
        for (int i = 0; i < want.length; i++) {
            double tol = rel * Math.max(1, Math.abs(want[i]));
            if (!(Math.abs(want[i] - got[i]) <= tol)) {
                throw new AssertionError(what + " at " + i + ": want " + want[i] + " got " + got[i] + " (tol " + tol
                        + ")");
            }
        }
    }

    /** |want − got| ≤ bound[i] elementwise (want in float64, got in float32). */
    private static void assertWithin(double[] want, float[] got, double[] bound, String what) {
        assertEquals(want.length, got.length, what + " length");
        for (int i = 0; i < want.length; i++) {
            if (!(Math.abs(want[i] - got[i]) <= bound[i])) {
                throw new AssertionError(what + " at " + i + ": want " + want[i] + " got " + got[i] + " (tol "
                        + bound[i] + ")");
            }
        }
    }

    /**
     * The CPU backend's float32 NHWC batch norm kernels at stress shapes (channel counts that are
     * not multiples of the vector width, one row of 2048 channels, up to 60,000 rows, values on a
     * common offset of 1000 with a spread of 0.1, where a one-pass Σx² − (Σx)²/n variance in float
     * would lose every digit, and two rows whose spread is a few float ulps of their values)
     * against the float64 NCHW op on the same (float32) values, whose gradients GradCheck pins by
     * finite differences. 1/std and the running averages to 1e-6 relative, the mean to one float
     * ulp (it is stored as float32; seen errors: about a tenth of each); y and dx, which the kernels
     * (NCHW ones too) form as float32 x·scale + shift and a·dy + b·x + c, to 2e-6 of the magnitude
     * of those terms (with the offset they cancel: x·scale ≈ 1e4 for y ≈ 1); dgamma and dbeta to
     * 1e-6 of Σ|dy·x̂| and Σ|dy|. The reference backward is fed the float32 forward's saved
     * statistics, so it checks the backward kernel alone.
     */
    @ParameterizedTest(name = "{0}x{1}x{2}x{3} offset {4} training={5}")
    @CsvSource({
        "1, 1, 2, 3, 0, true", "1, 1, 2, 3, 0, false",
        "2, 3, 3, 17, 0, true", "2, 3, 3, 17, 0, false",
        "1, 1, 2, 2048, 0, true",
        "4, 7, 7, 2048, 0, true", "4, 7, 7, 2048, 1000, false",
        "2, 7, 7, 2048, 1000, true",
        "3, 100, 200, 3, 0, true",
        "15, 40, 100, 17, 1000, true", "15, 40, 100, 17, 1000, false",
        "4, 56, 56, 64, 1000, true",
        "5, 100, 120, 64, 0, true", "5, 100, 120, 64, 0, false"})
    void float32NhwcBatchNormAgainstTheFloat64NchwOp(int n, int h, int w, int c, double offset, boolean training) {
        Random r = new Random(31L * c + n * h * w + (training ? 1 : 0));
        int rows = n * h * w;
        double spread = offset == 0 ? 2 : 0.1;
        float[] xv = new float[rows * c];
        float[] dyv = new float[rows * c];
        for (int i = 0; i < xv.length; i++) {
            xv[i] = (float) (offset + 0.37 * (i % c) + spread * r.nextGaussian());
            dyv[i] = (float) r.nextGaussian();
        }
        float[] gv = new float[c];
        float[] bv = new float[c];
        float[] rm0 = new float[c];
        float[] rv0 = new float[c];
        for (int ch = 0; ch < c; ch++) {
            gv[ch] = (float) r.nextGaussian();
            bv[ch] = (float) r.nextGaussian();
            rm0[ch] = (float) (offset + r.nextGaussian());
            rv0[ch] = (float) (0.5 + 1.5 * r.nextDouble()) * (float) (spread * spread);
        }
        double momentum = 0.1;
        double eps = 1e-5;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(xv, n, h, w, c);
            Tensor dy = Tensor.of(dyv, n, h, w, c);
            Tensor gamma = Tensor.of(gv, c);
            Tensor beta = Tensor.of(bv, c);
            Backend be = x.backend();
            Tensor rm = Tensor.of(rm0.clone(), c);
            Tensor rv = Tensor.of(rv0.clone(), c);
            Tensor y = Tensor.full(Double.NaN, n, h, w, c);
            Tensor mean = Tensor.full(Double.NaN, c);
            Tensor inv = Tensor.full(Double.NaN, c);
            be.batchNorm2dNhwc(x, gamma, beta, rm, rv, training, momentum, eps, y, mean, inv);
            Tensor dx = Tensor.full(Double.NaN, n, h, w, c);
            Tensor dg = Tensor.full(Double.NaN, c);
            Tensor db = Tensor.full(Double.NaN, c);
            be.batchNorm2dNhwcBackward(x, dy, gamma, mean, inv, training, dx, dg, db);

            DType f64 = DType.FLOAT64;
            Tensor x64 = Ops.cloneDetached(x.to(f64).permute(0, 3, 1, 2));
            Tensor dy64 = Ops.cloneDetached(dy.to(f64).permute(0, 3, 1, 2));
            Tensor g64 = gamma.to(f64);
            Tensor rm64 = Tensor.of(rm0.clone(), c).to(f64);
            Tensor rv64 = Tensor.of(rv0.clone(), c).to(f64);
            Tensor y64 = Tensor.zeros(f64, Device.CPU, n, c, h, w);
            Tensor mean64 = Tensor.zeros(f64, Device.CPU, c);
            Tensor inv64 = Tensor.zeros(f64, Device.CPU, c);
            be.batchNorm2d(x64, g64, beta.to(f64), rm64, rv64, training, momentum, eps, y64, mean64, inv64);
            Tensor dx64 = Tensor.zeros(f64, Device.CPU, n, c, h, w);
            Tensor dg64 = Tensor.zeros(f64, Device.CPU, c);
            Tensor db64 = Tensor.zeros(f64, Device.CPU, c);
            be.batchNorm2dBackward(x64, dy64, g64, mean.to(f64), inv.to(f64), training, dx64, dg64, db64);

            double[] wantMean = mean64.toDoubleArray();
            double[] wantInv = inv64.toDoubleArray();
            double[] meanTol = new double[c];
            double[] invTol = new double[c];
            double[] rmTol = new double[c];
            double[] rvTol = new double[c];
            double[] rmWant = rm64.toDoubleArray();
            double[] rvWant = rv64.toDoubleArray();
            for (int ch = 0; ch < c; ch++) {
                meanTol[ch] = Math.ulp((float) wantMean[ch]) + 1e-7 * spread;
                invTol[ch] = 1e-6 * wantInv[ch];
                rmTol[ch] = 1e-6 * Math.max(1, Math.abs(rmWant[ch]));
                rvTol[ch] = 1e-6 * rvWant[ch];
            }
            assertWithin(wantMean, mean.toFloatArray(), meanTol, "saved mean");
            assertWithin(wantInv, inv.toFloatArray(), invTol, "saved 1/std");
            assertWithin(rmWant, rm.toFloatArray(), rmTol, "running mean");
            assertWithin(rvWant, rv.toFloatArray(), rvTol, "running var");
            if (!training) {
                assertArrayEquals(rm0, rm.toFloatArray(), "eval leaves the running mean");
                assertArrayEquals(rv0, rv.toFloatArray(), "eval leaves the running var");
            } else {
                // the update really moved: towards the batch statistics, not left at the start
                double moved = 0;
                for (int ch = 0; ch < c; ch++) {
                    moved = Math.max(moved, Math.abs(rm.toDoubleArray()[ch] - rm0[ch]));
                }
                assertTrue(moved > 0, "training moves the running mean");
            }

            // y: the reference in NHWC order, bounds from x·scale and shift
            double[] yw = nhwc(y64).toDoubleArray();
            double[] dxw = nhwc(dx64).toDoubleArray();
            double[] dgw = dg64.toDoubleArray();
            double[] dbw = db64.toDoubleArray();
            double[] yTol = new double[yw.length];
            double[] dxTol = new double[yw.length];
            double[] sumAbsDy = new double[c];
            double[] sumAbsDyXhat = new double[c];
            double[] savedMean = mean.toDoubleArray();
            double[] savedInv = inv.toDoubleArray();
            for (int i = 0; i < yw.length; i++) {
                int ch = i % c;
                double scale = gv[ch] * wantInv[ch];
                double shift = bv[ch] - wantMean[ch] * scale;
                yTol[i] = 2e-6 * (Math.abs(xv[i] * scale) + Math.abs(shift)) + 1e-6;
                double xhat = (xv[i] - savedMean[ch]) * savedInv[ch];
                sumAbsDy[ch] += Math.abs(dyv[i]);
                sumAbsDyXhat[ch] += Math.abs(dyv[i] * xhat);
            }
            for (int i = 0; i < yw.length; i++) {
                int ch = i % c;
                double a = gv[ch] * savedInv[ch];
                double b = training ? -gv[ch] * savedInv[ch] * savedInv[ch] * dgw[ch] / rows : 0;
                double cc = training ? -a * dbw[ch] / rows - b * savedMean[ch] : 0;
                dxTol[i] = 2e-6 * (Math.abs(a * dyv[i]) + Math.abs(b * xv[i]) + Math.abs(cc)) + 1e-6;
            }
            double[] dgTol = new double[c];
            double[] dbTol = new double[c];
            for (int ch = 0; ch < c; ch++) {
                dgTol[ch] = 1e-6 * sumAbsDyXhat[ch] + 1e-6;
                dbTol[ch] = 1e-6 * sumAbsDy[ch] + 1e-6;
            }
            assertWithin(yw, y.toFloatArray(), yTol, "y");
            assertWithin(dbw, db.toFloatArray(), dbTol, "dbeta");
            assertWithin(dgw, dg.toFloatArray(), dgTol, "dgamma");
            assertWithin(dxw, dx.toFloatArray(), dxTol, "dx");
        }
    }

    @ParameterizedTest(name = "k{0} s{1} p{2} {3}x{4} c{5}")
    @CsvSource({"3, 2, 1, 9, 8, 5", "3, 2, 1, 7, 7, 5", "2, 2, 0, 6, 5, 5", "3, 1, 1, 5, 6, 5",
        // the CPU's channels-last kernel vectorises across channels: whole vectors and a tail
        "3, 2, 1, 9, 8, 37", "3, 2, 1, 12, 11, 64", "2, 2, 0, 6, 5, 16", "5, 3, 2, 11, 10, 33"})
    void maxPoolAndItsBackwardMatchTheNchwOps(int k, int s, int p, int h, int w, int c) {
        Random r = new Random(11L * k + h + c);
        int n = 2;
        int ho = (h + 2 * p - k) / s + 1;
        int wo = (w + 2 * p - k) / s + 1;
        PoolParams pp = new PoolParams(k, k, s, s, p, p);
        try (MemoryScope scope = MemoryScope.open()) {
            // ties (a value repeated across a window) exercise the first-maximum rule
            Tensor x = Tensor.randn(r, n, c, h, w);
            x.backend().fill(x.slice(2, 1, 3).slice(3, 1, 3), 3.0);
            // NaN (which wins the window), -inf windows, and -0/+0 ties in a few channels
            double[] xv = x.toDoubleArray();
            for (int i = 0; i < xv.length; i += 13) {
                xv[i] = Double.NaN;
            }
            for (int i = 5; i < xv.length; i += 17) {
                xv[i] = Double.NEGATIVE_INFINITY;
            }
            for (int i = 7; i < xv.length; i += 19) {
                xv[i] = i % 2 == 0 ? -0.0 : 0.0;
            }
            x = Tensor.ofDoubles(xv, x.shape()).to(DType.FLOAT32);
            Tensor dy = Tensor.randn(r, n, c, ho, wo);
            Backend be = x.backend();
            Tensor y = Tensor.zeros(n, c, ho, wo);
            Tensor idx = Tensor.zeros(DType.INT32, Device.CPU, n, c, ho, wo);
            be.maxPool2d(x, pp, y, idx);
            Tensor dx = Tensor.zeros(n, c, h, w);
            be.maxPool2dBackward(dy, idx, pp, dx);

            Tensor yl = Tensor.full(Double.NaN, n, ho, wo, c);
            Tensor idxl = Tensor.zeros(DType.INT32, Device.CPU, n, ho, wo, c);
            be.maxPool2dNhwc(nhwc(x), pp, yl, idxl);
            Tensor dxl = Tensor.zeros(n, h, w, c);
            be.maxPool2dNhwcBackward(nhwc(dy), idxl, pp, dxl);
            assertArrayEquals(y.toFloatArray(), nchw(yl).toFloatArray(), "y");
            assertArrayEquals(idx.toFloatArray(), nchw(idxl).toFloatArray(), "argmax");
            assertArrayEquals(dx.toFloatArray(), nchw(dxl).toFloatArray(), "dx");
            assertTrue(java.util.Arrays.stream(dx.toDoubleArray()).filter(v -> v != 0).count() < dx.numel(),
                    "only window maxima receive gradients");
        }
    }

    // ------------------------------------------------------------------ autograd against finite differences

    @ParameterizedTest(name = "k{0} s{1} p{2}")
    @CsvSource({"1, 1, 0", "1, 2, 0", "3, 1, 1", "3, 2, 1", "7, 2, 3"})
    void conv2dNhwcGradientsOfAPermutedOihwWeight(int k, int s, int p) {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(k * 10L + s);
            ConvParams cp = new ConvParams(s, s, p, p, 1, 1);
            // the weight is an OIHW leaf seen as [Co, kh, kw, Ci], as the channels-last ResNet passes it
            GradCheck.check("conv2dNhwc k" + k + " s" + s, x -> NnOps.conv2dNhwc(x[0], x[1].permute(0, 2, 3, 1), cp),
                    GradCheck.randn(r, 2, 9, 8, 3), GradCheck.randn(r, 4, 3, k, k));
        }
    }

    @ParameterizedTest(name = "training={0}")
    @ValueSource(booleans = {true, false})
    void batchNorm2dNhwcGradients(boolean training) {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(training ? 21 : 22);
            Tensor rm = GradCheck.randn(r, 3);
            Tensor rv = GradCheck.uniform(r, 0.5, 2, 3);
            // each evaluation would move the running statistics; the check needs f fixed, so
            // training runs without them (the update is checked against the NCHW op above)
            GradCheck.check("batchNorm2dNhwc training=" + training,
                    x -> NnOps.batchNorm2dNhwc(x[0], x[1], x[2], training ? null : rm, training ? null : rv, training,
                            0.1, 1e-5),
                    GradCheck.randn(r, 2, 3, 4, 3), GradCheck.randn(r, 3), GradCheck.randn(r, 3));
        }
    }

    @ParameterizedTest(name = "training={0}")
    @ValueSource(booleans = {true, false})
    void batchNorm2dNhwcActGradientsIncludingTheResidual(boolean training) {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(training ? 24 : 25);
            Tensor rm = GradCheck.randn(r, 3);
            Tensor rv = GradCheck.uniform(r, 0.5, 2, 3);
            GradCheck.check("batchNorm2dNhwcAct training=" + training,
                    x -> NnOps.batchNorm2dNhwcAct(x[0], x[1], x[2], training ? null : rm, training ? null : rv,
                            training, 0.1, 1e-5, x[3], true),
                    GradCheck.randn(r, 2, 3, 4, 3), GradCheck.randn(r, 3), GradCheck.randn(r, 3),
                    GradCheck.randn(r, 2, 3, 4, 3));
        }
    }

    /** The fused node gives the bits of batch norm, add and ReLU in turn, forward and backward. */
    @ParameterizedTest(name = "training={0}")
    @ValueSource(booleans = {true, false})
    void batchNorm2dNhwcActIsTheThreeOpsInTurn(boolean training) {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(26);
            Tensor x = Tensor.randn(r, 2, 5, 6, 8);
            Tensor res = Tensor.randn(r, 2, 5, 6, 8);
            Tensor g = Tensor.randn(r, 8);
            Tensor b = Tensor.randn(r, 8);
            Tensor up = Tensor.randn(r, 2, 5, 6, 8);
            float[][][] got = new float[2][][];
            for (int fused = 0; fused < 2; fused++) {
                Tensor xv = x.detach().requiresGrad(true);
                Tensor rv = res.detach().requiresGrad(true);
                Tensor gv = g.detach().requiresGrad(true);
                Tensor bv = b.detach().requiresGrad(true);
                Tensor runMean = Tensor.zeros(8).add(0.1);
                Tensor runVar = Tensor.ones(8).mul(1.3);
                Tensor y = fused == 1
                        ? NnOps.batchNorm2dNhwcAct(xv, gv, bv, runMean, runVar, training, 0.1, 1e-5, rv, true)
                        : NnOps.batchNorm2dNhwc(xv, gv, bv, runMean, runVar, training, 0.1, 1e-5).add(rv).relu();
                y.mul(up).sum().backward();
                got[fused] = new float[][] {y.toFloatArray(), xv.grad().toFloatArray(), rv.grad().toFloatArray(),
                    gv.grad().toFloatArray(), bv.grad().toFloatArray(), runMean.toFloatArray(), runVar.toFloatArray()};
            }
            String[] names = {"y", "dx", "dresidual", "dgamma", "dbeta", "running mean", "running var"};
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(got[0][i], got[1][i], names[i] + " training=" + training);
            }
        }
    }

    @Test
    void maxPool2dNhwcGradients() {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(23);
            GradCheck.check("maxPool2dNhwc 3/2/1", x -> NnOps.maxPool2dNhwc(x[0], 3, 2, 1),
                    GradCheck.randn(r, 2, 7, 6, 3));
        }
    }

    @Test
    void nnOpsMatchTheNchwAutogradInFloat32() {
        try (MemoryScope scope = MemoryScope.open()) {
            Random r = new Random(29);
            Tensor x = Tensor.randn(r, 2, 4, 9, 10).requiresGrad(true);
            Tensor w = Tensor.randn(r, 6, 4, 3, 3).requiresGrad(true);
            Tensor g = Tensor.randn(r, 6).requiresGrad(true);
            Tensor b = Tensor.randn(r, 6).requiresGrad(true);
            Tensor rm = Tensor.zeros(6);
            Tensor rv = Tensor.ones(6);
            Tensor up = Tensor.randn(r, 2, 6, 3, 3);
            Tensor ref = NnOps.maxPool2d(NnOps.batchNorm2d(NnOps.conv2d(x, w, null, 2, 1, 1), g, b, rm, rv, true, 0.1,
                    1e-5).relu(), 3, 2, 1);
            ref.mul(up).sum().backward();
            float[][] want = {ref.toFloatArray(), x.grad().toFloatArray(), w.grad().toFloatArray(),
                g.grad().toFloatArray(), b.grad().toFloatArray(), rm.toFloatArray(), rv.toFloatArray()};

            Tensor x2 = x.detach().requiresGrad(true);
            Tensor w2 = w.detach().requiresGrad(true);
            Tensor g2 = g.detach().requiresGrad(true);
            Tensor b2 = b.detach().requiresGrad(true);
            Tensor rm2 = Tensor.zeros(6);
            Tensor rv2 = Tensor.ones(6);
            Tensor xl = x2.permute(0, 2, 3, 1).contiguous();
            Tensor yl = NnOps.maxPool2dNhwc(NnOps.batchNorm2dNhwc(NnOps.conv2dNhwc(xl, w2.permute(0, 2, 3, 1),
                    new ConvParams(2, 2, 1, 1, 1, 1)), g2, b2, rm2, rv2, true, 0.1, 1e-5).relu(), 3, 2, 1);
            Tensor y = yl.permute(0, 3, 1, 2);
            y.mul(up).sum().backward();
            float[][] got = {Ops.cloneDetached(y).toFloatArray(), x2.grad().toFloatArray(), w2.grad().toFloatArray(),
                g2.grad().toFloatArray(), b2.grad().toFloatArray(), rm2.toFloatArray(), rv2.toFloatArray()};
            String[] names = {"y", "dx", "dw", "dgamma", "dbeta", "running mean", "running var"};
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(want[i], got[i], 1e-5f, names[i]);
            }
        }
    }
}
