package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads the fixtures of tests/fixtures/make_retrieval_fixtures.py from the test resources
 * (fixtures/eval, fixtures/whiten, fixtures/qe), and compares arrays with NaN-aware tolerance.
 */
public final class TestFixtures {
    private static final String HINT = "; run /usr/bin/python3 tests/fixtures/make_retrieval_fixtures.py";

    private TestFixtures() {}

    /** The bytes of fixtures/{path}. */
    public static byte[] bytes(String path) {
        try (InputStream in = TestFixtures.class.getResourceAsStream("/fixtures/" + path)) {
            if (in == null) {
                fail("missing fixture " + path + HINT);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** fixtures/{path}.npy as a tensor (the caller closes it, or a scope does). */
    public static Tensor npy(String path) {
        return Npy.parse(bytes(path + ".npy"));
    }

    public static double[] doubles(String path) {
        try (Tensor t = npy(path)) {
            return t.toDoubleArray();
        }
    }

    public static int[] ints(String path) {
        try (Tensor t = npy(path)) {
            return t.toIntArray();
        }
    }

    /** A Q x N int32 fixture as rows. */
    public static int[][] intRows(String path) {
        try (Tensor t = npy(path)) {
            int[] flat = t.toIntArray();
            int rows = t.shape(0);
            int cols = t.shape(1);
            int[][] out = new int[rows][];
            for (int r = 0; r < rows; r++) {
                out[r] = java.util.Arrays.copyOfRange(flat, r * cols, (r + 1) * cols);
            }
            return out;
        }
    }

    /** A ragged list of int lists stored as {name}_values + {name}_offsets (CSR). */
    public static int[][] lists(String folder, String name) {
        int[] values = ints(folder + "/" + name + "_values");
        int[] offsets = ints(folder + "/" + name + "_offsets");
        int[][] out = new int[offsets.length - 1][];
        for (int i = 0; i < out.length; i++) {
            out[i] = java.util.Arrays.copyOfRange(values, offsets[i], offsets[i + 1]);
        }
        return out;
    }

    /** key=value lines, in file order. */
    public static Map<String, String> properties(String path) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : text(path).split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                out.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
            }
        }
        return out;
    }

    public static String text(String path) {
        return new String(bytes(path), StandardCharsets.UTF_8);
    }

    /** Element-wise |a − e| ≤ atol + rtol·|e|, NaN only where NaN is expected. */
    public static void assertClose(double[] expected, double[] actual, double rtol, double atol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (Double.isNaN(e) || Double.isNaN(a)) {
                assertEquals(Double.isNaN(e), Double.isNaN(a), what + "[" + i + "]: expected " + e + ", got " + a);
                continue;
            }
            if (Math.abs(a - e) > atol + rtol * Math.abs(e)) {
                fail(what + "[" + i + "]: expected " + e + ", got " + a + " (|diff| " + Math.abs(a - e) + ")");
            }
        }
    }

    public static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
