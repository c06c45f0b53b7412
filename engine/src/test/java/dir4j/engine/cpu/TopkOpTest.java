package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Backend#topk on the CPU against a full sort in the search order. */
class TopkOpTest {
    /** Column order of one row by (score desc, column asc), NaN last: the definition. */
    static int[] order(float[] row) {
        return IntStream.range(0, row.length).boxed().sorted(Comparator
                .comparing((Integer j) -> Float.isNaN(row[j]) ? 1 : 0)
                .thenComparing(j -> Float.isNaN(row[j]) ? 0f : -row[j])
                .thenComparing(j -> j)).mapToInt(Integer::intValue).toArray();
    }

    @Test
    void eachRowsKLargestBestFirstTiesByColumnNaNLast() {
        Random rng = new Random(3);
        int rows = 7;
        int n = 300;
        float[] s = new float[rows * n];
        for (int i = 0; i < s.length; i++) {
            // few distinct values (many ties), −0 and +0, NaN, infinities
            int c = rng.nextInt(12);
            s[i] = c == 0 ? Float.NaN : c == 1 ? -0f : c == 2 ? 0f : c == 3 ? Float.NEGATIVE_INFINITY
                    : (rng.nextInt(9) - 4) / 8f;
        }
        for (int k : new int[] {1, 5, 64, n}) {
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor scores = Tensor.of(s, rows, n);
                Tensor values = Tensor.empty(DType.FLOAT32, Device.CPU, rows, k);
                Tensor indices = Tensor.empty(DType.INT32, Device.CPU, rows, k);
                scores.backend().topk(scores, k, values, indices);
                float[] v = values.toFloatArray();
                double[] ix = indices.toDoubleArray();
                for (int r = 0; r < rows; r++) {
                    float[] row = Arrays.copyOfRange(s, r * n, (r + 1) * n);
                    int[] want = order(row);
                    for (int j = 0; j < k; j++) {
                        assertEquals(want[j], (int) ix[r * k + j], "k " + k + " row " + r + " rank " + j);
                        float got = v[r * k + j];
                        float exp = row[want[j]];
                        assertTrue(Float.isNaN(exp) ? Float.isNaN(got)
                                : Float.floatToIntBits(exp) == Float.floatToIntBits(got), "value, rank " + j);
                    }
                }
            }
        }
    }

    @Test
    void badOperandsAreNamed() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor scores = Tensor.zeros(DType.FLOAT32, Device.CPU, 2, 5);
            Tensor v = Tensor.zeros(DType.FLOAT32, Device.CPU, 2, 6);
            Tensor i = Tensor.zeros(DType.INT32, Device.CPU, 2, 6);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> scores.backend().topk(scores, 6, v, i));
            assertTrue(e.getMessage().contains("k = 6 must be in [1, min(5 columns"), e.getMessage());
            Tensor v2 = Tensor.zeros(DType.FLOAT32, Device.CPU, 2, 2);
            assertThrows(IllegalArgumentException.class,
                    () -> scores.backend().topk(scores, 2, v2, Tensor.zeros(DType.FLOAT32, Device.CPU, 2, 2)));
            assertEquals(1024, Backend.TOPK_MAX);
        }
    }
}
