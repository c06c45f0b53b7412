package dir4j.retrieval.eval;

import static dir4j.retrieval.search.TestFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.retrieval.search.Rankings;
import dir4j.retrieval.search.TestFixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The revisited and old Oxford/Paris protocols against cirtorch's compute_map /
 * compute_map_and_print, re-implemented in tests/fixtures/make_retrieval_fixtures.py (fixtures/eval):
 * junk-heavy queries, queries with no positives (in one setup or all), k above the number of
 * positives, empty junk lists.
 */
class RevisitedProtocolFixtureTest {

    static List<RevisitedGroundTruth> groundTruth(String folder) {
        int[][] easy = TestFixtures.lists(folder, "easy");
        int[][] hard = TestFixtures.lists(folder, "hard");
        int[][] junk = TestFixtures.lists(folder, "junk");
        List<RevisitedGroundTruth> gnd = new ArrayList<>();
        for (int q = 0; q < easy.length; q++) {
            gnd.add(new RevisitedGroundTruth(easy[q], hard[q], junk[q]));
        }
        return gnd;
    }

    static int[][] rankingsFromScores(String folder) {
        try (MemoryScope scope = MemoryScope.open()) {
            return Rankings.bySimilarity(TestFixtures.npy(folder + "/scores"));
        }
    }

    static void assertProtocol(String folder, String p, ProtocolResult r) {
        assertClose(new double[] {TestFixtures.doubles(folder + "/" + p + "_map")[0]}, new double[] {r.map()}, 0, 1e-14,
                folder + " " + p + " mAP");
        assertClose(TestFixtures.doubles(folder + "/" + p + "_aps"), r.aps(), 0, 1e-14, folder + " " + p + " APs");
    }

    @ParameterizedTest
    @ValueSource(strings = {"roxford_mixed", "rparis_random"})
    void revisitedMetricsMatchTheReference(String name) {
        String folder = "eval/" + name;
        int[][] rankings = rankingsFromScores(folder);
        assertArrayEquals(TestFixtures.intRows(folder + "/ranks"), rankings, "ranking by decreasing score");
        RevisitedResult r = RevisitedProtocol.evaluate(rankings, groundTruth(folder));
        Map<String, ProtocolResult> setups = Map.of("E", r.easy(), "M", r.medium(), "H", r.hard());
        for (var e : setups.entrySet()) {
            String p = e.getKey();
            ProtocolResult pr = e.getValue();
            assertProtocol(folder, p, pr);
            assertClose(TestFixtures.doubles(folder + "/" + p + "_mpr"), pr.meanPrecisionAt(), 0, 1e-14,
                    name + " " + p + " mP@k");
            double[] prs = TestFixtures.doubles(folder + "/" + p + "_prs");
            double[] flat = new double[prs.length];
            for (int q = 0; q < pr.queries(); q++) {
                System.arraycopy(pr.precisionAt()[q], 0, flat, q * 3, 3);
            }
            assertClose(prs, flat, 0, 1e-14, name + " " + p + " P@k per query");
        }
        Map<String, String> props = TestFixtures.properties(folder + "/case.properties");
        assertEquals(TestFixtures.text(folder + "/printed.txt").strip(), r.report(props.get("dataset")));
    }

    @Test
    void mixedCaseExcludesTheQueriesWithoutPositivesPerSetup() {
        // q2 has no positives at all; q4 no easy images; q3 and q5 no hard ones
        RevisitedResult r = RevisitedProtocol.evaluate(rankingsFromScores("eval/roxford_mixed"),
                groundTruth("eval/roxford_mixed"));
        assertEquals(2, r.easy().excludedQueries());
        assertEquals(1, r.medium().excludedQueries());
        assertEquals(3, r.hard().excludedQueries());
    }

    @Test
    void similarityMatrixInputRanksAndEvaluatesLikeRankings() {
        String folder = "eval/roxford_mixed";
        try (MemoryScope scope = MemoryScope.open()) {
            RevisitedResult r = RevisitedProtocol.evaluate(TestFixtures.npy(folder + "/scores"), groundTruth(folder));
            assertProtocol(folder, "M", r.medium());
        }
    }

    @Test
    void oldProtocolMatchesTheReference() {
        String folder = "eval/oxford_old";
        int[][] ok = TestFixtures.lists(folder, "ok");
        int[][] junk = TestFixtures.lists(folder, "junk");
        List<Judgement> gnd = new ArrayList<>();
        for (int q = 0; q < ok.length; q++) {
            gnd.add(new Judgement(ok[q], junk[q]));
        }
        int[][] rankings = rankingsFromScores(folder);
        assertArrayEquals(TestFixtures.intRows(folder + "/ranks"), rankings);
        ProtocolResult r = OldProtocol.evaluate(rankings, gnd);
        assertProtocol(folder, "old", r);
        assertEquals(1, r.excludedQueries());
        assertEquals(TestFixtures.text(folder + "/printed.txt").strip(), OldProtocol.report("oxford5k", r));
    }
}
