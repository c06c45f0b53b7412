package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The three convolution kernels against double-precision loops over the geometries that stress
 * the implicit im2col: stride 2, padding, dilation, 1×1 (the plain-GEMM path and the strided
 * 1×1), the ResNet stem's 7×7/2 pad 3, asymmetric kernels, kernels wider than the input, output
 * width 1, and shapes large enough to span several depth and column blocks. Outputs start as NaN
 * (they must be overwritten, never read) and sit between sentinel zones. The gradients are also
 * checked against finite differences of the forward.
 */
class Conv2dKernelsTest {

    static Stream<Conv2dGeometry> geometries() {
        return Stream.of(
                Conv2dGeometry.of(1, 1, 1, 1, 1, 1, 1, 0, 1),
                Conv2dGeometry.of(2, 5, 7, 9, 3, 1, 1, 0, 1),               // pointwise: plain GEMM
                Conv2dGeometry.of(2, 3, 11, 13, 4, 3, 1, 1, 1),             // 3x3 same
                Conv2dGeometry.of(2, 3, 11, 13, 4, 3, 2, 1, 1),             // 3x3 stride 2
                Conv2dGeometry.of(1, 4, 10, 9, 5, 3, 1, 2, 2),              // dilation 2
                Conv2dGeometry.of(2, 3, 23, 21, 8, 7, 2, 3, 1),             // ResNet stem 7x7/2 pad 3
                Conv2dGeometry.of(2, 6, 9, 8, 7, 1, 2, 0, 1),               // 1x1 stride 2 (downsample)
                new Conv2dGeometry(2, 5, 10, 11, 6, 1, 1, 2, 3, 0, 0, 1, 1), // 1x1 stride 2x3, uneven edges
                Conv2dGeometry.of(3, 40, 14, 14, 70, 1, 2, 0, 1),           // ResNet-like downsample, several blocks
                Conv2dGeometry.of(1, 3, 2, 2, 2, 1, 3, 0, 1),               // 1x1 stride 3: one pixel read
                Conv2dGeometry.of(2, 3, 9, 80, 5, 3, 2, 1, 1),              // stride 2, runs long enough for vectors
                Conv2dGeometry.of(1, 3, 12, 101, 4, 7, 2, 3, 1),            // stem-like, odd width, vector runs
                new Conv2dGeometry(1, 2, 6, 70, 3, 1, 2, 1, 2, 0, 1, 1, 1), // 1x2 stride 1x2, padded columns
                Conv2dGeometry.of(1, 2, 3, 3, 3, 3, 1, 0, 1),               // output 1x1
                Conv2dGeometry.of(1, 2, 2, 3, 3, 5, 1, 2, 1),               // kernel wider than input
                new Conv2dGeometry(2, 3, 8, 11, 4, 1, 3, 1, 2, 0, 1, 1, 1), // 1x3, stride 1x2
                new Conv2dGeometry(1, 3, 9, 7, 5, 3, 2, 2, 1, 1, 0, 2, 3),  // asymmetric everything
                Conv2dGeometry.of(3, 37, 19, 19, 70, 3, 1, 1, 1),           // taps > KC, many tasks
                Conv2dGeometry.of(2, 4, 40, 40, 5, 3, 1, 1, 1),             // pixels > NC
                Conv2dGeometry.of(1, 30, 48, 48, 13, 3, 1, 1, 1),           // taps > KC and pixels > NC
                Conv2dGeometry.of(5, 2, 6, 5, 3, 2, 3, 1, 2),               // stride > kernel
                Conv2dGeometry.of(2, 24, 33, 31, 130, 3, 2, 1, 1));         // strided 3x3 with channels: gathers
    }

    /** Geometries on the direct channels-last kernels, forward and backward-data. */
    static Stream<Conv2dGeometry> directGeometries() {
        return Stream.of(
                Conv2dGeometry.of(2, 16, 17, 17, 20, 3, 1, 1, 1),           // ResNet's 3x3, a partial channel block
                Conv2dGeometry.of(1, 16, 24, 24, 16, 5, 1, 2, 1),           // 5x5 pad 2
                Conv2dGeometry.of(1, 17, 26, 26, 65, 3, 1, 0, 1),           // no padding: dx padded by 2
                Conv2dGeometry.of(3, 64, 14, 14, 64, 3, 1, 1, 1),           // layer1-like, several images (Winograd)
                Conv2dGeometry.of(2, 96, 20, 19, 70, 3, 1, 1, 1),           // Winograd both ways: odd width, partial blocks
                Conv2dGeometry.of(1, 64, 26, 26, 65, 3, 1, 0, 1),           // Winograd unpadded; dx padded by 2
                Conv2dGeometry.of(2, 64, 48, 47, 64, 3, 1, 1, 1),           // Winograd in bands (both ways), across images
                Conv2dGeometry.of(2, 40, 16, 17, 72, 3, 1, 1, 1));          // Winograd backward-data, 40 outputs
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("directGeometries")
    void directKernelsMatchReference(Conv2dGeometry g) {
        assertTrue(Conv2dKernels.direct(g, false), "forward of " + g + " should take the direct path");
        assertTrue(Conv2dKernels.direct(g, true), "backward-data of " + g + " should take the direct path");
        try (Arena arena = Arena.ofConfined()) {
            checkAllThree(arena, g, new SplittableRandom(g.hashCode()));
        }
    }

    /** Geometries whose forward (and backward-filter) run on the few-input-channel kernels. */
    static Stream<Conv2dGeometry> fewChannelGeometries() {
        return Stream.of(
                Conv2dGeometry.of(2, 3, 45, 41, 64, 7, 2, 3, 1),            // ResNet's stem, odd sizes, two images
                Conv2dGeometry.of(1, 3, 50, 47, 70, 7, 2, 3, 1),            // partial channel block
                Conv2dGeometry.of(3, 1, 15, 14, 16, 3, 1, 1, 1),            // grey 3x3, stride 1
                Conv2dGeometry.of(2, 9, 40, 33, 20, 7, 2, 3, 1),            // 63-float filter rows
                Conv2dGeometry.of(1, 3, 130, 100, 16, 7, 2, 3, 1),          // backward-filter in 4 bands, the last short
                Conv2dGeometry.of(9, 1, 40, 40, 16, 3, 1, 1, 1),            // more bands than its tasks
                Conv2dGeometry.of(3, 3, 50, 50, 16, 3, 3, 1, 1));           // stride 3: element-wise runs
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fewChannelGeometries")
    void fewChannelKernelsMatchReference(Conv2dGeometry g) {
        assertTrue(Conv2dKernels.fewChannels(g), g + " should take the few-channel path");
        try (Arena arena = Arena.ofConfined()) {
            checkAllThree(arena, g, new SplittableRandom(g.hashCode()));
        }
    }

    @Test
    void fewChannelPathIsChosenOnlyWhereItApplies() {
        assertTrue(Conv2dKernels.fewChannels(Conv2dGeometry.of(4, 3, 224, 224, 64, 7, 2, 3, 1)));      // the stem
        assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(4, 16, 56, 56, 64, 3, 1, 1, 1))); // 16 channels
        assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(4, 3, 224, 224, 8, 7, 2, 3, 1)));  // 8 outputs
        assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(1, 3, 20, 20, 64, 7, 2, 3, 1)));   // 100 pixels
        assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(2, 3, 40, 40, 16, 1, 1, 0, 1)));   // 1x1
        assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(2, 3, 40, 40, 16, 3, 1, 2, 2)));   // dilation
        boolean was = Conv2dKernels.directEnabled;
        try {
            Conv2dKernels.directEnabled = false;
            assertEquals(false, Conv2dKernels.fewChannels(Conv2dGeometry.of(4, 3, 224, 224, 64, 7, 2, 3, 1)));
        } finally {
            Conv2dKernels.directEnabled = was;
        }
    }

    /**
     * The direct path borrows its channels-last copies from the thread's {@link HeapBuffers}, whose
     * contents are left over from earlier calls: with NaN-filled buffers of exactly the copies'
     * sizes waiting there, every pass still matches the reference (an input copy's padding ring
     * and slack are zeroed, an output's every element written), round after round. On the direct
     * kernel (which reads the ring), Winograd and the few-channel kernels.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("borrowingGeometries")
    void borrowedChannelsLastCopiesStartFromZeroPadding(Conv2dGeometry g) {
        int k = g.kernelH();
        long[] sizes = {
            NhwcConv.Activation.floats(g.batch(), g.height(), g.width(), g.inChannels(), g.padH(), false),
            NhwcConv.Activation.floats(g.batch(), g.height(), g.width(), g.inChannels(), 0, false),
            NhwcConv.Activation.floats(g.batch(), g.outHeight(), g.outWidth(), g.outChannels(), 0, false),
            NhwcConv.Activation.floats(g.batch(), g.outHeight(), g.outWidth(), g.outChannels(), k - 1 - g.padH(),
                    false),
        };
        try (Arena arena = Arena.ofConfined()) {
            for (int round = 0; round < 3; round++) {
                for (long size : sizes) {
                    for (int copy = 0; copy < 2; copy++) {
                        float[] stale = new float[(int) size];
                        java.util.Arrays.fill(stale, Float.NaN);
                        HeapBuffers.giveBack(stale);
                    }
                }
                checkAllThree(arena, g, new SplittableRandom(round));
            }
        }
    }

    static Stream<Conv2dGeometry> borrowingGeometries() {
        return Stream.of(
                Conv2dGeometry.of(2, 32, 20, 19, 40, 3, 1, 1, 1),           // the direct kernel both ways
                Conv2dGeometry.of(2, 64, 20, 19, 64, 3, 1, 1, 1),           // Winograd, its backward-filter too
                Conv2dGeometry.of(2, 3, 45, 41, 64, 7, 2, 3, 1));           // the stem's few-channel kernels
    }

    @Test
    void directPathIsChosenOnlyWhereItApplies() {
        assertTrue(Conv2dKernels.direct(Conv2dGeometry.of(4, 64, 56, 56, 64, 3, 1, 1, 1), true));
        assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(4, 64, 56, 56, 256, 1, 1, 0, 1), false)); // 1x1: GEMM
        assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(4, 3, 224, 224, 64, 7, 2, 3, 1), false)); // stem
        assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(4, 512, 7, 7, 512, 3, 1, 1, 1), false)); // 196 pixels
        assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(2, 16, 20, 20, 16, 3, 1, 2, 2), false)); // dilation
        assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(4, 128, 56, 56, 128, 3, 2, 1, 1), false)); // strided
        boolean was = Conv2dKernels.directEnabled;
        try {
            Conv2dKernels.directEnabled = false;
            assertEquals(false, Conv2dKernels.direct(Conv2dGeometry.of(4, 64, 56, 56, 64, 3, 1, 1, 1), false));
        } finally {
            Conv2dKernels.directEnabled = was;
        }
    }

    @Test
    void onlyUnpaddedStrided1x1RunsSubsampled() {
        assertTrue(Conv2dKernels.subsampled(Conv2dGeometry.of(4, 256, 56, 56, 512, 1, 2, 0, 1)));
        assertTrue(Conv2dKernels.subsampled(new Conv2dGeometry(1, 2, 5, 5, 2, 1, 1, 1, 2, 0, 0, 1, 1)));
        assertEquals(false, Conv2dKernels.subsampled(Conv2dGeometry.of(4, 256, 56, 56, 512, 1, 1, 0, 1)));
        assertEquals(false, Conv2dKernels.subsampled(Conv2dGeometry.of(4, 256, 56, 56, 512, 1, 2, 1, 1)));
        assertEquals(false, Conv2dKernels.subsampled(Conv2dGeometry.of(4, 64, 56, 56, 64, 3, 2, 1, 1)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void forwardAndBothGradientsMatchReference(Conv2dGeometry g) {
        try (Arena arena = Arena.ofConfined()) {
            checkAllThree(arena, g, new SplittableRandom(g.hashCode()));
        }
    }

    @Test
    void emptyBatchWritesZeroFilterGradientAndNothingElse() {
        Conv2dGeometry g = Conv2dGeometry.of(0, 3, 5, 5, 2, 3, 1, 1, 1);
        try (Arena arena = Arena.ofConfined()) {
            var x = NaiveKernels.Guarded.allocate(arena, 1);
            var w = NaiveKernels.Guarded.allocate(arena, g.weightSize());
            var dw = NaiveKernels.Guarded.allocate(arena, g.weightSize());
            w.fillRandom(new SplittableRandom(1));
            dw.fill(Float.NaN);
            Conv2dKernels.forward(g, x.body(), 0, w.body(), 0, x.body(), 0);
            Conv2dKernels.backwardData(g, x.body(), 0, w.body(), 0, x.body(), 0);
            Conv2dKernels.backwardFilter(g, x.body(), 0, x.body(), 0, dw.body(), 0);
            for (long i = 0; i < g.weightSize(); i++) {
                assertEquals(0f, dw.get(i));
            }
            assertNull(x.guardDamage());
            assertNull(dw.guardDamage());
        }
    }

    @Test
    void geometryRejectsAKernelThatDoesNotFit() {
        var ex = assertThrows(IllegalArgumentException.class, () -> Conv2dGeometry.of(1, 3, 4, 4, 2, 7, 1, 1, 1));
        assertTrue(ex.getMessage().contains("does not fit"), ex.getMessage());
        assertTrue(ex.getMessage().contains("x[1,3,4,4]"), ex.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Conv2dGeometry.of(1, 3, 4, 4, 2, 3, 0, 1, 1));
    }

    @Test
    void outputSizeFollowsPyTorch() {
        // torch.nn.Conv2d(3, 64, 7, stride=2, padding=3)(x[1,3,224,224]) -> [1,64,112,112]
        assertEquals(112, Conv2dGeometry.of(1, 3, 224, 224, 64, 7, 2, 3, 1).outHeight());
        // 3x3 stride 2 pad 1 on 7x7 -> 4x4; dilation 2 pad 0 on 10 -> 6
        assertEquals(4, Conv2dGeometry.of(1, 1, 7, 7, 1, 3, 2, 1, 1).outWidth());
        assertEquals(6, Conv2dGeometry.of(1, 1, 10, 10, 1, 3, 1, 0, 2).outWidth());
    }

    @Test
    void wrongSizedTensorIsRejected() {
        Conv2dGeometry g = Conv2dGeometry.of(2, 3, 8, 8, 4, 3, 1, 1, 1);
        try (Arena arena = Arena.ofConfined()) {
            var x = arena.allocate(g.inputSize() * Float.BYTES, 64);
            var w = arena.allocate(g.weightSize() * Float.BYTES, 64);
            var y = arena.allocate((g.outputSize() - 1) * Float.BYTES, 64);
            var ex = assertThrows(IllegalArgumentException.class, () -> Conv2dKernels.forward(g, x, 0, w, 0, y, 0));
            assertTrue(ex.getMessage().startsWith("conv2d forward y"), ex.getMessage());
        }
    }

    /**
     * L(x, w) = Σ r·conv(x, w) for a fixed random r, so dL/dx = backwardData(r) and dL/dw =
     * backwardFilter(x, r). The forward is linear in each argument, so central differences are
     * exact up to the forward's float rounding.
     */
    @Test
    void gradientsMatchFiniteDifferencesOfForward() {
        Conv2dGeometry g = new Conv2dGeometry(2, 2, 6, 5, 3, 3, 3, 2, 1, 1, 1, 1, 2);
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rnd = new SplittableRandom(42);
            var x = NaiveKernels.Guarded.allocate(arena, g.inputSize());
            var w = NaiveKernels.Guarded.allocate(arena, g.weightSize());
            var r = NaiveKernels.Guarded.allocate(arena, g.outputSize());
            var y = NaiveKernels.Guarded.allocate(arena, g.outputSize());
            var dx = NaiveKernels.Guarded.allocate(arena, g.inputSize());
            var dw = NaiveKernels.Guarded.allocate(arena, g.weightSize());
            x.fillRandom(rnd);
            w.fillRandom(rnd);
            r.fillRandom(rnd);
            Conv2dKernels.backwardData(g, r.body(), 0, w.body(), 0, dx.body(), 0);
            Conv2dKernels.backwardFilter(g, x.body(), 0, r.body(), 0, dw.body(), 0);
            float h = 0.25f;
            for (long i = 0; i < g.inputSize(); i++) {
                float saved = x.get(i);
                x.set(i, saved + h);
                double plus = loss(g, x, w, r, y);
                x.set(i, saved - h);
                double minus = loss(g, x, w, r, y);
                x.set(i, saved);
                assertEquals((plus - minus) / (2 * h), dx.get(i), 2e-5, "dL/dx[" + i + "]");
            }
            for (long i = 0; i < g.weightSize(); i++) {
                float saved = w.get(i);
                w.set(i, saved + h);
                double plus = loss(g, x, w, r, y);
                w.set(i, saved - h);
                double minus = loss(g, x, w, r, y);
                w.set(i, saved);
                assertEquals((plus - minus) / (2 * h), dw.get(i), 2e-5, "dL/dw[" + i + "]");
            }
        }
    }

    private static double loss(Conv2dGeometry g, NaiveKernels.Guarded x, NaiveKernels.Guarded w,
            NaiveKernels.Guarded r, NaiveKernels.Guarded y) {
        Conv2dKernels.forward(g, x.body(), 0, w.body(), 0, y.body(), 0);
        double sum = 0;
        for (long i = 0; i < g.outputSize(); i++) {
            sum += (double) r.get(i) * y.get(i);
        }
        return sum;
    }

    /** Forward, backward-data and backward-filter of g on random data, each against the reference. */
    static void checkAllThree(Arena arena, Conv2dGeometry g, SplittableRandom rnd) {
        var x = NaiveKernels.Guarded.allocate(arena, g.inputSize());
        var w = NaiveKernels.Guarded.allocate(arena, g.weightSize());
        var dy = NaiveKernels.Guarded.allocate(arena, g.outputSize());
        x.fillRandom(rnd);
        w.fillRandom(rnd);
        dy.fillRandom(rnd);
        int taps = g.inChannels() * g.kernelH() * g.kernelW();

        var y = NaiveKernels.Guarded.allocate(arena, g.outputSize());
        y.fill(Float.NaN);
        Conv2dKernels.forward(g, x.body(), 0, w.body(), 0, y.body(), 0);
        double[] abs = new double[(int) g.outputSize()];
        compare("forward y", g, NaiveKernels.convForward(g, x, w, abs), abs, taps, y);

        var dx = NaiveKernels.Guarded.allocate(arena, g.inputSize());
        dx.fill(Float.NaN);
        Conv2dKernels.backwardData(g, dy.body(), 0, w.body(), 0, dx.body(), 0);
        abs = new double[(int) g.inputSize()];
        // Each dx element sums Co·kH·kW products (a col2im sum of kH·kW sums over Co on the GEMM path).
        compare("backwardData dx", g, NaiveKernels.convBackwardData(g, dy, w, abs), abs,
                (long) g.outChannels() * g.kernelH() * g.kernelW(), dx);

        var dw = NaiveKernels.Guarded.allocate(arena, g.weightSize());
        dw.fill(Float.NaN);
        Conv2dKernels.backwardFilter(g, x.body(), 0, dy.body(), 0, dw.body(), 0);
        abs = new double[(int) g.weightSize()];
        long pixels = (long) g.batch() * g.outHeight() * g.outWidth();
        compare("backwardFilter dw", g, NaiveKernels.convBackwardFilter(g, x, dy, abs), abs, pixels, dw);

        for (var buf : new NaiveKernels.Guarded[] {x, w, dy}) {
            assertNull(buf.guardDamage(), "an input's sentinel zone");
        }
    }

    /** Every element within the float32 bound of a depth-term sum: (depth + 2)·2⁻²³·Σ|terms|. */
    private static void compare(String what, Conv2dGeometry g, double[] want, double[] abs, long depth,
            NaiveKernels.Guarded got) {
        double gamma = (depth + 2) * 0x1p-23;
        for (int i = 0; i < want.length; i++) {
            double v = got.get(i);
            if (!(Math.abs(v - want[i]) <= gamma * abs[i] + 1e-30)) {
                fail(what + " of " + g + " at " + i + ": " + v + ", want " + want[i] + " ± " + gamma * abs[i]);
            }
        }
        String damage = got.guardDamage();
        if (damage != null) {
            fail(what + " of " + g + ": " + damage);
        }
    }
}
