package dir4j.kernels;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Properties;

/**
 * The compiled CUDA kernels of this module, read from the class path. For each source
 * {@code src/main/cuda/<name>.cu} the build (kernels/build-ptx.sh, run by Maven where
 * /usr/local/cuda/bin/nvcc exists) packages {@code dir4j/kernels/<name>.ptx} (compute_90 PTX)
 * and {@code dir4j/kernels/<name>.fatbin} (sm_90 code plus that PTX, loadable with no JIT on a
 * Hopper GPU). Where nvcc was missing at build time nothing is packaged and every lookup is
 * empty; {@link #notBuiltMessage(String)} says so.
 */
public final class Ptx {
    private static final String DIR = "dir4j/kernels/";
    private static final String PROPERTIES = DIR + "kernels.properties";

    private Ptx() {}

    /**
     * The PTX text of a kernel file, NUL-terminated as cuModuleLoadData needs it, or empty when
     * the kernels were not built.
     */
    public static Optional<byte[]> load(String name) {
        return read(DIR + name + ".ptx").map(b -> Arrays.copyOf(b, b.length + 1));
    }

    /**
     * The image to load a kernel file from: the fat binary (sm_90 code and PTX) when it was
     * built, else the NUL-terminated PTX; empty when the kernels were not built.
     */
    public static Optional<byte[]> loadModuleImage(String name) {
        Optional<byte[]> fatbin = read(DIR + name + ".fatbin");
        return fatbin.isPresent() ? fatbin : load(name);
    }

    /** The kernel files the build compiled (empty when it compiled none). */
    public static List<String> modules() {
        String m = buildProperties().getProperty("modules", "").trim();
        return m.isEmpty() ? List.of() : List.of(m.split(","));
    }

    /** "nvcc 13.0 (V13.0.88), compute_90 PTX + sm_90", or empty when the kernels were not built. */
    public static Optional<String> buildDescription() {
        Properties p = buildProperties();
        String nvcc = p.getProperty("nvcc");
        if (nvcc == null) {
            return Optional.empty();
        }
        // "Cuda compilation tools, release 13.0, V13.0.88" -> "nvcc 13.0 (V13.0.88)"
        String v = nvcc.replaceFirst(".*release ([^,]+), (\\S+).*", "nvcc $1 ($2)");
        return Optional.of(v + ", " + p.getProperty("arch", "?") + " PTX + " + p.getProperty("sass", "?"));
    }

    /** The error text for a kernel file that is not on the class path. */
    public static String notBuiltMessage(String name) {
        return "CUDA kernels were not built (nvcc not found at build time): no " + DIR + name
                + ".ptx on the class path; rebuild dir4j-kernels on a machine with /usr/local/cuda/bin/nvcc"
                + " (mvn -pl kernels package) or run with --device cpu";
    }

    private static Properties buildProperties() {
        Properties p = new Properties();
        read(PROPERTIES).ifPresent(b -> {
            try {
                p.load(new java.io.ByteArrayInputStream(b));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + PROPERTIES, e);
            }
        });
        return p;
    }

    private static Optional<byte[]> read(String resource) {
        try (InputStream in = Ptx.class.getClassLoader().getResourceAsStream(resource)) {
            return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource + " from the class path", e);
        }
    }
}
