package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Copies whose last two dimensions are transposed (contiguous() after t() or a permute), which
 * the CPU backend runs in tiles when both sides span at least a tile: every element against its
 * index arithmetic, with partial tiles, an outer batch dimension and the element-by-element path
 * for small sides.
 */
class TransposeCopyTest {
    @ParameterizedTest
    @CsvSource({"1, 37, 45", "1, 64, 33", "3, 40, 50", "2, 70, 100", "2, 5, 90", "1, 31, 31"})
    void permutedLastTwoAxesMadeContiguous(int batch, int rows, int cols) {
        float[] x = new float[batch * rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = i * 0.5f - 7;
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, batch, rows, cols);
            Tensor view = t.permute(0, 2, 1); // [batch, cols, rows]
            float[] got = view.contiguous().toFloatArray();
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < cols; j++) {
                    for (int i = 0; i < rows; i++) {
                        assertEquals(x[(b * rows + i) * cols + j], got[(b * cols + j) * rows + i],
                                "batch " + b + " at " + j + "," + i);
                    }
                }
            }
        }
    }
}
