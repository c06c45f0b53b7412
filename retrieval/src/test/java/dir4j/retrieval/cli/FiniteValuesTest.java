package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The first NaN or infinity of an array: found wherever it lies (vector lanes, block edges, the tail, a view). */
class FiniteValuesTest {
    @Test
    void theFirstNonFiniteValueIsFoundAtEveryKindOfPlace() {
        Random rng = new Random(2);
        float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        try (MemoryScope scope = MemoryScope.open()) {
            for (int n : new int[] {1, 15, 16, 17, 100, 4095, 4096, 4097, 9000}) {
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    v[i] = (float) rng.nextGaussian() * 1e30f; // large but finite: x - x stays 0
                }
                v[rng.nextInt(n)] = Float.MAX_VALUE;
                assertEquals(-1, FiniteValues.firstNonFinite(Tensor.of(v, n)), "clean " + n);
                for (int at : new int[] {0, n / 2, n - 1, Math.min(n - 1, 4095), Math.min(n - 1, 4096)}) {
                    for (float x : bad) {
                        float[] w = v.clone();
                        w[at] = x;
                        if (at + 1 < n) {
                            w[n - 1] = Float.NaN; // a later one does not matter
                        }
                        assertEquals(at, FiniteValues.firstNonFinite(Tensor.of(w, n)), n + " at " + at + ": " + x);
                    }
                }
            }
            // a view that starts inside its storage, rows of a matrix, and float64
            float[] m = new float[30 * 7];
            m[9 * 7 + 3] = Float.POSITIVE_INFINITY;
            Tensor rows = Tensor.of(m, 30, 7).slice(0, 4, 20);
            assertEquals(5 * 7 + 3, FiniteValues.firstNonFinite(rows));
            assertEquals(-1, FiniteValues.firstNonFinite(Tensor.of(m, 30, 7).slice(0, 10, 30)));
            assertEquals(2, FiniteValues.firstNonFinite(Tensor.ofDoubles(new double[] {1, 2, Double.NaN}, 3)));
            assertEquals(-1, FiniteValues.firstNonFinite(Tensor.ofDoubles(new double[] {1, 2, 3}, 3)));
            // a transposed view (not contiguous): counted in its own row-major order
            float[] c = new float[4 * 3];
            c[2 * 3 + 1] = Float.NaN; // element (2, 1), i.e. (1, 2) of the transpose: index 1 * 4 + 2
            assertEquals(6, FiniteValues.firstNonFinite(Tensor.of(c, 4, 3).t()));
            assertEquals(-1, FiniteValues.firstNonFinite(Tensor.of(new float[12], 4, 3).t()));
            assertEquals(-1, FiniteValues.firstNonFinite(Tensor.of(new float[0], 0)));
        }
    }

    @Test
    void requireNamesTheFileTheRowAndTheValue() {
        try (MemoryScope scope = MemoryScope.open()) {
            float[] m = new float[6 * 5];
            m[4 * 5 + 1] = Float.NEGATIVE_INFINITY;
            IOException e = assertThrows(IOException.class,
                    () -> FiniteValues.require(Path.of("d.npy"), Tensor.of(m, 6, 5), "descriptor"));
            assertTrue(e.getMessage().equals("d.npy: descriptor 4 (of 6, counting from 0) holds -infinity; expected "
                    + "finite values"), e.getMessage());
            float[] first = new float[5];
            first[0] = Float.NaN;
            IOException e0 = assertThrows(IOException.class,
                    () -> FiniteValues.require(Path.of("f.npy"), Tensor.of(first, 5, 1), "row"));
            assertTrue(e0.getMessage().contains("row 0 (of 5, counting from 0) holds NaN"), e0.getMessage());
        }
    }
}
