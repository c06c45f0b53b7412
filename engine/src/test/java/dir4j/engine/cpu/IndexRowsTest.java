package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * indexSelect and its backward (indexAdd) on the CPU: rows of contiguous tensors (block copies;
 * column blocks across threads, every index in order) and the general strided path, against
 * values picked and summed here, with repeated indices.
 */
class IndexRowsTest {
    private static final int[] IDX = {4, 0, 4, 6, 2, 4, 1};

    private static float[] data(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    @Test
    void rowsOfAContiguousMatrixAndTheirGradient() {
        int rows = 7;
        int cols = 600; // several column blocks and a tail
        float[] x = data(rows * cols, 1);
        float[] g = data(IDX.length * cols, 2);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor xt = Tensor.of(x, rows, cols).requiresGrad(true);
            Tensor picked = Ops.indexSelect(xt, 0, Tensor.ofInts(IDX, IDX.length));
            float[] got = picked.toFloatArray();
            for (int i = 0; i < IDX.length; i++) {
                for (int c = 0; c < cols; c++) {
                    assertEquals(x[IDX[i] * cols + c], got[i * cols + c], "row " + i + " col " + c);
                }
            }
            picked.backward(Tensor.of(g, IDX.length, cols));
            float[] dx = xt.grad().toFloatArray();
            float[] want = new float[rows * cols];
            for (int i = 0; i < IDX.length; i++) {
                for (int c = 0; c < cols; c++) {
                    want[IDX[i] * cols + c] += g[i * cols + c];
                }
            }
            assertArrayEquals(want, dx, "gradient rows (index 4 three times)");
        }
    }

    @Test
    void theStridedPathPicksTheSameRowsOfATransposedView() {
        int rows = 7;
        int cols = 5;
        float[] x = data(rows * cols, 3);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor view = Tensor.of(x, cols, rows).t(); // [rows, cols], not contiguous
            float[] got = Ops.indexSelect(view, 0, Tensor.ofInts(IDX, IDX.length)).toFloatArray();
            for (int i = 0; i < IDX.length; i++) {
                for (int c = 0; c < cols; c++) {
                    assertEquals(x[c * rows + IDX[i]], got[i * cols + c]);
                }
            }
            // and along axis 1 of a contiguous tensor
            Tensor m = Tensor.of(x, cols, rows);
            float[] cols1 = Ops.indexSelect(m, 1, Tensor.ofInts(IDX, IDX.length)).toFloatArray();
            for (int r = 0; r < cols; r++) {
                for (int i = 0; i < IDX.length; i++) {
                    assertEquals(x[r * rows + IDX[i]], cols1[r * IDX.length + i]);
                }
            }
        }
    }
}
