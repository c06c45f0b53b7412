package dir4j.retrieval.cli;

import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.whiten.PcaParameters;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code dir4j whiten}: learn a PCA whitening from descriptors, or apply one. */
@Command(name = "whiten", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Learn a PCA whitening from descriptors, or apply one (the reference's whitening: project on the "
                + "principal axes, divide each by its variance^whitenp, keep whitenv components, L2-normalise).",
            "--learn X.npy --out W.safetensors stores the PCA as safetensors (tensors pca.<name>.mean_, .components_, "
                + ".explained_variance_, the layout dir4j convert gives a reference checkpoint's PCA) with the options "
                + "in metadata pca.<name>. --apply X.npy --whitening W --out Y.npy writes the whitened descriptors "
                + "(and copies X's .ids.txt beside Y); W may also be a reference checkpoint carrying a PCA."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class WhitenCommand extends ToolCommand {

    static final class Mode {
        @Option(names = "--learn", required = true, paramLabel = "X.npy",
                description = "Learn a PCA from these N x D descriptors (N >= 2). Without --whitenv the whitening "
                        + "keeps the components the descriptors give variance to: one fewer than the distinct "
                        + "descriptors, at most D.")
        Path learn;

        @Option(names = "--apply", required = true, paramLabel = "X.npy",
                description = "Whiten these N x D descriptors with --whitening.")
        Path apply;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Mode mode;

    @Option(names = "--whitening", paramLabel = "FILE",
            description = "With --apply: the whitening, a file written by --learn or a checkpoint carrying a PCA "
                    + "(.pt/.pth or .safetensors).")
    Path whiteningFile;

    @Option(names = "--whitening-name", paramLabel = "NAME",
            description = "With --apply: which whitening of the file, when it holds several (a reference checkpoint's "
                    + "training set, e.g. Landmarks_clean).")
    String whiteningName;

    @Option(names = "--name", defaultValue = "learned", paramLabel = "NAME",
            description = "With --learn: the name the whitening is stored under. Default: ${DEFAULT-VALUE}.")
    String name;

    @Mixin
    WhiteningSettings whitening;

    @Option(names = "--out", required = true, paramLabel = "FILE",
            description = "With --learn the whitening (.safetensors); with --apply the whitened descriptors (.npy). "
                    + "Replaced atomically.")
    Path out;

    @Option(names = "--quiet", description = "Print nothing on success.")
    boolean quiet;

    @Mixin
    DeviceOption device;

    @Override
    int run() throws IOException {
        device.requireCpu("whiten");
        String outName = out.getFileName().toString().toLowerCase(Locale.ROOT);
        if (mode.learn != null) {
            if (whiteningFile != null || whiteningName != null) {
                throw new UsageException("--whitening and --whitening-name go with --apply, not --learn");
            }
            if (!outName.endsWith(".safetensors")) {
                throw new UsageException("with --learn, --out must name a .safetensors file, got " + out);
            }
            return learn();
        }
        if (whiteningFile == null) {
            throw new UsageException("--apply needs --whitening FILE");
        }
        if (!outName.endsWith(".npy")) {
            throw new UsageException("with --apply, --out must name a .npy file, got " + out);
        }
        requireOutputNotInput(out, "--out", mode.apply, "--apply");
        return apply();
    }

    private int learn() throws IOException {
        WhiteningOptions options = whitening.resolve(null);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = descriptors(mode.learn);
            long t0 = System.nanoTime();
            PcaWhitening learned = PcaWhitening.learn(x);
            PcaParameters pca = learned.parameters();
            options = whitening.forLearned(options, learned, x, this::note);
            options = WhiteningSettings.effective(options, pca, this::note);
            Map<String, Object> notes = new LinkedHashMap<>();
            notes.put("learned_from", mode.learn.toAbsolutePath().normalize().toString());
            notes.put("rows", (long) x.shape(0));
            // the eigensolver decides the learned whitening to rounding (and, for equal variances, the axes)
            notes.put("eigensolver", dir4j.retrieval.whiten.SymmetricEigen.backend());
            try {
                WhiteningFile.write(out, name, pca, options, notes);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--name: " + e.getMessage());
            }
            if (!quiet) {
                int kept = Math.min(options.components(), pca.componentCount());
                System.out.printf(Locale.ROOT, "learned whitening '%s' from %d descriptors of dimension %d (%s) in %.1f "
                                + "s; wrote %s (%s)%n", name, x.shape(0), x.shape(1), kept == pca.componentCount()
                                ? kept + " components" : kept + " of its " + pca.componentCount() + " components kept",
                        (System.nanoTime() - t0) / 1e9, out, WhiteningSettings.describe(options));
            }
        }
        return 0;
    }

    private int apply() throws IOException {
        Map<String, WhiteningFile.Stored> all = WhiteningFile.read(whiteningFile);
        WhiteningFile.Stored stored = WhiteningSettings.pick(whiteningFile, all, whiteningName, "--whitening-name");
        WhiteningOptions options = whitening.resolve(stored.options());
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = descriptors(mode.apply);
            if (x.shape(1) != stored.pca().dimension()) {
                throw new IOException(mode.apply + " holds " + x.shape(1) + "-d descriptors but the whitening in "
                        + whiteningFile + " is for " + stored.pca().dimension() + "-d ones");
            }
            options = WhiteningSettings.effective(options, stored.pca(), this::note);
            Tensor y = WhiteningSettings.requireFinite(PcaWhitening.of(stored.pca()).apply(x, options),
                    mode.apply + ": descriptor", 0);
            Npy.write(out, y);
            Path ids = FeatureExtractor.idsFile(mode.apply);
            if (Files.isRegularFile(ids) && !ids.toAbsolutePath().equals(FeatureExtractor.idsFile(out).toAbsolutePath())) {
                Files.copy(ids, FeatureExtractor.idsFile(out), StandardCopyOption.REPLACE_EXISTING);
            }
            if (!quiet) {
                System.out.printf(Locale.ROOT, "wrote %s (%dx%d float32, whitened with %s and L2-normalised)%n", out,
                        y.shape(0), y.shape(1), WhiteningSettings.describe(options));
            }
        }
        return 0;
    }

    private void note(String s) {
        if (!quiet) {
            System.err.println(s);
        }
    }

    /** An N x D float descriptor file without NaN or infinity. */
    static Tensor descriptors(Path file) throws IOException {
        Tensor t = Npy.read(file);
        if (t.rank() != 2 || !t.dtype().isFloating()) {
            throw new IOException(file + ": expected N x D float descriptors, found " + Shape.str(t.shape()) + " " + t.dtype());
        }
        FiniteValues.require(file, t, "descriptor");
        return t;
    }
}
