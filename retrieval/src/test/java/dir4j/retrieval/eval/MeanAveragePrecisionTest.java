package dir4j.retrieval.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class MeanAveragePrecisionTest {

    @Test
    void queriesWithoutPositivesAreCountedAndLeftOutOfTheMeans() {
        int[][] rankings = {{0, 1, 2}, {2, 1, 0}, {1, 0, 2}};
        List<Judgement> gnd = List.of(
                new Judgement(new int[] {0}, new int[] {}),       // AP 1, P@1 1
                new Judgement(new int[] {}, new int[] {2}),       // excluded
                new Judgement(new int[] {2}, new int[] {1}));     // junk removed: rank 1 → AP 0.25, P@1 0
        ProtocolResult r = MeanAveragePrecision.compute(rankings, gnd, 1, 2);
        assertEquals(1, r.excludedQueries());
        assertEquals((1 + 0.25) / 2, r.map(), 1e-15);
        assertTrue(Double.isNaN(r.aps()[1]));
        assertArrayEquals(new double[] {0.5, 0.75}, r.meanPrecisionAt(), 1e-15);
        assertEquals(0.75, r.meanPrecisionAt(2), 1e-15);
        assertTrue(Double.isNaN(r.precisionAt()[1][0]));
    }

    @Test
    void allQueriesWithoutPositivesGiveNaNRatherThanAnError() {
        ProtocolResult r = MeanAveragePrecision.compute(new int[][] {{0, 1}}, List.of(new Judgement(new int[0],
                new int[0])), 1);
        assertTrue(Double.isNaN(r.map()));
        assertTrue(Double.isNaN(r.meanPrecisionAt()[0]));
        assertEquals(1, r.excludedQueries());
    }

    @Test
    void mismatchedQueryCountsAndBadCutOffsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> MeanAveragePrecision.compute(new int[][] {{0}}, List.of()));
        assertThrows(IllegalArgumentException.class, () -> MeanAveragePrecision.compute(new int[][] {{0}},
                List.of(new Judgement(new int[] {0}, new int[0])), 0));
    }

    @Test
    void revisitedSetupsSplitEasyHardAndJunkAsThePaperDefines() {
        RevisitedGroundTruth g = new RevisitedGroundTruth(new int[] {1, 2}, new int[] {3}, new int[] {4});
        assertArrayEquals(new int[] {1, 2}, g.easySetup().positives());
        assertArrayEquals(new int[] {4, 3}, g.easySetup().junk());
        assertArrayEquals(new int[] {1, 2, 3}, g.mediumSetup().positives());
        assertArrayEquals(new int[] {4}, g.mediumSetup().junk());
        assertArrayEquals(new int[] {3}, g.hardSetup().positives());
        assertArrayEquals(new int[] {4, 1, 2}, g.hardSetup().junk());
    }
}
