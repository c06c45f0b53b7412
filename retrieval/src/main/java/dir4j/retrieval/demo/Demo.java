package dir4j.retrieval.demo;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.OutputLock;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.eval.RevisitedProtocol;
import dir4j.retrieval.eval.RevisitedResult;
import dir4j.retrieval.image.BoundingBox;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.image.RgbImage;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.search.Rankings;
import dir4j.retrieval.synth.SyntheticLandmarks;
import dir4j.retrieval.train.TrainConfig;
import dir4j.retrieval.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;

/**
 * The main job on its built-in default: generate the synthetic landmarks benchmark, evaluate an
 * untrained AP-GeM network on its test split, train it with the AP loss (multistage
 * back-propagation, validation on the validation split), evaluate again, and write report.html.
 */
public final class Demo {

    /**
     * Demo settings.
     *
     * @param dataRoot   where synth/ lives (generated when absent)
     * @param out        output folder (checkpoint, log, plots, report.html)
     * @param synth      benchmark sizes
     * @param net        network
     * @param train      training recipe
     * @param imageSize  longer side of evaluation images
     * @param resume     continue an interrupted demo's training
     */
    public record Settings(Path dataRoot, Path out, SyntheticLandmarks.Config synth, RetrievalNet.Options net,
                           TrainConfig train, int imageSize, boolean resume) {
        /** Sized to finish within minutes on two CPU cores. */
        public static Settings defaults(Path dataRoot, Path out) {
            TrainConfig t = TrainConfig.defaults().with(Map.ofEntries(
                    Map.entry("loss", "ap"), Map.entry("nq", "20"), Map.entry("binMin", "-1"), Map.entry("binMax", "1"),
                    Map.entry("classesPerBatch", "8"), Map.entry("imagesPerClass", "4"), Map.entry("subBatch", "16"),
                    Map.entry("optimizer", "adam"), Map.entry("lr", "0.002"), Map.entry("weightDecay", "0.0001"),
                    Map.entry("schedule", "cosine"), Map.entry("warmup", "10"), Map.entry("steps", "300"),
                    Map.entry("cropSize", "112"), Map.entry("minSize", "112"), Map.entry("maxSize", "144"),
                    Map.entry("tilt", "8"), Map.entry("jitter", "0.2"), Map.entry("frozenBatchNorm", "false"),
                    Map.entry("seed", "1"), Map.entry("checkpointEvery", "50"), Map.entry("validateEvery", "50")));
            return new Settings(dataRoot, out, SyntheticLandmarks.Config.demo(),
                    new RetrievalNet.Options("resnet18", 128, "gem", 3, false, false, 16), t, 128, true);
        }
    }

    /** The outcome: test-split results before and after training, and the training history. */
    public record Outcome(RevisitedResult before, RevisitedResult after, Trainer.History history, Path report,
                          double seconds) {}

    private Demo() {}

    /** The demo on the CPU. */
    public static Outcome run(Settings s, Consumer<String> log) throws IOException {
        return run(s, Device.CPU, log);
    }

    /**
     * The demo with the network (evaluation and training) on {@code device}; null when a stop
     * request (SIGTERM, Ctrl-C) ended the training early, with a checkpoint the next run resumes.
     */
    public static Outcome run(Settings s, Device device, Consumer<String> log) throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(s.out());
        log.accept("benchmark: " + s.dataRoot().resolve("synth") + " (generated if absent)");
        Path dir = SyntheticLandmarks.generate(s.dataRoot(), s.synth(), null, n -> log.accept("note: " + n));
        RetrievalDataset test = RetrievalDataset.read("synth", RetrievalDataset.Protocol.REVISITED,
                dir.resolve("gnd_synth.pkl"), dir.resolve("jpg"), true);
        RetrievalDataset val = RetrievalDataset.read("synth-val", RetrievalDataset.Protocol.REVISITED,
                dir.resolve("gnd_synth-val.pkl"), dir.resolve("jpg"), true);
        List<Path> trainImages = new ArrayList<>();
        List<Integer> trainLabels = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("train.txt"))) {
            String[] f = line.strip().split("\\s+");
            trainImages.add(dir.resolve(f[0]));
            trainLabels.add(Integer.parseInt(f[1]));
        }
        Preprocessing prep = Preprocessing.imagenet(s.imageSize());
        // one demo per output folder at a time (a second is refused, not mixed into the first's checkpoint)
        try (OutputLock lock = Trainer.lock(s.out(), n -> log.accept("note: " + n));
                RetrievalNet net = new RetrievalNet(s.net(), new Random(s.train().seed()))) {
            if (!device.equals(Device.CPU)) {
                net.to(device);
            }
            log.accept(String.format("network: %s width %d, GeM, FC → %d (%,d parameters)", s.net().arch(),
                    s.net().baseWidth(), s.net().outDim(), net.parameterCount()));
            Evaluation before = evaluate(net, test, prep);
            log.accept("before training: " + before.result().mapLine("synth"));
            Map<String, Object> runOptions = new LinkedHashMap<>(); // what dir4j train --resume --out would need
            runOptions.put("synth", true);
            runOptions.put("data_root", s.dataRoot().toAbsolutePath().normalize().toString());
            runOptions.put("device", device.toString());
            runOptions.put("tf32", false);
            runOptions.put("channels_last", net.channelsLast());
            Trainer trainer = new Trainer(net, trainImages, trainLabels.stream().mapToInt(Integer::intValue).toArray(),
                    s.train(), s.out(), device).withRunOptions(runOptions);
            Trainer.History history;
            // Ctrl-C: the step in progress ends with a checkpoint, which the next ./dir4j demo resumes
            try (Trainer.StopHandle stop = trainer.stopOnShutdown(java.time.Duration.ofMinutes(2), log)) {
                history = trainer.run(s.resume(), n -> evaluate(n, val, prep).result().medium().map() * 100, log);
                if (trainer.stoppedEarly()) {
                    return null; // the JVM is shutting down: no evaluation or report now
                }
            }
            Evaluation after = evaluate(net, test, prep);
            log.accept("after training:  " + after.result().mapLine("synth"));
            double seconds = (System.nanoTime() - t0) / 1e9;
            Path report = DemoReport.write(s, test, before, after, history, seconds);
            return new Outcome(before.result(), after.result(), history, report, seconds);
        }
    }

    /**
     * Medium mAP in percent of the network on a revisited-protocol dataset (images resized by
     * {@code prep}); the validation measure of {@code dir4j train}.
     */
    public static double mediumMap(RetrievalNet net, RetrievalDataset ds, Preprocessing prep) throws IOException {
        return evaluate(net, ds, prep).result().medium().map() * 100;
    }

    /** A test-split evaluation: results and rankings (for the report's thumbnails). */
    record Evaluation(RevisitedResult result, int[][] rankings) {}

    static Evaluation evaluate(RetrievalNet net, RetrievalDataset ds, Preprocessing prep) throws IOException {
        boolean wasTraining = net.isTraining();
        net.eval();
        try (Autograd.NoGrad ng = Autograd.noGrad(); MemoryScope scope = MemoryScope.open()) {
            List<RgbImage> db = new ArrayList<>();
            for (String name : ds.imageNames()) {
                db.add(prep.apply(ImageDecoder.read(ds.file(name)), null, 1));
            }
            List<RgbImage> queries = new ArrayList<>();
            List<BoundingBox> boxes = ds.queryBoxes();
            for (int i = 0; i < ds.queryNames().size(); i++) {
                queries.add(prep.apply(ImageDecoder.read(ds.file(ds.queryNames().get(i))), boxes.get(i), 1));
            }
            Tensor d = describe(net, db, prep);
            Tensor q = describe(net, queries, prep);
            Tensor sim = Ops.matmul(q, Ops.transpose(d, 0, 1));
            int[][] rankings = Rankings.bySimilarity(sim);
            return new Evaluation(RevisitedProtocol.evaluate(rankings, ds.revisitedGroundTruth()), rankings);
        } finally {
            net.train(wasTraining);
        }
    }

    /** Descriptors [N, D] of preprocessed images, batching images of equal size (no padding). */
    static Tensor describe(RetrievalNet net, List<RgbImage> images, Preprocessing prep) {
        RetrievalNet.Inference inference = net.inference();
        try {
            Map<String, List<Integer>> bySize = new LinkedHashMap<>();
            for (int i = 0; i < images.size(); i++) {
                bySize.computeIfAbsent(images.get(i).width() + "x" + images.get(i).height(), k -> new ArrayList<>()).add(i);
            }
            Tensor[] rows = new Tensor[images.size()];
            for (List<Integer> group : bySize.values()) {
                for (int from = 0; from < group.size(); from += 32) {
                    List<Integer> part = group.subList(from, Math.min(group.size(), from + 32));
                    RgbImage first = images.get(part.get(0));
                    int plane = 3 * first.width() * first.height();
                    float[] data = new float[plane * part.size()];
                    for (int k = 0; k < part.size(); k++) {
                        System.arraycopy(prep.normalize(images.get(part.get(k))), 0, data, k * plane, plane);
                    }
                    Tensor in = Tensor.of(data, part.size(), 3, first.height(), first.width());
                    Tensor out = inference.describe(net.device().equals(Device.CPU) ? in : in.to(net.device()));
                    if (!out.device().equals(Device.CPU)) {
                        out = out.to(Device.CPU);
                    }
                    for (int k = 0; k < part.size(); k++) {
                        rows[part.get(k)] = Ops.slice(out, 0, k, k + 1);
                    }
                }
            }
            return Ops.concat(0, rows);
        } finally {
            inference.close();
        }
    }
}
