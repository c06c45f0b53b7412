package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.synth.SyntheticLandmarks;
import dir4j.retrieval.train.TrainConfig;
import dir4j.retrieval.train.Trainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code dir4j train}: the committed example recipe parses; a tiny 2-step run from it plus
 * command-line overrides logs the same (finite) losses as the Trainer called directly with the
 * recipe the options describe, and leaves a checkpoint and a network file that extraction reads.
 */
class TrainCommandTest {
    @TempDir
    static Path data;

    static Path trainList;
    static List<Path> images = new ArrayList<>();
    static int[] labels;

    /** Tiny: ResNet-18 of width 4, 8-d descriptors, 32-pixel crops. */
    static final String[] TINY = {"--arch", "resnet18", "--base-width", "4", "--out-dim", "8", "--steps", "2",
        "--crop-size", "32", "--min-size", "32", "--max-size", "40", "--classes-per-batch", "3",
        "--images-per-class", "2", "--sub-batch", "4", "--checkpoint-every", "1", "--validate-every", "0",
        "--warmup", "0", "--seed", "5", "--quiet"};

    @BeforeAll
    static void benchmark() throws IOException {
        Path dir = SyntheticLandmarks.generate(data, new SyntheticLandmarks.Config(3, 48, 4, 3, 1, 1, 1, 1, 0, 1), null);
        trainList = dir.resolve("train.txt");
        List<Integer> ls = new ArrayList<>();
        for (String line : Files.readAllLines(trainList)) {
            String[] f = line.split(" ");
            images.add(dir.resolve(f[0]));
            ls.add(Integer.parseInt(f[1]));
        }
        labels = ls.stream().mapToInt(Integer::intValue).toArray();
    }

    static Path example() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("examples/train-synth.json"))) {
            p = p.getParent();
        }
        assertTrue(p != null, "examples/train-synth.json above " + Path.of("").toAbsolutePath());
        return p.resolve("examples/train-synth.json");
    }

    @Test
    void exampleRecipeParsesToTheDemoRecipe() throws IOException {
        TrainConfig cfg = TrainConfig.defaults().withFile(example());
        assertEquals("ap", cfg.loss());
        assertEquals(20, cfg.nq());
        assertEquals(0.002, cfg.lr());
        assertEquals(300, cfg.steps());
        assertEquals(8, cfg.classesPerBatch());
        assertEquals(false, cfg.frozenBatchNorm());
        assertEquals(dir4j.retrieval.demo.Demo.Settings.defaults(data, data).train(), cfg,
                "the example is the demo's recipe");
    }

    @Test
    void tinyRunFromTheExampleLogsTheTrainersLossesAndWritesCheckpoints(@TempDir Path out) throws IOException {
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--config",
                example().toString(), "--out", out.toString()));
        args.addAll(List.of(TINY));
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.out().contains("trained 2 steps"), r.out());
        assertTrue(Files.size(out.resolve("checkpoint.safetensors")) > 0);
        assertTrue(Files.exists(out.resolve("loss.png")));

        // the recipe used: the file's lr and loss, the command line's sizes
        TrainConfig used = TrainConfig.defaults().withFile(out.resolve("train-config.json"));
        assertEquals(0.002, used.lr());
        assertEquals(2, used.steps());
        assertEquals(32, used.cropSize());
        assertEquals(5, used.seed());

        List<Double> logged = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("log.csv")).subList(1, 3)) {
            logged.add(Double.parseDouble(line.split(",")[1]));
        }
        // the same run through the Trainer directly
        var opts = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);
        List<Double> direct;
        float[] expected;
        try (RetrievalNet net = new RetrievalNet(opts, new Random(5))) {
            direct = new Trainer(net, images, labels, used, out.resolve("direct")).run(false, null, null).losses();
            expected = describe(net);
        }
        assertEquals(direct, logged, "dir4j train ran the recipe its options describe");
        logged.forEach(l -> assertTrue(Double.isFinite(l) && l > 0 && l < 1, "AP loss in (0, 1): " + l));

        // model.safetensors is a network checkpoint with the trained weights
        try (RetrievalNet loaded = NetworkCheckpoint.load(out.resolve("model.safetensors")).net()) {
            assertEquals(opts, loaded.options());
            assertArrayEquals(expected, describe(loaded), 0f);
        }
        // and so is the training checkpoint (its network beside the optimiser state): a run can be evaluated
        // before it ends
        try (RetrievalNet loaded = NetworkCheckpoint.load(out.resolve("checkpoint.safetensors")).net()) {
            assertEquals(opts, loaded.options());
            assertArrayEquals(expected, describe(loaded), 0f);
        }
    }

    @Test
    void existingCheckpointNeedsResumeOrOverwriteAndResumeContinues(@TempDir Path out) throws IOException {
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--out",
                out.toString()));
        args.addAll(List.of(TINY));
        assertEquals(0, CliRun.run(args.toArray(String[]::new)).rc());
        CliRun.Run again = CliRun.run(args.toArray(String[]::new));
        assertEquals(2, again.rc(), again.toString());
        assertTrue(again.err().contains("--resume"), again.err());
        args.set(args.indexOf("--steps") + 1, "3");
        args.add("--resume");
        CliRun.Run resumed = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, resumed.rc(), resumed.toString());
        assertTrue(resumed.out().contains("trained 3 steps"), resumed.out());
        assertEquals(4, Files.readAllLines(out.resolve("log.csv")).size(), "header + steps 1..3");
        // another network: refused naming what differs, not with the list of every weight that does not fit
        args.set(args.indexOf("--arch") + 1, "resnet34");
        args.set(args.indexOf("--steps") + 1, "4");
        CliRun.Run other = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, other.rc(), other.toString());
        assertTrue(other.err().contains("was written for another network: arch resnet18_rmac (now resnet34_rmac)"),
                other.err());
        assertTrue(other.err().length() < 400, other.err());
        assertEquals(4, Files.readAllLines(out.resolve("log.csv")).size(), "nothing was trained");
    }

    @Test
    void resumingWithAnotherRecipeNamesWhatChangedOnceAndContinues(@TempDir Path out) throws IOException {
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--out",
                out.toString()));
        args.addAll(List.of(TINY));
        args.set(args.indexOf("--steps") + 1, "1");
        assertEquals(0, CliRun.run(args.toArray(String[]::new)).rc());
        args.remove("--quiet");
        args.set(args.indexOf("--steps") + 1, "2");
        args.addAll(List.of("--lr", "0.001", "--optimizer", "sgd", "--resume"));
        CliRun.Run changed = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, changed.rc(), changed.toString());
        String note = "note: resuming with optimizer sgd, lr 0.001, steps 2 (the checkpoint was trained with "
                + "optimizer adam, lr 1.0E-4, steps 1); the result will not be that of an uninterrupted run";
        assertEquals(1, changed.err().lines().filter(l -> l.contains("resuming with")).count(), changed.err());
        assertTrue(changed.err().lines().anyMatch(note::equals), changed.err());
        assertTrue(changed.out().contains("trained 2 steps"), changed.out());
        // the checkpoint now holds this run's recipe: resuming with it again notes nothing
        CliRun.Run same = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, same.rc(), same.toString());
        assertTrue(same.err().contains("resumed from"), same.err());
        assertFalse(same.err().contains("resuming with"), same.err());
    }

    /** Non-default recipe and network settings for the resume tests (beside TINY's sizes). */
    private static List<String> unusual(Path out, String... more) {
        List<String> args = tiny(out, "--lr", "0.002", "--seed", "7", "--optimizer", "adamw", "--out-dim", "6",
                "--gem-p", "2.5", "--steps", "4", "--crop-size", "30", "--min-size", "34");
        args.add("--no-frozen-batch-norm");
        args.addAll(List.of(more));
        return args;
    }

    /**
     * The walkthrough's defect: 'train --resume --out DIR' alone used to continue with the default
     * recipe (another lr, crop, seed, batch norm no longer frozen) and rewrite train-config.json.
     * Now a run stopped at step 2 and resumed with nothing but --resume --out ends, on the CPU, with
     * the very bytes of the uninterrupted run's checkpoint and network, the same log, and its
     * recipe file unchanged.
     */
    @Test
    void aResumeGivenOnlyOutContinuesTheRecordedRunExactly(@TempDir Path tmp) throws IOException {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        CliRun.Run straight = CliRun.run(unusual(a).toArray(String[]::new));
        assertEquals(0, straight.rc(), straight.toString());
        CliRun.Run stopped = CliRun.run(unusual(b, "--stop-after", "2").toArray(String[]::new));
        assertEquals(0, stopped.rc(), stopped.toString());
        assertTrue(stopped.out().contains("trained 2 steps"), stopped.out());
        byte[] recipe = Files.readAllBytes(b.resolve("train-config.json"));

        CliRun.Run resumed = CliRun.run("train", "--resume", "--out", b.toString());
        assertEquals(0, resumed.rc(), resumed.toString());
        assertTrue(resumed.out().contains("trained 4 steps"), resumed.out());
        assertTrue(resumed.err().contains("note: resuming the run in " + b + " as checkpoint.safetensors records it "
                + "(recipe, network, data, device); options given here override the record"), resumed.err());
        assertTrue(resumed.err().contains("resumed from " + b.resolve("checkpoint.safetensors") + " at step 2"),
                resumed.err());
        assertFalse(resumed.err().contains("resuming with"), "nothing overridden: " + resumed.err());
        assertTrue(resumed.err().contains("network: Options[arch=resnet18, outDim=6, pooling=gem, gemp=2.5"),
                "the recorded network: " + resumed.err());

        assertArrayEquals(Files.readAllBytes(a.resolve("checkpoint.safetensors")),
                Files.readAllBytes(b.resolve("checkpoint.safetensors")), "the uninterrupted run's checkpoint, bitwise");
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")),
                Files.readAllBytes(b.resolve("model.safetensors")), "and its network");
        assertEquals(dir4j.retrieval.train.LogFiles.withoutSpeed(a.resolve("log.csv")), dir4j.retrieval.train.LogFiles.withoutSpeed(b.resolve("log.csv")));
        assertEquals(5, Files.readAllLines(b.resolve("log.csv")).size(), "header + steps 1..4");
        // the recipe file is the recorded one, not the defaults
        assertArrayEquals(recipe, Files.readAllBytes(b.resolve("train-config.json")));
        TrainConfig used = TrainConfig.defaults().withFile(b.resolve("train-config.json"));
        assertEquals(0.002, used.lr());
        assertEquals(7, used.seed());
        assertEquals(30, used.cropSize());
        assertEquals(34, used.minSize());
        assertEquals("adamw", used.optimizer());
        assertFalse(used.frozenBatchNorm());
        assertEquals(4, used.steps());
        try (RetrievalNet net = NetworkCheckpoint.load(b.resolve("model.safetensors")).net()) {
            assertEquals(new RetrievalNet.Options("resnet18", 6, "gem", 2.5, false, false, 4), net.options());
        }
    }

    /**
     * An option given on resume overrides the recorded setting and is noted once; the note says
     * when the result is no longer an uninterrupted run's (a longer --steps under a constant rate
     * keeps it, another lr does not). The rest stays as recorded, in the log and the recipe file.
     */
    @Test
    void anOptionGivenOnResumeOverridesTheRecordAndIsNoted(@TempDir Path out) throws IOException {
        CliRun.Run first = CliRun.run(tiny(out, "--lr", "0.002", "--schedule", "constant").toArray(String[]::new));
        assertEquals(0, first.rc(), first.toString());
        CliRun.Run longer = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "3");
        assertEquals(0, longer.rc(), longer.toString());
        assertTrue(longer.err().lines().anyMatch(("note: resuming with steps 3 (the checkpoint was trained with "
                + "steps 2)")::equals), longer.err());
        assertTrue(longer.out().contains("trained 3 steps"), longer.out());
        List<String> log = Files.readAllLines(out.resolve("log.csv"));
        assertEquals(4, log.size(), "header + steps 1..3");
        assertEquals("0.002", log.get(3).split(",")[2], "the recorded lr, constant");

        CliRun.Run lower = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "4", "--lr", "0.001");
        assertEquals(0, lower.rc(), lower.toString());
        assertEquals(1, lower.err().lines().filter(l -> l.contains("resuming with")).count(), lower.err());
        assertTrue(lower.err().lines().anyMatch(("note: resuming with lr 0.001, steps 4 (the checkpoint was trained "
                + "with lr 0.002, steps 3); the result will not be that of an uninterrupted run")::equals), lower.err());
        log = Files.readAllLines(out.resolve("log.csv"));
        assertEquals(5, log.size(), "header + steps 1..4");
        assertEquals("0.001", log.get(4).split(",")[2]);
        TrainConfig used = TrainConfig.defaults().withFile(out.resolve("train-config.json"));
        assertEquals(0.001, used.lr());
        assertEquals(4, used.steps());
        assertEquals("constant", used.schedule());
        assertEquals(5, used.seed(), "TINY's seed, as recorded");
        assertEquals(32, used.cropSize(), "TINY's crop, as recorded");

        // a --config file given on resume overrides the record too, and only for the settings it has
        Path cfg = out.resolve("more.json");
        Files.writeString(cfg, "{\"steps\": 5}");
        CliRun.Run file = CliRun.run("train", "--resume", "--out", out.toString(), "--config", cfg.toString(),
                "--quiet");
        assertEquals(0, file.rc(), file.toString());
        used = TrainConfig.defaults().withFile(out.resolve("train-config.json"));
        assertEquals(5, used.steps());
        assertEquals(0.001, used.lr(), "the lr the checkpoint was last trained with");
    }

    /** A resume of a run stopped before its first checkpoint says so, rather than asking for data options. */
    @Test
    void aResumeWithoutACheckpointSaysSo(@TempDir Path out) throws IOException {
        Files.createDirectories(out);
        CliRun.Run r = CliRun.run("train", "--resume", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains(out.resolve("checkpoint.safetensors") + " does not exist (yet): the run in " + out
                + " stopped before its first checkpoint"), r.err());
    }

    /** A run trained with a loss of the Java API's (Trainer.withLoss) cannot be resumed here: refused, untouched. */
    @Test
    void aRunWithACustomLossIsNotResumedWithTheRecipesLoss(@TempDir Path out) throws IOException {
        var cfg = dir4j.retrieval.train.TrainConfig.defaults().with(java.util.Map.of("classesPerBatch", "3",
                "imagesPerClass", "2", "subBatch", "4", "steps", "1", "cropSize", "32", "minSize", "32", "maxSize",
                "40", "warmup", "0"));
        try (var net = new dir4j.retrieval.net.RetrievalNet(new dir4j.retrieval.net.RetrievalNet.Options("resnet18",
                8, "gem", 3, false, false, 4), new java.util.Random(1))) {
            new dir4j.retrieval.train.Trainer(net, images, labels, cfg, out).withLoss("mine", (d, ls, step) ->
                    dir4j.engine.Ops.sum(d, new int[] {0, 1}, false)).run(false, null, null);
        }
        byte[] before = Files.readAllBytes(out.resolve("checkpoint.safetensors"));
        CliRun.Run r = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "2");
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("was trained with the custom loss 'mine' given through the Java API "
                + "(Trainer.withLoss), which dir4j train cannot give"), r.err());
        assertArrayEquals(before, Files.readAllBytes(out.resolve("checkpoint.safetensors")));
    }

    /** The positive-pairs loss as a nested class (--loss-class takes it by its binary or its source name). */
    public static final class PositivePairsLoss extends dir4j.retrieval.train.PositivePairsLoss {}

    /** Not a loss. */
    public static final class NotALoss {}

    /**
     * train --loss-class: a class on the classpath trains in place of --loss, is recorded, and a
     * --resume takes it again by itself; what cannot be one is a usage error before anything is written.
     */
    @Test
    void aLossClassTrainsIsRecordedAndResumesByItself(@TempDir Path out) throws IOException {
        String cls = PositivePairsLoss.class.getName();
        String[] train = {"train", "--train-list", trainList.toString(), "--out", out.toString(), "--loss-class", cls};
        CliRun.Run r = CliRun.run(EvalCommandTest.concat(train, TINY));
        assertEquals(0, r.rc(), r.toString());
        assertEquals("class:" + cls, dir4j.retrieval.train.Trainer.recorded(out).runOptions()
                .get(dir4j.retrieval.train.Trainer.CUSTOM_LOSS));
        List<String> log = Files.readAllLines(out.resolve("log.csv"));
        double first = Double.parseDouble(log.get(1).split(",")[1]);
        assertTrue(first > 0 && first < 2, "1 - mean positive similarity: " + log);

        CliRun.Run more = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "3");
        assertEquals(0, more.rc(), more.toString());
        assertTrue(more.err().contains("note: loss: " + cls + " (--loss-class, as recorded in "), more.err());
        assertEquals(4, Files.readAllLines(out.resolve("log.csv")).size(), "steps 1-3 logged");
        // the run's recipe file names the class, and gives it to a new run made from the file
        assertTrue(Files.readString(out.resolve("train-config.json")).contains("\"customLoss\": \"class:" + cls + "\""));
        Path again = out.resolve("again");
        CliRun.Run fromFile = CliRun.run("train", "--config", out.resolve("train-config.json").toString(),
                "--train-list", trainList.toString(), "--out", again.toString(), "--arch", "resnet18", "--base-width",
                "4", "--out-dim", "8", "--steps", "1");
        assertEquals(0, fromFile.rc(), fromFile.toString());
        assertTrue(fromFile.err().contains("note: loss: " + cls + " (--loss-class, from "), fromFile.err());
        assertEquals("class:" + cls, dir4j.retrieval.train.Trainer.recorded(again).runOptions()
                .get(dir4j.retrieval.train.Trainer.CUSTOM_LOSS));
        Path apiRecipe = Files.writeString(out.resolve("api.json"), "{\"steps\": 1, \"customLoss\": \"mine\"}");
        CliRun.Run api = CliRun.run("train", "--config", apiRecipe.toString(), "--train-list", trainList.toString(),
                "--out", out.resolve("api").toString());
        assertEquals(2, api.rc(), api.toString());
        assertTrue(api.err().contains("the recipe was trained with the custom loss 'mine' of the Java API"), api.err());
        CliRun.Run switched = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "4", "--loss", "ap");
        assertEquals(2, switched.rc(), switched.toString());
        assertTrue(switched.err().contains("was trained with --loss-class " + cls), switched.err());

        Path other = out.resolve("other");
        for (String[] bad : new String[][] {{"--loss-class", "no.such.Loss"}, {"--loss-class", NotALoss.class.getName()},
            {"--loss-class", cls, "--loss", "tap"}}) {
            String[] into = EvalCommandTest.concat(new String[] {"train", "--train-list", trainList.toString(),
                "--out", other.toString()}, TINY);
            CliRun.Run b = CliRun.run(EvalCommandTest.concat(into, bad));
            assertEquals(2, b.rc(), b.toString());
            assertTrue(b.err().contains(bad[1].equals(cls) ? "--loss and --loss-class do not go together"
                    : bad[1].startsWith("no.") ? "no such class on the classpath" : "does not implement "
                    + "dir4j.retrieval.train.Trainer.BatchLoss"), b.err());
            assertFalse(Files.exists(other), "nothing written");
        }
    }

    /** A loss whose value is NaN. */
    public static final class NaNLoss implements dir4j.retrieval.train.Trainer.BatchLoss {
        @Override
        public dir4j.engine.Tensor loss(dir4j.engine.Tensor d, int[] ids, long step) {
            return dir4j.engine.Ops.affine(dir4j.engine.Ops.sum(d, new int[] {0, 1}, false), Double.NaN, 0);
        }
    }

    /** A loss that returns no tensor. */
    public static final class NullLoss implements dir4j.retrieval.train.Trainer.BatchLoss {
        @Override
        public dir4j.engine.Tensor loss(dir4j.engine.Tensor d, int[] ids, long step) {
            return null;
        }
    }

    /** A loss whose static initialiser throws (a setting it reads is malformed). */
    public static final class FailingStaticInitLoss implements dir4j.retrieval.train.Trainer.BatchLoss {
        static final int MARGIN = Integer.parseInt("not-a-number");

        @Override
        public dir4j.engine.Tensor loss(dir4j.engine.Tensor d, int[] ids, long step) {
            return dir4j.engine.Ops.sum(d, new int[] {0, 1}, false);
        }
    }

    /**
     * --loss-class mistakes are messages, not stack traces: a NaN loss and a null one fail the
     * run (exit 1) saying so; a class whose static initialiser throws is not called missing from
     * the classpath; a resume with another class notes the change once.
     */
    @Test
    void lossClassMistakesAreMessagesNotStackTraces(@TempDir Path out) throws IOException {
        for (Class<?> c : List.of(NaNLoss.class, NullLoss.class)) {
            String[] train = {"train", "--train-list", trainList.toString(), "--out", out.resolve(c.getSimpleName())
                .toString(), "--loss-class", c.getName()};
            CliRun.Run r = CliRun.run(EvalCommandTest.concat(train, TINY));
            assertEquals(1, r.rc(), r.toString());
            assertTrue(r.err().contains(c == NaNLoss.class ? "dir4j train: multistage: loss is NaN"
                    : "dir4j train: multistage: the loss returned null"), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
        }
        String[] init = {"train", "--train-list", trainList.toString(), "--out", out.resolve("init").toString(),
            "--loss-class", FailingStaticInitLoss.class.getName()};
        CliRun.Run r = CliRun.run(EvalCommandTest.concat(init, TINY));
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("its static initialisation failed: java.lang.NumberFormatException"), r.err());
        assertFalse(r.err().contains("no such class"), r.err());

        CliRun.Run dotted = CliRun.run(EvalCommandTest.concat(new String[] {"train", "--train-list",
            trainList.toString(), "--out", out.resolve("dotted").toString(), "--loss-class",
            PositivePairsLoss.class.getCanonicalName()}, TINY));
        assertEquals(0, dotted.rc(), "a nested class named as in the source: " + dotted);

        Path run = out.resolve("switched");
        String[] train = {"train", "--train-list", trainList.toString(), "--out", run.toString(), "--loss-class",
            PositivePairsLoss.class.getName()};
        assertEquals(0, CliRun.run(EvalCommandTest.concat(train, TINY)).rc());
        CliRun.Run more = CliRun.run("train", "--resume", "--out", run.toString(), "--steps", "3", "--loss-class",
                TrainCommandTest.class.getName() + "$PositivePairsLoss2");
        assertEquals(0, more.rc(), more.toString());
        assertEquals(1, more.err().split("PositivePairsLoss2", -1).length - 1, "the change of loss noted once: "
                + more.err());
    }

    /** The same loss under another name, to resume a run with another class. */
    public static final class PositivePairsLoss2 implements dir4j.retrieval.train.Trainer.BatchLoss {
        private final PositivePairsLoss same = new PositivePairsLoss();

        @Override
        public dir4j.engine.Tensor loss(dir4j.engine.Tensor d, int[] ids, long step) {
            return same.loss(d, ids, step);
        }
    }

    /** A second training into a folder another is writing is refused, naming it, and changes nothing there. */
    @Test
    void aSecondTrainingIntoTheSameFolderIsRefused(@TempDir Path out) throws IOException {
        CliRun.Run first = CliRun.run(tiny(out).toArray(String[]::new));
        assertEquals(0, first.rc(), first.toString());
        Map<String, List<Byte>> before = snapshot(out);
        try (var running = dir4j.retrieval.train.Trainer.lock(out, n -> { })) {
            CliRun.Run second = CliRun.run("train", "--resume", "--out", out.toString(), "--steps", "3");
            assertEquals(1, second.rc(), second.toString());
            assertTrue(second.err().contains("dir4j train: " + out + " (a training run) is being written by another "
                    + "task of this process; wait for it to finish or stop it"), second.err());
        }
        assertEquals(before, snapshot(out), "nothing in OUT changed");
    }

    /**
     * A network option given on resume that the checkpoint cannot fit is refused naming both, before
     * anything in OUT changes; one that a recorded setting then contradicts is a usage error naming
     * the option and where the other value is recorded.
     */
    @Test
    void aResumeWhoseNetworkOrRecipeConflictsWithTheRecordIsRefused(@TempDir Path out) throws IOException {
        CliRun.Run first = CliRun.run(tiny(out).toArray(String[]::new));
        assertEquals(0, first.rc(), first.toString());
        Map<String, List<Byte>> before = snapshot(out);
        CliRun.Run other = CliRun.run("train", "--resume", "--out", out.toString(), "--out-dim", "16", "--steps", "3");
        assertEquals(1, other.rc(), other.toString());
        assertTrue(other.err().contains("was written for another network: out_dim 8 (now 16)"), other.err());
        assertEquals(before, snapshot(out), "a refused --resume left OUT as it was");
        // the recorded min size (32) is below a crop size given now: exit 2 naming both, before any work
        CliRun.Run crop = CliRun.run("train", "--resume", "--out", out.toString(), "--crop-size", "36");
        assertEquals(2, crop.rc(), crop.toString());
        assertTrue(crop.err().contains("--min-size (as recorded in " + out.resolve("checkpoint.safetensors")
                + ") must be at least --crop-size (36)"), crop.err());
        assertEquals(before, snapshot(out));
    }

    /**
     * A checkpoint that records no recipe, data or network (an older run): the resume takes them
     * from the defaults and the options given, as before, and says so.
     */
    @Test
    void aCheckpointWithoutARecordResumesAsBeforeAndSaysSo(@TempDir Path out) throws IOException {
        CliRun.Run first = CliRun.run(tiny(out, "--steps", "1").toArray(String[]::new));
        assertEquals(0, first.rc(), first.toString());
        Path file = out.resolve("checkpoint.safetensors");
        try (var c = dir4j.nn.io.Safetensors.read(file)) {
            Map<String, String> meta = new java.util.LinkedHashMap<>(c.metadata());
            assertTrue(meta.keySet().containsAll(List.of("train_config", "model_options", "run_options")), meta.keySet()
                    .toString());
            meta.keySet().retainAll(List.of("format", "step", "optimizer_steps"));
            dir4j.nn.io.Safetensors.write(out.resolve("old.safetensors"), c.tensors(), meta);
        }
        Files.move(out.resolve("old.safetensors"), file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.delete(out.resolve("train-config.json"));
        CliRun.Run bare = CliRun.run("train", "--resume", "--out", out.toString());
        assertEquals(2, bare.rc(), bare.toString());
        assertTrue(bare.err().contains("records no recipe (an older run)"), bare.err());
        assertTrue(bare.err().contains("records no training data or device (an older run)"), bare.err());
        assertTrue(bare.err().contains("give exactly one of --train-list FILE or --synth"), bare.err());
        List<String> args = tiny(out, "--steps", "2");
        args.remove("--quiet");
        args.add("--resume");
        CliRun.Run again = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, again.rc(), again.toString());
        assertTrue(again.err().contains("records no recipe (an older run): resuming with the defaults"), again.err());
        assertTrue(again.out().contains("trained 2 steps"), again.out());
        assertEquals(32, TrainConfig.defaults().withFile(out.resolve("train-config.json")).cropSize());
    }

    /** Off by default on the CPU, on with --channels-last, off with --no-channels-last; the same losses. */
    @Test
    void channelsLastTrainsToTheSameLossesAndSaysSo(@TempDir Path out) throws IOException {
        List<Double> losses = new ArrayList<>();
        String[] flags = {null, "--channels-last", "--no-channels-last"};
        for (String flag : flags) {
            Path dir = out.resolve(flag == null ? "default" : flag.substring(2));
            List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--out",
                    dir.toString()));
            args.addAll(List.of(TINY));
            args.remove("--quiet");
            if (flag != null) {
                args.add(flag);
            }
            CliRun.Run r = CliRun.run(args.toArray(String[]::new));
            assertEquals(0, r.rc(), r.toString());
            assertEquals("--channels-last".equals(flag), r.err().contains("; channels-last"), flag + ": " + r.err());
            for (String line : Files.readAllLines(dir.resolve("log.csv")).subList(1, 3)) {
                losses.add(Double.parseDouble(line.split(",")[1]));
            }
        }
        // the same recipe and seed: the channels-last backbone gives the NCHW losses to float rounding
        for (int run = 1; run < flags.length; run++) {
            for (int i = 0; i < 2; i++) {
                assertEquals(losses.get(i), losses.get(2 * run + i), 1e-5 * Math.abs(losses.get(i)),
                        flags[run] + ": loss of step " + (i + 1));
            }
        }
    }

    @Test
    void torchvisionClassifierInitLoadsTheBackboneAndKeepsANewProjection(@TempDir Path out) throws IOException {
        // an ImageNet classifier in torchvision's layout: the backbone, no GeM, fc 1000 × C
        Path tv = out.resolve("resnet18-tiny-imagenet.safetensors");
        var opts = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);
        java.util.Map<String, double[]> backbone = new java.util.LinkedHashMap<>();
        try (RetrievalNet donor = new RetrievalNet(opts, new Random(77))) {
            java.util.Map<String, Tensor> sd = new java.util.LinkedHashMap<>(donor.stateDict());
            sd.remove("adpool.p");
            sd.remove("fc.weight");
            sd.remove("fc.bias");
            sd.forEach((k, v) -> backbone.put(k, v.toDoubleArray()));
            int c = donor.stateDict().get("fc.weight").shape(1);
            try (Tensor classifier = Tensor.zeros(1000, c); Tensor classifierBias = Tensor.zeros(1000)) {
                sd.put("fc.weight", classifier);
                sd.put("fc.bias", classifierBias);
                dir4j.nn.io.Safetensors.write(tv, sd, Map.of());
            }
        }
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--init",
                tv.toString(), "--lr", "0", "--out", out.resolve("run").toString()));
        args.addAll(List.of(TINY));
        args.set(args.indexOf("--steps") + 1, "1");
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        try (RetrievalNet trained = NetworkCheckpoint.load(out.resolve("run/model.safetensors")).net()) {
            var sd = trained.stateDict();
            assertArrayEquals(new int[] {8, sd.get("fc.weight").shape(1)}, sd.get("fc.weight").shape(),
                    "a fresh 8-d projection, not the classifier");
            for (var e : backbone.entrySet()) { // lr 0: the loaded backbone is still there
                assertArrayEquals(e.getValue(), sd.get(e.getKey()).toDoubleArray(), 0.0, e.getKey());
            }
        }
        // a backbone of another width is refused, naming the option to check
        args.set(args.indexOf("--base-width") + 1, "8");
        args.add("--overwrite");
        CliRun.Run bad = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, bad.rc(), bad.toString());
        assertTrue(bad.err().contains("--base-width"), bad.err());
    }

    /**
     * --init with a reference-format retrieval checkpoint (.pt, module.-prefixed state dict, model_options):
     * the whole network is loaded, GeM p and projection included, and its architecture comes from the
     * checkpoint, not from --arch / --base-width / --out-dim; with lr 0 the saved model holds the same
     * weights, and its model_options describe it.
     */
    @Test
    void aReferenceRetrievalCheckpointInitialisesTheWholeNetwork(@TempDir Path out) throws IOException {
        Path ref = dir4j.retrieval.image.ImageFixtures.path("datasets/checkpoint/tiny_resnet18_w2.pt");
        java.util.Map<String, double[]> want = new java.util.LinkedHashMap<>();
        try (RetrievalNet net = NetworkCheckpoint.load(ref).net()) {
            net.stateDict().forEach((k, v) -> want.put(k, v.toDoubleArray()));
        }
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--init",
                ref.toString(), "--lr", "0", "--out", out.resolve("run").toString()));
        args.addAll(List.of(TINY));
        args.remove("--quiet");
        args.set(args.indexOf("--steps") + 1, "1");
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("init: retrieval network from " + ref + " (Options[arch=resnet18, outDim=8, "
                + "pooling=gem, gemp=3.0, withoutFc=false, normFeatures=false, baseWidth=2, centerBias=0.0])"), r.err());
        // the command line's network options that the checkpoint overrides are named; those it agrees with are not
        assertTrue(r.err().contains("note: --base-width 4 not applied: the network comes whole from " + ref
                + " (--base-width 2)"), r.err());
        assertFalse(r.err().contains("--arch resnet18 not applied") || r.err().contains("--out-dim 8 not applied"),
                r.err());
        NetworkCheckpoint.Loaded trained = NetworkCheckpoint.load(out.resolve("run/model.safetensors"));
        try (RetrievalNet net = trained.net()) {
            assertEquals(2, net.options().baseWidth(), "the checkpoint's width, not --base-width 4");
            var sd = net.stateDict();
            assertEquals(want.keySet(), sd.keySet());
            for (var e : want.entrySet()) { // lr 0 and frozen batch norms: nothing moved, adpool.p and fc included
                assertArrayEquals(e.getValue(), sd.get(e.getKey()).toDoubleArray(), 0.0, e.getKey());
            }
            assertEquals(2.75, sd.get("adpool.p").item(), 1e-6);
        }
    }

    /** An --init file without the backbone's weights: the message names a few and counts the rest. */
    @Test
    void initWithoutABackboneSaysSoInOneShortLine(@TempDir Path out) throws IOException {
        Path pcaOnly = out.resolve("w.safetensors");
        try (Tensor mean = Tensor.zeros(8)) {
            dir4j.nn.io.Safetensors.write(pcaOnly, Map.of("pca.learned.mean_", mean), Map.of());
        }
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--init",
                pcaOnly.toString(), "--out", out.resolve("run").toString()));
        args.addAll(List.of(TINY));
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        // ResNet-18's backbone entries: stem conv + bn (1 + 5), 8 blocks of 2 convs + 2 bns (8 × 12), 3
        // downsamples of a conv + a bn (3 × 6): 6 + 96 + 18 = 120
        assertTrue(r.err().contains("not a resnet18 of width 4 backbone (check --arch / --base-width): missing 120 "
                + "[conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var, ...]"), r.err());
        assertTrue(r.err().length() < 400, r.err());
    }

    @Test
    void badOptionsAreUsageErrors(@TempDir Path out) {
        CliRun.Run r = CliRun.run("train", "--out", out.toString(), "--steps", "2");
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--train-list FILE or --synth"), r.err());
        r = CliRun.run("train", "--synth", "--loss", "listwise", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("loss must be ap, tap"), r.err());
        r = CliRun.run("train", "--synth", "--batch-size", "30", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--batch-size 30 is not a multiple of --images-per-class (4)"), r.err());
        r = CliRun.run("train", "--train-list", trainList.toString(), "--device", "tpu", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("unknown device 'tpu'"), r.err());
        r = CliRun.run("train", "--synth", "--batch-size", "32", "--classes-per-batch", "8", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("give --batch-size or --classes-per-batch, not both"), r.err());
        r = CliRun.run("train", "--synth", "--images-per-class", "1", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--images-per-class must be at least 2 (a query needs a positive), got 1"),
                r.err());
        r = CliRun.run("train", "--synth", "--root", out.toString(), "--out", out.resolve("a").toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--root goes with --train-list"), r.err());
        r = CliRun.run("train", "--synth", "--resume", "--overwrite", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--resume and --overwrite do not go together"), r.err());
        r = CliRun.run("train", "--synth", "--tf32", "--out", out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--tf32 applies to --device cuda only"), r.err());
    }

    /** The tiny arguments for a run into {@code out}, with {@code changes} (option, value, ...) set or added. */
    private static List<String> tiny(Path out, String... changes) {
        List<String> args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--out",
                out.toString()));
        args.addAll(List.of(TINY));
        for (int i = 0; i < changes.length; i += 2) {
            int at = args.indexOf(changes[i]);
            if (at < 0) {
                args.addAll(List.of(changes[i], changes[i + 1]));
            } else {
                args.set(at + 1, changes[i + 1]);
            }
        }
        return args;
    }

    /** Every file under a folder and its bytes, by relative path. */
    private static Map<String, List<Byte>> snapshot(Path dir) throws IOException {
        Map<String, List<Byte>> files = new java.util.TreeMap<>();
        try (var walk = Files.walk(dir)) {
            for (Path f : walk.filter(Files::isRegularFile).toList()) {
                byte[] b = Files.readAllBytes(f);
                List<Byte> bytes = new ArrayList<>(b.length);
                for (byte x : b) {
                    bytes.add(x);
                }
                files.put(dir.relativize(f).toString(), bytes);
            }
        }
        return files;
    }

    /**
     * A refused --overwrite (or --resume) leaves every file of OUT byte-identical: the recipe, the
     * network options and the data are checked before OUT is touched. (A refused run used to have
     * deleted log.csv and rewritten train-config.json, beside the old checkpoint, already.)
     */
    @Test
    void aRefusedRunLeavesEveryFileOfOutAsItWas(@TempDir Path out) throws IOException {
        CliRun.Run first = CliRun.run(tiny(out).toArray(String[]::new));
        assertEquals(0, first.rc(), first.toString());
        Map<String, List<Byte>> before = snapshot(out);
        assertTrue(before.keySet().containsAll(List.of("checkpoint.safetensors", "model.safetensors", "log.csv",
                "train-config.json", "loss.png")), before.keySet().toString());
        String[][] refused = {
            {"--nq", "1"},
            {"--gem-p", "0"},
            {"--crop-size", "0"},
            {"--classes-per-batch", "10"},
            {"--min-size", "50", "--max-size", "40"},
            {"--bin-min", "1", "--bin-max", "-1"},
            {"--pooling", "median"},
            {"--arch", "resnet7"},
        };
        for (String[] change : refused) {
            List<String> args = tiny(out, change);
            args.add("--overwrite");
            CliRun.Run r = CliRun.run(args.toArray(String[]::new));
            assertEquals(2, r.rc(), String.join(" ", change) + ": " + r);
            assertEquals(before, snapshot(out), String.join(" ", change) + " --overwrite left OUT as it was");
        }
        // a failure found before training (an --init that is not there) leaves it too
        List<String> args = tiny(out, "--init", out.resolve("absent.safetensors").toString());
        args.add("--overwrite");
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        assertEquals(before, snapshot(out), "--init absent --overwrite left OUT as it was");
        // and so does a resume refused for another network, once the checkpoint is read
        args = tiny(out, "--arch", "resnet34", "--steps", "3");
        args.add("--resume");
        r = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("was written for another network"), r.err());
        assertEquals(before, snapshot(out), "a refused --resume left OUT as it was");
    }

    /**
     * A setting out of range, by itself or beside another, is a usage error (status 2) before
     * anything is written, naming the option as typed and the value; the reviewer's cases first.
     */
    @Test
    void outOfRangeSettingsAreUsageErrorsNamingTheOption(@TempDir Path tmp) {
        long classes = java.util.Arrays.stream(labels).distinct().count();
        String[][] cases = {
            {"--nq 1", "--nq must be in [2, 100] (the AP loss's bins), got 1"},
            {"--gem-p 0", "--gem-p must be a finite number above 0"},
            {"--crop-size 0", "--crop-size must be at least 1, got 0"},
            {"--classes-per-batch 10", "--classes-per-batch must be at most " + classes + ", the classes of the "
                    + "training data with two or more images, got 10 (" + trainList + ")"},
            {"--min-size 50 --max-size 40", "--max-size must be at least --min-size (50), got 40"},
            {"--bin-min 1 --bin-max -1", "--bin-max must exceed --bin-min (1.0), got -1.0"},
            {"--classes-per-batch 1", "--classes-per-batch must be at least 2 (a query needs negatives from another "
                    + "class), got 1"},
            {"--crop-size 48", "--min-size must be at least --crop-size (48): the crop is cut from the scaled image, "
                    + "got 32"},
            {"--steps 0", "--steps must be at least 1, got 0"},
            {"--sub-batch 0", "--sub-batch must be at least 1, got 0"},
            {"--checkpoint-every 0", "--checkpoint-every must be at least 1, got 0"},
            {"--validate-every -1", "--validate-every must be at least 0 (0: never), got -1"},
            {"--warmup -1", "--warmup must be at least 0, got -1"},
            {"--lr -0.1", "--lr must be a finite number, at least 0, got -0.1"},
            {"--lr NaN", "--lr must be a finite number, at least 0, got NaN"},
            {"--weight-decay -1", "--weight-decay must be a finite number, at least 0, got -1.0"},
            {"--momentum 1", "--momentum must be in [0, 1), got 1.0"},
            {"--margin -0.5", "--margin must be a finite number, at least 0, got -0.5"},
            {"--tilt -1", "--tilt must be a finite number, at least 0, got -1.0"},
            {"--jitter 1.5", "--jitter must be in [0, 1], got 1.5"},
            {"--optimizer lion", "--optimizer must be adam, adamw or sgd, got lion"},
            {"--schedule linear", "--schedule must be constant, step, exponential or cosine, got linear"},
            {"--out-dim 0", "--out-dim must be at least 1, got 0"},
            {"--base-width 0", "--base-width must be at least 1, got 0"},
            {"--val-image-size -1", "--val-image-size must be at least 0"},
            {"--pooling median", "--pooling must be gem, max or avg, got median"},
            {"--arch resnet7", "--arch: unknown ResNet 'resnet7': use resnet18, resnet34, resnet50, resnet101 or "
                    + "resnet152"},
            {"--batch-size 2", "the classes per batch (--batch-size / --images-per-class) must be at least 2"},
            {"--batch-size 0", "--batch-size must be at least 1, got 0"},
        };
        int i = 0;
        for (String[] c : cases) {
            Path out = tmp.resolve("run" + i++);
            List<String> args = tiny(out, c[0].split(" "));
            if (c[0].startsWith("--batch-size")) {
                args.subList(args.indexOf("--classes-per-batch"), args.indexOf("--classes-per-batch") + 2).clear();
            }
            CliRun.Run r = CliRun.run(args.toArray(String[]::new));
            assertEquals(2, r.rc(), c[0] + ": " + r);
            assertTrue(r.err().startsWith("dir4j train: " + c[1]), c[0] + ": " + r.err());
            assertTrue(r.err().contains("Try 'dir4j train --help'"), r.err());
            assertFalse(r.err().contains("Width (0)"), "no AWT message: " + r.err());
            assertTrue(Files.notExists(out), c[0] + ": nothing written");
        }
    }

    /** A setting that only the --config file gives is named as its key in that file. */
    @Test
    void aSettingFromTheConfigFileIsNamedByItsKeyThere(@TempDir Path tmp) throws IOException {
        Path recipe = tmp.resolve("recipe.json");
        Files.writeString(recipe, "{\"nq\": 1, \"cropSize\": 64}");
        List<String> args = tiny(tmp.resolve("run"), "--config", recipe.toString());
        args.subList(args.indexOf("--crop-size"), args.indexOf("--crop-size") + 2).clear();
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("nq (" + recipe + ") must be in [2, 100]"), r.err());
        // an option overrides the file's value, and the file's other setting is named by its key
        args.addAll(List.of("--nq", "20"));
        r = CliRun.run(args.toArray(String[]::new));
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--min-size must be at least cropSize (" + recipe + ") (64)"), r.err());
        assertTrue(Files.notExists(tmp.resolve("run")), "nothing written");
    }

    /** Each recipe setting's option is its key in kebab case (the names messages use), and exists. */
    @Test
    void everyRecipeSettingHasTheOptionItsMessagesName() {
        var options = new picocli.CommandLine(new Main()).getSubcommands().get("train").getCommandSpec();
        for (String key : TrainConfig.defaults().toMap().keySet()) {
            String option = TrainCommand.option(key);
            assertTrue(options.findOption(option) != null, key + " → " + option);
            String described = String.join(" ", options.findOption(option).description());
            assertTrue(described.startsWith("[" + key + "]"), option + " documents its key: " + described);
        }
    }

    /**
     * Data that no setting can train on (one class of two or more images) fail with status 1,
     * naming the list, before anything is written.
     */
    @Test
    void aListWithTooFewClassesFailsNamingIt(@TempDir Path tmp) throws IOException {
        Path list = tmp.resolve("one-class.txt");
        int other = 0;
        while (labels[other] == labels[0]) {
            other++;
        }
        int same = 1;
        while (labels[same] != labels[0]) {
            same++;
        }
        Files.writeString(list, images.get(0) + " 0\n" + images.get(same) + " 0\n" + images.get(other) + " 7\n");
        List<String> args = tiny(tmp.resolve("run"), "--train-list", list.toString(), "--classes-per-batch", "2");
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains(list + ": sampler: need at least two classes with two or more images, found 1 "
                + "(of 2 classes)"), r.err());
        assertTrue(Files.notExists(tmp.resolve("run")), "nothing written");
    }

    /**
     * Files that are no JPEG or PNG (empty, text, a GIF) fail the run before anything is written,
     * all named in one message with read's reasons, not one by one whenever training first draws
     * them.
     */
    @Test
    void unreadableTrainingImagesAreAllNamedBeforeTrainingStarts(@TempDir Path tmp) throws IOException {
        Path gif = dir4j.retrieval.image.ImageFixtures.path("images/picture.gif");
        Path empty = dir4j.retrieval.image.ImageFixtures.path("images/empty.jpg");
        Path text = dir4j.retrieval.image.ImageFixtures.path("images/not_an_image.jpg");
        Path list = tmp.resolve("mixed.txt");
        Files.writeString(list, labelled() + gif + " 0\n" + empty + " 1\n" + text + " 1\n");
        CliRun.Run r = CliRun.run(tiny(tmp.resolve("run"), "--train-list", list.toString()).toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("dir4j train: " + list + ": 3 of " + (images.size() + 3)
                + " images cannot be trained on:\n"
                + "  " + gif + ": a GIF image; dir4j reads JPEG and PNG only (convert it first)\n"
                + "  " + empty + ": the file is empty (0 bytes)\n"
                + "  " + text + ": not a JPEG or PNG image (it starts with bytes 74 68 69 73)\n"
                + "fix them or convert them to JPEG or PNG, or leave them out of the list"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertTrue(Files.notExists(tmp.resolve("run")), "nothing written");
    }

    /**
     * A truncated image passes the first-bytes check; training stops when it first draws it
     * (exit 1), naming the file, what is wrong, the step and what to do.
     */
    @Test
    void aTruncatedTrainingImageStopsTheRunNamingItAndTheStep(@TempDir Path tmp) throws IOException {
        Path cut = dir4j.retrieval.image.ImageFixtures.path("images/truncated.jpg");
        Path list = tmp.resolve("cut.txt");
        Files.writeString(list, labelled() + cut + " cut\n" + cut + " cut\n");
        int classes = (int) java.util.Arrays.stream(labels).distinct().count() + 1;
        CliRun.Run r = CliRun.run(tiny(tmp.resolve("run"), "--train-list", list.toString(), "--classes-per-batch",
                Integer.toString(classes)).toArray(String[]::new));
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains("dir4j train: " + cut + ": corrupt or truncated JPEG data"), r.err());
        assertTrue(r.err().contains("(a training image, drawn at step 1; fix it or leave it out of the training "
                + "list)"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }

    /**
     * Full-size photos whose decoded pixels outgrow the heap still train: eight 3000x2000 JPEGs are
     * 144 MB of RGB, more than a JVM of 128 MiB holds; the trainer keeps decoded images only while
     * there is room (it kept them all, and such a run failed at step 1 with "did not fit in the free
     * Java heap").
     */
    @Test
    void photosLargerThanTheHeapTogetherStillTrain(@TempDir Path tmp) throws IOException, InterruptedException {
        StringBuilder list = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(3000, 2000,
                    java.awt.image.BufferedImage.TYPE_3BYTE_BGR);
            java.awt.Graphics2D g = img.createGraphics();
            g.setPaint(new java.awt.GradientPaint(0, 0, new java.awt.Color(30 * i, 90, 200), 3000, 2000,
                    new java.awt.Color(250, 20 * i, 10)));
            g.fillRect(0, 0, 3000, 2000);
            g.dispose();
            Path file = tmp.resolve("photo" + i + ".jpg");
            assertTrue(javax.imageio.ImageIO.write(img, "jpg", file.toFile()));
            list.append(file).append(' ').append(i / 2).append('\n');
        }
        Path listFile = Files.writeString(tmp.resolve("photos.txt"), list);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx128m",
                "-Ddir4j.threads=1", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(tiny(tmp.resolve("run"), "--train-list", listFile.toString(), "--classes-per-batch", "4",
                "--images-per-class", "2"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.contains("trained 2 steps; last loss "), out);
        assertTrue(Files.exists(tmp.resolve("run/model.safetensors")), out);
    }

    /**
     * The probe runs on several threads; the message still lists the bad files in the list's
     * order (the first 20, then a count), each once, with read's reasons.
     */
    @Test
    void theProbeNamesBadImagesInTheListsOrder(@TempDir Path tmp) throws IOException {
        Path good = dir4j.retrieval.image.ImageFixtures.path("images/baseline.jpg");
        List<Path> paths = new ArrayList<>();
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            if (i % 7 == 3) {
                Path empty = Files.createFile(tmp.resolve("empty" + i + ".jpg"));
                paths.add(empty);
                want.add(empty + ": the file is empty (0 bytes)");
            } else if (i % 11 == 5) {
                Path missing = tmp.resolve("missing" + i + ".jpg");
                paths.add(missing);
                want.add(missing + ": no such file");
            } else {
                paths.add(good);
            }
        }
        Path list = tmp.resolve("list.txt");
        IOException e = assertThrows(IOException.class,
                () -> TrainCommand.probeImages(new TrainCommand.Data(paths, new int[paths.size()], list)));
        assertEquals(list + ": " + want.size() + " of 1000 images cannot be trained on:\n  "
                + String.join("\n  ", want.subList(0, 20)) + "\n  \u2026 and " + (want.size() - 20) + " more"
                + "\nfix them or convert them to JPEG or PNG, or leave them out of the list", e.getMessage());
        TrainCommand.probeImages(new TrainCommand.Data(List.of(good, good), new int[2], list)); // passes
    }

    /** The benchmark's training list with absolute paths, 'path label' lines. */
    private static String labelled() {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < images.size(); i++) {
            s.append(images.get(i)).append(' ').append(labels[i]).append('\n');
        }
        return s.toString();
    }

    /** A training list without an image (only blank lines) fails naming the file (exit 1), before any output. */
    @Test
    void anEmptyTrainingListFailsNamingIt(@TempDir Path out) throws IOException {
        Path empty = out.resolve("empty.txt");
        Files.writeString(empty, "\n\n");
        CliRun.Run r = CliRun.run("train", "--train-list", empty.toString(), "--out", out.resolve("run").toString());
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains(empty + ": the list names no image"), r.err());
        assertTrue(Files.notExists(out.resolve("run/checkpoint.safetensors")), "nothing written");
    }

    @Test
    void helpDocumentsEveryOption() {
        CliRun.assertHelpDocumentsEveryOption("train");
        // the plot files it names are the ones Plots writes (PlotsTest)
        assertTrue(CliRun.run("train", "--help").out().contains("loss.png and validation.png"));
    }

    /** Where no GPU is usable, --device cuda is a usage error before the training data is read. */
    @Test
    void cudaIsRefusedUpFront(@TempDir Path out) {
        CliRun.assertCudaIsRefused("train", "--train-list", out.resolve("not-read.txt").toString(), "--out",
                out.toString());
    }

    /**
     * --synth trains on a benchmark that dir4j synth made with other sizes, as it is (it used to be
     * refused as "made from another configuration"): the losses equal those of its train.txt.
     */
    @Test
    void synthUsesTheBenchmarkDirSynthMadeWithItsSizes(@TempDir Path out) throws IOException {
        String props = Files.readString(data.resolve("synth/synth.properties"));
        List<String> args = new ArrayList<>(List.of("train", "--synth", "--data-root", data.toString(), "--out",
                out.resolve("synth").toString()));
        args.addAll(List.of(TINY));
        CliRun.Run r = CliRun.run(args.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertEquals(props, Files.readString(data.resolve("synth/synth.properties")), "the benchmark is kept");
        args = new ArrayList<>(List.of("train", "--train-list", trainList.toString(), "--out",
                out.resolve("list").toString()));
        args.addAll(List.of(TINY));
        assertEquals(0, CliRun.run(args.toArray(String[]::new)).rc());
        assertEquals(losses(out.resolve("list/log.csv")), losses(out.resolve("synth/log.csv")));
        assertEquals(2, losses(out.resolve("synth/log.csv")).size());
    }

    private static List<String> losses(Path log) throws IOException {
        return Files.readAllLines(log).stream().skip(1).map(l -> l.split(",")[1]).toList();
    }

    static float[] describe(RetrievalNet net) {
        net.eval();
        float[] x = new float[2 * 3 * 32 * 32];
        Random rng = new Random(3);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        try (dir4j.engine.MemoryScope scope = dir4j.engine.MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            return net.forward(Tensor.of(x, 2, 3, 32, 32)).toFloatArray();
        }
    }
}
