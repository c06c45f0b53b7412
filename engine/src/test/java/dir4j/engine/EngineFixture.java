package dir4j.engine;

import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;

/**
 * One PyTorch reference case written by tests/fixtures/make_engine_fixtures.py, read from the
 * test classpath (fixtures/engine/&lt;name&gt;/): its case.properties and its .npy files.
 */
final class EngineFixture {
    private static final String ROOT = "/fixtures/engine/";

    final String name;
    private final Properties props = new Properties();

    private EngineFixture(String name) {
        this.name = name;
        try (InputStream in = open("case.properties")) {
            props.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every case name in index.txt. */
    static List<String> index() {
        try (InputStream in = EngineFixture.class.getResourceAsStream(ROOT + "index.txt")) {
            if (in == null) {
                throw new IllegalStateException(ROOT + "index.txt is not on the test classpath; run "
                        + "/usr/bin/python3 tests/fixtures/make_engine_fixtures.py");
            }
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII).lines().filter(s -> !s.isBlank()).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static EngineFixture load(String name) {
        return new EngineFixture(name);
    }

    private InputStream open(String file) {
        InputStream in = EngineFixture.class.getResourceAsStream(ROOT + name + "/" + file);
        if (in == null) {
            throw new IllegalStateException("fixture " + name + " has no " + file);
        }
        return in;
    }

    boolean has(String file) {
        return EngineFixture.class.getResource(ROOT + name + "/" + file) != null;
    }

    /** A .npy file of the case as a fresh CPU tensor (the caller's, or its scope's). */
    Tensor read(String stem) {
        try (InputStream in = open(stem + ".npy")) {
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    String op() {
        return param("op");
    }

    List<String> inputs() {
        return list("inputs");
    }

    List<String> gradInputs() {
        return list("grad_inputs");
    }

    List<String> extraOutputs() {
        return list("extra_outputs");
    }

    private List<String> list(String key) {
        String v = props.getProperty(key, "");
        return v.isEmpty() ? List.of() : Arrays.asList(v.split(","));
    }

    String param(String key) {
        String v = props.getProperty(key);
        if (v == null) {
            throw new IllegalStateException("fixture " + name + ": case.properties has no " + key);
        }
        return v;
    }

    /** A parameter the case may leave out (null then). */
    String optionalParam(String key) {
        return props.getProperty(key);
    }

    int intParam(String key) {
        return Integer.parseInt(param(key));
    }

    double doubleParam(String key) {
        return Double.parseDouble(param(key));
    }

    /** A bound that may be "none" (Double.NaN, as Ops.clamp takes an absent bound). */
    double optionalDouble(String key) {
        String v = param(key);
        return v.equals("none") ? Double.NaN : Double.parseDouble(v);
    }

    boolean boolParam(String key) {
        return Boolean.parseBoolean(param(key));
    }

    int[] intsParam(String key) {
        return Arrays.stream(param(key).split(",")).mapToInt(Integer::parseInt).toArray();
    }

    /** Reduction axes: null for "all". */
    int[] axesParam(String key) {
        return param(key).equals("all") ? null : intsParam(key);
    }

    @Override
    public String toString() {
        return name;
    }
}
