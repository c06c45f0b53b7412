package dir4j.retrieval.cli;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.data.InputFiles;
import dir4j.retrieval.loss.APLoss;
import dir4j.retrieval.loss.ExactAp;
import dir4j.retrieval.loss.TAPLoss;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dir4j aploss}: the AP loss of a descriptor set, for researchers looking inside it.
 * Prints the loss, per-query quantised AP beside the exact AP (and their gap), and how many
 * queries were excluded for lacking a positive; optionally writes the histograms, APs and
 * dL/dD as .npy files.
 */
@Command(name = "aploss", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Compute the listwise AP loss of descriptors (N×D .npy) with class ids; every image is a "
                + "query against all the others.",
            "With --out, writes histograms.npy [N,2,nq] (n_k, n+_k per query), ap.npy [N] (quantised AP; NaN for "
                + "a query without a positive) and grad.npy [N,D] (dL/dD of the descriptors as given) in the "
                + "descriptors' dtype, and exact_ap.npy [N] float64."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class AplossCommand extends ToolCommand {

    @Option(names = "--descriptors", required = true, paramLabel = "FILE.npy",
            description = "Descriptors, N×D float32/float64 .npy (rows should be L2-normalised).")
    Path descriptors;

    @Option(names = "--labels", required = true, paramLabel = "FILE",
            description = "Class ids: a .npy integer vector of N (any integer type, int64 ids of any size; "
                    + "equal ids are one class), or a text file with one label per line (any strings; equal "
                    + "strings are one class).")
    Path labels;

    @Option(names = "--nq", defaultValue = "25", paramLabel = "BINS",
            description = "Number of bins (2..100). Default: ${DEFAULT-VALUE}.")
    int nq;

    @Option(names = {"--min", "--bin-min"}, defaultValue = "0", paramLabel = "S",
            description = "Lowest bin centre (finite, below --max). Default: ${DEFAULT-VALUE}.")
    double min;

    @Option(names = {"--max", "--bin-max"}, defaultValue = "1", paramLabel = "S",
            description = "Highest bin centre (finite). Default: ${DEFAULT-VALUE}.")
    double max;

    @Option(names = "--tie-aware", defaultValue = "none", paramLabel = "none|full|simplified",
            description = "Tie-aware AP (TAPLoss) variant. Default: ${DEFAULT-VALUE}.")
    String tieAware;

    @Option(names = "--distance", description = "Use the distance variant: score -> 1 - sqrt(2.001 - 2s).")
    boolean distance;

    @Option(names = "--exclude-self", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Leave each query's match with itself out of its ranking. Default: ${DEFAULT-VALUE}.")
    boolean excludeSelf;

    @Option(names = "--normalize", description = "L2-normalise the descriptors first (an all-zero row has no "
            + "direction to keep and is refused, naming the row).")
    boolean normalize;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the loss runs. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--tf32", description = "On CUDA, run the score GEMMs on TF32 tensor cores (about 1e-3 relative "
            + "error in the scores) instead of strict float32.")
    boolean tf32;

    @Option(names = "--show", defaultValue = "20", paramLabel = "N",
            description = "Queries to list (-1: all; 0: none). Default: ${DEFAULT-VALUE}.")
    int show;

    @Option(names = "--out", paramLabel = "DIR", description = "Folder for the .npy outputs (created, and checked "
            + "to be writable, before the loss is computed).")
    Path out;

    @Option(names = "--quiet", description = "No warning on stderr about rows that are not unit length (the results "
            + "and errors are still printed).")
    boolean quiet;

    @Override
    int run() throws IOException {
        Device dev = DeviceOption.usable(device);
        if (tf32 && dev.kind() != Device.Kind.CUDA) {
            throw new UsageException("--tf32 applies to --device cuda only");
        }
        if (out != null && Files.exists(out) && !Files.isDirectory(out)) {
            throw new UsageException("--out " + out + " is a file: name a folder for the .npy outputs");
        }
        if (out != null) {
            for (String written : List.of("histograms.npy", "ap.npy", "exact_ap.npy", "grad.npy")) {
                requireOutputNotInput(out.resolve(written), "--out's " + written, descriptors, "--descriptors");
                requireOutputNotInput(out.resolve(written), "--out's " + written, labels, "--labels");
            }
        }
        if (show < -1) {
            throw new UsageException("--show must be -1 (every query) or a number of queries (0 or more), got "
                    + show);
        }
        APLoss loss;
        try {
            loss = switch (tieAware) {
                case "none" -> new APLoss(nq, min, max, distance, excludeSelf);
                case "full" -> new TAPLoss(nq, min, max, false, distance, excludeSelf);
                case "simplified" -> new TAPLoss(nq, min, max, true, distance, excludeSelf);
                default -> throw new UsageException("--tie-aware must be none, full or simplified, got "
                        + tieAware);
            };
        } catch (IllegalArgumentException e) { // --nq, --min/--max out of range
            throw new UsageException(e.getMessage());
        }
        // the output folder is made (and written to) before the work, not found unwritable after it
        Path madeFrom = out == null ? null : prepareOutputFolder(out);
        boolean done = false;
        try {
            compute(dev, loss);
            done = true;
        } finally {
            if (!done && madeFrom != null) {
                removeEmptyFolders(out, madeFrom);
            }
        }
        return 0;
    }

    private void compute(Device dev, APLoss loss) throws IOException {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = WhitenCommand.descriptors(descriptors);
            Labels given = readLabels(labels, d.shape(0));
            int[] classes = given.classes();
            double[] norms = normalize || !quiet ? rowNorms(d) : null;
            if (normalize) {
                requireNormalisable(descriptors, norms);
            }
            if (dev.kind() == Device.Kind.CUDA) {
                // the loss takes the blocked path there (no N×N matrix on the device)
                ((dir4j.engine.cuda.CudaBackend) dir4j.engine.Backends.of(dev)).setTf32(tf32);
            }
            Tensor leaf = d.to(dev).detach().requiresGrad(true);
            Tensor x = normalize ? NnOps.l2Normalize(leaf, 1, NORMALIZE_EPS) : leaf;
            if (!quiet && !normalize) { // normalised rows are unit: every row was checked to have a direction
                warnIfNotUnit(norms);
            }
            APLoss.Result r = loss.forward(x, classes, null);
            r.loss().backward();
            int n = classes.length;
            double[] ap = r.ap().toDoubleArray();
            Tensor scores;
            try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                scores = Ops.matmul(x, Ops.transpose(x, 0, 1));
            }
            double[] s = scores.toDoubleArray();
            double[] exact = new double[n];
            double gapSum = 0;
            int counted = 0;
            for (int i = 0; i < n; i++) {
                double[] row = java.util.Arrays.copyOfRange(s, i * n, (i + 1) * n);
                double[] lab = new double[n];
                for (int j = 0; j < n; j++) {
                    lab[j] = classes[i] == classes[j] ? 1 : 0;
                }
                exact[i] = ExactAp.of(row, lab, excludeSelf ? i : -1);
                if (!Double.isNaN(ap[i])) {
                    gapSum += Math.abs(exact[i] - ap[i]);
                    counted++;
                }
            }
            System.out.printf("%s loss (nq=%d, range [%s, %s]%s%s): %.6f%n",
                    tieAware.equals("none") ? "AP" : "TAP-" + tieAware, nq, min, max, distance ? ", distance" : "",
                    excludeSelf ? ", self excluded" : "", r.loss().item());
            System.out.printf("queries: %d, excluded for having no positive: %d%n", n, r.excluded());
            System.out.printf("mean |exact AP - quantised AP| over included queries: %.6f%n",
                    counted == 0 ? Double.NaN : gapSum / counted);
            int rows = show < 0 ? n : Math.min(show, n);
            if (rows > 0) {
                System.out.printf("%8s %8s %12s %12s %10s%n", "query", "class", "quantised", "exact", "gap");
                for (int i = 0; i < rows; i++) {
                    System.out.printf("%8d %8s %12.6f %12.6f %10.6f%n", i, given.shown()[i], ap[i], exact[i],
                            exact[i] - ap[i]);
                }
                if (rows < n) {
                    System.out.printf("... %d more (use --show -1)%n", n - rows);
                }
            }
            if (out != null) {
                Npy.write(out.resolve("histograms.npy"), r.histogram().to(Device.CPU));
                Npy.write(out.resolve("ap.npy"), r.ap().to(Device.CPU));
                Npy.write(out.resolve("exact_ap.npy"), Tensor.ofDoubles(exact, n));
                Npy.write(out.resolve("grad.npy"), leaf.grad().to(Device.CPU));
                System.out.println("wrote histograms.npy, ap.npy, exact_ap.npy, grad.npy to " + out);
            }
        }
    }

    /** The floor --normalize divides by (NnOps.l2Normalize's eps): a row shorter than it cannot be made unit. */
    static final double NORMALIZE_EPS = 1e-12;

    /** The L2 norm of each row of the descriptors (read on the host, as they were loaded). */
    private static double[] rowNorms(Tensor d) {
        double[] v = d.toDoubleArray();
        int n = d.shape(0);
        int dim = d.shape(1);
        double[] norms = new double[n];
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                s += v[i * dim + j] * v[i * dim + j];
            }
            norms[i] = Math.sqrt(s);
        }
        return norms;
    }

    /**
     * Refuses, naming the first, a row that --normalize cannot make unit: an all-zero row has no
     * direction (it would stay zero and score 0 against everything), and one shorter than
     * {@link #NORMALIZE_EPS} would be scaled by 1/eps, not to length 1.
     */
    private static void requireNormalisable(Path file, double[] norms) throws IOException {
        for (int i = 0; i < norms.length; i++) {
            if (norms[i] < NORMALIZE_EPS) {
                String what = norms[i] == 0
                        ? "is all zeros: --normalize cannot make it unit length (it has no direction)"
                        : "has L2 norm " + norms[i] + ", below the " + NORMALIZE_EPS + " that --normalize divides by "
                                + "at least: it would not come out unit length";
                throw new IOException(file + ": descriptor " + i + " (of " + norms.length + ", counting from 0) "
                        + what + "; remove it, with its label, or fix the descriptor that made it");
            }
        }
    }

    private static void warnIfNotUnit(double[] norms) {
        for (int i = 0; i < norms.length; i++) {
            if (Math.abs(norms[i] - 1) > 1e-3) {
                System.err.printf("warning: descriptor %d has norm %.4f; the AP loss expects unit rows "
                        + "(pass --normalize)%n", i, norms[i]);
                return;
            }
        }
    }

    /**
     * Creates {@code folder} (and missing parents) and writes and deletes a probe file in it, so
     * that an output location that cannot be made or written is reported before the work. Returns
     * the topmost folder this created (to remove again if the work fails), or null.
     */
    static Path prepareOutputFolder(Path folder) throws IOException {
        Path top = null;
        Path p = folder.toAbsolutePath();
        for (; p != null && !Files.exists(p); p = p.getParent()) {
            top = p;
        }
        if (p != null && top != null && !Files.isDirectory(p)) {
            throw new IOException(p + ": already exists and is not a folder, so --out " + folder + " cannot be made "
                    + "under it; name a folder for the .npy outputs");
        }
        try {
            Files.createDirectories(folder);
            Files.delete(Files.createTempFile(folder, ".aploss-", ".probe"));
        } catch (IOException e) {
            String why = e instanceof AccessDeniedException ? "permission denied"
                    : e instanceof FileSystemException fs && fs.getReason() != null ? fs.getReason()
                    : e instanceof NoSuchFileException nf ? "the file system refuses to create "
                            + (Path.of(nf.getFile()).equals(folder) ? "it" : nf.getFile())
                    : ToolCommand.message(e);
            if (top != null) {
                removeEmptyFolders(folder, top);
            }
            throw new IOException(folder + ": the --out folder for the .npy outputs cannot be created or written ("
                    + why + "); name a folder you can write to", e);
        }
        return top;
    }

    /** Removes {@code folder} and its parents up to {@code top} while they are empty (what a failed run made). */
    private static void removeEmptyFolders(Path folder, Path top) {
        Path stop = top.toAbsolutePath();
        for (Path p = folder.toAbsolutePath(); p != null && p.startsWith(stop); p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (DirectoryNotEmptyException e) {
                return;
            } catch (IOException e) {
                return; // best effort: the run's own error is what matters
            }
        }
    }

    /**
     * The images' classes: {@code classes} numbers them 0, 1, … in order of first appearance (what
     * the loss compares), {@code shown} is each image's label as the table prints it (the id as
     * stored in a .npy file; the class number for a text file, whose labels may be long strings).
     */
    record Labels(int[] classes, String[] shown) {}

    static Labels readLabels(Path file, int n) throws IOException {
        int[] classes;
        String[] shown;
        if (file.toString().endsWith(".npy")) {
            InputFiles.requireFile(file, "labels");
            Npy.Integers ids = Npy.readIntegers(file);
            if (ids.shape().length != 1 || !ids.integers()) {
                throw new IllegalArgumentException(file + ": labels must be a vector of integers, got shape "
                        + java.util.Arrays.toString(ids.shape()) + " " + ids.type());
            }
            long[] v = ids.values();
            Map<Long, Integer> index = new HashMap<>();
            classes = new int[v.length];
            shown = new String[v.length];
            for (int i = 0; i < v.length; i++) {
                classes[i] = index.computeIfAbsent(v[i], k -> index.size());
                shown[i] = ids.type().equals("uint64") ? Long.toUnsignedString(v[i]) : Long.toString(v[i]);
            }
        } else {
            List<String> lines = InputFiles.readLines(file, "labels").stream().map(String::strip)
                    .filter(l -> !l.isEmpty()).toList();
            Map<String, Integer> index = new HashMap<>();
            classes = new int[lines.size()];
            shown = new String[lines.size()];
            for (int i = 0; i < classes.length; i++) {
                classes[i] = index.computeIfAbsent(lines.get(i), k -> index.size());
                shown[i] = Integer.toString(classes[i]);
            }
        }
        if (classes.length != n) {
            throw new IllegalArgumentException(file + ": " + classes.length + " labels for " + n + " descriptors");
        }
        return new Labels(classes, shown);
    }
}
