package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.autograd.Autograd;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The inference paths that ResNet's no-grad forward takes: batch norm fused with the residual add
 * and ReLU (the same values as the three ops, in place when asked, differentiable through the
 * three ops when a graph is recorded) and max pooling without the argmax. PyTorch parity of both
 * is checked by the fixtures (NnOpsFixtureTest runs every case again without grad).
 */
class InferenceOpsTest {

    /** Batch-norm parameters with non-trivial statistics for c channels, in a dtype. */
    private record Bn(Tensor gamma, Tensor beta, Tensor mean, Tensor var) {
        static Bn random(Random r, int c, DType dtype) {
            return new Bn(Tensor.uniform(r, 0.5, 1.5, c).to(dtype), Tensor.uniform(r, -1, 1, c).to(dtype),
                    Tensor.uniform(r, -0.5, 0.5, c).to(dtype), Tensor.uniform(r, 0.5, 2, c).to(dtype));
        }
    }

    /** batchNorm2d (eval), add, relu: the ops the fused one stands for. */
    private static Tensor threeOps(Tensor x, Bn bn, Tensor residual, boolean relu) {
        Tensor y = NnOps.batchNorm2d(x, bn.gamma, bn.beta, bn.mean, bn.var, false, 0.1, 1e-5);
        if (residual != null) {
            y = Ops.add(y, residual);
        }
        return relu ? Ops.relu(y) : y;
    }

    @ParameterizedTest(name = "{0}, residual {1}, relu {2}")
    @CsvSource({"FLOAT32, true, true", "FLOAT32, false, true", "FLOAT32, true, false", "FLOAT32, false, false",
        "FLOAT64, true, true", "FLOAT64, false, false"})
    void fusedBatchNormAddReluEqualsTheThreeOpsExactly(DType dtype, boolean withResidual, boolean relu) {
        Random r = new Random(7);
        // planes of 35 values: a vector part and a scalar tail; a few values land near the kink
        try (MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            Tensor x = Tensor.randn(r, 2, 3, 5, 7).to(dtype);
            Tensor residual = withResidual ? Tensor.randn(r, 2, 3, 5, 7).to(dtype) : null;
            Bn bn = Bn.random(r, 3, dtype);
            double[] want = threeOps(x, bn, residual, relu).toDoubleArray();
            double[] got = NnOps.batchNorm2dInference(x, bn.gamma, bn.beta, bn.mean, bn.var, 1e-5, residual, relu,
                    false).toDoubleArray();
            assertArrayEquals(want, got);
        }
    }

    @Test
    void inPlaceOverwritesTheInputAndReturnsIt() {
        Random r = new Random(8);
        try (MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            Bn bn = Bn.random(r, 4, DType.FLOAT32);
            Tensor residual = Tensor.randn(r, 1, 4, 6, 3);
            Tensor x = Tensor.randn(r, 1, 4, 6, 3);
            float[] want = threeOps(x, bn, residual, true).toFloatArray();
            Tensor y = NnOps.batchNorm2dInference(x, bn.gamma, bn.beta, bn.mean, bn.var, 1e-5, residual, true, true);
            assertSame(x, y);
            assertArrayEquals(want, x.toFloatArray());

            // a strided input is written through its view, element for element
            Tensor buffer = Tensor.randn(r, 1, 4, 3, 6);
            Tensor view = buffer.transpose(2, 3);
            float[] wantView = threeOps(view, bn, residual, true).toFloatArray();
            Tensor yv = NnOps.batchNorm2dInference(view, bn.gamma, bn.beta, bn.mean, bn.var, 1e-5, residual, true,
                    true);
            assertSame(view, yv);
            assertArrayEquals(wantView, view.toFloatArray());
            assertArrayEquals(wantView, buffer.transpose(2, 3).toFloatArray());
        }
    }

    @Test
    void withAGraphItIsTheThreeOpsDifferentiableAndNeverInPlace() {
        Random r = new Random(9);
        try (MemoryScope scope = MemoryScope.open()) {
            Bn bn = Bn.random(r, 3, DType.FLOAT32);
            bn.gamma.requiresGrad(true);
            Tensor x = Tensor.randn(r, 2, 3, 4, 5).requiresGrad(true);
            Tensor residual = Tensor.randn(r, 2, 3, 4, 5).requiresGrad(true);
            Tensor upstream = Tensor.randn(r, 2, 3, 4, 5);
            float[] before = x.toFloatArray();
            Tensor y = NnOps.batchNorm2dInference(x, bn.gamma, bn.beta, bn.mean, bn.var, 1e-5, residual, true, true);
            assertNotSame(x, y);
            assertArrayEquals(before, x.toFloatArray(), "the input of a recorded op must not be overwritten");
            y.backward(upstream);
            float[] gx = x.grad().toFloatArray();
            float[] gGamma = bn.gamma.grad().toFloatArray();
            float[] gResidual = residual.grad().toFloatArray();
            x.zeroGrad();
            bn.gamma.zeroGrad();
            residual.zeroGrad();
            Tensor y3 = threeOps(x, bn, residual, true);
            assertArrayEquals(y3.toFloatArray(), y.toFloatArray());
            y3.backward(upstream);
            assertArrayEquals(x.grad().toFloatArray(), gx);
            assertArrayEquals(bn.gamma.grad().toFloatArray(), gGamma);
            assertArrayEquals(residual.grad().toFloatArray(), gResidual);
        }
    }

    @Test
    void aResidualOfAnotherShapeIsRefusedWithBothShapes() {
        try (MemoryScope scope = MemoryScope.open()) {
            Bn bn = Bn.random(new Random(1), 2, DType.FLOAT32);
            Tensor x = Tensor.zeros(1, 2, 3, 3);
            Tensor wrong = Tensor.zeros(1, 2, 3, 1);
            String m = assertThrows(IllegalArgumentException.class, () -> NnOps.batchNorm2dInference(x, bn.gamma,
                    bn.beta, bn.mean, bn.var, 1e-5, wrong, true, false)).getMessage();
            assertTrue(m.contains("residual [1, 2, 3, 1]") && m.contains("[1, 2, 3, 3]"), m);
        }
    }

    /**
     * Every kernel 1–4, stride 1–3 and padding up to half the kernel, over widths around the
     * 16-lane vectors (the gathers of the inference path must stay inside each row).
     */
    @Test
    void maxPoolWithoutGradEqualsMaxPoolWithArgmaxOverManyGeometries() {
        Random r = new Random(5);
        int cases = 0;
        for (int k = 1; k <= 4; k++) {
            for (int s = 1; s <= 3; s++) {
                for (int p = 0; p <= k / 2; p++) {
                    for (int w : new int[] {k, 15, 16, 17, 33, 48, 49, 66}) {
                        int h = k + 2;
                        float[] v = new float[2 * h * w];
                        for (int i = 0; i < v.length; i++) {
                            v[i] = r.nextDouble() < 0.02 ? Float.NaN : (float) r.nextGaussian();
                        }
                        try (MemoryScope scope = MemoryScope.open()) {
                            Tensor x = Tensor.of(v, 1, 2, h, w).requiresGrad(true);
                            float[] want = NnOps.maxPool2d(x, k, s, p).toFloatArray();
                            try (var ng = Autograd.noGrad()) {
                                assertArrayEquals(want, NnOps.maxPool2d(x, k, s, p).toFloatArray(),
                                        "kernel " + k + ", stride " + s + ", pad " + p + ", " + h + "x" + w);
                            }
                        }
                        cases++;
                    }
                }
            }
        }
        assertEquals(192, cases, "geometries checked");
    }

    @ParameterizedTest(name = "kernel {0}, stride {1}, pad {2}, {3}x{4}")
    @CsvSource({"3, 2, 1, 37, 41", "3, 2, 1, 8, 8", "2, 2, 0, 9, 35", "3, 1, 1, 6, 19", "1, 1, 0, 3, 17"})
    void maxPoolWithoutGradEqualsMaxPoolWithArgmaxNaNsIncluded(int kernel, int stride, int pad, int h, int w) {
        Random r = new Random(kernel * 100 + w);
        float[] v = new float[2 * 3 * h * w];
        for (int i = 0; i < v.length; i++) {
            double u = r.nextDouble();
            v[i] = u < 0.01 ? Float.NaN : u < 0.02 ? Float.NEGATIVE_INFINITY : (float) r.nextGaussian();
        }
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(v, 2, 3, h, w).requiresGrad(true);
            Tensor withArgmax = NnOps.maxPool2d(x, kernel, stride, pad);
            Tensor without;
            try (var ng = Autograd.noGrad()) {
                without = NnOps.maxPool2d(x, kernel, stride, pad);
            }
            assertNull(without.gradFn());
            assertArrayEquals(withArgmax.toFloatArray(), without.toFloatArray());
            // float64 has no argmax-free path of its own; it must agree all the same
            try (var ng = Autograd.noGrad()) {
                assertArrayEquals(withArgmax.toDoubleArray(), NnOps.maxPool2d(x.to(DType.FLOAT64), kernel, stride, pad)
                        .toDoubleArray());
            }
        }
    }

    /**
     * Padding over half the kernel is refused as PyTorch refuses it ("pad should be at most half
     * of kernel size"): avgPool2d returned NaN for the windows of padding alone (0/0 without
     * count_include_pad) and 0 with it; padding of exactly half the kernel is accepted.
     */
    @Test
    void poolingRefusesPaddingOverHalfTheKernel() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.ones(1, 1, 3, 3);
            for (boolean countIncludePad : new boolean[] {true, false}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> NnOps.avgPool2d(x, 2, 1, 2, countIncludePad));
                assertTrue(e.getMessage().contains("padding 2 must be at most half the kernel 2"), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> NnOps.maxPool2d(x, 2, 1, 2));
            assertThrows(IllegalArgumentException.class, () -> NnOps.maxPool2dNhwc(x, 2, 1, 2));
            // pad 1 of kernel 2 (half): the corner window holds one input of four places
            assertArrayEquals(new float[] {0.25f, 0.5f, 0.5f, 0.25f},
                    NnOps.avgPool2d(x, 2, 1, 1, true).select(2, 0).select(0, 0).select(0, 0).toFloatArray());
            assertArrayEquals(new float[] {1f, 1f, 1f, 1f},
                    NnOps.avgPool2d(x, 2, 1, 1, false).select(2, 0).select(0, 0).select(0, 0).toFloatArray());
        }
    }
}
