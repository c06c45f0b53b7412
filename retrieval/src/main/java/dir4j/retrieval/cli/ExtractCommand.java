package dir4j.retrieval.cli;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.retrieval.data.ImageList;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.data.LabelledImageList;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.image.Resampler;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code dir4j extract}: descriptors of an image list or of a benchmark's queries and database,
 * written as N×D float32 .npy with the ordered image ids, resumably.
 */
@Command(name = "extract", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Describe images with a retrieval network: N×D float32 .npy plus the ordered image ids.",
            "With --images the descriptors go to OUT and the ids to OUT's .ids.txt. With --dataset the queries "
                + "(cropped to their boxes) go to <stem>.qdescs.npy and the database to <stem>.dbdescs.npy, the "
                + "reference's names, each with its .ids.txt.",
            "Work is saved in parts under <file>.parts/; a rerun with the same inputs and settings continues "
                + "where it stopped, and the final file appears whole at the end.",
            "One extraction at a time writes a file: a second one to the same --out is refused (exit status 1) "
                + "while the first runs.",
            "Exit status: 0 done; 1 extraction failed (the message names the file; finished parts are kept); "
                + "2 bad command line."})
final class ExtractCommand implements Callable<Integer> {

    static final class Input {
        @Option(names = "--images", paramLabel = "LIST", required = true,
                description = "A text file with one image path per line (blank lines and #-comments skipped; "
                        + "relative paths resolve against --root, else the list's folder).")
        Path images;

        @Option(names = "--dataset", paramLabel = "NAME", required = true,
                description = "A benchmark under --data-root: roxford5k, rparis6k (revisited protocol), oxford5k, "
                        + "paris6k (old protocol), or dir4j's synthetic synth / synth-val (dir4j synth). Extracts its "
                        + "queries, cropped to their boxes, and its database.")
        String dataset;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--root", paramLabel = "DIR",
            description = "Folder that relative paths of --images resolve against. Default: the list's folder.")
    Path root;

    @Option(names = "--labelled",
            description = "The --images list is the training format 'path label' per line; labels are ignored.")
    boolean labelled;

    @Option(names = "--data-root", paramLabel = "DIR",
            description = "With --dataset (which needs it; not with --images): the folder holding "
                    + "<name>/gnd_<name>.pkl and <name>/jpg/ (the reference's <root>/oxford5k/gnd_roxford5k.pkl "
                    + "layout is found too).")
    Path dataRoot;

    @Mixin
    NetworkOptions network;

    @Option(names = "--image-size", paramLabel = "PIXELS", defaultValue = "1024",
            description = "Longer side of the resized images (the reference's Scale(size, largest=True), bilinear); "
                    + "0 keeps the original size. Default: ${DEFAULT-VALUE}.")
    int imageSize;

    @Option(names = "--upscale",
            description = "Also enlarge images whose longer side is below --image-size (by default they are kept "
                    + "as they are, as the revisited protocol does).")
    boolean upscale;

    @Option(names = "--interpolation", defaultValue = "bilinear", paramLabel = "bilinear|bicubic",
            description = "Resampling filter, PIL's, with antialiasing when shrinking. Default: ${DEFAULT-VALUE}.")
    String interpolation;

    @Option(names = "--scales", defaultValue = "1", paramLabel = "S", split = ",",
            description = "Scale factors for multi-scale extraction, comma-separated numbers or fractions "
                    + "(1,0.7071,0.5 or 1,1/2): at scale s the longer side is int(0.5 + L × s), L being the longer "
                    + "side at scale 1 (--image-size, or the original side of a smaller image); every scale is "
                    + "resized from the original. Default: ${DEFAULT-VALUE}.")
    List<String> scales;

    @Option(names = "--scale-pooling-p", defaultValue = "3", paramLabel = "P|net",
            description = "Exponent of the signed generalized mean combining the scales (the reference's --gemp), "
                    + "or 'net' for the network's learned GeM p. Default: ${DEFAULT-VALUE}.")
    String scalePoolingP;

    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N",
            description = "Most images of one size run through the network together (images of different sizes "
                    + "are never padded into one batch). Default: ${DEFAULT-VALUE}.")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N",
            description = "Decoding threads, working ahead of the network. Default: the number of cores, at most 4.")
    Integer threads;

    @Option(names = "--chunk-size", defaultValue = "256", paramLabel = "N",
            description = "Images per saved part (the unit of --resume). Default: ${DEFAULT-VALUE}.")
    int chunkSize;

    @Option(names = "--out", required = true, paramLabel = "FILE.npy",
            description = "The descriptor file (--images), or the stem of <stem>.qdescs.npy and <stem>.dbdescs.npy "
                    + "(--dataset). Replaced atomically.")
    Path out;

    @Option(names = "--resume", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Continue from the parts of an interrupted run with the same inputs and settings "
                    + "(--no-resume deletes them and starts over). Default: ${DEFAULT-VALUE}.")
    boolean resume;

    @Option(names = "--on-error", defaultValue = "fail", paramLabel = "fail|skip",
            description = "An unreadable image (missing, empty, truncated, corrupt, unsupported, over --max-pixels) "
                    + "stops the run, or is left out and listed in <file>.skipped.txt. Default: ${DEFAULT-VALUE}.")
    String onError;

    @Option(names = "--max-pixels", paramLabel = "N",
            description = "Refuse images with more pixels than this (a decompression-bomb guard, checked from the "
                    + "header). Default: 178956970, Pillow's limit.")
    Long maxPixels;

    @Option(names = "--exif-orientation", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Turn images upright by their EXIF orientation (the reference does not; Oxford and Paris "
                    + "images carry none). Default: ${DEFAULT-VALUE}.")
    boolean exifOrientation;

    @Option(names = "--quiet", description = "No progress bar or notes on stderr (errors are still printed).")
    boolean quiet;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the network runs (cuda: decoding and resizing stay on the host, each batch is "
                    + "copied to the GPU and its descriptors back). Default: ${DEFAULT-VALUE}.")
    String device;

    @Override
    public Integer call() {
        try {
            return run();
        } catch (IllegalArgumentException | ToolCommand.UsageException e) {
            System.err.println("dir4j extract: " + e.getMessage());
            return 2;
        } catch (IOException | java.io.UncheckedIOException | IllegalStateException e) {
            System.err.println("dir4j extract: " + ToolCommand.message(e));
            return 1;
        }
    }

    private int run() throws IOException {
        Device dev = Device.parse(device);
        if (!dev.equals(Device.CPU)) {
            try {
                Backends.of(dev); // a clear error now, before any work, when CUDA cannot start
            } catch (IllegalStateException e) {
                throw new IllegalArgumentException(e.getMessage());
            }
        }
        if (!out.getFileName().toString().endsWith(".npy")) {
            throw new IllegalArgumentException("--out must name a .npy file, got " + out);
        }
        ExtractionOptions.OnError policy = ExtractionOptions.OnError.parse(onError);
        if (imageSize < 0) {
            throw new IllegalArgumentException("--image-size must be >= 0, got " + imageSize);
        }
        if (batchSize < 1 || chunkSize < 1 || (threads != null && threads < 1)) {
            throw new IllegalArgumentException("--batch-size, --chunk-size and --threads must be at least 1, got "
                    + batchSize + ", " + chunkSize + ", " + (threads == null ? "default" : threads));
        }
        double[] s = parseScales(scales);
        for (double scale : s) {
            if (imageSize > 0 && imageSize * scale < 1) {
                throw new IllegalArgumentException("--scales " + scale + " of --image-size " + imageSize
                        + " is less than one pixel");
            }
        }
        double p = scalePoolingP.equalsIgnoreCase("net") ? Double.NaN : parseNumber("--scale-pooling-p", scalePoolingP);

        if (input.images != null) {
            ToolCommand.requireOutputNotInput(out, "--out", input.images, "--images");
            ToolCommand.requireOutputNotInput(FeatureExtractor.idsFile(out), "--out's ids file", input.images,
                    "--images");
        }
        ToolCommand.requireOutputNotInput(out, "--out", network.checkpoint, "--checkpoint");
        network.check();
        // inputs before the network: a wrong list or data root fails before weights are read
        List<ImageRef> db;
        List<ImageRef> queries = null;
        if (input.images != null) {
            if (dataRoot != null) {
                throw new IllegalArgumentException("--data-root goes with --dataset, not --images (use --root)");
            }
            // with --on-error skip a missing file is left out like an unreadable one, when it is reached
            boolean check = policy == ExtractionOptions.OnError.FAIL;
            db = labelled ? LabelledImageList.read(input.images, root, check).images()
                    : ImageList.read(input.images, root, check);
        } else {
            if (dataRoot == null) {
                throw new IllegalArgumentException("--dataset needs --data-root");
            }
            if (root != null || labelled) {
                throw new IllegalArgumentException("--root and --labelled go with --images, not --dataset");
            }
            RetrievalDataset d = RetrievalDataset.load(input.dataset, dataRoot,
                    policy == ExtractionOptions.OnError.FAIL);
            if (!quiet) {
                System.err.println("dataset: " + d);
            }
            db = d.databaseImages();
            queries = d.queryImages();
        }

        NetworkCheckpoint.Loaded loaded = network.load();
        try (RetrievalNet net = loaded.net()) {
            NetworkOptions.ready(loaded, net, dev, quiet);
            Preprocessing pre = loaded.preprocessing(imageSize).withUpscale(upscale)
                    .withFilter(Resampler.Filter.parse(interpolation));
            ImageDecoder.Options decode = ImageDecoder.Options.defaults().withExifOrientation(exifOrientation);
            if (maxPixels != null) {
                decode = decode.withMaxPixels(maxPixels);
            }
            ExtractionOptions options = ExtractionOptions.defaults().withPreprocessing(pre).withScales(s)
                    .withScalePoolingP(p).withBatchSize(batchSize).withChunkSize(chunkSize).withResume(resume)
                    .withQuiet(quiet).withOnError(policy).withDecode(decode)
                    .withRemedies(new ExtractionOptions.Remedies("--on-error skip", "--no-resume"));
            if (threads != null) {
                options = options.withThreads(threads);
            }
            FeatureExtractor fx = new FeatureExtractor(net, options);
            List<FeatureExtractor.FileResult> results = new ArrayList<>();
            if (queries == null) {
                results.add(fx.extractToFile(db, out, "images", false));
            } else {
                String stem = out.getFileName().toString();
                stem = stem.substring(0, stem.length() - ".npy".length());
                results.add(fx.extractToFile(db, out.resolveSibling(stem + ".dbdescs.npy"), "DB", false));
                results.add(fx.extractToFile(queries, out.resolveSibling(stem + ".qdescs.npy"), "query", false));
            }
            boolean empty = false;
            for (FeatureExtractor.FileResult r : results) {
                if (r.rows() == 0 && !r.skipped().isEmpty()) {
                    // not published (nor an earlier run's files kept), under the output's lock: an empty file
                    // would pass for descriptors (an eval's distractors, say)
                    System.err.println("dir4j extract: every image of " + r.descriptors().getFileName() + " was left out "
                            + "(" + r.skipped().getFirst().reason() + ", ...), so it was not written; see "
                            + FeatureExtractor.skippedFile(r.descriptors()));
                    empty = true;
                    continue;
                }
                System.out.println("wrote " + r.descriptors() + " (" + r.rows() + "x" + r.dimension() + " float32) and "
                        + r.ids() + (r.skipped().isEmpty() ? "" : "; " + r.skipped().size()
                        + (r.skipped().size() == 1 ? " image" : " images") + " left out, see "
                        + FeatureExtractor.skippedFile(r.descriptors())));
            }
            if (empty) {
                return 1;
            }
        }
        return 0;
    }

    static double[] parseScales(List<String> values) {
        double[] out = new double[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = parseNumber("--scales", values.get(i));
            if (!(out[i] > 0)) {
                throw new IllegalArgumentException("--scales must be positive, got " + values.get(i));
            }
        }
        return out;
    }

    /** A number or a fraction a/b. */
    static double parseNumber(String option, String text) {
        String t = text.strip();
        try {
            int slash = t.indexOf('/');
            if (slash > 0) {
                return Double.parseDouble(t.substring(0, slash).strip()) / Double.parseDouble(t.substring(slash + 1).strip());
            }
            return Double.parseDouble(t);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + ": '" + text + "' is not a number or a fraction a/b");
        }
    }
}
