package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The AP histogram ops of the blocked AP loss on the CPU, against the plain ops: a diagonal
 * offset equals zeroing that entry's label-and-count by hand, and the symmetric backward equals
 * the row block's backward plus the transposed backward of the same block.
 */
class ApHistogramBlockTest {
    private static final Backend.ApBins BINS = new Backend.ApBins(20, -1, 1);
    private static final int ROWS = 23;
    private static final int M = 90;
    private static final int R0 = 31;

    private static Tensor uniform(Random rng, double lo, double hi, int... shape) {
        return Tensor.uniform(rng, lo, hi, shape);
    }

    @Test
    void diagonalOffsetLeavesOutEntryRPlusOffsetOfEachRow() {
        Random rng = new Random(1);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor s = uniform(rng, -1.2, 1.2, ROWS, M);
            Tensor y = Ops.greater(uniform(rng, 0, 1, ROWS, M), Tensor.full(0.7));
            Tensor h = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, 2, 20);
            s.backend().apHistogram(s, y, BINS, R0, h);
            // the same histogram from the row without its entry (r, R0 + r), bin by bin
            double[] sv = s.toDoubleArray();
            double[] yv = y.toDoubleArray();
            double[] hv = h.toDoubleArray();
            double a = 19 / 2.0;
            for (int r = 0; r < ROWS; r++) {
                for (int k = 0; k < 20; k++) {
                    double n = 0;
                    double np = 0;
                    for (int j = 0; j < M; j++) {
                        if (j == r + R0) {
                            continue;
                        }
                        double t = (1 - sv[r * M + j]) * a; // distance from bin 0's centre in bins
                        double w = k == 0 ? Math.min(1, Math.max(0, 1 - t)) : k == 19 ? Math.min(1, Math.max(0, t - 18))
                                : Math.max(0, 1 - Math.abs(t - k));
                        n += w;
                        np += yv[r * M + j] * w;
                    }
                    assertEquals(n, hv[r * 40 + k], 1e-5, "n_" + k + " of row " + r);
                    assertEquals(np, hv[r * 40 + 20 + k], 1e-5, "n+_" + k + " of row " + r);
                }
            }
        }
    }

    @Test
    void symmetricBackwardIsRowPlusTransposedColumnTerms() {
        Random rng = new Random(2);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor s = uniform(rng, -1.2, 1.2, ROWS, M);
            Tensor y = Ops.greater(uniform(rng, 0, 1, ROWS, M), Tensor.full(0.7));
            Tensor g = uniform(rng, -1, 1, M, 2, 20);
            Backend be = s.backend();
            for (int diag : new int[] {R0, Backend.AP_KEEP_ALL}) {
                Tensor sym = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                be.apHistogramBackwardSymmetric(s, y, BINS, R0, diag, g, sym);
                Tensor row = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                be.apHistogramBackward(s, y, BINS, diag, Ops.slice(g, 0, R0, R0 + ROWS), row);
                Tensor col = Tensor.empty(DType.FLOAT32, Device.CPU, M, ROWS);
                be.apHistogramBackward(Ops.transpose(s, 0, 1), Ops.transpose(y, 0, 1), BINS,
                        diag == Backend.AP_KEEP_ALL ? diag : -diag, g, col);
                double[] expected = Ops.add(row, Ops.transpose(col, 0, 1)).toDoubleArray();
                double[] actual = sym.toDoubleArray();
                double max = 0;
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-5 * (1 + Math.abs(expected[i])), "score " + i);
                    max = Math.max(max, Math.abs(expected[i]));
                }
                assertEquals(true, max > 1, "gradients should not all vanish");
            }
            assertThrows(IllegalArgumentException.class, () -> be.apHistogramBackwardSymmetric(s, y, BINS, M - 3,
                    Backend.AP_KEEP_ALL, g, Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M)));
        }
    }
}
