package dir4j.retrieval.whiten;

import static dir4j.retrieval.search.TestFixtures.assertClose;
import static dir4j.retrieval.search.TestFixtures.toDoubles;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.retrieval.search.TestFixtures;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PCA whitening against dirtorch's transform / whiten_features run by numpy in float64, with the
 * PCA fields sklearn's PCA(whiten=True).fit would hold (tests/fixtures/make_retrieval_fixtures.py,
 * fixtures/whiten), and hand-derived cases.
 */
class PcaWhiteningTest {

    static PcaParameters referencePca() {
        return new PcaParameters(TestFixtures.doubles("whiten/mean"), TestFixtures.doubles("whiten/components"),
                TestFixtures.doubles("whiten/explained_variance"), true);
    }

    static WhiteningOptions options(String spec) {
        String[] p = spec.split(",");
        return new WhiteningOptions(Double.parseDouble(p[0]),
                p[1].equals("all") ? WhiteningOptions.ALL_COMPONENTS : Integer.parseInt(p[1]), Double.parseDouble(p[2]));
    }

    @ParameterizedTest
    @ValueSource(strings = {"default_p025", "sqrt_v8_m2", "projection_p05_v6_m3", "projection_v40_clamped"})
    void importedSklearnPcaWhitensLikeTheReference(String name) {
        String spec = TestFixtures.properties("whiten/cases.properties").get(name);
        boolean normalise = spec.endsWith("true");
        try (MemoryScope scope = MemoryScope.open()) {
            PcaWhitening w = PcaWhitening.of(referencePca());
            Tensor q = TestFixtures.npy("whiten/queries");
            Tensor got = normalise ? w.apply(q, options(spec)) : w.project(q, options(spec));
            Tensor expected = TestFixtures.npy("whiten/" + name);
            assertArrayEquals(expected.shape(), got.shape());
            // float32 output; the projection's magnitude grows with 1/variance^p
            double scale = normalise ? 1 : maxAbs(expected.toDoubleArray());
            assertClose(expected.toDoubleArray(), toDoubles(got.toFloatArray()), 0, 2e-6 * scale, name);
        }
    }

    @Test
    void learnedPcaHoldsTheFieldsSklearnWouldFit() {
        try (MemoryScope scope = MemoryScope.open()) {
            PcaParameters learned = PcaWhitening.learn(TestFixtures.npy("whiten/train")).parameters();
            PcaParameters ref = referencePca();
            assertEquals(16, learned.componentCount());
            assertClose(ref.mean(), learned.mean(), 0, 1e-7, "mean_");
            assertClose(ref.explainedVariance(), learned.explainedVariance(), 1e-5, 1e-9, "explained_variance_");
            assertClose(ref.components(), learned.components(), 0, 2e-5, "components_ (signed as sklearn)");
            assertTrue(learned.whiten());
        }
    }

    @Test
    void learnedWhiteningAppliedWithDefaultsMatchesTheReference() {
        try (MemoryScope scope = MemoryScope.open()) {
            PcaWhitening w = PcaWhitening.learn(TestFixtures.npy("whiten/train"));
            Tensor got = w.apply(TestFixtures.npy("whiten/queries"), WhiteningOptions.DEFAULTS);
            assertClose(TestFixtures.doubles("whiten/default_p025"), toDoubles(got.toFloatArray()), 0, 2e-5,
                    "learned, whitenp 0.25");
        }
    }

    @Test
    void whiteningDividesEachAxisByItsVariancePowerThenNormalises() {
        // identity axes, zero mean, variances 4 and 1, p = 0.5: (1, 1) → (1/2, 1) → (1, 2)/√5
        PcaWhitening w = PcaWhitening.of(new PcaParameters(new double[] {0, 0}, new double[] {1, 0, 0, 1},
                new double[] {4, 1}, true));
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, 1}, 1, 2);
            WhiteningOptions sqrt = new WhiteningOptions(0.5, WhiteningOptions.ALL_COMPONENTS, 1);
            assertArrayEquals(new float[] {(float) (1 / Math.sqrt(5)), (float) (2 / Math.sqrt(5))},
                    w.apply(x, sqrt).toFloatArray(), 1e-7f);
            // the multiplier divides the projection, and cancels once normalised
            WhiteningOptions m4 = new WhiteningOptions(0.5, WhiteningOptions.ALL_COMPONENTS, 4);
            assertArrayEquals(new float[] {0.125f, 0.25f}, w.project(x, m4).toFloatArray(), 1e-7f);
            assertArrayEquals(w.apply(x, sqrt).toFloatArray(), w.apply(x, m4).toFloatArray(), 1e-7f);
            // whitenv = 1 keeps the first axis only
            assertArrayEquals(new float[] {1}, w.apply(x, new WhiteningOptions(0.5, 1, 1)).toFloatArray(), 1e-7f);
        }
    }

    /**
     * A component of tiny variance whitens a row to ~1e20, whose square overflows float32: the row
     * is still normalised (squares summed in float64), not turned into zeros. 40 components: whole
     * vectors and a tail, the huge one inside a vector.
     */
    @Test
    void rowsBeyondFloat32SquaresAreStillNormalised() {
        int d = 40;
        double[] identity = new double[d * d];
        double[] variance = new double[d];
        for (int i = 0; i < d; i++) {
            identity[i * d + i] = 1;
            variance[i] = 1;
        }
        variance[5] = 1e-40; // p = 0.5: divided by 1e-20
        PcaWhitening w = PcaWhitening.of(new PcaParameters(new double[d], identity, variance, true));
        try (MemoryScope scope = MemoryScope.open()) {
            float[] ones = new float[d];
            java.util.Arrays.fill(ones, 1);
            float[] y = w.apply(Tensor.of(ones, 1, d), new WhiteningOptions(0.5, WhiteningOptions.ALL_COMPONENTS, 1))
                    .toFloatArray();
            assertEquals(1, y[5], 1e-6);
            for (int i = 0; i < d; i++) {
                if (i != 5) {
                    assertEquals(1e-20, y[i], 1e-26, "component " + i);
                }
            }
        }
    }

    /**
     * More rows than one block (4,096) and a dimension of whole vectors and a tail: every row whitens
     * as it does alone, whatever the input's layout (a strided view, float64).
     */
    @Test
    void rowsWhitenAsTheyDoAloneAcrossBlocksAndLayouts() {
        int n = 4100;
        int d = 40;
        java.util.Random rng = new java.util.Random(5);
        try (MemoryScope scope = MemoryScope.open()) {
            float[] train = new float[200 * d];
            for (int i = 0; i < train.length; i++) {
                train[i] = (float) (rng.nextGaussian() * (1 + i % d) + 0.5);
            }
            PcaWhitening w = PcaWhitening.learn(Tensor.of(train, 200, d));
            float[] x = new float[n * d];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rng.nextGaussian() + 0.25f * (i % d);
            }
            WhiteningOptions o = new WhiteningOptions(0.5, 30, 1);
            float[] all = w.apply(Tensor.of(x, n, d), o).toFloatArray();
            float[] projected = w.project(Tensor.of(x, n, d), o).toFloatArray();
            // against the formula in float64: y = (x - mean) . components^T / variance^p, then y / |y|
            PcaParameters pp = w.parameters();
            for (int r : new int[] {0, 4099}) {
                double[] y = new double[30];
                double sq = 0;
                for (int c = 0; c < 30; c++) {
                    for (int j = 0; j < d; j++) {
                        y[c] += (x[r * d + j] - pp.mean()[j]) * pp.components()[c * d + j];
                    }
                    y[c] /= Math.sqrt(pp.explainedVariance()[c]);
                    sq += y[c] * y[c];
                }
                for (int c = 0; c < 30; c++) {
                    assertEquals(y[c] / Math.sqrt(sq), all[r * 30 + c], 2e-5, "row " + r + ", component " + c);
                }
            }
            for (int r : new int[] {0, 1, 4095, 4096, 4099}) {
                float[] alone = w.apply(Tensor.of(java.util.Arrays.copyOfRange(x, r * d, (r + 1) * d), 1, d), o)
                        .toFloatArray();
                assertArrayEquals(alone, java.util.Arrays.copyOfRange(all, r * 30, (r + 1) * 30), 1e-6f, "row " + r);
                float[] p = w.project(Tensor.of(java.util.Arrays.copyOfRange(x, r * d, (r + 1) * d), 1, d), o)
                        .toFloatArray();
                assertArrayEquals(p, java.util.Arrays.copyOfRange(projected, r * 30, (r + 1) * 30),
                        1e-5f * (1 + Math.abs(p[0])), "projected row " + r);
            }
            // the same rows as a transposed (non-contiguous) view, and as float64
            Tensor t = Tensor.of(x, n, d).t().contiguous().t();
            assertArrayEquals(all, w.apply(t, o).toFloatArray(), 1e-6f);
            assertArrayEquals(all, w.apply(Tensor.of(x, n, d).to(dir4j.engine.DType.FLOAT64), o).toFloatArray(),
                    1e-6f);
        }
    }

    @Test
    void aPcaFittedWithoutWhitenOnlyProjects() {
        PcaWhitening w = PcaWhitening.of(new PcaParameters(new double[] {1, 0}, new double[] {0, 1, 1, 0},
                new double[] {4, 1}, false));
        try (MemoryScope scope = MemoryScope.open()) {
            assertArrayEquals(new float[] {3, 2}, w.project(Tensor.of(new float[] {3, 3}, 1, 2),
                    WhiteningOptions.DEFAULTS).toFloatArray(), 1e-7f);
        }
    }

    @Test
    void inconsistentFieldsAndMismatchedDescriptorsAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new PcaParameters(new double[3], new double[5], new double[2], true));
        assertTrue(e.getMessage().contains("components_"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new WhiteningOptions(0.5, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new WhiteningOptions(0.5, 2, 0));
        PcaWhitening w = PcaWhitening.of(referencePca());
        try (MemoryScope scope = MemoryScope.open()) {
            assertThrows(IllegalArgumentException.class,
                    () -> w.apply(Tensor.of(new float[8], 1, 8), WhiteningOptions.DEFAULTS));
            assertThrows(IllegalArgumentException.class, () -> PcaWhitening.learn(Tensor.of(new float[4], 1, 4)));
        }
    }

    private static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }
}
