package dir4j.nn;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Reads fixtures written by tests/fixtures/make_nn_fixtures.py from the test classpath. */
final class NnFixtures {
    private NnFixtures() {}

    static Tensor npy(String path) {
        try (InputStream in = NnFixtures.class.getResourceAsStream("/fixtures/nn/" + path)) {
            if (in == null) {
                throw new IllegalStateException("missing fixture nn/" + path
                        + "; run /usr/bin/python3 tests/fixtures/make_nn_fixtures.py");
            }
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The values of a fixture array (its tensor freed). */
    static double[] npyValues(String path) {
        try (Tensor t = npy(path)) {
            return t.toDoubleArray();
        }
    }

    /** The state dict of {@code net}'s keys read from {@code <folder>/weights/<key>.npy}. */
    static java.util.Map<String, Tensor> weights(String folder, dir4j.nn.Module net) {
        java.util.Map<String, Tensor> dict = new java.util.LinkedHashMap<>();
        for (String k : net.stateDict().keySet()) {
            dict.put(k, npy(folder + "/weights/" + k + ".npy"));
        }
        return dict;
    }

    static String text(String path) {
        try (InputStream in = NnFixtures.class.getResourceAsStream("/fixtures/nn/" + path)) {
            if (in == null) {
                throw new IllegalStateException("missing fixture nn/" + path);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** |a − e| ≤ rtol·|e| + atol·max(1, max|e|) elementwise, with the worst offender in the message. */
    static void assertClose(String what, double[] expected, double[] actual, double rtol, double atol) {
        if (expected.length != actual.length) {
            throw new AssertionError(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double scale = 1;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        int worst = -1;
        double worstErr = 0;
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(actual[i] - expected[i]) / (rtol * Math.abs(expected[i]) + atol * scale);
            if (!(err <= 1) && (worst < 0 || !(err <= worstErr))) {
                worst = i;
                worstErr = err;
            }
        }
        if (worst >= 0) {
            throw new AssertionError(what + ": index " + worst + " got " + actual[worst] + ", expected "
                    + expected[worst] + " (" + worstErr + "× the tolerance)");
        }
    }
}
