package dir4j.retrieval.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Hand-derived values of the per-query metrics. */
class AveragePrecisionTest {
    private static final int[] NONE = {};

    @Test
    void onlyPositiveAtRankThreeBehindAJunkAtRankOneScoresOneQuarter() {
        // ranking: 7 (junk), 3 (negative), 5 (positive), ...; without the junk the positive is
        // second: recall step 1 × (precision before 0/1 + precision at 1/2) / 2 = 0.25
        int[] ranking = {7, 3, 5, 0, 1};
        Judgement j = new Judgement(new int[] {5}, new int[] {7});
        int[] ranks = AveragePrecision.positiveRanks(ranking, j);
        assertArrayEquals(new int[] {1}, ranks);
        assertEquals(0.25, AveragePrecision.trapezoid(ranks, 1), 1e-15);
    }

    /**
     * With distractors: ranking 2 (junk), 0, 1 (positives) at places 0, 5, 7 of the extended
     * ranking (five distractors before 0, one more before 1): without the junk, 0 is fifth and 1
     * seventh (ranks 4, 6): AP = ((0/4 + 1/5)/2 + (1/6 + 2/7)/2) / 2.
     */
    @Test
    void positivesTakeTheirPlacesAmongDistractorsLessTheJunkBeforeThem() {
        int[] ranking = {2, 0, 1};
        Judgement j = new Judgement(new int[] {0, 1}, new int[] {2});
        int[] ranks = AveragePrecision.positiveRanks(ranking, new int[] {0, 5, 7}, j);
        assertArrayEquals(new int[] {4, 6}, ranks);
        assertEquals(((0.0 / 4 + 1.0 / 5) / 2 + (1.0 / 6 + 2.0 / 7) / 2) / 2, AveragePrecision.trapezoid(ranks, 2),
                1e-15);
        // the junk's own place is not read; a positive without one is an error, not a silent rank
        assertArrayEquals(new int[] {4, 6}, AveragePrecision.positiveRanks(ranking, new int[] {-1, 5, 7}, j));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> AveragePrecision.positiveRanks(ranking, new int[] {0, -1, 7}, j));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> AveragePrecision.positiveRanks(ranking, new int[] {0, 5}, j));
    }

    @Test
    void perfectRankingScoresOne() {
        int[] ranking = {2, 0, 1, 3};
        Judgement j = new Judgement(new int[] {0, 2}, NONE);
        assertEquals(1.0, AveragePrecision.trapezoid(AveragePrecision.positiveRanks(ranking, j), 2), 1e-15);
    }

    @Test
    void twoPositivesAtRanksOneAndThreeScoreNineteenTwentyFourths() {
        // j=0 at rank 0: (1 + 1)/2 × 1/2 = 1/2; j=1 at rank 2: (1/2 + 2/3)/2 × 1/2 = 7/24
        int[] ranking = {4, 9, 6, 1};
        int[] ranks = AveragePrecision.positiveRanks(ranking, new Judgement(new int[] {6, 4}, NONE));
        assertArrayEquals(new int[] {0, 2}, ranks);
        assertEquals(0.5 + 7.0 / 24, AveragePrecision.trapezoid(ranks, 2), 1e-15);
    }

    @Test
    void positivesMissingFromTheRankingContributeNothing() {
        // one of two positives is ranked first, the other never: half the recall, precision 1
        int[] ranks = AveragePrecision.positiveRanks(new int[] {3, 1}, new Judgement(new int[] {3, 8}, NONE));
        assertEquals(0.5, AveragePrecision.trapezoid(ranks, 2), 1e-15);
    }

    @Test
    void junkAfterAPositiveDoesNotMoveIt() {
        // positions: 0 P, 1 J, 2 N, 3 J, 4 P → ranks 0 and 4 − 2 = 2
        int[] ranking = {10, 11, 12, 13, 14};
        Judgement j = new Judgement(new int[] {10, 14}, new int[] {11, 13});
        assertArrayEquals(new int[] {0, 2}, AveragePrecision.positiveRanks(ranking, j));
    }

    @Test
    void anImageBothPositiveAndJunkCountsAsPositiveAndShiftsLaterPositives() {
        // reference semantics: positions of positives minus junk positions strictly before them
        int[] ranking = {0, 1, 2};
        Judgement j = new Judgement(new int[] {0, 2}, new int[] {0});
        assertArrayEquals(new int[] {0, 1}, AveragePrecision.positiveRanks(ranking, j));
    }

    @Test
    void precisionAtKIsCappedAtTheLastPositivesRank() {
        // one positive ranked first: P@5 = 1/min(1, 5) = 1
        assertEquals(1.0, AveragePrecision.precisionAt(new int[] {0}, 5), 0);
        // positives at one-based ranks 2 and 7
        int[] ranks = {1, 6};
        assertEquals(0.0, AveragePrecision.precisionAt(ranks, 1), 0);
        assertEquals(1.0 / 5, AveragePrecision.precisionAt(ranks, 5), 1e-15);
        assertEquals(2.0 / 7, AveragePrecision.precisionAt(ranks, 10), 1e-15);
        // none of the positives in the ranking
        assertEquals(0.0, AveragePrecision.precisionAt(new int[0], 5), 0);
    }
}
