package dir4j.retrieval.cli;

import dir4j.engine.Tensor;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.whiten.PcaParameters;
import dir4j.retrieval.whiten.PcaWhitening;
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
     * {@code o} as it applies to {@code pca}: a whitenv above its number of components keeps them
     * all (the reference's slice {@code [:v]}), so it is reported as the number kept, with one note
     * through {@code note} saying so; components from the first of zero variance on are left out
     * (whitening divides by the variance), with a note, and a PCA whose first component already
     * has none is refused.
     */
    static WhiteningOptions effective(WhiteningOptions o, PcaParameters pca, Consumer<String> note) throws IOException {
        int available = pca.componentCount();
        int usable = PcaWhitening.usableComponents(pca);
        if (usable == 0) {
            throw new IOException("the whitening's components have no variance (a PCA of identical descriptors?): it "
                    + "cannot whiten");
        }
        int wanted = o.components() == WhiteningOptions.ALL_COMPONENTS ? available : o.components();
        if (wanted > available && o.components() != WhiteningOptions.ALL_COMPONENTS) {
            note.accept("whitenv " + o.components() + " is more than the whitening's " + available + " components"
                    + (usable < available ? ", of which the first " + usable + " have variance: keeping those " + usable
                            : ": keeping all " + available));
            wanted = Math.min(available, usable);
        }
        if (wanted > usable) {
            note.accept("the whitening's components from number " + (usable + 1) + " on have no variance (fitted to "
                    + "fewer distinct descriptors than components): keeping the first " + usable);
            wanted = usable;
        }
        return wanted == o.components() || (o.components() == WhiteningOptions.ALL_COMPONENTS && wanted == available)
                ? o : new WhiteningOptions(o.power(), wanted, o.multiplier());
    }

    /**
     * The options for whitening {@code learned} (learned from {@code descriptors}): without
     * --whitenv, only the components the descriptors give variance to ({@link PcaWhitening#rank}),
     * with a note when that is fewer than the PCA's.
     */
    WhiteningOptions forLearned(WhiteningOptions o, PcaWhitening learned, Tensor descriptors, Consumer<String> note)
            throws IOException {
        if (components != null) {
            return o;
        }
        int rank = learned.rank();
        if (rank == 0) {
            throw new IOException("the " + descriptors.shape(0) + " descriptors to learn a whitening from are all the "
                    + "same: they have no variance to whiten");
        }
        if (rank >= learned.parameters().componentCount()) {
            return o;
        }
        note.accept("whitening learned from " + descriptors.shape(0) + " descriptors (" + (rank + 1) + " distinct) of "
                + "dimension " + descriptors.shape(1) + ": keeping " + rank + " components (the others have no "
                + "variance)");
        return new WhiteningOptions(o.power(), rank, o.multiplier());
    }

    /**
     * {@code whitened} (the whitening of {@code what}), refused when a row came out NaN: a
     * descriptor equal to the whitening's mean along every kept component whitens to zero, which
     * cannot be normalised (the reference gives NaN there and ranks on).
     */
    static Tensor requireFinite(Tensor whitened, String what, long firstRow) throws IOException {
        long bad = FiniteValues.firstNonFinite(whitened);
        if (bad >= 0) {
            throw new IOException(what + " " + (firstRow + bad / whitened.shape(1)) + " whitens to zero (it equals the "
                    + "whitening's mean along every kept component) and cannot be normalised");
        }
        return whitened;
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
