package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.cpu.TopK;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TopKTest {

    @Test
    void keepsTheSameRowsAsAFullSortIncludingDuplicatesAndNaN() {
        Random rng = new Random(5);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + rng.nextInt(60);
            int k = 1 + rng.nextInt(12);
            float[] s = new float[n];
            for (int i = 0; i < n; i++) {
                // few distinct values, so ties are common; some NaN
                s[i] = rng.nextInt(10) == 0 ? Float.NaN : (rng.nextInt(7) - 3) / 4f;
            }
            TopK top = new TopK(k);
            for (int i = 0; i < n; i++) {
                top.offer(s[i], i);
            }
            long[] got = top.sortedKeys();
            int[] expected = Rankings.bySimilarity(s, 1, n)[0];
            assertEquals(Math.min(k, n), got.length);
            for (int r = 0; r < got.length; r++) {
                assertEquals(expected[r], ScoreOrder.index(got[r]), "trial " + trial + " rank " + r);
                float score = ScoreOrder.score(got[r]);
                assertTrue(Float.isNaN(s[expected[r]]) ? Float.isNaN(score) : score == s[expected[r]]);
            }
        }
    }

    @Test
    void rankingsPutHigherScoresFirstTiesByIndexAndNaNLast() {
        float[] s = {0.5f, Float.NaN, 0.9f, 0.5f, -1f, Float.NEGATIVE_INFINITY};
        assertArrayEquals(new int[] {2, 0, 3, 4, 5, 1}, Rankings.bySimilarity(s, 1, 6)[0]);
        assertArrayEquals(new int[] {1, 0}, Arrays.stream(Rankings.bySimilarity(new float[] {0, 1, 1, 0}, 2, 2))
                .mapToInt(r -> r[0]).toArray());
    }
}
