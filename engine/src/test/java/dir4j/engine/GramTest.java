package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Ops.gram equals matmul(x, xᵀ) forward and backward, and passes a finite-difference check. */
class GramTest {
    @Test
    void gramMatchesMatmulWithTransposeForwardAndBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            Random r = new Random(4);
            double[] xv = new double[7 * 5];
            double[] gv = new double[7 * 7];
            for (int i = 0; i < xv.length; i++) {
                xv[i] = r.nextGaussian();
            }
            for (int i = 0; i < gv.length; i++) {
                gv[i] = r.nextGaussian();
            }
            Tensor x1 = Tensor.ofDoubles(xv, 7, 5).requiresGrad(true);
            Tensor x2 = Tensor.ofDoubles(xv, 7, 5).requiresGrad(true);
            Tensor g = Tensor.ofDoubles(gv, 7, 7);
            Tensor a = Ops.gram(x1);
            Tensor b = Ops.matmul(x2, Ops.transpose(x2, 0, 1));
            assertArrayEquals(b.toDoubleArray(), a.toDoubleArray(), 1e-12);
            a.backward(g);
            b.backward(g);
            assertArrayEquals(x2.grad().toDoubleArray(), x1.grad().toDoubleArray(), 1e-12);
            // finite differences on one entry of x, through a weighted sum of the Gram matrix
            double h = 1e-6;
            int idx = 12;
            double[] up = xv.clone();
            double[] dn = xv.clone();
            up[idx] += h;
            dn[idx] -= h;
            double fUp = Ops.gram(Tensor.ofDoubles(up, 7, 5)).mul(g).sum().item();
            double fDn = Ops.gram(Tensor.ofDoubles(dn, 7, 5)).mul(g).sum().item();
            org.junit.jupiter.api.Assertions.assertEquals((fUp - fDn) / (2 * h), x1.grad().toDoubleArray()[idx], 1e-7);
        }
    }
}
