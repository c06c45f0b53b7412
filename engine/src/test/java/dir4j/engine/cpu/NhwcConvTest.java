package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.cpu.NhwcConv.Activation;
import dir4j.engine.cpu.NhwcConv.Weights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * The channels-last direct convolution against a plain double-precision convolution written here
 * from the definition: every kernel size, stride and padding ResNet uses and odd ones besides,
 * inputs padded more than the convolution needs, output channels off the tile width, batches,
 * the fused bias, residual and ReLU, padded outputs; and the stem patches, max pooling and the
 * layout copies.
 */
class NhwcConvTest {

    static float[] random(int n, long seed, double scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextDouble(-1, 1) * scale);
        }
        return a;
    }

    /** NCHW x, OIHW w: relu?(conv + bias + residual) in double, NCHW. */
    static double[] reference(float[] x, int n, int c, int h, int w, float[] wt, float[] bias, int co, int k,
            int st, int pad, float[] residualNchw, boolean relu) {
        int oh = (h + 2 * pad - k) / st + 1;
        int ow = (w + 2 * pad - k) / st + 1;
        double[] y = new double[n * co * oh * ow];
        for (int b = 0; b < n; b++) {
            for (int o = 0; o < co; o++) {
                for (int i = 0; i < oh; i++) {
                    for (int j = 0; j < ow; j++) {
                        double s = bias[o];
                        for (int ci = 0; ci < c; ci++) {
                            for (int kh = 0; kh < k; kh++) {
                                for (int kw = 0; kw < k; kw++) {
                                    int iy = i * st - pad + kh;
                                    int ix = j * st - pad + kw;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                                        s += (double) x[((b * c + ci) * h + iy) * w + ix]
                                                * wt[((o * c + ci) * k + kh) * k + kw];
                                    }
                                }
                            }
                        }
                        int oi = ((b * co + o) * oh + i) * ow + j;
                        if (residualNchw != null) {
                            s += residualNchw[oi];
                        }
                        y[oi] = relu ? Math.max(0, s) : s;
                    }
                }
            }
        }
        return y;
    }

    static Activation toActivation(float[] nchw, int n, int c, int h, int w, int pad) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate((long) nchw.length * Float.BYTES);
            MemorySegment.copy(nchw, 0, s, ValueLayout.JAVA_FLOAT, 0, nchw.length);
            return NhwcConv.fromNchw(s, 0, n, c, h, w, pad);
        }
    }

    /** The same values in the layout whose rows share their padding columns. */
    static Activation shared(Activation a) {
        Activation out = Activation.allocate(a.batch(), a.height(), a.width(), a.channels(), a.pad(), true);
        for (int b = 0; b < a.batch(); b++) {
            for (int y = 0; y < a.height(); y++) {
                for (int x = 0; x < a.width(); x++) {
                    System.arraycopy(a.data(), a.index(b, y, x), out.data(), out.index(b, y, x), a.channels());
                }
            }
        }
        return out;
    }

    static float[] toNchw(Activation a) {
        int count = a.batch() * a.channels() * a.height() * a.width();
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment s = ar.allocate((long) count * Float.BYTES);
            NhwcConv.toNchw(a, s, 0);
            return s.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    static void assertClose(String what, double[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, what + ": length");
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]);
            assertTrue(err <= tol * Math.max(1, scale), what + ": element " + i + " expected " + expected[i] + " got "
                    + actual[i]);
        }
    }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3} -> {4}, k{5} s{6} p{7}, input pad {8}, out pad {9}, res {10}, relu {11}")
    @CsvSource({
        // n, c, h, w, co, k, stride, pad, inPad, outPad, residual, relu
        "1, 64, 14, 14, 64, 3, 1, 1, 1, 0, false, true",     // layer3-like 3x3
        "1, 48, 9, 11, 96, 1, 1, 0, 0, 1, true, true",       // 1x1 with residual into a padded output
        "2, 40, 13, 10, 70, 3, 2, 1, 1, 0, false, false",    // strided 3x3, odd sizes, partial channel block
        "2, 33, 12, 12, 64, 1, 2, 0, 0, 0, true, false",     // downsample 1x1 stride 2
        "1, 16, 15, 9, 32, 3, 1, 1, 2, 1, false, true",      // input padded more than needed
        "1, 20, 11, 13, 17, 3, 2, 1, 2, 0, true, true",      // ... with a stride, odd channels
        "1, 8, 17, 17, 32, 5, 3, 2, 2, 0, false, true",      // stride 3, 5x5
        "3, 300, 5, 4, 40, 1, 1, 0, 0, 0, false, true",      // depth split into chunks (300 > KC)
        "1, 2, 1, 1, 4, 1, 1, 0, 0, 0, false, false",        // one pixel
        "2, 256, 7, 9, 40, 3, 1, 1, 1, 1, true, true",       // odd sizes, batch, residual, partial block, 2 depth chunks a tap
        "1, 300, 6, 5, 64, 3, 1, 1, 2, 0, false, true",      // uneven depth split, input padded more
        "1, 264, 1, 2, 8, 3, 1, 1, 1, 0, true, false",       // a 1x2 image, 3x3
        "1, 256, 14, 14, 64, 3, 1, 1, 1, 0, false, true",    // layer3's size
        "3, 40, 13, 11, 70, 1, 2, 0, 2, 1, true, true",      // strided 1x1: odd sizes, a padded input
        "1, 24, 9, 10, 16, 1, 2, 1, 1, 0, false, false",     // a padded 1x1: its ring reads as zero
        "2, 20, 17, 14, 64, 1, 3, 0, 0, 0, true, false",     // 1x1, stride 3
        "1, 300, 14, 14, 130, 1, 2, 0, 0, 0, false, true",   // strided 1x1: depth chunks, partial block
    })
    void convolutionMatchesTheDefinition(int n, int c, int h, int w, int co, int k, int st, int pad, int inPad,
            int outPad, boolean residual, boolean relu) {
        float[] x = random(n * c * h * w, 1, 1);
        float[] wt = random(co * c * k * k, 2, 0.2);
        float[] bias = random(co, 3, 0.5);
        int oh = (h + 2 * pad - k) / st + 1;
        int ow = (w + 2 * pad - k) / st + 1;
        float[] res = residual ? random(n * co * oh * ow, 4, 1) : null;
        Weights weights = Weights.pack(wt, bias, co, c, k, st, pad);
        assertEquals(oh, weights.outSize(h));
        Activation out = Activation.allocate(n, oh, ow, co, outPad);
        NhwcConv.forward(toActivation(x, n, c, h, w, inPad), weights, out,
                residual ? toActivation(res, n, co, oh, ow, 1) : null, relu);
        double[] expected = reference(x, n, c, h, w, wt, bias, co, k, st, pad, res, relu);
        assertClose("conv", expected, toNchw(out), 2e-5);
        if (st == 1 && inPad > 0) {
            // the same from an input whose rows share their padding columns, into a shared output
            Activation sharedOut = Activation.allocate(n, oh, ow, co, outPad, true);
            NhwcConv.forward(shared(toActivation(x, n, c, h, w, inPad)), weights, sharedOut,
                    residual ? shared(toActivation(res, n, co, oh, ow, 1)) : null, relu);
            assertClose("conv, shared padding columns", expected, toNchw(sharedOut), 2e-5);
        } else if (st > 1 && inPad > 0) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NhwcConv.forward(
                    shared(toActivation(x, n, c, h, w, inPad)), weights, out, null, relu));
            assertTrue(e.getMessage().contains("shared padding columns"), e.getMessage());
        }
        if (st > 1) {
            // the stride phases go into a borrowed buffer: what it held before (NaN here) must not reach
            // the result, in the phases' padding or past the last pixel
            int phases = Math.min(k, st);
            long floats = (long) n * phases * phases * Sgemm.ceilDiv(h + 2 * pad, st) * Sgemm.ceilDiv(w + 2 * pad, st) * c
                    + (long) Activation.SLACK_PIXELS * c;
            float[] stale = new float[(int) floats];
            java.util.Arrays.fill(stale, Float.NaN);
            HeapBuffers.giveBack(stale);
            Activation again = Activation.allocate(n, oh, ow, co, outPad);
            NhwcConv.forward(toActivation(x, n, c, h, w, inPad), weights, again,
                    residual ? toActivation(res, n, co, oh, ow, 1) : null, relu);
            assertClose("conv over a stale phase buffer", expected, toNchw(again), 2e-5);
        }
        // the output's padding ring stays zero (the next convolution's padding)
        assertZeroRing(out);
    }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3} -> {4}, k{5} s{6} p{7}, input pad {8}, out pad {9}, res {10}, relu {11}")
    @CsvSource({
        // n, c, h, w, co, k, stride, pad, inPad, outPad, residual, relu
        "2, 3, 23, 19, 64, 7, 2, 3, 3, 0, false, true",      // ResNet's stem on RGB, odd sizes
        "1, 3, 30, 30, 70, 7, 2, 3, 4, 1, true, false",      // partial channel block, input padded more, residual
        "3, 1, 9, 14, 16, 3, 1, 1, 1, 0, false, true",       // grey, stride 1
        "1, 4, 17, 12, 40, 5, 3, 2, 2, 0, true, true",       // stride 3, 5x5
        "1, 9, 11, 13, 33, 7, 2, 3, 3, 0, false, false",     // a 63-float filter row, depth split into row groups
        "1, 3, 7, 7, 64, 7, 2, 3, 3, 0, false, true",        // tiny image: a row's single, partial tile
    })
    void fewChannelKernelMatchesTheDefinition(int n, int c, int h, int w, int co, int k, int st, int pad, int inPad,
            int outPad, boolean residual, boolean relu) {
        assertTrue(NhwcConv.fewChannels(c, k));
        float[] x = random(n * c * h * w, 11, 1);
        float[] wt = random(co * c * k * k, 12, 0.2);
        float[] bias = random(co, 13, 0.5);
        int oh = (h + 2 * pad - k) / st + 1;
        int ow = (w + 2 * pad - k) / st + 1;
        float[] res = residual ? random(n * co * oh * ow, 14, 1) : null;
        Weights weights = Weights.pack(wt, bias, co, c, k, st, pad);
        Activation out = Activation.allocate(n, oh, ow, co, outPad);
        // NaN inside, zeros in the ring: every output pixel must be written, and the ring left alone
        for (int b = 0; b < n; b++) {
            for (int y = 0; y < oh; y++) {
                for (int xx = 0; xx < ow; xx++) {
                    java.util.Arrays.fill(out.data(), out.index(b, y, xx), out.index(b, y, xx) + co, Float.NaN);
                }
            }
        }
        NhwcConv.forwardFewChannels(toActivation(x, n, c, h, w, inPad), weights, out,
                residual ? toActivation(res, n, co, oh, ow, 1) : null, relu);
        assertClose("few-channel conv", reference(x, n, c, h, w, wt, bias, co, k, st, pad, res, relu), toNchw(out),
                2e-5);
        assertZeroRing(out);
    }

    /** Every value of a's padding ring is zero. */
    static void assertZeroRing(Activation a) {
        int pad = a.pad();
        for (int b = 0; b < a.batch(); b++) {
            for (int y = -pad; y < a.height() + pad; y++) {
                for (int xx = -pad; xx < a.width() + pad; xx++) {
                    if (y < 0 || y >= a.height() || xx < 0 || xx >= a.width()) {
                        for (int ch = 0; ch < a.channels(); ch++) {
                            assertEquals(0f, a.data()[a.index(b, y, xx) + ch], "padding at " + y + "," + xx);
                        }
                    }
                }
            }
        }
    }

    /** a's pixels in NCHW order, read through a.index (any layout, stride phases included). */
    static float[] readThroughIndex(Activation a) {
        int c = a.channels();
        float[] out = new float[a.batch() * c * a.height() * a.width()];
        for (int b = 0; b < a.batch(); b++) {
            for (int y = 0; y < a.height(); y++) {
                for (int xx = 0; xx < a.width(); xx++) {
                    for (int ch = 0; ch < c; ch++) {
                        out[((b * c + ch) * a.height() + y) * a.width() + xx] = a.data()[a.index(b, y, xx) + ch];
                    }
                }
            }
        }
        return out;
    }

    /**
     * An activation stored split into stride phases: a 1×1 convolution writes one through its store,
     * every float outside its pixels stays zero, a stride-2 3×3 with the same padding reads it in
     * place and gives the definition's result (odd sizes: the padded height leaves a phase row past
     * the image), and what cannot read it says so.
     */
    @Test
    void convolutionsWriteAndReadActivationsSplitIntoStridePhases() {
        int n = 2;
        int c = 24;
        int h = 13;
        int w = 10;
        int mid = 40;
        int co = 70;
        float[] x = random(n * c * h * w, 11, 1);
        float[] w1 = random(mid * c, 12, 0.2);
        float[] b1 = random(mid, 13, 0.5);
        float[] w2 = random(co * mid * 9, 14, 0.1);
        float[] b2 = random(co, 15, 0.5);
        Activation a1 = Activation.allocate(n, h, w, mid, 1, false, 2);
        assertEquals(2 * 2 * 8 * 6 * mid, a1.imageStride(), "4 phases of ceil(15 / 2) x ceil(12 / 2) pixels");
        assertEquals(n * 2 * 2 * 8 * 6 * mid + Activation.SLACK_PIXELS * mid, a1.data().length, "two images and slack");
        NhwcConv.forward(toActivation(x, n, c, h, w, 0), Weights.pack(w1, b1, mid, c, 1, 1, 0), a1, null, true);
        double[] first = reference(x, n, c, h, w, w1, b1, mid, 1, 1, 0, null, true);
        float[] a1Values = readThroughIndex(a1);
        assertClose("1x1 into stride phases", first, a1Values, 2e-5);
        // the floats no pixel owns (padding, the phase row past the image, slack) are all zero
        java.util.Set<Integer> owned = new java.util.HashSet<>();
        for (int b = 0; b < n; b++) {
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    for (int ch = 0; ch < mid; ch++) {
                        owned.add(a1.index(b, y, xx) + ch);
                    }
                }
            }
        }
        assertEquals(n * h * w * mid, owned.size(), "every pixel and channel has its own float");
        for (int i = 0; i < a1.data().length; i++) {
            if (!owned.contains(i)) {
                assertEquals(0f, a1.data()[i], "float " + i + " belongs to no pixel");
            }
        }
        Weights strided = Weights.pack(w2, b2, co, mid, 3, 2, 1);
        Activation out = Activation.allocate(n, 7, 5, co, 0);
        NhwcConv.forward(a1, strided, out, null, true);
        assertClose("3x3/2 reading the phases in place",
                reference(a1Values, n, mid, h, w, w2, b2, co, 3, 2, 1, null, true), toNchw(out), 2e-5);
        // other strides or paddings, and operations that read rows, refuse it by name
        Weights stride3 = Weights.pack(random(co * mid * 9, 16, 0.1), b2, co, mid, 3, 3, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NhwcConv.forward(a1, stride3,
                Activation.allocate(n, 5, 4, co, 0), null, true));
        assertTrue(e.getMessage().contains("2x2 stride phases"), e.getMessage());
        Weights unpadded = Weights.pack(random(co * mid * 9, 17, 0.1), b2, co, mid, 3, 2, 0);
        e = assertThrows(IllegalArgumentException.class, () -> NhwcConv.forward(a1, unpadded,
                Activation.allocate(n, 6, 4, co, 0), null, true));
        assertTrue(e.getMessage().contains("stride phases"), e.getMessage());
        Weights stride1 = Weights.pack(random(co * mid * 9, 18, 0.1), b2, co, mid, 3, 1, 1);
        e = assertThrows(IllegalArgumentException.class, () -> NhwcConv.forward(a1, stride1,
                Activation.allocate(n, h, w, co, 0), null, true));
        assertTrue(e.getMessage().contains("stride-1 convolution"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NhwcConv.maxPool(a1, 3, 2, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> toNchw(a1));
        WinogradConv.Weights wino = WinogradConv.Weights.pack(random(64 * mid * 9, 19, 0.1), new float[64], 64, mid,
                1);
        e = assertThrows(IllegalArgumentException.class, () -> WinogradConv.forward(a1, wino,
                Activation.allocate(n, h, w, 64, 0), null, true));
        assertTrue(e.getMessage().contains("Winograd"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Activation(new float[16], 1, 1, 1, 1, 0, false, 0));
        e = assertThrows(IllegalArgumentException.class, () -> Activation.allocate(1, 4, 4, 8, 1, true, 2));
        assertTrue(e.getMessage().contains("with shared columns"), e.getMessage());
    }

    @Test
    void fewChannelKernelRefusesWhatItCannotRead() {
        Weights stem = Weights.pack(random(64 * 3 * 49, 1, 0.1), new float[64], 64, 3, 7, 2, 3);
        Activation out = Activation.allocate(1, 8, 8, 64, 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NhwcConv.forwardFewChannels(Activation.allocate(1, 16, 16, 3, 2), stem, out, null, true));
        assertTrue(e.getMessage().contains("padding ring of at least 3"), e.getMessage());
        Weights wide = Weights.pack(random(8 * 16 * 9, 1, 0.1), new float[8], 8, 16, 3, 1, 1);
        e = assertThrows(IllegalArgumentException.class, () -> NhwcConv.forwardFewChannels(
                Activation.allocate(1, 8, 8, 16, 1), wide, Activation.allocate(1, 8, 8, 8, 0), null, false));
        assertTrue(e.getMessage().contains("16 channels"), e.getMessage());
        assertFalse(NhwcConv.fewChannels(16, 3));
        assertFalse(NhwcConv.fewChannels(10, 7));
    }

    @Test
    void stemAsOneByOneOverPatchesMatchesTheDefinition() {
        int n = 2, c = 3, h = 23, w = 19, co = 40, k = 7, st = 2, pad = 3;
        float[] x = random(n * c * h * w, 5, 1);
        float[] wt = random(co * c * k * k, 6, 0.1);
        float[] bias = random(co, 7, 0.1);
        Activation patches;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate((long) x.length * Float.BYTES + 64);
            MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT, 16L * Float.BYTES, x.length);
            patches = NhwcConv.patchesFromNchw(s, 16, n, c, h, w, k, st, pad);
        }
        assertEquals(c * k * k, patches.channels());
        // bands of output rows (as ResNetInference runs a large image's stem) give the same patches
        int oh = patches.height();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate((long) x.length * Float.BYTES);
            MemorySegment.copy(x, 0, s, ValueLayout.JAVA_FLOAT, 0, x.length);
            // into a reused buffer holding anything: every element is written, padding included
            Activation reused = Activation.allocate(n, oh, patches.width(), c * k * k, 0);
            java.util.Arrays.fill(reused.data(), Float.NaN);
            NhwcConv.patchesFromNchw(s, 0, n, c, h, w, k, st, pad, 0, reused);
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < oh * patches.width() * c * k * k; i++) {
                    assertEquals(patches.data()[patches.index(b, 0, 0) + i], reused.data()[reused.index(b, 0, 0) + i],
                            "reused buffer, image " + b + ", element " + i);
                }
            }
            assertThrows(IllegalArgumentException.class, () -> NhwcConv.patchesFromNchw(s, 0, n, c, h, w, k, st, pad,
                    0, Activation.allocate(n, oh, patches.width(), c * k * k, 1)));
            for (int r0 = 0; r0 < oh; r0 += 5) {
                int rows = Math.min(5, oh - r0);
                Activation band = NhwcConv.patchesFromNchw(s, 0, n, c, h, w, k, st, pad, r0, rows);
                for (int b = 0; b < n; b++) {
                    for (int y = 0; y < rows; y++) {
                        for (int i = 0; i < patches.width() * c * k * k; i++) {
                            assertEquals(patches.data()[patches.index(b, r0 + y, 0) + i], band.data()[band.index(b, y, 0) + i],
                                    "band at row " + (r0 + y));
                        }
                    }
                }
            }
        }
        Activation out = Activation.allocate(n, patches.height(), patches.width(), co, 0);
        NhwcConv.forward(patches, Weights.pack(wt, bias, co, c * k * k, 1, 1, 0), out, null, true);
        assertClose("stem", reference(x, n, c, h, w, wt, bias, co, k, st, pad, null, true), toNchw(out), 2e-5);
    }

    @Test
    void maxPoolingMatchesTheDefinitionAndTheCopiesRoundTrip() {
        int n = 2, c = 37, h = 9, w = 12;
        float[] x = random(n * c * h * w, 8, 1);
        Activation a = toActivation(x, n, c, h, w, 0);
        float[] back = toNchw(a);
        for (int i = 0; i < x.length; i++) {
            assertEquals(x[i], back[i]);
        }
        Activation p = NhwcConv.maxPool(a, 3, 2, 1, 1);
        assertEquals(1, p.pad());
        int oh = (h + 2 - 3) / 2 + 1;
        int ow = (w + 2 - 3) / 2 + 1;
        double[] expected = new double[n * c * oh * ow];
        for (int b = 0; b < n; b++) {
            for (int ch = 0; ch < c; ch++) {
                for (int i = 0; i < oh; i++) {
                    for (int j = 0; j < ow; j++) {
                        double m = Double.NEGATIVE_INFINITY;
                        for (int y = i * 2 - 1; y < i * 2 + 2; y++) {
                            for (int xx = j * 2 - 1; xx < j * 2 + 2; xx++) {
                                if (y >= 0 && y < h && xx >= 0 && xx < w) {
                                    m = Math.max(m, x[((b * c + ch) * h + y) * w + xx]);
                                }
                            }
                        }
                        expected[((b * c + ch) * oh + i) * ow + j] = m;
                    }
                }
            }
        }
        assertClose("max pool", expected, toNchw(p), 0);
    }

    @Test
    void tasksTakeEvenRunsOfAtLeastEightTiles() {
        long macs = 1L << 21; // NhwcConv.TASK_MACS
        // (64 output blocks: enough tasks on up to 16 threads, so no halving)
        assertEquals(9, NhwcConv.tilesPerTask(9, 64, 6L * 64 * 2048, macs), "layer4's 2048->512 1x1: one run, not 8 + 1");
        assertEquals(9, NhwcConv.tilesPerTask(33, 64, 6L * 64 * 1024, macs), "33 tiles: 4 runs of 9, not 5s");
        assertEquals(100, NhwcConv.tilesPerTask(100, 64, 6L * 64 * 64, macs), "85 wanted: the remainder joins one run");
        assertEquals(91, NhwcConv.tilesPerTask(1000, 64, 6L * 64 * 64, macs), "11 even runs of ~85");
        assertEquals(1, NhwcConv.tilesPerTask(1, 64, 6L * 64 * 4608, macs));
        // one output block: halved until every thread has four tasks
        int threads = CpuThreads.threads();
        int chunk = NhwcConv.tilesPerTask(64, 1, 6L * 64 * 4608, macs);
        assertTrue(Sgemm.ceilDiv(64, chunk) >= Math.min(64, 4 * threads) || chunk == 1, "chunk " + chunk);
    }

    @Test
    void mismatchedShapesAreClearErrors() {
        Weights w = Weights.pack(new float[32 * 16 * 9], new float[32], 32, 16, 3, 1, 1);
        Activation x = Activation.allocate(1, 8, 8, 16, 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NhwcConv.forward(x, w, Activation.allocate(1, 8, 8, 32, 0), null, true));
        assertTrue(e.getMessage().contains("pad >= 1"), e.getMessage());
        Activation xp = Activation.allocate(1, 8, 8, 16, 1);
        e = assertThrows(IllegalArgumentException.class,
                () -> NhwcConv.forward(xp, w, Activation.allocate(1, 7, 8, 32, 0), null, true));
        assertTrue(e.getMessage().contains("1x7x8x32") && e.getMessage().contains("1x8x8x32"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Weights.pack(new float[10], new float[32], 32, 16, 3, 1, 1));
        assertTrue(e.getMessage().contains("32x16x3x3"), e.getMessage());
    }
}
