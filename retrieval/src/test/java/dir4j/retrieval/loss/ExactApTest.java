package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Exact AP (what dir4j aploss prints beside the quantised AP) on hand-derived rankings. */
class ExactApTest {

    @Test
    void precisionAtEachPositiveAveraged() {
        // ranks 1 and 3 are positive: (1/1 + 2/3) / 2
        assertEquals(5.0 / 6, ExactAp.of(new double[] {0.9, 0.8, 0.7, 0.6}, new double[] {1, 0, 1, 0}, -1), 1e-15);
        // scores in any order are ranked by decreasing score: 0.5 (+), 0.3 (−), 0.1 (+)
        assertEquals(5.0 / 6, ExactAp.of(new double[] {0.1, 0.5, 0.3}, new double[] {1, 1, 0}, -1), 1e-15);
        // three positives at ranks 2, 3, 5: (1/2 + 2/3 + 3/5) / 3
        assertEquals((0.5 + 2.0 / 3 + 0.6) / 3,
                ExactAp.of(new double[] {5, 4, 3, 2, 1}, new double[] {0, 1, 1, 0, 1}, -1), 1e-15);
        // every item positive: AP 1
        assertEquals(1.0, ExactAp.of(new double[] {0.2, 0.9, -3}, new double[] {1, 1, 1}, -1), 0);
    }

    @Test
    void theSkippedItemLeavesTheRanking() {
        // without item 0 (the query itself) the ranking is 0.8 (−), 0.7 (+), 0.6 (−): AP 1/2
        assertEquals(0.5, ExactAp.of(new double[] {0.9, 0.8, 0.7, 0.6}, new double[] {1, 0, 1, 0}, 0), 1e-15);
        // skipping a negative above the positives lifts them: 0.9 (+), 0.7 (+)
        assertEquals(1.0, ExactAp.of(new double[] {0.9, 0.95, 0.7}, new double[] {1, 0, 1}, 1), 0);
    }

    @Test
    void tiesKeepIndexOrderAndNoPositiveIsNaN() {
        assertEquals(1.0 / 3, ExactAp.of(new double[] {0.5, 0.5, 0.5}, new double[] {0, 0, 1}, -1), 1e-15);
        assertEquals(1.0, ExactAp.of(new double[] {0.5, 0.5, 0.5}, new double[] {1, 0, 0}, -1), 0);
        assertTrue(Double.isNaN(ExactAp.of(new double[] {0.3, 0.2}, new double[] {0, 0}, -1)));
        assertTrue(Double.isNaN(ExactAp.of(new double[] {0.3, 0.2}, new double[] {1, 0}, 0)), "the only positive skipped");
        // labels above one half count as positive (0/1 labels stored as floats)
        assertEquals(1.0, ExactAp.of(new double[] {0.3, 0.2}, new double[] {0.51, 0.49}, -1), 0);
    }
}
