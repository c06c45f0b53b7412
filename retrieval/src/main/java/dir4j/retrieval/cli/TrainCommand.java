package dir4j.retrieval.cli;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.OutputLock;
import dir4j.nn.Module;
import dir4j.nn.io.Json;
import dir4j.nn.io.Safetensors;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.Unpickler;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.data.InputFiles;
import dir4j.retrieval.data.LabelledImageList;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.demo.Demo;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.synth.SyntheticLandmarks;
import dir4j.retrieval.train.TrainConfig;
import dir4j.retrieval.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dir4j train}: trains a retrieval network with multistage back-propagation
 * ({@link Trainer}) from a labelled image list or the built-in synthetic benchmark. The recipe
 * ({@link TrainConfig}) comes from the defaults, then {@code --config FILE}, then the command
 * line's recipe options, each overriding the one before; a {@code --resume} starts from what the
 * checkpoint records (recipe, network, data, device) instead of the defaults ({@link #fromRecord}).
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train a retrieval network (ResNet, GeM, FC, L2) with the AP loss (or TAP, or triplet) by "
                + "multistage back-propagation: each step describes a batch of classes-per-batch × images-per-class "
                + "augmented images in sub-batches without keeping activations, computes the loss and its gradient "
                + "on the N×D descriptors, then recomputes each sub-batch and back-propagates its slice; one "
                + "optimiser step per batch.",
            "The recipe is the defaults, overridden by --config FILE (JSON object or .properties; keys are the "
                + "names in brackets below, e.g. {\"loss\": \"ap\", \"lr\": 1e-4}; keys starting with _ are "
                + "comments), overridden by the options given here; with --resume, the recorded recipe takes the "
                + "defaults' place (see --resume). See examples/train-synth.json.",
            "OUT receives checkpoint.safetensors (weights, optimiser state and recipe, written atomically every "
                + "--checkpoint-every steps and at the end), log.csv (loss, learning rate, images/s, validation "
                + "mAP), loss.png and validation.png, train-config.json (the recipe used), and at the end "
                + "model.safetensors, a network checkpoint for dir4j extract/eval --checkpoint. One run writes "
                + "OUT at a time (OUT/.lock; a second is refused). SIGTERM or Ctrl-C ends the step in progress "
                + "with a checkpoint (at most 10 minutes' wait; no validation) and exits; kill -9 loses the steps "
                + "since the last checkpoint.",
            "Batch norm: by default its statistics are frozen (running statistics, the reference's recipe), so "
                + "the multistage gradient equals that of one backward over the whole batch."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE, ToolCommand.EXIT_SIGINT,
                ToolCommand.EXIT_SIGTERM})
final class TrainCommand extends ToolCommand {
    private static final TrainConfig D = TrainConfig.defaults();

    // ---------------------------------------------------------------- data

    @Option(names = "--train-list", paramLabel = "FILE",
            description = "Training images as a labelled list, 'path label' per line (the reference's format; "
                    + "blank lines and #-comments skipped). Classes with one image are not sampled (noted).")
    Path trainList;

    @Option(names = "--root", paramLabel = "DIR",
            description = "Folder that relative paths of --train-list resolve against. Default: the list's folder.")
    Path root;

    @Option(names = "--synth",
            description = "Train on the built-in synthetic landmarks benchmark under --data-root/synth (one made "
                    + "by dir4j synth, of any sizes, is used as it is; generated with dir4j synth's defaults when "
                    + "absent); its synth-val split is the validation set (used every --validate-every steps).")
    boolean synth;

    @Option(names = "--data-root", defaultValue = "data", paramLabel = "DIR",
            description = "Where synth/ (with --synth) or the --val-dataset lives. Default: ${DEFAULT-VALUE}.")
    Path dataRoot;

    @Option(names = "--val-dataset", paramLabel = "NAME",
            description = "Validation benchmark under --data-root (roxford5k, rparis6k, synth-val, ...); its Medium "
                    + "mAP is logged every --validate-every steps (by default 0: never, so give both). Default with "
                    + "--synth: synth-val; otherwise none.")
    String valDataset;

    @Option(names = "--val-image-size", paramLabel = "PIXELS",
            description = "Longer side of validation images. Default: 128 with --synth, else 1024.")
    Integer valImageSize;

    // ---------------------------------------------------------------- network

    @Option(names = "--arch", defaultValue = "resnet101", paramLabel = "NAME",
            description = "Backbone: resnet18, resnet34, resnet50, resnet101 or resnet152 (ignored when --init is a "
                    + "retrieval checkpoint, which says its own). Default: ${DEFAULT-VALUE}.")
    String arch;

    @Option(names = "--out-dim", defaultValue = "2048", paramLabel = "D",
            description = "Descriptor size (the FC's output; a retrieval --init says its own). Default: ${DEFAULT-VALUE}.")
    int outDim;

    @Option(names = "--base-width", defaultValue = "64", paramLabel = "W",
            description = "Backbone width (64 as torchvision; smaller for quick tests; a retrieval --init says its own). "
                    + "Default: ${DEFAULT-VALUE}.")
    int baseWidth;

    @Option(names = "--pooling", defaultValue = "gem", paramLabel = "gem|max|avg",
            description = "Global pooling (a retrieval --init says its own). Default: ${DEFAULT-VALUE}.")
    String pooling;

    @Option(names = "--gem-p", defaultValue = "3", paramLabel = "P",
            description = "GeM's initial (learned) exponent (a retrieval --init brings its learned one). "
                    + "Default: ${DEFAULT-VALUE}.")
    double gemP;

    @Option(names = "--init", paramLabel = "FILE",
            description = "Start from these weights instead of a random network: a torchvision ImageNet ResNet "
                    + "(.pth/.pt or .safetensors; the backbone is loaded, GeM and the FC start fresh), a reference "
                    + "retrieval checkpoint (.pth/.pt) or a dir4j network .safetensors (dir4j convert, or a "
                    + "model.safetensors from an earlier run). Ignored when --resume finds a checkpoint.")
    Path init;

    // ---------------------------------------------------------------- the recipe (TrainConfig)

    @Option(names = "--config", paramLabel = "FILE",
            description = "Recipe file: a flat JSON object (.json) or a .properties file whose keys are the names in "
                    + "brackets below. Options given on the command line override it.")
    Path config;

    @Option(names = "--loss", paramLabel = "ap|tap|tap-simplified|triplet",
            description = "[loss] ap (default), tie-aware AP, its simplified form, or triplet with hardest negatives.")
    String loss;

    @Option(names = "--loss-class", paramLabel = "CLASS",
            description = "A loss of your own in place of --loss: the name of a class on the classpath (the "
                    + "launcher adds DIR4J_CLASSPATH) that implements dir4j.retrieval.train.Trainer.BatchLoss and "
                    + "has a public no-argument constructor. It gets each batch's descriptors (N x D, on the "
                    + "training device), class ids and step, and returns the scalar to minimise from engine ops; "
                    + "--loss, --nq, --bin-min, --bin-max and --margin go unused. Recorded in the checkpoints: "
                    + "--resume takes it again.")
    String lossClass;

    /** What {@link Trainer#CUSTOM_LOSS} records of a {@code --loss-class}: this prefix and the class name. */
    static final String LOSS_CLASS_PREFIX = "class:";

    @Option(names = "--nq", paramLabel = "BINS", description = "[nq] AP quantisation bins (2..100). Default: 20.")
    Integer nq;

    @Option(names = "--bin-min", paramLabel = "S", description = "[binMin] Lowest bin centre. Default: -1.")
    Double binMin;

    @Option(names = "--bin-max", paramLabel = "S",
            description = "[binMax] Highest bin centre (above binMin). Default: 1.")
    Double binMax;

    @Option(names = "--margin", paramLabel = "M", description = "[margin] Triplet margin. Default: 0.5.")
    Double margin;

    @Option(names = "--batch-size", paramLabel = "N",
            description = "Multistage batch size (images per optimiser step): sets classesPerBatch to N / "
                    + "imagesPerClass (N must be a multiple of it). Default: 16 × 4 = 64.")
    Integer batchSize;

    @Option(names = "--classes-per-batch", paramLabel = "N",
            description = "[classesPerBatch] Classes in each batch. Default: 16.")
    Integer classesPerBatch;

    @Option(names = "--images-per-class", paramLabel = "N",
            description = "[imagesPerClass] Images of each class in a batch (at least 2). Default: 4.")
    Integer imagesPerClass;

    @Option(names = "--sub-batch", paramLabel = "N",
            description = "[subBatch] Images per forward/backward in multistage back-propagation (the memory of "
                    + "one step). Default: 32.")
    Integer subBatch;

    @Option(names = "--optimizer", paramLabel = "adam|adamw|sgd", description = "[optimizer] Default: adam.")
    String optimizer;

    @Option(names = "--lr", paramLabel = "LR", description = "[lr] Base learning rate. Default: 1e-4.")
    Double lr;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "[weightDecay] Weight decay. Default: 1e-5.")
    Double weightDecay;

    @Option(names = "--momentum", paramLabel = "M", description = "[momentum] SGD momentum, in [0, 1). Default: 0.9.")
    Double momentum;

    @Option(names = "--schedule", paramLabel = "constant|step|exponential|cosine",
            description = "[schedule] Learning-rate schedule over --steps (step: ×0.1 every third; exponential: to "
                    + "1%% at the end; cosine: to 1%%). Default: cosine.")
    String schedule;

    @Option(names = "--warmup", paramLabel = "STEPS", description = "[warmup] Linear warm-up steps. Default: 0.")
    Long warmup;

    @Option(names = "--steps", paramLabel = "N", description = "[steps] Optimiser steps. Default: 1000.")
    Integer steps;

    @Option(names = "--crop-size", paramLabel = "PIXELS", description = "[cropSize] Training crop side. Default: 224.")
    Integer cropSize;

    @Option(names = "--min-size", paramLabel = "PIXELS",
            description = "[minSize] Smallest random longer side before cropping (at least cropSize). Default: 256.")
    Integer minSize;

    @Option(names = "--max-size", paramLabel = "PIXELS",
            description = "[maxSize] Largest random longer side before cropping (at least minSize). Default: 320.")
    Integer maxSize;

    @Option(names = "--tilt", paramLabel = "DEGREES", description = "[tilt] Largest random rotation. Default: 10.")
    Double tilt;

    @Option(names = "--jitter", paramLabel = "J", description = "[jitter] Colour jitter strength, in [0, 1]. Default: 0.2.")
    Double jitter;

    @Option(names = "--frozen-batch-norm", negatable = true, paramLabel = "BOOL",
            description = "[frozenBatchNorm] --frozen-batch-norm: normalise with running statistics while training (the reference's "
                    + "recipe; exact multistage gradients). --no-frozen-batch-norm uses per-sub-batch statistics. "
                    + "Default: true.")
    Boolean frozenBatchNorm;

    @Option(names = "--seed", paramLabel = "N",
            description = "[seed] Seed of the initial weights, batches and augmentations. Default: 0.")
    Long seed;

    @Option(names = "--checkpoint-every", paramLabel = "STEPS",
            description = "[checkpointEvery] Steps between checkpoints (one is always written at the end). "
                    + "Default: 100.")
    Integer checkpointEvery;

    @Option(names = "--validate-every", paramLabel = "STEPS",
            description = "[validateEvery] Steps between validations on the validation set (0: never). Default: 0.")
    Integer validateEvery;

    // ---------------------------------------------------------------- the run

    @Option(names = "--out", defaultValue = "train-out", paramLabel = "DIR",
            description = "Output folder (checkpoints, log, plots). Default: ${DEFAULT-VALUE}.")
    Path out;

    @Option(names = "--resume",
            description = "Continue the run in OUT from OUT/checkpoint.safetensors (weights, optimiser state, log). "
                    + "'train --resume --out OUT' alone is enough: the recipe, the network options, the training "
                    + "and validation data, the device, --tf32 and --channels-last are those the checkpoint "
                    + "records (the recipe: train-config.json where it records none), and on the CPU the result "
                    + "equals that of the uninterrupted run. An option or --config setting given here overrides "
                    + "its recorded value and is noted, saying when the result will then differ from an "
                    + "uninterrupted run: a longer --steps (same schedule only under --schedule constant), "
                    + "--checkpoint-every, --validate-every, --val-dataset, --stop-after and --quiet keep it; any "
                    + "other recipe setting, other data, another device or layout do not. A network option "
                    + "(--arch, --out-dim, --base-width, --pooling, --gem-p) other than the recorded one is "
                    + "refused; --init is not read. A checkpoint of an older dir4j that records no recipe, data or "
                    + "device takes them from the defaults and the options given, as then (noted). Without "
                    + "--resume an existing checkpoint stops the run (use --overwrite to start over).")
    boolean resume;

    @Option(names = "--overwrite", description = "Start from scratch even if OUT holds a checkpoint (it is replaced).")
    boolean overwrite;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the network trains: the batches, the loss, the multistage stages and the optimiser "
                    + "run there (decoding and augmentation on the host). Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--tf32", negatable = true, description = "On CUDA: TF32 tensor cores for float32 "
            + "convolutions and matrix products (faster, ≈1e-3 relative error; as PyTorch's allow_tf32), or not "
            + "(--no-tf32). Default: strict float32, for both, whatever -Ddir4j.cuda.tf32* say.")
    Boolean tf32;

    @Option(names = "--channels-last", negatable = true, description = "Run the backbone's training forward and "
            + "backward channels-last (NHWC activations; the same weights and results to float rounding), or not "
            + "(--no-channels-last). Default: on with --device cuda --tf32, where cuDNN's tensor-core kernels are "
            + "faster on that layout (ResNet-101 at 512², batch 16, on an H200: 355 img/s against 258 in NCHW); off "
            + "in strict float32, where cuDNN's channels-last convolutions are slower (67 img/s against 101 in "
            + "NCHW), and on the CPU, where it is not yet faster on two cores (bench/RESULTS.md); "
            + "-Ddir4j.channelsLast sets the default instead.")
    Boolean channelsLast;

    @Option(names = "--stop-after", paramLabel = "STEP",
            description = "Stop after step STEP (with a checkpoint there) even if --steps are not done, e.g. to "
                    + "time-box a session; --resume continues the run. Not part of the recipe.")
    Long stopAfter;

    @Option(names = "--quiet", description = "No progress bar or notes on stderr (errors and the summary remain).")
    boolean quiet;

    /** The network options that only a record (a resumed checkpoint) sets: no command-line option has them. */
    private boolean withoutFc;
    private boolean normFeatures;
    private double centerBias;

    /** What OUT records of the run that --resume continues (null: not resuming a checkpoint). */
    private Trainer.Recorded recorded;

    /** Whether the network is the one the resumed checkpoint records (its weights all come from there). */
    private boolean recordedNetwork;

    /** The settings --config gives (empty without it), to name a setting where the user gave it. */
    private Map<String, String> fileSettings = Map.of();

    /**
     * Trains. Everything that can be refused is checked before OUT is touched (the recipe, the
     * network options and the network itself, the data against the recipe, an earlier run's
     * checkpoint), so that a refused run, --overwrite or not, leaves OUT as it was.
     */
    @Override
    int run() throws IOException {
        if (resume && overwrite) {
            throw new UsageException("--resume and --overwrite do not go together");
        }
        Path checkpoint = out.resolve("checkpoint.safetensors");
        if (resume && Files.exists(checkpoint)) {
            // what the run to continue records (read, not written): the settings not given here come from it
            recorded = Trainer.recorded(out);
            Object custom = recorded.runOptions().get(Trainer.CUSTOM_LOSS);
            List<String> lossNotes = new ArrayList<>();
            if (custom != null && String.valueOf(custom).startsWith(LOSS_CLASS_PREFIX)) {
                String recordedClass = String.valueOf(custom).substring(LOSS_CLASS_PREFIX.length());
                if (lossClass == null && loss != null) {
                    throw new UsageException("--loss " + loss + ": " + checkpoint + " was trained with --loss-class "
                            + recordedClass + "; resume it with that (leave --loss out), or start over with "
                            + "--overwrite");
                }
                if (lossClass == null) {
                    lossClass = recordedClass;
                    lossNotes.add("loss: " + recordedClass + " (--loss-class, as recorded in " + checkpoint + ")");
                } // another class: the Trainer notes it, as for any custom loss
            } else if (custom != null) {
                throw new IOException(checkpoint + " was trained with the custom loss '" + custom + "' given through "
                        + "the Java API (Trainer.withLoss), which dir4j train cannot give: resume it there, or start "
                        + "over with --overwrite");
            }
            List<String> notes = new ArrayList<>(lossNotes);
            notes.addAll(fromRecord(recorded));
            if (!quiet) {
                notes.forEach(n -> System.err.println("note: " + n));
            }
        }
        TrainConfig cfg = recipe();
        if (lossClass != null && loss != null) {
            throw new UsageException("--loss and --loss-class do not go together (the class replaces the loss)");
        }
        Trainer.BatchLoss customLoss = lossClass == null ? null : lossOfClass(lossClass);
        checkNetworkOptions();
        Device dev = parseDevice();
        boolean useTf32 = Boolean.TRUE.equals(tf32);
        if (useTf32 && dev.kind() == Device.Kind.CPU) {
            throw new UsageException("--tf32 applies to --device cuda only");
        }
        if (stopAfter != null && stopAfter < 1) {
            throw new UsageException("--stop-after must be at least 1, got " + stopAfter);
        }
        if (Files.exists(checkpoint) && !resume && !overwrite) {
            throw new UsageException(checkpoint + " exists: add --resume to continue it or --overwrite to start over");
        }
        if (resume && !Files.exists(checkpoint) && !given("--train-list") && !given("--synth")) {
            throw new UsageException(!Files.isDirectory(out) ? "--out " + out + " does not exist: no run to resume"
                    : checkpoint + " does not exist (yet): the run in " + out + " stopped before its first checkpoint "
                    + "(one every --checkpoint-every steps), so nothing records how to continue it; start it again "
                    + "with its options (--synth or --train-list, ...)");
        }
        Data data = data();
        if (!quiet) {
            System.err.println("training data: " + data.images().size() + " images, "
                    + java.util.Arrays.stream(data.labels()).distinct().count() + " classes");
        }
        check(data, cfg);
        probeImages(data);
        RetrievalDataset val = validation();
        Preprocessing valPrep = Preprocessing.imagenet(valImageSize != null ? valImageSize : synth ? 128 : 1024);
        if (dev.kind() == Device.Kind.CUDA) {
            cudaBackend(dev, useTf32);
        }
        // OUT (with train-config.json, the recipe used) is written by the trainer once the run is under way
        // one run per folder at a time; what killed runs left half-written there goes
        try (OutputLock lock = Trainer.lock(out, this::note); RetrievalNet net = initialNetwork(cfg.seed())) {
            if (recordedNetwork && !Files.exists(checkpoint)) {
                // read before the lock; gone since (another run's --overwrite): the network would start from nothing
                throw new IOException(checkpoint + " was removed while this resume started; nothing to resume");
            }
            net.channelsLast(channelsLast != null ? channelsLast
                    : System.getProperty(RetrievalNet.CHANNELS_LAST_PROPERTY) != null ? net.channelsLast()
                    : dev.kind() == Device.Kind.CUDA && useTf32);
            if (!quiet) {
                System.err.printf("network: %s, %d-d descriptors, %,d parameters; device %s%s%n", net.options(),
                        net.dimension(), net.parameterCount(), dev, net.channelsLast() ? "; channels-last" : "");
            }
            Trainer trainer = new Trainer(net, data.images(), data.labels(), cfg, out, dev)
                    .withRunOptions(runOptions(useTf32, net.channelsLast()));
            if (customLoss != null) {
                trainer.withLoss(LOSS_CLASS_PREFIX + lossClass, customLoss);
            }
            Trainer.Validator validator = val == null ? null : n -> Demo.mediumMap(n, val, valPrep);
            Progress progress = new Progress(quiet, cfg.steps());
            // SIGTERM / Ctrl-C: the step in progress ends with a checkpoint instead of being lost with its predecessors;
            // the shutdown waits for this block (the network's export and the summary included)
            try (Trainer.StopHandle stop = trainer.stopOnShutdown(STOP_WAIT,
                    m -> System.err.println("\ndir4j train: " + m))) {
                Trainer.History h = trainer.run(resume, validator, progress, stopAfter == null ? Long.MAX_VALUE
                        : stopAfter);
                progress.end();
                if (trainer.stoppedEarly()) {
                    return 130; // the JVM is shutting down (its exit status is the signal's); the checkpoint is written
                }
                exportNetwork(net, out.resolve("model.safetensors"));
                double last = h.losses().isEmpty() ? Double.NaN : h.losses().get(h.losses().size() - 1);
                System.out.printf(Locale.ROOT, "trained %d steps; last loss %.5f%s; checkpoint %s; network %s%n",
                        h.steps().isEmpty() ? 0 : h.steps().get(h.steps().size() - 1), last,
                        h.validation().isEmpty() ? "" : String.format(Locale.ROOT, "; validation mAP %.2f",
                                h.validation().get(h.validation().size() - 1)),
                        checkpoint, out.resolve("model.safetensors"));
            }
        }
        return 0;
    }

    /**
     * The binary name of a class named as the Java source names it: a nested class written
     * {@code org.example.Outer.Inner} is {@code org.example.Outer$Inner}; a name found as it is,
     * or not found in any form, is returned unchanged.
     */
    private static String binaryName(String name) {
        ClassLoader loader = TrainCommand.class.getClassLoader();
        String candidate = name;
        for (int dot = name.lastIndexOf('.'); ; dot = candidate.lastIndexOf('.', dot - 1)) {
            try {
                Class.forName(candidate, false, loader);
                return candidate;
            } catch (ClassNotFoundException | LinkageError e) {
                if (dot <= 0) {
                    return name;
                }
                candidate = candidate.substring(0, dot) + '$' + candidate.substring(dot + 1);
            }
        }
    }

    /**
     * A new instance of {@code --loss-class}'s class, or a usage error saying why there is none (not
     * on the classpath, not a {@link Trainer.BatchLoss}, no public no-argument constructor), before
     * anything is written.
     */
    static Trainer.BatchLoss lossOfClass(String name) {
        if (name.isBlank()) {
            throw new UsageException("--loss-class needs a class name");
        }
        Class<?> c;
        try {
            c = Class.forName(binaryName(name), true, TrainCommand.class.getClassLoader());
        } catch (ExceptionInInitializerError e) {
            throw new UsageException("--loss-class " + name + ": its static initialisation failed: " + e.getCause());
        } catch (ClassNotFoundException | LinkageError e) {
            throw new UsageException("--loss-class " + name + ": no such class on the classpath (" + e
                    + "); the launcher adds the jars and folders of DIR4J_CLASSPATH (':'-separated)");
        }
        if (!Trainer.BatchLoss.class.isAssignableFrom(c)) {
            throw new UsageException("--loss-class " + name + " does not implement "
                    + Trainer.BatchLoss.class.getCanonicalName());
        }
        try {
            return (Trainer.BatchLoss) c.getConstructor().newInstance();
        } catch (NoSuchMethodException | IllegalAccessException | InstantiationException e) {
            throw new UsageException("--loss-class " + name + " needs a public no-argument constructor (a public, "
                    + "non-abstract class; a nested one static): " + e);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw new UsageException("--loss-class " + name + ": its constructor failed: " + e.getCause());
        }
    }

    /**
     * Defaults, then --config, then the options given, checked as a whole (a setting of the file
     * that an option overrides is not checked); a setting out of range is a usage error naming it
     * as the user gave it ({@link #settingName}).
     */
    TrainConfig recipe() throws IOException {
        Map<String, String> settings = new LinkedHashMap<>();
        TrainConfig base = D;
        if (recorded != null && !recorded.recipe().isEmpty()) {
            try {
                base = D.merged(recorded.recipe()); // the resumed run's recipe, under the file's and the options'
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(recorded.recipeSource() + ": " + e.getMessage(), e);
            }
        }
        if (config != null) {
            try {
                fileSettings = TrainConfig.readFile(config);
            } catch (IllegalArgumentException e) { // not a flat JSON object; the message names the file
                throw new UsageException(e.getMessage());
            }
            // a run's own train-config.json names the loss that replaced the recipe's
            String fileLoss = fileSettings.remove(Trainer.CUSTOM_LOSS_SETTING);
            if (fileLoss != null && !fileLoss.startsWith(LOSS_CLASS_PREFIX)) {
                throw new UsageException(config + ": the recipe was trained with the custom loss '" + fileLoss
                        + "' of the Java API (Trainer.withLoss), which dir4j train cannot give; remove "
                        + Trainer.CUSTOM_LOSS_SETTING + " from it to train with its loss setting");
            }
            if (fileLoss != null && lossClass == null && loss == null) {
                lossClass = fileLoss.substring(LOSS_CLASS_PREFIX.length());
                note("loss: " + lossClass + " (--loss-class, from " + config + ")");
            }
            settings.putAll(fileSettings);
        }
        settings.putAll(commandLineSettings());
        TrainConfig cfg;
        try {
            cfg = base.merged(settings);
        } catch (IllegalArgumentException e) { // an unknown key or a value that does not parse: the file's
            throw new UsageException(config == null ? e.getMessage() : config + ": " + e.getMessage());
        }
        try {
            if (batchSize != null) {
                if (classesPerBatch != null) {
                    throw new UsageException("give --batch-size or --classes-per-batch, not both");
                }
                if (batchSize < 1) {
                    throw new UsageException("--batch-size must be at least 1, got " + batchSize);
                }
                int per = cfg.imagesPerClass();
                if (per >= 2 && batchSize % per != 0) { // below 2, validated() names imagesPerClass
                    throw new UsageException("--batch-size " + batchSize + " is not a multiple of "
                            + settingName("imagesPerClass") + " (" + per + ")");
                }
                cfg = cfg.merged(Map.of("classesPerBatch", Integer.toString(batchSize / Math.max(1, per))));
            }
            return cfg.validated();
        } catch (TrainConfig.InvalidSetting e) {
            throw new UsageException(e.message(this::settingName));
        }
    }

    /** The recipe settings given as options, by their TrainConfig keys. */
    private Map<String, String> commandLineSettings() {
        Map<String, String> o = new LinkedHashMap<>();
        put(o, "loss", loss);
        put(o, "nq", nq);
        put(o, "binMin", binMin);
        put(o, "binMax", binMax);
        put(o, "margin", margin);
        put(o, "classesPerBatch", classesPerBatch);
        put(o, "imagesPerClass", imagesPerClass);
        put(o, "subBatch", subBatch);
        put(o, "optimizer", optimizer);
        put(o, "lr", lr);
        put(o, "weightDecay", weightDecay);
        put(o, "momentum", momentum);
        put(o, "schedule", schedule);
        put(o, "warmup", warmup);
        put(o, "steps", steps);
        put(o, "cropSize", cropSize);
        put(o, "minSize", minSize);
        put(o, "maxSize", maxSize);
        put(o, "tilt", tilt);
        put(o, "jitter", jitter);
        put(o, "frozenBatchNorm", frozenBatchNorm);
        put(o, "seed", seed);
        put(o, "checkpointEvery", checkpointEvery);
        put(o, "validateEvery", validateEvery);
        return o;
    }

    /**
     * A recipe setting named as the user gave it: its option ({@code cropSize} → {@code
     * --crop-size}), also when it is a default that the option would change; the key and the file
     * when only --config gave it; classesPerBatch as what --batch-size makes of it.
     */
    String settingName(String key) {
        if (key.equals("classesPerBatch") && batchSize != null) {
            return "the classes per batch (--batch-size / " + settingName("imagesPerClass") + ")";
        }
        if (fileSettings.containsKey(key) && !commandLineSettings().containsKey(key)) {
            return key + " (" + config + ")";
        }
        if (recorded != null && recorded.recipe().containsKey(key) && !commandLineSettings().containsKey(key)) {
            return option(key) + " (as recorded in " + recorded.recipeSource() + ")";
        }
        return option(key);
    }

    /** The option of a recipe setting: its key in kebab case ({@code cropSize} → {@code --crop-size}). */
    static String option(String key) {
        return "--" + key.replaceAll("([A-Z])", "-$1").toLowerCase(Locale.ROOT);
    }

    /** Whether an option was given on the command line (not its default, nor a recorded value). */
    private boolean given(String option) {
        picocli.CommandLine.ParseResult p = spec == null ? null : spec.commandLine().getParseResult();
        return p != null && p.hasMatchedOption(option);
    }

    /**
     * Takes the settings that the command line does not give from what the resumed run records
     * (the recipe itself is merged in {@link #recipe()}), and returns the notes to print: a setting
     * given here that differs from the recorded one, or a record that an older checkpoint lacks.
     * Network options are taken as recorded and, given otherwise, left for the trainer to refuse
     * naming both ({@code was written for another network}).
     */
    List<String> fromRecord(Trainer.Recorded r) {
        List<String> notes = new ArrayList<>();
        Path file = out.resolve("checkpoint.safetensors");
        List<String> taken = new ArrayList<>();
        if (r.recipe().isEmpty()) {
            notes.add(file + " records no recipe (an older run): resuming with the defaults, --config and the options "
                    + "given, as they were not recorded");
        } else {
            taken.add("recipe");
        }
        Map<String, Object> mo = r.modelOptions();
        if (mo.isEmpty()) {
            notes.add(file + " records no network options (an older run): they come from the options given");
        } else {
            recordedNetwork = true;
            taken.add("network");
            String a = String.valueOf(mo.get("arch"));
            a = a.endsWith("_rmac") ? a.substring(0, a.length() - 5) : a;
            if (!given("--arch")) {
                arch = a;
            }
            if (!given("--out-dim") && mo.get("out_dim") instanceof Number n) {
                outDim = n.intValue();
            }
            if (!given("--base-width") && mo.get("base_width") instanceof Number n) {
                baseWidth = n.intValue();
            }
            if (!given("--pooling") && mo.get("pooling") != null) {
                pooling = String.valueOf(mo.get("pooling"));
            }
            if (!given("--gem-p") && mo.get("gemp") instanceof Number n) {
                gemP = n.doubleValue();
            }
            withoutFc = Boolean.TRUE.equals(mo.get("without_fc"));
            normFeatures = Boolean.TRUE.equals(mo.get("norm_features"));
            centerBias = mo.get("center_bias") instanceof Number n ? n.doubleValue() : 0;
            if (init != null) {
                notes.add("--init " + init + " not read: the resumed network's weights all come from " + file);
            }
        }
        Map<String, Object> run = r.runOptions();
        if (run.isEmpty()) {
            notes.add(file + " records no training data or device (an older run): they come from the options given");
        } else {
            taken.add("data, device");
            boolean dataGiven = given("--train-list") || given("--synth");
            String recordedData = dataText(path(run.get("train_list")), path(run.get("root")),
                    Boolean.TRUE.equals(run.get("synth")), path(run.get("data_root")));
            if (!dataGiven) {
                trainList = path(run.get("train_list"));
                synth = Boolean.TRUE.equals(run.get("synth"));
                if (!given("--root")) { // --root alone: the recorded list, its images found under another folder
                    root = path(run.get("root"));
                }
            }
            if (!given("--data-root") && run.get("data_root") != null) {
                dataRoot = path(run.get("data_root"));
            }
            String data = dataText(trainList, root, synth, dataRoot);
            if (!data.equals(recordedData)) {
                notes.add("resuming on " + data + " instead of the recorded " + recordedData
                        + "; the result will not be that of an uninterrupted run");
            }
            if (!given("--val-dataset")) {
                valDataset = run.get("val_dataset") == null ? null : String.valueOf(run.get("val_dataset"));
            }
            if (!given("--val-image-size")) {
                valImageSize = run.get("val_image_size") instanceof Number n ? n.intValue() : null;
            }
            String recordedDevice = String.valueOf(run.getOrDefault("device", "cpu"));
            if (!given("--device")) {
                device = recordedDevice;
            } else if (!device.equals(recordedDevice)) {
                notes.add("resuming on --device " + device + " instead of the recorded " + recordedDevice
                        + "; the result will differ from an uninterrupted run's by float rounding");
            }
            boolean recordedTf32 = Boolean.TRUE.equals(run.get("tf32"));
            if (!given("--tf32") && !given("--no-tf32")) {
                // TF32 goes with CUDA: a resume moved to the CPU leaves it off
                tf32 = recordedTf32 && !device.equals("cpu");
            }
            if (Boolean.TRUE.equals(tf32) != recordedTf32) {
                notes.add("resuming " + (Boolean.TRUE.equals(tf32) ? "with" : "without") + " TF32, unlike the "
                        + "recorded run; the result will differ from an uninterrupted run's");
            }
            if (run.get("channels_last") instanceof Boolean cl) {
                if (channelsLast == null) {
                    channelsLast = cl;
                } else if (channelsLast != cl) {
                    notes.add("resuming " + (channelsLast ? "channels-last" : "without channels-last") + ", unlike "
                            + "the recorded run; the result will differ from an uninterrupted run's by float rounding");
                }
            }
        }
        if (!taken.isEmpty()) {
            notes.add(0, "resuming the run in " + out + " as " + file.getFileName() + " records it ("
                    + String.join(", ", taken) + (r.recipeSource() != null && !r.recipeSource().equals(file)
                    ? "; the recipe from " + r.recipeSource().getFileName() : "") + "); options given here override "
                    + "the record");
        }
        return notes;
    }

    /** The training data as the options say it ({@code --synth (--data-root D)} or {@code --train-list F}). */
    private static String dataText(Path list, Path root, boolean synth, Path dataRoot) {
        if (synth) {
            return "--synth (--data-root " + absolute(dataRoot) + ")";
        }
        return "--train-list " + absolute(list) + (root == null ? "" : " --root " + absolute(root));
    }

    private static Path path(Object recordedValue) {
        return recordedValue == null ? null : Path.of(String.valueOf(recordedValue));
    }

    private static String absolute(Path p) {
        return p == null ? "(none)" : p.toAbsolutePath().normalize().toString();
    }

    /**
     * The settings of this run that are not in the recipe but shape its result, recorded in each
     * checkpoint for a later --resume ({@link #fromRecord}): the data (paths absolute, so that a
     * resume from another folder finds them), the validation, the device and the layout.
     */
    private Map<String, Object> runOptions(boolean useTf32, boolean layoutChannelsLast) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (synth) {
            m.put("synth", true);
        } else {
            m.put("train_list", absolute(trainList));
            if (root != null) {
                m.put("root", absolute(root));
            }
        }
        m.put("data_root", absolute(dataRoot));
        if (valDataset != null) {
            m.put("val_dataset", valDataset);
        }
        if (valImageSize != null) {
            m.put("val_image_size", valImageSize);
        }
        m.put("device", device);
        m.put("tf32", useTf32);
        m.put("channels_last", layoutChannelsLast);
        return m;
    }

    /** The network and validation options' ranges, checked before anything is built or written. */
    private void checkNetworkOptions() {
        if (outDim < 1) {
            throw new UsageException("--out-dim must be at least 1, got " + outDim);
        }
        if (baseWidth < 1) {
            throw new UsageException("--base-width must be at least 1, got " + baseWidth);
        }
        try {
            dir4j.nn.resnet.ResNet.Depth.parse(arch);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--arch: " + e.getMessage());
        }
        // before the network is built: RetrievalNet refuses an unknown pooling only once its backbone is made
        if (!List.of("gem", "max", "avg").contains(pooling)) {
            throw new UsageException("--pooling must be gem, max or avg, got " + pooling);
        }
        if (!(gemP > 0) || Double.isInfinite(gemP)) {
            throw new UsageException("--gem-p must be a finite number above 0 (GeM's exponent: 1 is average "
                    + "pooling, larger nears max pooling), got " + gemP);
        }
        if (valImageSize != null && valImageSize < 0) {
            throw new UsageException("--val-image-size must be at least 0 (0 keeps the images' size), got "
                    + valImageSize);
        }
    }

    /**
     * The recipe against the training data, as the trainer will check it: a setting the data do
     * not allow (more classes per batch than they have) is a usage error; data that no setting can
     * train on (fewer than two classes of two images) a failure naming the list.
     */
    private void check(Data data, TrainConfig cfg) {
        try {
            Trainer.check(data.images(), data.labels(), cfg);
        } catch (TrainConfig.InvalidSetting e) {
            throw new UsageException(e.message(this::settingName) + " (" + data.list() + ")");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(data.list() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Every training image checked from its first bytes ({@link ImageDecoder#probe}) before
     * anything is written: files that are empty, not images, or GIF, WebP, TIFF... fail the run
     * now, all named in one message (in the list's order), instead of one at a time whenever
     * training first draws one (hours in). Truncated or corrupt data shows only when an image is
     * decoded. The files are probed {@value #PROBE_THREADS} at a time: a probe waits on the file
     * system, not the CPU (a few microseconds a file from the page cache, but a few round trips a
     * file on a network file system or a cold disk: at a millisecond each, tens of minutes for a
     * million images probed one after the other).
     */
    static void probeImages(Data data) throws IOException {
        List<Path> images = data.images();
        String[] problems = new String[images.size()];
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicReference<RuntimeException> failed =
                new java.util.concurrent.atomic.AtomicReference<>();
        Runnable probe = () -> {
            for (int i; failed.get() == null && (i = next.getAndIncrement()) < images.size(); ) {
                try {
                    ImageDecoder.probe(images.get(i));
                } catch (IOException e) {
                    problems[i] = e.getMessage();
                } catch (RuntimeException e) {
                    failed.compareAndSet(null, e);
                }
            }
        };
        int threads = Math.min(PROBE_THREADS, 1 + images.size() / 64);
        List<Thread> workers = new ArrayList<>();
        for (int t = 1; t < threads; t++) {
            workers.add(Thread.ofPlatform().daemon().name("dir4j-probe-" + t).start(probe));
        }
        probe.run();
        try {
            for (Thread w : workers) {
                w.join();
            }
        } catch (InterruptedException e) {
            failed.compareAndSet(null, new IllegalStateException("interrupted")); // the workers stop
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while checking the training images");
        }
        if (failed.get() != null) {
            throw failed.get();
        }
        List<String> unreadable = java.util.Arrays.stream(problems).filter(java.util.Objects::nonNull).toList();
        if (!unreadable.isEmpty()) {
            throw new IOException(data.list() + ": " + unreadable.size() + " of " + images.size()
                    + " images cannot be trained on:" + InputFiles.listing(unreadable, 20)
                    + "\nfix them or convert them to JPEG or PNG, or leave them out of the list");
        }
    }

    /** Files {@link #probeImages} probes at once. */
    static final int PROBE_THREADS = 16;

    private static void put(Map<String, String> m, String key, Object value) {
        if (value != null) {
            m.put(key, String.valueOf(value));
        }
    }

    /** The device, with CUDA started now: an unusable GPU is a usage error (status 2) before any work. */
    private Device parseDevice() {
        try {
            return DeviceOption.usable(device);
        } catch (UsageException e) {
            if (recorded == null || given("--device")) {
                throw e;
            }
            throw new UsageException(e.getMessage() + " (the device the resumed run records; give --device to "
                    + "resume elsewhere)");
        }
    }

    /** Starts the CUDA backend (a clear error when it cannot) and sets TF32. */
    static void cudaBackend(Device dev, boolean tf32) {
        var backend = Backends.of(dev);
        try {
            backend.getClass().getMethod("setTf32", boolean.class).invoke(backend, tf32);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot set TF32 on " + dev + ": " + e, e);
        }
    }

    /** The training images, their class numbers, and the list they come from. */
    record Data(List<Path> images, int[] labels, Path list) {}

    private Data data() throws IOException {
        if (synth == (trainList != null)) {
            throw new UsageException("give exactly one of --train-list FILE or --synth");
        }
        if (trainList != null) {
            LabelledImageList list = LabelledImageList.read(trainList, root, true);
            if (list.images().isEmpty()) {
                throw new IOException(trainList + ": no images listed");
            }
            return new Data(list.images().stream().map(ImageRef::path).toList(), list.classIndex(), trainList);
        }
        if (root != null) {
            throw new UsageException("--root goes with --train-list");
        }
        // a benchmark made by dir4j synth (any sizes) is used as it is; the defaults only fill an empty place
        Path dir = SyntheticLandmarks.exists(dataRoot) ? SyntheticLandmarks.folder(dataRoot)
                : SyntheticLandmarks.generate(dataRoot, SyntheticLandmarks.Config.demo(), null, this::note);
        LabelledImageList list = LabelledImageList.read(dir.resolve("train.txt"), dir, true);
        return new Data(list.images().stream().map(ImageRef::path).toList(), list.classIndex(),
                dir.resolve("train.txt"));
    }

    private RetrievalDataset validation() throws IOException {
        String name = valDataset != null ? valDataset : synth ? "synth-val" : null;
        if (name == null) {
            return null;
        }
        if (name.equals("synth-val") || name.equals("synth")) {
            Path dir = dataRoot.resolve("synth");
            return RetrievalDataset.read(name, RetrievalDataset.Protocol.REVISITED,
                    dir.resolve("gnd_" + name + ".pkl"), dir.resolve("jpg"), true);
        }
        return RetrievalDataset.load(name, dataRoot);
    }

    /** A random network, or one initialised from --init. */
    RetrievalNet initialNetwork(long seed) throws IOException {
        RetrievalNet.Options options;
        try {
            options = new RetrievalNet.Options(arch, outDim, pooling, gemP, withoutFc, normFeatures, baseWidth,
                    centerBias);
        } catch (IllegalArgumentException e) {
            throw new UsageException("network: " + e.getMessage());
        }
        if (recordedNetwork) {
            // every weight comes from the checkpoint (the trainer refuses one that does not fit): no random draw
            try {
                return MemoryScope.detached(() -> new RetrievalNet(options, null));
            } catch (IllegalArgumentException e) {
                throw new UsageException("network " + options + ": " + e.getMessage());
            }
        }
        if (init == null) {
            return build(options, seed);
        }
        try {
            return MemoryScope.detached(() -> {
                try {
                    return fromInit(options, seed);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private RetrievalNet build(RetrievalNet.Options options, long seed) {
        try {
            return MemoryScope.detached(() -> new RetrievalNet(options, new Random(seed)));
        } catch (IllegalArgumentException e) {
            throw new UsageException("network " + options + ": " + e.getMessage());
        }
    }

    private RetrievalNet fromInit(RetrievalNet.Options options, long seed) throws IOException {
        if (!Files.isRegularFile(init)) {
            throw new IOException(init + ": no such --init file");
        }
        boolean safetensors = init.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors");
        Map<String, Tensor> sd = new LinkedHashMap<>();
        boolean retrieval;
        Object root = null;
        Safetensors.Contents contents = null;
        try {
            if (safetensors) {
                contents = Safetensors.read(init, true);
                contents.tensors().forEach((k, v) -> sd.put(k.startsWith("module.") ? k.substring(7) : k, v));
                retrieval = contents.metadata().containsKey("model_options") || sd.containsKey("adpool.p");
            } else {
                root = TorchCheckpoint.read(init, Unpickler.Options.inertObjects().withFloat64ToFloat32(true));
                try {
                    sd.putAll(TorchCheckpoint.stateDict(root));
                } catch (IllegalArgumentException e) {
                    throw new IOException(init + ": " + e.getMessage(), e);
                }
                retrieval = !TorchCheckpoint.modelOptions(root).isEmpty() || sd.containsKey("adpool.p");
            }
            if (!retrieval) {
                return backboneFrom(sd, options, seed);
            }
        } finally {
            if (contents != null) {
                contents.close();
            }
            if (root != null) {
                TorchCheckpoint.closeTensors(root);
            }
        }
        NetworkCheckpoint.Loaded loaded = NetworkCheckpoint.load(init);
        if (!quiet) {
            System.err.println("init: retrieval network from " + init + " (" + loaded.net().options() + ")");
            loaded.notes().forEach(n -> System.err.println("note: " + n));
            overridden(loaded.net().options()).forEach(n -> System.err.println("note: " + n));
        }
        return loaded.net();
    }

    /**
     * The network options given on the command line that a retrieval --init overrides (the whole
     * network, its pooling and projection included, comes from the checkpoint), one note each.
     */
    List<String> overridden(RetrievalNet.Options fromInit) {
        List<String> notes = new java.util.ArrayList<>();
        picocli.CommandLine.ParseResult given = spec == null ? null : spec.commandLine().getParseResult();
        if (given == null) {
            return notes;
        }
        String[][] options = {
            {"--arch", arch, fromInit.arch()},
            {"--out-dim", Integer.toString(outDim), Integer.toString(fromInit.outDim())},
            {"--base-width", Integer.toString(baseWidth), Integer.toString(fromInit.baseWidth())},
            {"--pooling", pooling, fromInit.pooling()},
        };
        for (String[] o : options) {
            if (given.hasMatchedOption(o[0]) && !o[1].equalsIgnoreCase(o[2])) {
                notes.add(o[0] + " " + o[1] + " not applied: the network comes whole from " + init + " (" + o[0]
                        + " " + o[2] + ")");
            }
        }
        if (given.hasMatchedOption("--gem-p")) {
            notes.add("--gem-p " + gemP + " not applied: GeM's exponent is the one learned in " + init);
        }
        return notes;
    }

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** A count and the first few names: a whole backbone's keys would make a message of kilobytes. */
    static String firstFew(List<String> names) {
        return names.size() <= 5 ? names.toString() : names.size() + " " + names.subList(0, 5).toString()
                .replace("]", ", ...]");
    }

    /** An ImageNet classifier's backbone (torchvision layout) in a fresh network; GeM and FC stay as built. */
    private RetrievalNet backboneFrom(Map<String, Tensor> sd, RetrievalNet.Options options, long seed)
            throws IOException {
        Map<String, Tensor> backbone = new LinkedHashMap<>(sd);
        backbone.keySet().removeIf(k -> k.startsWith("fc."));
        RetrievalNet net = build(options, seed);
        Module.LoadReport r = net.loadStateDict(backbone, false);
        List<String> missing = new ArrayList<>(r.missing());
        missing.removeIf(k -> k.startsWith("fc.") || k.startsWith("adpool."));
        if (!missing.isEmpty() || !r.mismatched().isEmpty()) {
            net.close();
            throw new IOException(init + ": not a " + options.arch() + " of width " + options.baseWidth()
                    + " backbone (check --arch / --base-width): missing " + firstFew(missing) + ", mismatched "
                    + firstFew(r.mismatched()));
        }
        if (!quiet) {
            System.err.println("init: " + options.arch() + " backbone from " + init + " (" + backbone.size()
                    + " tensors); GeM and FC initialised from seed " + seed
                    + (r.unexpected().isEmpty() ? "" : "; ignored " + r.unexpected()));
        }
        return net;
    }

    /** A note on stderr (none with --quiet). */
    private void note(String n) {
        if (!quiet) {
            System.err.println("note: " + n);
        }
    }

    /** How long a SIGTERM or Ctrl-C waits for the step in progress and its checkpoint. */
    static final java.time.Duration STOP_WAIT = java.time.Duration.ofMinutes(10);

    /** The trained network as a dir4j network checkpoint (state dict + the reference's model_options). */
    static void exportNetwork(RetrievalNet net, Path file) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("model_options", Json.write(Trainer.modelOptions(net.options())));
        Safetensors.write(file, net.stateDict(), meta); // atomic: a temporary file beside it, renamed over it
    }

    /** A progress bar redrawn on stderr from the trainer's step lines; other lines printed as they come. */
    static final class Progress implements java.util.function.Consumer<String> {
        private final boolean quiet;
        private final int total;
        private final boolean terminal = System.console() != null;
        private boolean midLine;
        private long lastPrint;

        Progress(boolean quiet, int total) {
            this.quiet = quiet;
            this.total = total;
        }

        @Override
        public void accept(String line) {
            if (quiet) {
                if (line.startsWith(Trainer.STOPPED_ON_REQUEST)) { // the summary of a stopped run remains
                    System.err.println(line);
                }
                return;
            }
            if (line.startsWith("step ") && line.contains(" loss ")) {
                int slash = line.indexOf('/');
                long done = Long.parseLong(line.substring(5, slash));
                int filled = (int) (30 * done / Math.max(1, total));
                String bar = "[" + "#".repeat(filled) + "-".repeat(30 - filled) + "] " + line;
                long now = System.nanoTime();
                if (terminal) {
                    System.err.print("\r" + bar + "  ");
                    midLine = true;
                } else if (done == total || now - lastPrint > 10_000_000_000L) {
                    System.err.println(bar);
                    lastPrint = now;
                }
                return;
            }
            end();
            System.err.println(line);
        }

        void end() {
            if (midLine) {
                System.err.println();
                midLine = false;
            }
        }
    }
}
