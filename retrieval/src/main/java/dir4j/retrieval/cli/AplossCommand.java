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
import java.nio.file.Files;
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
            "Writes histograms.npy [N,2,nq] (n_k, n+_k), ap.npy, exact_ap.npy and grad.npy (dL/dD) with --out."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class AplossCommand extends ToolCommand {

    @Option(names = "--descriptors", required = true, paramLabel = "FILE.npy",
            description = "Descriptors, N×D float32/float64 .npy (rows should be L2-normalised).")
    Path descriptors;

    @Option(names = "--labels", required = true, paramLabel = "FILE",
            description = "Class ids: a .npy integer vector of N, or a text file with one label per line "
                    + "(any strings; equal strings are one class).")
    Path labels;

    @Option(names = "--nq", defaultValue = "25", paramLabel = "BINS",
            description = "Number of bins (2..100). Default: ${DEFAULT-VALUE}.")
    int nq;

    @Option(names = {"--min", "--bin-min"}, defaultValue = "0", paramLabel = "S",
            description = "Lowest bin centre. Default: ${DEFAULT-VALUE}.")
    double min;

    @Option(names = {"--max", "--bin-max"}, defaultValue = "1", paramLabel = "S",
            description = "Highest bin centre. Default: ${DEFAULT-VALUE}.")
    double max;

    @Option(names = "--tie-aware", defaultValue = "none", paramLabel = "none|full|simplified",
            description = "Tie-aware AP (TAPLoss) variant. Default: ${DEFAULT-VALUE}.")
    String tieAware;

    @Option(names = "--distance", description = "Use the distance variant: score -> 1 - sqrt(2.001 - 2s).")
    boolean distance;

    @Option(names = "--exclude-self", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Leave each query's match with itself out of its ranking. Default: ${DEFAULT-VALUE}.")
    boolean excludeSelf;

    @Option(names = "--normalize", description = "L2-normalise the descriptors first.")
    boolean normalize;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the loss runs. Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--tf32", description = "On CUDA, run the score GEMMs on TF32 tensor cores (about 1e-3 relative "
            + "error in the scores) instead of strict float32.")
    boolean tf32;

    @Option(names = "--show", defaultValue = "20", paramLabel = "N",
            description = "Queries to list (-1: all). Default: ${DEFAULT-VALUE}.")
    int show;

    @Option(names = "--out", paramLabel = "DIR", description = "Folder for the .npy outputs.")
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
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = WhitenCommand.descriptors(descriptors);
            int[] classes = readLabels(labels, d.shape(0));
            if (dev.kind() == Device.Kind.CUDA) {
                // the loss takes the blocked path there (no N×N matrix on the device)
                ((dir4j.engine.cuda.CudaBackend) dir4j.engine.Backends.of(dev)).setTf32(tf32);
            }
            Tensor leaf = d.to(dev).detach().requiresGrad(true);
            Tensor x = normalize ? NnOps.l2Normalize(leaf, 1, 1e-12) : leaf;
            if (!quiet) {
                warnIfNotUnit(x);
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
                    System.out.printf("%8d %8d %12.6f %12.6f %10.6f%n", i, classes[i], ap[i], exact[i],
                            exact[i] - ap[i]);
                }
                if (rows < n) {
                    System.out.printf("... %d more (use --show -1)%n", n - rows);
                }
            }
            if (out != null) {
                Files.createDirectories(out);
                Npy.write(out.resolve("histograms.npy"), r.histogram().to(Device.CPU));
                Npy.write(out.resolve("ap.npy"), r.ap().to(Device.CPU));
                Npy.write(out.resolve("exact_ap.npy"), Tensor.ofDoubles(exact, n));
                Npy.write(out.resolve("grad.npy"), leaf.grad().to(Device.CPU));
                System.out.println("wrote histograms.npy, ap.npy, exact_ap.npy, grad.npy to " + out);
            }
        }
        return 0;
    }

    private static void warnIfNotUnit(Tensor x) {
        double[] v = x.toDoubleArray();
        int n = x.shape(0);
        int dim = x.shape(1);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                s += v[i * dim + j] * v[i * dim + j];
            }
            if (Math.abs(Math.sqrt(s) - 1) > 1e-3) {
                System.err.printf("warning: descriptor %d has norm %.4f; the AP loss expects unit rows "
                        + "(pass --normalize)%n", i, Math.sqrt(s));
                return;
            }
        }
    }

    static int[] readLabels(Path file, int n) throws IOException {
        int[] ids;
        if (file.toString().endsWith(".npy")) {
            InputFiles.requireFile(file, "labels");
            try (Tensor t = Npy.read(file)) {
                if (t.rank() != 1 || t.dtype().isFloating()) {
                    throw new IllegalArgumentException(file + ": labels must be a vector of integers, got shape "
                            + java.util.Arrays.toString(t.shape()) + " " + t.dtype());
                }
                ids = t.toIntArray();
            }
        } else {
            List<String> lines = InputFiles.readLines(file, "labels").stream().map(String::strip)
                    .filter(l -> !l.isEmpty()).toList();
            Map<String, Integer> index = new HashMap<>();
            ids = new int[lines.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = index.computeIfAbsent(lines.get(i), k -> index.size());
            }
        }
        if (ids.length != n) {
            throw new IllegalArgumentException(file + ": " + ids.length + " labels for " + n + " descriptors");
        }
        return ids;
    }
}
