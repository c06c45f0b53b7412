package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dir4j.engine.autograd.Autograd;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * ReLU's backward in one pass (the CPU backend's override of Backend.reluBackward) gives exactly
 * the product g · (x &gt; 0 ? 1 : 0) it replaced: vector rows with a tail, strided operands, NaN and
 * infinities on either side, −0 and +0 inputs; and it is what relu's autograd uses.
 */
class ReluBackwardTest {

    private static float[] values(Random r, int n) {
        float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, Float.MIN_VALUE,
            -Float.MIN_VALUE};
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextInt(7) == 0 ? special[r.nextInt(special.length)] : (float) r.nextGaussian();
        }
        return v;
    }

    private static void assertProduct(float[] g, float[] x, float[] got) {
        for (int i = 0; i < g.length; i++) {
            float want = g[i] * (x[i] > 0 ? 1f : 0f);
            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i]),
                    "element " + i + ": g " + g[i] + ", x " + x[i] + " gave " + got[i] + ", want " + want);
        }
    }

    @Test
    void contiguousRowsWithATailAndSpecialValues() {
        Random r = new Random(3);
        for (int n : new int[] {1, 15, 16, 17, 1000, 4099}) {
            float[] g = values(r, n);
            float[] x = values(r, n);
            try (MemoryScope s = MemoryScope.open()) {
                assertProduct(g, x, Ops.reluBackward(Tensor.of(g, n), Tensor.of(x, n)).toFloatArray());
            }
        }
    }

    @Test
    void stridedOperands() {
        Random r = new Random(4);
        float[] g = values(r, 37 * 21);
        float[] x = values(r, 37 * 21);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor gt = Tensor.of(g, 37, 21).t();   // [21, 37], strides (1, 21)
            Tensor xt = Tensor.of(x, 37, 21).t();
            float[] got = Ops.reluBackward(gt, xt).toFloatArray();
            float[] gw = gt.toFloatArray();
            float[] xw = xt.toFloatArray();
            assertProduct(gw, xw, got);
        }
    }

    @Test
    void reluAutogradUsesIt() {
        float[] x = {-2f, -0f, 0f, 0.5f, 3f, Float.NaN};
        float[] up = {1f, 2f, 3f, 4f, 5f, 6f};
        try (MemoryScope s = MemoryScope.open()) {
            Tensor xt = Tensor.of(x, 6).requiresGrad(true);
            xt.relu().backward(Tensor.of(up, 6));
            assertProduct(up, x, xt.grad().toFloatArray());
        }
    }

    @Test
    void mismatchedShapesAreAClearError() {
        try (MemoryScope s = MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Ops.reluBackward(Tensor.of(new float[4], 4), Tensor.of(new float[6], 6)));
            assertEquals("relu backward: gradient [4] float32 for an input [6] float32", e.getMessage());
        }
    }
}
