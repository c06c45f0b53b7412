package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link NnOps#linear} as one graph node: the same output and gradients as matmul with the
 * transposed weight plus the bias (composed here from the differentiable ops, whose rules are
 * checked against finite differences in GradientCheckTest, as is linear itself), and a weight
 * gradient that is a contiguous [out, in] tensor the leaf takes over rather than a transposed view
 * it must copy.
 */
class LinearOpTest {

    private static void assertClose(double[] want, double[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-5 * Math.max(1, Math.abs(want[i])), what + " at " + i);
        }
    }

    @Test
    void matchesTheComposedOpsOnTwoAndThreeDimensionalInputs() {
        Random r = new Random(4);
        for (int[] xs : new int[][] {{5, 7}, {2, 3, 7}}) {
            try (MemoryScope s = MemoryScope.open()) {
                Tensor x0 = Tensor.randn(r, xs);
                Tensor w0 = Tensor.randn(r, 6, 7);
                Tensor b0 = Tensor.randn(r, 6);
                int[] ys = xs.clone();
                ys[ys.length - 1] = 6;
                Tensor up = Tensor.randn(r, ys);
                Tensor[] a = {Ops.cloneDetached(x0).requiresGrad(true), Ops.cloneDetached(w0).requiresGrad(true),
                    Ops.cloneDetached(b0).requiresGrad(true)};
                Tensor[] c = {Ops.cloneDetached(x0).requiresGrad(true), Ops.cloneDetached(w0).requiresGrad(true),
                    Ops.cloneDetached(b0).requiresGrad(true)};
                Tensor y = NnOps.linear(a[0], a[1], a[2]);
                Tensor yc = Ops.add(Ops.matmul(c[0], Ops.transpose(c[1], 0, 1)), c[2]);
                assertArrayEquals(yc.shape(), y.shape());
                assertClose(yc.toDoubleArray(), y.toDoubleArray(), "output");
                y.backward(up);
                yc.backward(up);
                for (int i = 0; i < 3; i++) {
                    assertClose(c[i].grad().toDoubleArray(), a[i].grad().toDoubleArray(), "gradient " + i);
                }
                Tensor gw = a[1].grad();
                assertTrue(gw.isContiguous() && gw.offset() == 0, "weight gradient in the weight's layout");
                assertArrayEquals(new int[] {6, 7}, gw.shape());
            }
        }
    }

    @Test
    void withoutBiasAndWithFrozenParts() {
        Random r = new Random(5);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = Tensor.randn(r, 4, 3).requiresGrad(true);
            Tensor w = Tensor.randn(r, 2, 3); // frozen
            Tensor y = NnOps.linear(x, w, null);
            y.backward(Tensor.ones(4, 2));
            assertNull(w.grad());
            // dL/dx = 1·W: every row is the column sums of W
            double[] wv = w.toDoubleArray();
            double[] gx = x.grad().toDoubleArray();
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 3; j++) {
                    assertEquals(wv[j] + wv[3 + j], gx[i * 3 + j], 1e-6);
                }
            }
        }
    }

    @Test
    void aBiasOfTheWrongSizeIsRefused() {
        try (MemoryScope s = MemoryScope.open()) {
            String m = assertThrows(IllegalArgumentException.class, () -> NnOps.linear(Tensor.zeros(2, 3),
                    Tensor.zeros(4, 3), Tensor.zeros(3))).getMessage();
            assertTrue(m.contains("bias") && m.contains("[4]"), m);
        }
    }
}
