package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * AP / TAP losses (and their distance variants) against the reference formulas computed by
 * PyTorch in float64 (tests/fixtures/make_method_fixtures.py): loss, per-query AP, the number of
 * excluded queries, and dL/dscores or dL/ddescriptors, in float64 and float32.
 */
public class APLossFixtureTest {
    private static final String[] CASES = {"ap_nq25_defaults", "ap_nq10", "ap_nq2_two_bins",
        "ap_range_minus1_1_scores_outside", "ap_nq5_ties_on_bin_centres", "ap_queries_without_positives",
        "ap_query_weights", "tap_full", "tap_simplified", "tap_full_ties", "ap_descriptors_exclude_self",
        "ap_dist_descriptors_exclude_self", "tap_dist_scores", "ap_n_lt_m_exclude_self_nq100_zero_weights"};

    static Tensor read(String c, String stem) {
        try (InputStream in = APLossFixtureTest.class.getResourceAsStream("/fixtures/aploss/" + c + "/" + stem
                + ".npy")) {
            if (in == null) {
                return null;
            }
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Properties props(String c) {
        Properties p = new Properties();
        try (InputStream in = APLossFixtureTest.class.getResourceAsStream("/fixtures/aploss/" + c
                + "/case.properties")) {
            if (in == null) {
                fail("missing fixture aploss/" + c + "; run /usr/bin/python3 tests/fixtures/make_method_fixtures.py");
            }
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    static APLoss lossFor(Properties p) {
        int nq = Integer.parseInt(p.getProperty("nq"));
        double min = Double.parseDouble(p.getProperty("min"));
        double max = Double.parseDouble(p.getProperty("max"));
        boolean dist = Boolean.parseBoolean(p.getProperty("distance"));
        boolean self = Boolean.parseBoolean(p.getProperty("exclude_self"));
        return switch (p.getProperty("variant")) {
            case "ap" -> new APLoss(nq, min, max, dist, self);
            case "tap" -> new TAPLoss(nq, min, max, false, dist, self);
            case "tap_simplified" -> new TAPLoss(nq, min, max, true, dist, self);
            default -> throw new IllegalArgumentException(p.getProperty("variant"));
        };
    }

    private static void check(String c, DType dtype, double rtol, double atol) {
        Properties p = props(c);
        try (MemoryScope scope = MemoryScope.open()) {
            APLoss loss = lossFor(p);
            Tensor qw = read(c, "qw");
            if (qw != null) {
                qw = qw.to(dtype);
            }
            Tensor leaf;
            APLoss.Result r;
            Tensor descriptors = read(c, "descriptors");
            if (descriptors != null) {
                leaf = descriptors.to(dtype).detach().requiresGrad(true);
                r = loss.forward(leaf, read(c, "classes").toIntArray(), qw);
            } else {
                leaf = read(c, "scores").to(dtype).detach().requiresGrad(true);
                r = loss.forward(leaf, read(c, "labels").to(dtype), qw);
            }
            assertEquals(Integer.parseInt(p.getProperty("excluded")), r.excluded(), c + " excluded queries");
            assertClose(c + " loss", read(c, "loss").toDoubleArray(), new double[] {r.loss().item()}, rtol, atol);
            assertClose(c + " ap", read(c, "ap").toDoubleArray(), r.ap().toDoubleArray(), rtol, atol);
            r.loss().backward();
            assertClose(c + " grad", read(c, "grad").toDoubleArray(), leaf.grad().toDoubleArray(), rtol, atol);
        }
    }

    public static void assertClose(String what, double[] expected, double[] actual, double rtol, double atol) {
        assertEquals(expected.length, actual.length, what + " length");
        double scale = 0;
        for (double e : expected) {
            if (!Double.isNaN(e)) {
                scale = Math.max(scale, Math.abs(e));
            }
        }
        for (int i = 0; i < expected.length; i++) {
            if (Double.isNaN(expected[i])) {
                assertTrue(Double.isNaN(actual[i]), what + "[" + i + "]: expected NaN, got " + actual[i]);
                continue;
            }
            double tol = rtol * Math.abs(expected[i]) + atol * Math.max(1, scale);
            if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
                fail(what + "[" + i + "]: got " + actual[i] + ", expected " + expected[i] + " (tolerance " + tol + ")");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ap_nq25_defaults", "ap_nq10", "ap_nq2_two_bins", "ap_range_minus1_1_scores_outside",
        "ap_nq5_ties_on_bin_centres", "ap_queries_without_positives", "ap_query_weights", "tap_full",
        "tap_simplified", "tap_full_ties", "ap_descriptors_exclude_self", "ap_dist_descriptors_exclude_self",
        "tap_dist_scores", "ap_n_lt_m_exclude_self_nq100_zero_weights"})
    void lossApAndGradientMatchReferenceInFloat64(String c) {
        check(c, DType.FLOAT64, 1e-9, 1e-11);
    }

    @ParameterizedTest
    @ValueSource(strings = {"ap_nq25_defaults", "ap_nq10", "ap_nq2_two_bins", "ap_range_minus1_1_scores_outside",
        "ap_nq5_ties_on_bin_centres", "ap_queries_without_positives", "ap_query_weights", "tap_full",
        "tap_simplified", "tap_full_ties", "ap_descriptors_exclude_self", "ap_dist_descriptors_exclude_self",
        "tap_dist_scores", "ap_n_lt_m_exclude_self_nq100_zero_weights"})
    void lossApAndGradientMatchReferenceInFloat32(String c) {
        check(c, DType.FLOAT32, 1e-4, 2e-5);
    }
}
