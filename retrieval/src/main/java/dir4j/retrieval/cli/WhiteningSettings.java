package dir4j.retrieval.cli;

import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import picocli.CommandLine.Option;

/** The reference's whitening options: power, components, multiplier (dirtorch/test_dir.py). */
final class WhiteningSettings {
    @Option(names = "--whitenp", paramLabel = "P",
            description = "Whitening power: each component is divided by its variance to this power (0.5 full "
                    + "whitening, 0 none). Default: what the whitening file says, else 0.25 (the reference's).")
    Double power;

    @Option(names = "--whitenv", paramLabel = "N",
            description = "Keep the first N components (the output has N dimensions). Default: what the whitening file "
                    + "says, else all.")
    Integer components;

    @Option(names = "--whitenm", paramLabel = "M",
            description = "Whitening multiplier, a common divisor (no effect after L2 normalisation). Default: what "
                    + "the whitening file says, else 1.")
    Double multiplier;

    /** The options to apply: given flags over the stored ones over the reference's defaults. */
    WhiteningOptions resolve(WhiteningOptions stored) {
        WhiteningOptions base = stored != null ? stored : WhiteningOptions.DEFAULTS;
        try {
            return new WhiteningOptions(power != null ? power : base.power(),
                    components != null ? components : base.components(),
                    multiplier != null ? multiplier : base.multiplier());
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException(e.getMessage());
        }
    }

    /**
     * {@code o} as it applies to a PCA of {@code available} components: a whitenv above that keeps
     * them all (the reference's slice {@code [:v]}), so it is reported as the number kept, with one
     * note through {@code note} saying so.
     */
    static WhiteningOptions effective(WhiteningOptions o, int available, Consumer<String> note) {
        if (o.components() == WhiteningOptions.ALL_COMPONENTS || o.components() <= available) {
            return o;
        }
        note.accept("whitenv " + o.components() + " is more than the whitening's " + available + " components: "
                + "keeping all " + available);
        return new WhiteningOptions(o.power(), available, o.multiplier());
    }

    /** Whether any of the flags was given. */
    boolean given() {
        return power != null || components != null || multiplier != null;
    }

    /**
     * The whitening named {@code name} in a file (a checkpoint or a dir4j whiten output), or its
     * only one when no name is given.
     */
    static WhiteningFile.Stored pick(Path file, Map<String, WhiteningFile.Stored> all, String name, String nameOption)
            throws IOException {
        if (all.isEmpty()) {
            throw new IOException(file + " holds no whitening (no 'pca' entry)");
        }
        if (name == null) {
            if (all.size() > 1) {
                throw new ToolCommand.UsageException(file + " holds several whitenings " + all.keySet() + ": choose one"
                        + " with " + nameOption);
            }
            return all.values().iterator().next();
        }
        WhiteningFile.Stored s = all.get(name);
        if (s == null) {
            throw new IOException(file + " holds the whitenings " + all.keySet() + ", not '" + name + "'");
        }
        return s;
    }

    /** "whitenp 0.25, whitenv all, whitenm 1.0". */
    static String describe(WhiteningOptions o) {
        return "whitenp " + o.power() + ", whitenv " + (o.components() == WhiteningOptions.ALL_COMPONENTS ? "all"
                : Integer.toString(o.components())) + ", whitenm " + o.multiplier();
    }
}
