package dir4j.retrieval.train;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.AtomicFiles;
import dir4j.engine.io.OutputLock;
import dir4j.nn.io.Json;
import dir4j.nn.io.Safetensors;
import dir4j.nn.optim.Adam;
import dir4j.nn.optim.LrSchedule;
import dir4j.nn.optim.Optimizer;
import dir4j.nn.optim.Sgd;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.RgbImage;
import dir4j.retrieval.loss.APLoss;
import dir4j.retrieval.loss.TAPLoss;
import dir4j.retrieval.loss.TripletLoss;
import dir4j.retrieval.loss.TripletSampler;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/**
 * The training loop: class-balanced batches of augmented images, the AP (or TAP, or triplet)
 * loss through {@link MultistageBackprop}, one optimiser step per batch; a log of loss, learning
 * rate and throughput (log.csv), periodic validation, plots, the recipe (train-config.json), and
 * atomic checkpoints from which {@link #run} resumes. The recipe and the data are checked when the
 * trainer is made, so that a refused run writes nothing. Batches and augmentations depend only on
 * (seed, step), so on the CPU a resumed run gives the same weights as an uninterrupted one.
 */
public final class Trainer {
    /** A validation measure of the network (e.g. Medium mAP in percent). */
    @FunctionalInterface
    public interface Validator {
        double evaluate(RetrievalNet net) throws IOException;
    }

    /**
     * A training loss of one batch, in place of the recipe's ({@link #withLoss}): for experiments
     * with the loss itself, with the rest of the run (sampler, augmentation, multistage
     * back-propagation, optimiser, checkpoints, log, validation) unchanged.
     */
    @FunctionalInterface
    public interface BatchLoss {
        /**
         * The loss to minimise, from the batch's descriptors by engine ops (its gradient with
         * respect to {@code descriptors} is what the multistage stage 3 back-propagates).
         *
         * @param descriptors the batch's N × D descriptor matrix (rows L2-normalised as the network
         *                    outputs them), on the training device, requiring its gradient
         * @param labels      the class id of each row
         * @param step        the step, from 0 (for a loss with a schedule of its own)
         * @return a one-element tensor; a value that is not finite stops the run with an error
         */
        Tensor loss(Tensor descriptors, int[] labels, long step);
    }

    /** What the run produced, step by step (restored from log.csv on resume). */
    public record History(List<Long> steps, List<Double> losses, List<Double> lrs, List<Long> validationSteps,
                          List<Double> validation) {
        static History empty() {
            return new History(new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>(),
                    new ArrayList<>());
        }
    }

    private final RetrievalNet net;
    private final List<Path> images;
    private final int[] labels;
    private final TrainConfig cfg;
    private final Path outDir;
    private final Device device;
    private final ClassBalancedSampler sampler;
    private final Augmentation augmentation;
    /**
     * Decoded training images, kept while the heap has room: the JVM clears soft references before
     * it would run out, and a cleared image is decoded again when next drawn (the same pixels), so
     * that a collection of full-size photos larger than the heap trains instead of failing.
     */
    private final Map<Integer, java.lang.ref.SoftReference<RgbImage>> decoded = new ConcurrentHashMap<>();
    private CheckpointWriter checkpointWriter = Safetensors::write;
    /** How the plots are rendered (tests simulate a machine without fonts with it). */
    private Plots.Renderer plotRenderer = Plots.PNG;
    /** The command's own settings (data, device) recorded beside the recipe in each checkpoint; null: none. */
    private Map<String, Object> runOptions;
    /** {@link #withLoss}'s name and loss; null: the recipe's loss. */
    private String customLossName;
    private BatchLoss customLoss;
    /** Set by {@link #requestStop}: stop after the current step, with a checkpoint. */
    private volatile boolean stopRequested;
    /** Whether the last run stopped before its end on request. */
    private volatile boolean stoppedEarly;
    /** Whether the reason the plots cannot be drawn here has been reported (once per run). */
    private boolean plotsWarned;

    /** How a checkpoint reaches the disk (atomic: a failed write leaves the previous file as it was). */
    @FunctionalInterface
    interface CheckpointWriter {
        void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException;
    }

    /** Replaces the checkpoint writer (tests simulate a full disk with it); returns this. */
    Trainer withCheckpointWriter(CheckpointWriter writer) {
        this.checkpointWriter = writer;
        return this;
    }

    /** Replaces the plots' renderer; returns this. */
    Trainer withPlotRenderer(Plots.Renderer renderer) {
        this.plotRenderer = renderer;
        return this;
    }

    /**
     * Records a command's settings that are not part of the recipe (the training data, the device,
     * ...) in each checkpoint's metadata, as {@code run_options}, so that a {@code --resume} can
     * take them from there ({@link #recorded}); returns this. Values: strings, numbers, booleans.
     */
    public Trainer withRunOptions(Map<String, Object> options) {
        this.runOptions = new LinkedHashMap<>(options);
        return this;
    }

    /**
     * Trains with {@code loss} instead of the recipe's {@code loss} setting (its {@code nq},
     * {@code binMin}, {@code binMax} and {@code margin} then go unused); returns this. The name
     * is recorded in each checkpoint ({@code run_options.custom_loss}): a resume through the
     * Java API must give a loss again (a different name is noted), and {@code dir4j train
     * --resume}, which cannot, refuses such a run.
     */
    public Trainer withLoss(String name, BatchLoss loss) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("withLoss: a custom loss needs a name (recorded in the checkpoints)");
        }
        this.customLossName = name;
        this.customLoss = java.util.Objects.requireNonNull(loss, "loss");
        return this;
    }

    /** The run_options key that records {@link #withLoss}'s name. */
    public static final String CUSTOM_LOSS = "custom_loss";

    /** The key of {@link #RECIPE_FILE} that names {@link #withLoss}'s loss, when one replaced the recipe's. */
    public static final String CUSTOM_LOSS_SETTING = "customLoss";

    /** The checkpoint metadata format of a training checkpoint. */
    static final String FORMAT = "dir4j-train-1";

    /** How the line that ends a run stopped by a signal begins (a summary, printed even with --quiet). */
    public static final String STOPPED_ON_REQUEST = "stopped on request";

    /**
     * What a run in a folder records of itself, for a resume that repeats none of its settings.
     *
     * @param recipe       the recipe's settings by {@link TrainConfig} key, as text: from the checkpoint's
     *                     metadata ({@code train_config}, the recipe its weights were trained with), else
     *                     from {@link #RECIPE_FILE}; keys this version does not know are dropped; empty
     *                     when neither records one
     * @param recipeSource the file the recipe comes from (null when empty)
     * @param modelOptions the network's options ({@link #modelOptions} keys); empty when not recorded
     * @param runOptions   what {@link #withRunOptions} gave, and {@link #CUSTOM_LOSS}, {@link #withLoss}'s name;
     *                     empty when not recorded
     */
    public record Recorded(Map<String, String> recipe, Path recipeSource, Map<String, Object> modelOptions,
                           Map<String, Object> runOptions) {}

    /**
     * What {@code outDir}'s checkpoint (and recipe file) record, read without loading a tensor.
     *
     * @throws IOException when the checkpoint cannot be read, is not a training checkpoint, or
     *     records something that is not a JSON object
     */
    public static Recorded recorded(Path outDir) throws IOException {
        Path file = outDir.resolve("checkpoint.safetensors");
        Map<String, String> meta = Safetensors.readMetadata(file);
        if (!FORMAT.equals(meta.get("format"))) {
            throw new IOException(file + " is not a dir4j training checkpoint (format " + meta.get("format") + ")");
        }
        Map<String, Object> stored = jsonObject(file, "train_config", meta.get("train_config"));
        Map<String, String> recipe = new LinkedHashMap<>();
        Path source = file;
        if (stored.isEmpty() && Files.isRegularFile(outDir.resolve(RECIPE_FILE))) {
            source = outDir.resolve(RECIPE_FILE);
            try {
                stored = new LinkedHashMap<>(TrainConfig.readFile(source));
            } catch (IllegalArgumentException e) {
                throw new IOException(e.getMessage(), e);
            }
        }
        var known = TrainConfig.defaults().toMap().keySet();
        stored.forEach((k, v) -> {
            if (known.contains(k) && v != null) {
                recipe.put(k, String.valueOf(v));
            }
        });
        return new Recorded(recipe, recipe.isEmpty() ? null : source,
                jsonObject(file, "model_options", meta.get("model_options")),
                jsonObject(file, "run_options", meta.get("run_options")));
    }

    private static Map<String, Object> jsonObject(Path file, String key, String json) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        if (json == null) {
            return m;
        }
        try {
            if (!(Json.parse(json) instanceof Map<?, ?> obj)) {
                throw new IOException(file + ": metadata '" + key + "' is not a JSON object");
            }
            obj.forEach((k, v) -> m.put(String.valueOf(k), v));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": metadata '" + key + "' is not JSON: " + e.getMessage(), e);
        }
        return m;
    }

    /** The recipe file of a run (the settings used, {@link TrainConfig#toJson()}), beside the checkpoint. */
    public static final String RECIPE_FILE = "train-config.json";

    /** A trainer on the device the network is on now. */
    public Trainer(RetrievalNet net, List<Path> images, int[] labels, TrainConfig cfg, Path outDir) {
        this(net, images, labels, cfg, outDir, net.device());
    }

    /**
     * A trainer on {@code device}: {@link #run} moves the network there ({@link
     * dir4j.nn.Module#to}) before creating the optimiser; batches are decoded and augmented on
     * the host and copied there once per sub-batch; the loss, the multistage stages and the
     * optimiser run there. The host reads back the loss value (and the AP loss's few per-query
     * checks) once per step, never per op.
     *
     * @throws TrainConfig.InvalidSetting or IllegalArgumentException as {@link #check}
     */
    public Trainer(RetrievalNet net, List<Path> images, int[] labels, TrainConfig cfg, Path outDir, Device device) {
        this.sampler = checked(images, labels, cfg);
        this.augmentation = new Augmentation(cfg.minSize(), cfg.maxSize(), cfg.cropSize(), cfg.tilt(), cfg.jitter());
        this.net = net;
        this.images = List.copyOf(images);
        this.labels = labels.clone();
        this.cfg = cfg;
        this.outDir = outDir;
        this.device = device;
    }

    /**
     * Checks a recipe against the training data as the trainer will use them, without a network
     * and before anything is written: every setting ({@link TrainConfig#validated()}), the batches
     * the labels allow, and what the loss and the augmentation accept.
     *
     * @throws TrainConfig.InvalidSetting when a setting is out of range, alone, beside another or
     *     for these labels (more classes per batch than they have)
     * @throws IllegalArgumentException when the data cannot be trained on whatever the settings:
     *     no images, images and labels of different counts, fewer than two classes of two images
     */
    public static void check(List<Path> images, int[] labels, TrainConfig cfg) {
        checked(images, labels, cfg);
    }

    private static ClassBalancedSampler checked(List<Path> images, int[] labels, TrainConfig cfg) {
        if (images.isEmpty() || images.size() != labels.length) {
            throw new IllegalArgumentException("trainer: " + images.size() + " images and " + labels.length
                    + " labels (need the same, non-zero, number)");
        }
        cfg.validated();
        // what the constructors check, in case they ever check more than validated() does
        try {
            new Augmentation(cfg.minSize(), cfg.maxSize(), cfg.cropSize(), cfg.tilt(), cfg.jitter());
        } catch (IllegalArgumentException e) {
            throw new TrainConfig.InvalidSetting("{cropSize}, {minSize}, {maxSize}, {tilt}, {jitter}: "
                    + e.getMessage());
        }
        if (!cfg.loss().equals("triplet")) {
            try {
                new APLoss(cfg.nq(), cfg.binMin(), cfg.binMax(), false, true);
            } catch (IllegalArgumentException e) {
                throw new TrainConfig.InvalidSetting("{nq}, {binMin}, {binMax}: " + e.getMessage());
            }
        }
        return new ClassBalancedSampler(labels, cfg.classesPerBatch(), cfg.imagesPerClass(), cfg.seed());
    }

    /** Where the network trains. */
    public Device device() {
        return device;
    }

    /** The checkpoint file of this run. */
    public Path checkpointFile() {
        return outDir.resolve("checkpoint.safetensors");
    }

    /**
     * Trains to {@code cfg.steps()} steps, resuming from the checkpoint when {@code resume} and
     * one exists. {@code progress} (may be null) receives a line per step.
     */
    public History run(boolean resume, Validator validator, java.util.function.Consumer<String> progress)
            throws IOException {
        return run(resume, validator, progress, Long.MAX_VALUE);
    }

    /**
     * As {@link #run(boolean, Validator, java.util.function.Consumer)}, stopping (with a
     * checkpoint) after step {@code stopAfter} even if the configured steps are not done: a
     * time-boxed session, or an interruption in tests.
     */
    public History run(boolean resume, Validator validator, java.util.function.Consumer<String> progress,
                       long stopAfter) throws IOException {
        stoppedEarly = false;
        Files.createDirectories(outDir);
        if (!sampler.droppedClasses().isEmpty() && progress != null) {
            progress.accept("note: " + sampler.droppedClasses().size()
                    + " classes have a single image and are not sampled (no positive for them)");
        }
        if (!net.device().equals(device)) {
            net.to(device);
        }
        MultistageBackprop.freezeBatchNorm(net, cfg.frozenBatchNorm());
        net.train(true);
        Map<String, Tensor> params = net.namedParameters();
        List<String> names = new ArrayList<>(params.keySet());
        try (Optimizer opt = optimizer(new ArrayList<>(params.values()))) {
            LrSchedule schedule = schedule().withWarmup(cfg.warmup());
            long start = 0;
            History history = History.empty();
            if (resume && Files.exists(checkpointFile())) {
                start = restore(opt, names, progress);
                history = readLog(start, progress);
                if (progress != null) {
                    progress.accept("resumed from " + checkpointFile() + " at step " + start);
                }
                if (validationDue(validator, start) && !history.validationSteps().contains(start)) {
                    // a stop skipped it: the log and plot then hold what an uninterrupted run's would
                    validateAndLog(validator, start, history, progress);
                }
            } else {
                // a fresh start (--overwrite): an earlier run's checkpoint goes with its log, so that a crash
                // before this run's first checkpoint cannot leave the two runs' state and log mixed for a --resume
                Files.deleteIfExists(checkpointFile());
                Files.deleteIfExists(outDir.resolve("log.csv"));
            }
            // written once the run is under way (a refused resume leaves the earlier recipe file)
            // with a custom loss the recipe's loss settings go unused: the file says what replaced them
            String recipe = cfg.toJson(customLossName == null ? Map.of() : Map.of(CUSTOM_LOSS_SETTING, customLossName));
            AtomicFiles.write(outDir.resolve(RECIPE_FILE), recipe.getBytes(StandardCharsets.UTF_8));
            long t0 = System.nanoTime();
            long imagesDone = 0;
            for (long step = start; step < Math.min(cfg.steps(), stopAfter); step++) {
                ClassBalancedSampler.Batch batch = sampler.batch(step);
                List<RgbImage> inputs = augmented(batch, augmentation, step);
                opt.setLr(schedule.lr(step));
                int n = inputs.size();
                int parts = (n + cfg.subBatch() - 1) / cfg.subBatch();
                Function<Tensor, Tensor> lossFn = lossFunction(batch.labels(), step);
                // Stage 1 (no graph) runs compiled when the batch norms are frozen: the weights as
                // the last step left them, the same function to float rounding.
                MultistageBackprop.Outcome out;
                try (RetrievalNet.Inference stage1 = net.inference()) {
                    out = MultistageBackprop.accumulateGradients(net, parts,
                            i -> toTensor(inputs.subList(i * cfg.subBatch(), Math.min(n, (i + 1) * cfg.subBatch()))),
                            lossFn, stage1::describe);
                }
                opt.step();
                opt.zeroGrad();
                imagesDone += n;
                double ips = imagesDone / ((System.nanoTime() - t0) / 1e9);
                history.steps().add(step + 1);
                history.losses().add(out.loss());
                history.lrs().add(opt.lr());
                appendLog(step + 1, out.loss(), opt.lr(), ips, Double.NaN);
                if (progress != null) {
                    double eta = (cfg.steps() - step - 1) * (double) n / ips;
                    progress.accept(String.format("step %d/%d  loss %.4f  lr %.2e  %.1f img/s  ETA %s", step + 1,
                            cfg.steps(), out.loss(), opt.lr(), ips, duration(eta)));
                }
                boolean last = step + 1 == cfg.steps() || step + 1 == stopAfter;
                // validations fall where an uninterrupted run's do (every --validate-every steps and at the end of
                // the run, not at --stop-after); a stop request skips one (it may take long: the checkpoint is what
                // the stop waits for), and the resume makes it up
                boolean due = validationDue(validator, step + 1);
                boolean skipped = due && stopRequested;
                if (due && !skipped) {
                    validateAndLog(validator, step + 1, history, progress);
                }
                // read again: a request during the validation counts; at the last step only a skipped validation
                // (left to the resume) makes the run unfinished
                boolean stopping = stopRequested && (step + 1 < cfg.steps() || skipped);
                if ((step + 1) % cfg.checkpointEvery() == 0 || last || stopping) {
                    save(opt, names, step + 1);
                    if (!stopRequested) { // Java2D does not start once the JVM shuts down; the resume draws them
                        plot(history, progress);
                    }
                }
                if (stopping) {
                    stoppedEarly = true;
                    if (progress != null) {
                        progress.accept(STOPPED_ON_REQUEST + " after step " + (step + 1) + "; checkpoint written ("
                                + checkpointFile() + "): a resume continues from there");
                    }
                    break;
                }
                if (step + 1 == stopAfter) {
                    break;
                }
            }
            if (start >= Math.min(cfg.steps(), stopAfter)) {
                // nothing left to train (a run killed after its last checkpoint, while drawing): the plots again
                plot(history, progress);
            }
            return history;
        }
    }

    /** Whether an uninterrupted run validates after {@code step}: every --validate-every steps, and at its end. */
    private boolean validationDue(Validator validator, long step) {
        return validator != null && cfg.validateEvery() > 0 && (step % cfg.validateEvery() == 0 || step == cfg.steps());
    }

    private void validateAndLog(Validator validator, long step, History history,
            java.util.function.Consumer<String> progress) throws IOException {
        double v = validate(validator);
        history.validationSteps().add(step);
        history.validation().add(v);
        appendLog(step, Double.NaN, Double.NaN, Double.NaN, v);
        if (progress != null) {
            progress.accept(String.format("step %d: validation mAP %.2f", step, v));
        }
    }

    /**
     * Draws loss.png and validation.png; a machine that cannot draw, or a plot that cannot be
     * written (a full disk), is reported once and training goes on: log.csv holds the numbers.
     */
    private void plot(History history, java.util.function.Consumer<String> progress) {
        String skipped;
        try {
            skipped = Plots.write(history, outDir, plotRenderer);
        } catch (IOException e) {
            skipped = "plots not written: " + e.getMessage();
        }
        if (skipped != null && !plotsWarned) {
            plotsWarned = true;
            // once, where the run reports (a command's stderr), else as a warning of the log
            if (progress != null) {
                progress.accept("note: " + skipped);
            } else {
                System.getLogger(Trainer.class.getName()).log(System.Logger.Level.WARNING, skipped);
            }
        }
    }

    /** What {@link #stopOnShutdown} returns: closing it ends the shutdown hook's watch. */
    public interface StopHandle extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Asks a running {@link #run} to stop after the step in progress, writing a checkpoint there
     * (no validation): what a SIGTERM or Ctrl-C does through {@link #stopOnShutdown}. Safe from any
     * thread.
     */
    public void requestStop() {
        stopRequested = true;
    }

    /**
     * Whether the last {@link #run} ended unfinished because a stop was requested
     * ({@link #requestStop}): before its last step, or at the last step with that step's
     * validation skipped (the resume makes it up). Its checkpoint is at the step it stopped after.
     */
    public boolean stoppedEarly() {
        return stoppedEarly;
    }

    /**
     * While the returned handle is open, the JVM's shutdown (SIGTERM, Ctrl-C, System.exit) asks this
     * trainer to stop after its current step with a checkpoint ({@link #requestStop}) and holds the
     * shutdown until {@link #run} has returned, for at most {@code waitAtMost}; {@code say} is told
     * (on the shutdown thread) that the run is stopping. Close the handle when {@code run} returns
     * (normally or not). Without it a kill loses the steps since the last checkpoint.
     */
    public StopHandle stopOnShutdown(java.time.Duration waitAtMost, java.util.function.Consumer<String> say) {
        java.util.concurrent.CountDownLatch finished = new java.util.concurrent.CountDownLatch(1);
        Thread hook = new Thread(() -> {
            say.accept("stopping after the current step to write a checkpoint (up to " + waitAtMost.toSeconds()
                    + " s; kill -9 stops at once, losing the steps since the last checkpoint)");
            requestStop();
            try {
                finished.await(waitAtMost.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "dir4j-train-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        return () -> {
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it returns now that the run has
            }
        };
    }

    /**
     * Takes the run folder {@code outDir} for this process ({@code OUT/.lock}), so that a second
     * training into it (another dir4j train, demo or a process of this one) is refused instead of
     * interleaving its checkpoints and log with this one's, and removes what writers killed
     * mid-write left there (temporary checkpoints, logs, plots, networks: only the names dir4j
     * gives them), telling {@code note} which. Hold it around the whole run and what is written
     * after it.
     *
     * @throws IOException naming the folder and the holder when another writer holds it
     */
    public static OutputLock lock(Path outDir, java.util.function.Consumer<String> note) throws IOException {
        OutputLock lock = OutputLock.acquire(outDir.resolve(".lock"), outDir + " (a training run)");
        try {
            List<Path> removed = new ArrayList<>();
            for (String f : List.of("checkpoint.safetensors", "model.safetensors", "log.csv", RECIPE_FILE, "loss.png",
                    "validation.png", "report.html")) {
                removed.addAll(AtomicFiles.removeLeftovers(outDir.resolve(f)));
            }
            if (!removed.isEmpty()) {
                note.accept("removed what a stopped run left half-written: " + String.join(", ",
                        removed.stream().map(p -> p.getFileName().toString()).toList()));
            }
        } catch (IOException | RuntimeException e) {
            lock.close();
            throw e;
        }
        return lock;
    }

    private double validate(Validator validator) throws IOException {
        net.eval();
        try {
            return validator.evaluate(net);
        } finally {
            net.train(true);
        }
    }

    private Optimizer optimizer(List<Tensor> ps) {
        return switch (cfg.optimizer()) {
            case "adam" -> Adam.adam(ps, cfg.lr(), cfg.weightDecay());
            case "adamw" -> Adam.adamW(ps, cfg.lr(), cfg.weightDecay());
            default -> new Sgd(ps, cfg.lr(), cfg.momentum(), cfg.weightDecay(), false);
        };
    }

    private LrSchedule schedule() {
        return switch (cfg.schedule()) {
            case "step" -> LrSchedule.step(cfg.lr(), Math.max(1, cfg.steps() / 3), 0.1);
            case "exponential" -> LrSchedule.exponential(cfg.lr(), Math.pow(0.01, 1.0 / cfg.steps()));
            case "cosine" -> LrSchedule.cosine(cfg.lr(), cfg.steps(), cfg.lr() * 0.01);
            default -> LrSchedule.constant(cfg.lr());
        };
    }

    private Function<Tensor, Tensor> lossFunction(int[] batchLabels, long step) {
        if (customLoss != null) {
            return d -> customLoss.loss(d, batchLabels.clone(), step);
        }
        return switch (cfg.loss()) {
            // descriptors and class ids: on the CPU up to N = 4096 this forms S and the labels as
            // before; on CUDA, or above, it takes the blocked path that never stores an N×N matrix
            case "ap" -> d -> new APLoss(cfg.nq(), cfg.binMin(), cfg.binMax(), false, true)
                    .forward(d, batchLabels, null).loss();
            case "tap", "tap-simplified" -> d -> new TAPLoss(cfg.nq(), cfg.binMin(), cfg.binMax(),
                    cfg.loss().equals("tap-simplified"), false, true).forward(d, batchLabels, null).loss();
            default -> d -> {
                // hardest negatives are chosen on the host from S = D·Dᵀ; the loss gathers the
                // triplets' rows where the descriptors are (indexSelect, indexAdd backward)
                double[] scores;
                try (Autograd.NoGrad ng = Autograd.noGrad(); MemoryScope s = MemoryScope.open()) {
                    scores = Ops.matmul(d, Ops.transpose(d, 0, 1)).toDoubleArray();
                }
                var triplets = TripletSampler.sample(batchLabels, TripletSampler.Negatives.HARDEST, scores,
                        new Random(cfg.seed() + step));
                return new TripletLoss(TripletLoss.Kind.MARGIN, cfg.margin()).forward(d, triplets);
            };
        };
    }

    /** Decoded (cached) and augmented images of a batch; seeded by (seed, step, position). */
    private List<RgbImage> augmented(ClassBalancedSampler.Batch batch, Augmentation aug, long step) {
        int n = batch.images().length;
        RgbImage[] out = new RgbImage[n];
        dir4j.engine.cpu.CpuThreads.parallelFor(n, i -> {
            int idx = batch.images()[i];
            java.lang.ref.SoftReference<RgbImage> kept = decoded.get(idx);
            RgbImage img = kept == null ? null : kept.get();
            if (img == null) {
                try {
                    img = ImageDecoder.read(images.get(idx));
                } catch (IOException e) {
                    // found only when training draws it: say where the run stopped and what to do
                    throw new UncheckedIOException(new IOException(e.getMessage() + " (a training image, drawn at step "
                            + (step + 1) + (e.getCause() instanceof OutOfMemoryError ? ")"
                            : "; fix it or leave it out of the training list)"), e));
                }
                decoded.put(idx, new java.lang.ref.SoftReference<>(img));
            }
            out[i] = aug.apply(img, new Random((cfg.seed() * 31 + step) * 1_000_003L + i));
        });
        return List.of(out);
    }

    /** The normalised images [n, 3, H, W] on the training device (one host-to-device copy). */
    private Tensor toTensor(List<RgbImage> imgs) {
        RgbImage first = imgs.get(0);
        int plane = 3 * first.width() * first.height();
        float[] data = new float[plane * imgs.size()];
        for (int i = 0; i < imgs.size(); i++) {
            float[] chw = imgs.get(i).toNormalizedChw(RetrievalNet.RGB_MEANS, RetrievalNet.RGB_STDS);
            System.arraycopy(chw, 0, data, i * plane, plane);
        }
        Tensor host = Tensor.of(data, imgs.size(), 3, first.height(), first.width());
        return device.equals(Device.CPU) ? host : host.to(device);
    }

    // ---------------------------------------------------------------- checkpoints and log

    private void save(Optimizer opt, List<String> names, long step) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        net.stateDict().forEach((k, v) -> tensors.put("model." + k, v));
        Map<String, Tensor> params = net.namedParameters();
        for (String name : names) {
            opt.state(params.get(name)).forEach((k, v) -> tensors.put("optim." + name + "." + k, v));
        }
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("step", Long.toString(step));
        meta.put("optimizer_steps", Long.toString(opt.steps()));
        meta.put("train_config", Json.write(new LinkedHashMap<>(cfg.toMap())));
        meta.put("model_options", Json.write(modelOptions(net.options())));
        if (runOptions != null || customLossName != null) {
            Map<String, Object> run = runOptions == null ? new LinkedHashMap<>() : new LinkedHashMap<>(runOptions);
            run.remove(CUSTOM_LOSS); // only withLoss says so (run options copied from a recorded run may carry it)
            if (customLossName != null) {
                run.put(CUSTOM_LOSS, customLossName);
            }
            meta.put("run_options", Json.write(run));
        }
        try {
            checkpointWriter.write(checkpointFile(), tensors, meta);
        } catch (IOException e) {
            throw new IOException("cannot write checkpoint at step " + step + " (" + e.getMessage() + "); "
                    + (Files.exists(checkpointFile()) ? "the previous checkpoint " + checkpointFile()
                    + " is intact: make room and rerun with --resume to continue from it"
                    : "no checkpoint exists yet in " + outDir), e);
        }
    }

    /** The reference's model_options keys for a network. */
    public static Map<String, Object> modelOptions(RetrievalNet.Options o) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("arch", o.arch() + "_rmac");
        m.put("out_dim", o.outDim());
        m.put("pooling", o.pooling());
        m.put("gemp", o.gemp());
        m.put("without_fc", o.withoutFc());
        m.put("norm_features", o.normFeatures());
        m.put("base_width", o.baseWidth());
        if (o.centerBias() > 0) {
            m.put("center_bias", o.centerBias());
        }
        return m;
    }

    private long restore(Optimizer opt, List<String> names, java.util.function.Consumer<String> progress)
            throws IOException {
        try (Safetensors.Contents c = Safetensors.read(checkpointFile())) {
            String format = c.metadata().get("format");
            if (!FORMAT.equals(format)) {
                throw new IOException(checkpointFile() + " is not a dir4j training checkpoint (format " + format + ")");
            }
            checkSameNetwork(c.metadata().get("model_options"));
            // the loss first, before a weight is loaded: a refused resume leaves the caller's network as it was
            Object stored = jsonObject(checkpointFile(), "run_options", c.metadata().get("run_options"))
                    .get(CUSTOM_LOSS);
            String trainedWith = stored == null ? null : String.valueOf(stored);
            if (trainedWith != null && customLossName == null) {
                throw new IOException(checkpointFile() + " was trained with the custom loss '" + trainedWith
                        + "' (Trainer.withLoss): give it again to resume, or start over");
            }
            Map<String, Tensor> model = new LinkedHashMap<>();
            c.tensors().forEach((k, v) -> {
                if (k.startsWith("model.")) {
                    model.put(k.substring(6), v);
                }
            });
            try {
                net.loadStateDict(model, true);
            } catch (IllegalArgumentException e) {
                throw new IOException(checkpointFile() + " does not fit this network: " + e.getMessage(), e);
            }
            Map<String, Tensor> params = net.namedParameters();
            for (String name : names) {
                String prefix = "optim." + name + ".";
                c.tensors().forEach((k, v) -> {
                    if (k.startsWith(prefix)) {
                        Tensor p = params.get(name);
                        try (MemoryScope s = MemoryScope.open()) {
                            opt.restoreState(p, k.substring(prefix.length()), v.to(p.device()));
                        }
                    }
                });
            }
            opt.setSteps(Long.parseLong(c.metadata().get("optimizer_steps")));
            String storedConfig = c.metadata().get("train_config");
            String changed = recipeChanges(storedConfig);
            if (changed != null && progress != null) {
                progress.accept("note: " + changed);
            }
            if (customLossName != null && !customLossName.equals(trainedWith) && progress != null) {
                // the recipe's loss the checkpoint records, not this run's (which the custom loss replaces)
                Object recipeLoss = storedConfig != null && Json.parse(storedConfig) instanceof Map<?, ?> m
                        ? m.get("loss") : null;
                progress.accept("note: resuming with the custom loss '" + customLossName + "' (the checkpoint was "
                        + "trained with " + (trainedWith != null ? "the custom loss '" + trainedWith + "'"
                        : "the recipe's loss" + (recipeLoss == null ? "" : ", " + recipeLoss)) + ")");
            }
            return Long.parseLong(c.metadata().get("step"));
        }
    }

    /**
     * What this run's recipe changes from the one the checkpoint was trained with, as one line
     * ("resuming with lr 0.001 (the checkpoint was trained with lr 0.002)"), or null when nothing
     * does. A change is allowed (a longer schedule, a lower rate) but should not pass unseen; the
     * line says when it makes the result differ from an uninterrupted run of the recorded recipe
     * ({@link #changesResults}). Keys the checkpoint does not record are not compared, nor, with a
     * custom loss ({@link #withLoss}), the recipe's loss settings.
     */
    private String recipeChanges(String storedJson) {
        if (storedJson == null || !(Json.parse(storedJson) instanceof Map<?, ?> stored)) {
            return null;
        }
        List<String> now = new ArrayList<>();
        List<String> then = new ArrayList<>();
        boolean differs = false;
        for (var e : cfg.toMap().entrySet()) {
            if (customLossName != null && LOSS_SETTINGS.contains(e.getKey())) {
                continue; // unused with a custom loss (a change of loss is noted by itself)
            }
            Object old = stored.get(e.getKey());
            if (old != null && !String.valueOf(old).equals(e.getValue())) {
                now.add(e.getKey() + " " + e.getValue());
                then.add(e.getKey() + " " + old);
                differs |= changesResults(e.getKey(), String.valueOf(stored.get("schedule")));
            }
        }
        return now.isEmpty() ? null : "resuming with " + String.join(", ", now) + " (the checkpoint was trained with "
                + String.join(", ", then) + ")" + (differs ? "; the result will not be that of an uninterrupted run"
                : "");
    }

    /** The recipe's settings of its own loss, which {@link #withLoss} leaves unused. */
    private static final java.util.Set<String> LOSS_SETTINGS = java.util.Set.of("loss", "nq", "binMin", "binMax",
            "margin");

    /**
     * Whether changing a setting on resume makes the weights differ from those of an uninterrupted
     * run: every setting does but how often to checkpoint or validate, and the number of steps
     * under a constant learning rate (other schedules are stretched over the steps).
     */
    static boolean changesResults(String key, String storedSchedule) {
        return switch (key) {
            case "checkpointEvery", "validateEvery" -> false;
            case "steps" -> !"constant".equals(storedSchedule); // a changed schedule is named by itself
            default -> true;
        };
    }

    /**
     * Refuses to resume a checkpoint written for other network options (another --arch, --out-dim,
     * ...), naming both, instead of failing on the list of every missing or mis-shaped weight.
     * Options the checkpoint does not record are not compared.
     */
    private void checkSameNetwork(String storedJson) throws IOException {
        if (storedJson == null || !(Json.parse(storedJson) instanceof Map<?, ?> stored)) {
            return;
        }
        List<String> diff = new ArrayList<>();
        // through JSON both ways, so that numbers compare alike (3 and 3.0)
        Map<?, ?> current = (Map<?, ?>) Json.parse(Json.write(modelOptions(net.options())));
        for (Map.Entry<?, ?> e : stored.entrySet()) {
            if (current.containsKey(e.getKey()) && !String.valueOf(current.get(e.getKey()))
                    .equals(String.valueOf(e.getValue()))) {
                diff.add(e.getKey() + " " + e.getValue() + " (now " + current.get(e.getKey()) + ")");
            }
        }
        if (!diff.isEmpty()) {
            throw new IOException(checkpointFile() + " was written for another network: " + String.join(", ", diff)
                    + "; resume with the network it was made with (dir4j train --resume takes it from the checkpoint "
                    + "when no network option is given), or start over with --overwrite");
        }
    }

    private void appendLog(long step, double loss, double lr, double ips, double validation) throws IOException {
        Path log = outDir.resolve("log.csv");
        String line = String.format(java.util.Locale.ROOT, "%d,%s,%s,%s,%s%n", step, num(loss), num(lr), num(ips),
                num(validation));
        if (!Files.exists(log)) {
            Files.writeString(log, LOG_HEADER + "\n", StandardCharsets.UTF_8);
        }
        Files.writeString(log, line, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }

    private static String num(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }

    /**
     * The log up to {@code step} (later rows, from after the checkpoint, are dropped), rewritten
     * atomically. A last line cut short (a kill or a full disk mid-append) is dropped with a note;
     * a malformed line elsewhere is an error naming it.
     */
    private History readLog(long step, java.util.function.Consumer<String> progress) throws IOException {
        History h = History.empty();
        Path log = outDir.resolve("log.csv");
        if (!Files.exists(log)) {
            return h;
        }
        List<String> kept = new ArrayList<>();
        kept.add(LOG_HEADER);
        String text = Files.readString(log, StandardCharsets.UTF_8);
        List<String> lines = new ArrayList<>(text.lines().toList());
        // every row is appended with its line end: a last line without one was cut short, even when it parses
        boolean cut = !text.isEmpty() && !text.endsWith("\n") && lines.size() > 1;
        for (int i = 1; i < lines.size(); i++) {
            String line = lines.get(i);
            String[] f = line.split(",", -1);
            long s;
            try {
                if (cut && i == lines.size() - 1) {
                    throw new NumberFormatException("no line end");
                }
                if (f.length != 5) {
                    throw new NumberFormatException(f.length + " fields");
                }
                s = Long.parseLong(f[0]);
                double loss = f[1].isEmpty() ? Double.NaN : Double.parseDouble(f[1]);
                double lr = f[2].isEmpty() ? Double.NaN : Double.parseDouble(f[2]);
                double validation = f[4].isEmpty() ? Double.NaN : Double.parseDouble(f[4]);
                if (s > step) {
                    continue;
                }
                if (!f[1].isEmpty()) {
                    h.steps().add(s);
                    h.losses().add(loss);
                    h.lrs().add(lr);
                }
                if (!f[4].isEmpty()) {
                    h.validationSteps().add(s);
                    h.validation().add(validation);
                }
            } catch (NumberFormatException e) {
                if (i == lines.size() - 1) {
                    if (progress != null) {
                        progress.accept("note: " + log + ": its last line was cut short (\"" + line
                                + "\"), dropped");
                    }
                    continue;
                }
                throw new IOException(log + ", line " + (i + 1) + ": not a log row (\"" + line + "\"); expected "
                        + LOG_HEADER);
            }
            kept.add(line);
        }
        AtomicFiles.write(log, (String.join("\n", kept) + "\n").getBytes(StandardCharsets.UTF_8));
        return h;
    }

    private static final String LOG_HEADER = "step,loss,lr,images_per_second,validation_map";

    static String duration(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s % 3600 / 60)
                : String.format("%dm%02ds", s / 60, s % 60);
    }
}
