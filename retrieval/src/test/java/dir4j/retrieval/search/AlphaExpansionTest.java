package dir4j.retrieval.search;

import static dir4j.retrieval.search.TestFixtures.assertClose;
import static dir4j.retrieval.search.TestFixtures.toDoubles;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * αQE / αDBA against dirtorch's expand_descriptors run by numpy in float32
 * (tests/fixtures/make_retrieval_fixtures.py, fixtures/qe), and hand-derived cases.
 */
class AlphaExpansionTest {

    @ParameterizedTest
    @ValueSource(strings = {"aqe_k1_a3", "aqe_k5_a3", "aqe_k4_a0", "aqe_k3_a0_5", "adba_k3_a3", "adba_k2_a1",
        "adba_k3_a3_then_aqe_k2_a3"})
    void expansionMatchesTheNumpyReference(String name) {
        Map<String, String> cases = TestFixtures.properties("qe/cases.properties");
        String[] c = cases.get(name).split(",");
        double alpha = Double.parseDouble(c[2]);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = TestFixtures.npy("qe/db");
            Tensor queries = TestFixtures.npy("qe/queries");
            Tensor got = switch (c[0]) {
                case "aqe" -> AlphaExpansion.queryExpansion(queries, db, Integer.parseInt(c[1]), alpha);
                case "adba" -> AlphaExpansion.databaseAugmentation(db, Integer.parseInt(c[1]), alpha);
                default -> {
                    String[] k = c[1].split("/");
                    Tensor augmented = AlphaExpansion.databaseAugmentation(db, Integer.parseInt(k[0]), alpha);
                    yield AlphaExpansion.queryExpansion(queries, augmented, Integer.parseInt(k[1]), alpha);
                }
            };
            assertClose(TestFixtures.doubles("qe/" + name), toDoubles(got.toFloatArray()), 0, 2e-6, name);
        }
    }

    @Test
    void queryExpansionWeighsNeighboursBySimilarityToThePowerAlpha() {
        // q = (1, 0); sims 0.6, 0.8, -1 → top 2 = rows 0, 1:
        // q + 0.6³·(0.6, 0.8) + 0.8³·(0.8, −0.6) = (1.5392, −0.1344), then normalised
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(new float[] {0.6f, 0.8f, 0.8f, -0.6f, -1, 0}, 3, 2);
            Tensor q = Tensor.of(new float[] {1, 0}, 1, 2);
            double norm = Math.hypot(1.5392, -0.1344);
            assertArrayEquals(new float[] {(float) (1.5392 / norm), (float) (-0.1344 / norm)},
                    AlphaExpansion.queryExpansion(q, db, 2, 3).toFloatArray(), 1e-6f);
        }
    }

    /**
     * Neighbours with a negative or zero similarity (the fixtures' clustered rows have none): q =
     * (1, 0) against rows (−0.6, 0.8), (0, 1), (−1, 0); the two best are sims 0 and −0.6. The
     * weight s^α keeps the sign for odd α, loses it for even α, is 1 for α = 0 (0^0 too, as numpy)
     * and NaN for α = 0.5 (a negative base), which makes the whole row NaN, as numpy does. The
     * values agree with expand_descriptors of make_retrieval_fixtures.py.
     */
    @Test
    void negativeAndZeroSimilaritiesFollowNumpysPower() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(new float[] {-0.6f, 0.8f, 0, 1, -1, 0}, 3, 2);
            Tensor q = Tensor.of(new float[] {1, 0}, 1, 2);
            // α = 3: q + (−0.216)·(−0.6, 0.8) + 0·(0, 1) = (1.1296, −0.1728)
            double n3 = Math.hypot(1.1296, -0.1728);
            assertArrayEquals(new float[] {(float) (1.1296 / n3), (float) (-0.1728 / n3)},
                    AlphaExpansion.queryExpansion(q, db, 2, 3).toFloatArray(), 1e-6f);
            // α = 2: q + 0.36·(−0.6, 0.8) = (0.784, 0.288)
            double n2 = Math.hypot(0.784, 0.288);
            assertArrayEquals(new float[] {(float) (0.784 / n2), (float) (0.288 / n2)},
                    AlphaExpansion.queryExpansion(q, db, 2, 2).toFloatArray(), 1e-6f);
            // α = 0: q + (−0.6, 0.8) + (0, 1) = (0.4, 1.8)
            double n0 = Math.hypot(0.4, 1.8);
            assertArrayEquals(new float[] {(float) (0.4 / n0), (float) (1.8 / n0)},
                    AlphaExpansion.queryExpansion(q, db, 2, 0).toFloatArray(), 1e-6f);
            assertArrayEquals(new float[] {Float.NaN, Float.NaN},
                    AlphaExpansion.queryExpansion(q, db, 2, 0.5).toFloatArray(), 0f);
        }
    }

    @Test
    void databaseAugmentationKeepsEachRowAsAZeroScoreCandidateOfItself() {
        // two opposite rows: each one's self-similarity is set to 0 (not removed), which beats the
        // other row's −1, so with α = 0 (weight 1) each row adds itself and stays unchanged;
        // removing self instead would add the opposite row and give a zero vector (NaN)
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(new float[] {1, 0, -1, 0}, 2, 2);
            assertArrayEquals(new float[] {1, 0, -1, 0},
                    AlphaExpansion.databaseAugmentation(db, 1, 0).toFloatArray(), 0f);
        }
    }

    @Test
    void zeroNeighboursLeaveDescriptorsUnchangedAndBadArgumentsAreRejected() {
        try (MemoryScope scope = MemoryScope.open()) {
            float[] values = {0.6f, 0.8f, 1, 0};
            Tensor db = Tensor.of(values, 2, 2);
            assertArrayEquals(values, AlphaExpansion.databaseAugmentation(db, 0, 3).toFloatArray(), 0f);
            assertThrows(IllegalArgumentException.class, () -> AlphaExpansion.databaseAugmentation(db, 3, 1));
            assertThrows(IllegalArgumentException.class, () -> AlphaExpansion.queryExpansion(db, db, -1, 1));
            assertThrows(IllegalArgumentException.class, () -> AlphaExpansion.queryExpansion(db, db, 1, -1));
            assertThrows(IllegalArgumentException.class,
                    () -> AlphaExpansion.queryExpansion(Tensor.of(new float[3], 1, 3), db, 1, 1));
        }
    }
}
