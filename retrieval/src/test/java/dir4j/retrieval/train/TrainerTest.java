package dir4j.retrieval.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.synth.SyntheticLandmarks;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training loop: a run interrupted after a checkpoint and resumed ends with exactly the
 * weights of an uninterrupted run (CPU, same seed); the loss goes down; bad settings and a
 * checkpoint of another architecture are clear errors that leave the checkpoint intact.
 */
class TrainerTest {
    @TempDir
    static Path data;

    static List<Path> images = new ArrayList<>();
    static int[] labels;

    static final RetrievalNet.Options NET = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);

    @BeforeAll
    static void benchmark() throws IOException {
        var cfg = new SyntheticLandmarks.Config(3, 48, 4, 3, 1, 1, 1, 1, 0, 1);
        Path dir = SyntheticLandmarks.generate(data, cfg, null);
        List<Integer> ls = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("train.txt"))) {
            String[] f = line.split(" ");
            images.add(dir.resolve(f[0]));
            ls.add(Integer.parseInt(f[1]));
        }
        labels = ls.stream().mapToInt(Integer::intValue).toArray();
    }

    static TrainConfig config(int steps) {
        return TrainConfig.defaults().with(Map.ofEntries(Map.entry("classesPerBatch", "3"),
                Map.entry("imagesPerClass", "2"), Map.entry("subBatch", "4"), Map.entry("steps", "" + steps),
                Map.entry("cropSize", "32"), Map.entry("minSize", "32"), Map.entry("maxSize", "40"),
                Map.entry("lr", "0.01"), Map.entry("checkpointEvery", "2"), Map.entry("frozenBatchNorm", "false"),
                Map.entry("seed", "4"), Map.entry("warmup", "0")));
    }

    static Map<String, double[]> weights(RetrievalNet net) {
        Map<String, double[]> m = new LinkedHashMap<>();
        net.stateDict().forEach((k, v) -> m.put(k, v.toDoubleArray()));
        return m;
    }

    @Test
    void resumedRunEndsWithTheWeightsOfAnUninterruptedOne(@TempDir Path out) throws IOException {
        Map<String, double[]> straight;
        Trainer.History full;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            full = new Trainer(net, images, labels, config(4), out.resolve("a")).run(false, null, null);
            straight = weights(net);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out.resolve("b")).run(false, null, null, 2);
        }
        Map<String, double[]> resumed;
        Trainer.History tail;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(123))) { // other init: all comes from the checkpoint
            tail = new Trainer(net, images, labels, config(4), out.resolve("b")).run(true, null, null);
            resumed = weights(net);
        }
        for (var e : straight.entrySet()) {
            assertArrayEquals(e.getValue(), resumed.get(e.getKey()), 0.0, e.getKey());
        }
        assertEquals(full.losses(), tail.losses(), "the log carries over: same losses at every step");
        assertEquals(List.of(1L, 2L, 3L, 4L), tail.steps());
        assertTrue(Files.exists(out.resolve("b").resolve("loss.png")));
        assertNotEquals(full.losses().get(0), full.losses().get(3));
    }

    /**
     * Each checkpoint records the recipe, the network options and the command's run options, and
     * {@link Trainer#recorded} reads them back from its header (train-config.json where the
     * checkpoint has no recipe); a resume told to stop at a step already done trains nothing.
     */
    @Test
    void theCheckpointRecordsWhatAResumeNeeds(@TempDir Path out) throws IOException {
        Map<String, Object> runOptions = new LinkedHashMap<>();
        runOptions.put("train_list", "/data/train.txt");
        runOptions.put("val_image_size", 96);
        runOptions.put("tf32", false);
        runOptions.put(Trainer.CUSTOM_LOSS, "copied"); // from a recorded run, say: only withLoss records one
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out).withRunOptions(runOptions).run(false, null, null, 2);
        }
        Path file = out.resolve("checkpoint.safetensors");
        Trainer.Recorded r = Trainer.recorded(out);
        assertEquals(config(4).toMap(), r.recipe());
        assertEquals(file, r.recipeSource());
        assertEquals("resnet18_rmac", r.modelOptions().get("arch"));
        assertEquals(8, ((Number) r.modelOptions().get("out_dim")).intValue());
        assertEquals(4, ((Number) r.modelOptions().get("base_width")).intValue());
        assertEquals("/data/train.txt", r.runOptions().get("train_list"));
        assertEquals(96, ((Number) r.runOptions().get("val_image_size")).intValue());
        assertEquals(false, r.runOptions().get("tf32"));
        assertFalse(r.runOptions().containsKey(Trainer.CUSTOM_LOSS), r.runOptions().toString());

        byte[] before = Files.readAllBytes(file);
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer.History h = new Trainer(net, images, labels, config(4), out).run(true, null, null, 2);
            assertEquals(List.of(1L, 2L), h.steps(), "the log up to the checkpoint, nothing more");
        }
        assertArrayEquals(before, Files.readAllBytes(file));

        // a checkpoint without its recipe: the recipe file beside it
        try (var c = dir4j.nn.io.Safetensors.read(file)) {
            Map<String, String> meta = new LinkedHashMap<>(c.metadata());
            meta.remove("train_config");
            dir4j.nn.io.Safetensors.write(out.resolve("old.safetensors"), c.tensors(), meta);
        }
        Files.move(out.resolve("old.safetensors"), file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        r = Trainer.recorded(out);
        assertEquals(out.resolve(Trainer.RECIPE_FILE), r.recipeSource());
        assertEquals(config(4), TrainConfig.defaults().with(r.recipe()));
        // and neither: an empty recipe
        Files.delete(out.resolve(Trainer.RECIPE_FILE));
        r = Trainer.recorded(out);
        assertTrue(r.recipe().isEmpty());
        assertEquals(null, r.recipeSource());
        assertEquals("/data/train.txt", r.runOptions().get("train_list"));
    }

    @Test
    void twoRunsWithTheSameSeedGiveIdenticalWeights(@TempDir Path out) throws IOException {
        Map<String, double[]> a;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(3), out.resolve("a")).run(false, null, null);
            a = weights(net);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(3), out.resolve("b")).run(false, null, null);
            for (var e : weights(net).entrySet()) {
                assertArrayEquals(a.get(e.getKey()), e.getValue(), 0.0, e.getKey());
            }
        }
    }

    @Test
    void checkpointOfAnotherArchitectureIsRefusedAndKept(@TempDir Path out) throws IOException {
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out).run(false, null, null, 2);
        }
        byte[] before = Files.readAllBytes(out.resolve("checkpoint.safetensors"));
        byte[] recipe = Files.readAllBytes(out.resolve(Trainer.RECIPE_FILE));
        byte[] log = Files.readAllBytes(out.resolve("log.csv"));
        var other = new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4);
        try (RetrievalNet net = new RetrievalNet(other, new Random(9))) {
            IOException e = assertThrows(IOException.class,
                    () -> new Trainer(net, images, labels, config(5), out).run(true, null, null));
            // the recorded network options name the difference (not the list of every weight that does not fit)
            assertTrue(e.getMessage().contains("was written for another network: out_dim 8 (now 16)"), e.getMessage());
        }
        assertArrayEquals(before, Files.readAllBytes(out.resolve("checkpoint.safetensors")));
        // the refused run's recipe (5 steps) is not written over the checkpoint's, nor is the log cut
        assertArrayEquals(recipe, Files.readAllBytes(out.resolve(Trainer.RECIPE_FILE)));
        assertArrayEquals(log, Files.readAllBytes(out.resolve("log.csv")));
    }

    /**
     * A kill mid-append can cut log.csv's last line short: a resume drops it with a note and ends
     * as an uninterrupted run does; a malformed line elsewhere is an error naming it.
     */
    @Test
    void aLogCutShortByAKillStillResumes(@TempDir Path out) throws IOException {
        Trainer.History full;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            full = new Trainer(net, images, labels, config(4), out.resolve("a")).run(false, null, null);
        }
        Path b = out.resolve("b");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), b).run(false, null, null, 2);
        }
        Path log = b.resolve("log.csv");
        String whole = Files.readString(log);
        Files.writeString(log, whole + "3,0.12,0.01,5.0,"); // the next step's line, cut by a kill (yet it parses)
        List<String> notes = new ArrayList<>();
        Trainer.History tail;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            tail = new Trainer(net, images, labels, config(4), b).run(true, null, notes::add);
        }
        assertEquals(full.losses(), tail.losses());
        assertTrue(notes.contains("note: " + log + ": its last line was cut short (\"3,0.12,0.01,5.0,\"), dropped"),
                notes.toString());
        assertEquals(5, Files.readAllLines(log).size(), "the header and four steps");

        Path c = out.resolve("c");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), c).run(false, null, null, 2);
        }
        List<String> lines = new ArrayList<>(Files.readAllLines(c.resolve("log.csv")));
        lines.set(1, "1,x,0.01,,");
        Files.write(c.resolve("log.csv"), lines);
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            IOException e = assertThrows(IOException.class,
                    () -> new Trainer(net, images, labels, config(4), c).run(true, null, null));
            assertEquals(c.resolve("log.csv") + ", line 2: not a log row (\"1,x,0.01,,\"); expected "
                    + "step,loss,lr,images_per_second,validation_map", e.getMessage());
        }
    }

    /**
     * A run killed after its last checkpoint, while drawing, leaves old plots: resuming the finished
     * run draws them again. A plot that cannot be written (here a folder in its place) is a note,
     * not the end of training.
     */
    @Test
    void plotsAreRedrawnAndAPlotThatCannotBeWrittenDoesNotStopTraining(@TempDir Path out) throws IOException {
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(2), out).run(false, null, null);
        }
        Files.delete(out.resolve("loss.png"));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer.History h = new Trainer(net, images, labels, config(2), out).run(true, null, null);
            assertEquals(List.of(1L, 2L), h.steps());
        }
        assertTrue(Files.isRegularFile(out.resolve("loss.png")), "drawn again");

        Path blocked = out.resolve("blocked");
        Files.createDirectories(blocked.resolve("loss.png").resolve("in-the-way"));
        List<String> notes = new ArrayList<>();
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer.History h = new Trainer(net, images, labels, config(2), blocked).run(false, null, notes::add);
            assertEquals(List.of(1L, 2L), h.steps(), "trained to the end");
        }
        assertTrue(notes.stream().anyMatch(n -> n.startsWith("note: plots not written: " + blocked.resolve("loss.png")
                + ": cannot be written")), notes.toString());
        assertTrue(Files.isRegularFile(blocked.resolve("checkpoint.safetensors")));
    }

    /**
     * A stop request (what SIGTERM or Ctrl-C makes through stopOnShutdown) ends the run after the
     * step in progress with a checkpoint there, and a resume then ends as an uninterrupted run.
     */
    @Test
    void aStopRequestEndsTheStepWithACheckpoint(@TempDir Path out) throws IOException {
        Map<String, double[]> straight;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(5), out.resolve("a")).run(false, null, null);
            straight = weights(net);
        }
        Path b = out.resolve("b");
        List<String> lines = new ArrayList<>();
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer t = new Trainer(net, images, labels, config(5), b); // checkpoints every 2 steps
            Trainer.History h;
            try (Trainer.StopHandle stop = t.stopOnShutdown(java.time.Duration.ofSeconds(5), lines::add)) {
                h = t.run(false, null, line -> {
                    lines.add(line);
                    if (line.startsWith("step 3/")) {
                        t.requestStop();
                    }
                });
            }
            assertEquals(List.of(1L, 2L, 3L), h.steps());
        }
        assertTrue(lines.contains("stopped on request after step 3; checkpoint written (" + b.resolve(
                "checkpoint.safetensors") + "): a resume continues from there"), lines.toString());
        assertEquals("3", dir4j.nn.io.Safetensors.readMetadata(b.resolve("checkpoint.safetensors")).get("step"));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(5), b).run(true, null, null);
            Map<String, double[]> resumed = weights(net);
            for (var e : straight.entrySet()) {
                assertArrayEquals(e.getValue(), resumed.get(e.getKey()), 0.0, e.getKey());
            }
        }
    }

    /**
     * Validations fall where an uninterrupted run's do: not at --stop-after, and one skipped by a
     * stop (here at the last step, where it is due) is made up by the resume; the logs then match
     * an uninterrupted run's but for the measured speed.
     */
    @Test
    void validationsOfAnInterruptedRunFallWhereAnUninterruptedOnesDo(@TempDir Path out) throws IOException {
        TrainConfig cfg = config(4).with(Map.of("validateEvery", "2"));
        Trainer.Validator byStep = net -> 42.0; // the validation's value is not what is checked here: its place in the log is
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, cfg, out.resolve("a")).run(false, byStep, null);
        }
        Path b = out.resolve("b");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, cfg, b).run(false, byStep, null, 3); // --stop-after 3: no validation there
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer t = new Trainer(net, images, labels, cfg, b);
            t.run(true, byStep, line -> {
                if (line.startsWith("step 4/")) {
                    t.requestStop(); // during the last step, whose validation is due
                }
            });
            assertTrue(t.stoppedEarly(), "stopped before the last step's validation");
        }
        assertEquals(List.of("step,loss,lr,images_per_second,validation_map", "1", "2", "2v", "3", "4"),
                logShape(b.resolve("log.csv")));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer.History h = new Trainer(net, images, labels, cfg, b).run(true, byStep, null);
            assertEquals(List.of(2L, 4L), h.validationSteps());
        }
        assertEquals(LogFiles.withoutSpeed(out.resolve("a/log.csv")), LogFiles.withoutSpeed(b.resolve("log.csv")));

        // a stop during a mid-run step whose validation is due (step 2), then a resume: the validation is made up
        // once; a resume from a checkpoint whose validation was logged adds none
        Path c = out.resolve("c");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer t = new Trainer(net, images, labels, cfg, c);
            t.run(false, byStep, line -> {
                if (line.startsWith("step 2/")) {
                    t.requestStop();
                }
            });
            assertTrue(t.stoppedEarly());
        }
        assertEquals(List.of("step,loss,lr,images_per_second,validation_map", "1", "2"), logShape(c.resolve("log.csv")));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, cfg, c).run(true, byStep, null, 3);
        }
        assertEquals(List.of("step,loss,lr,images_per_second,validation_map", "1", "2", "2v", "3"),
                logShape(c.resolve("log.csv")));
        Path d = out.resolve("d");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, cfg, d).run(false, byStep, null, 2); // checkpoint and validation at 2
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, cfg, d).run(true, byStep, null);
        }
        assertEquals(LogFiles.withoutSpeed(out.resolve("a/log.csv")), LogFiles.withoutSpeed(d.resolve("log.csv")), "no second 2v");
    }

    /** Each log row as its step, with "v" for a validation row. */
    private static List<String> logShape(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log);
        List<String> shape = new ArrayList<>(List.of(lines.get(0)));
        for (String l : lines.subList(1, lines.size())) {
            String[] f = l.split(",", -1);
            shape.add(f[0] + (f[1].isEmpty() ? "v" : ""));
        }
        return shape;
    }

    /**
     * One writer per run folder; the lock holder removes what killed writers left half-written
     * (only dir4j's names, and says which), never a user's look-alike.
     */
    @Test
    void aRunFolderHasOneWriterWhoClearsKilledWritersLeftovers(@TempDir Path out) throws IOException {
        Files.createDirectories(out);
        List<Path> leftovers = List.of(out.resolve(".checkpoint.safetensors.dir4j-k3x9a.tmp"),
                out.resolve(".log.csv.dir4j-0abc.tmp"));
        for (Path p : leftovers) {
            Files.write(p, new byte[100]);
        }
        List<Path> users = List.of(Files.writeString(out.resolve("notes.txt"), "mine"),
                Files.writeString(out.resolve(".checkpoint.safetensors.mybackup.tmp"), "mine"),
                Files.writeString(out.resolve("model.safetensors.tmp"), "mine"));
        List<String> notes = new ArrayList<>();
        try (var lock = Trainer.lock(out, notes::add)) {
            for (Path p : leftovers) {
                assertFalse(Files.exists(p), p.toString());
            }
            for (Path p : users) {
                assertTrue(Files.exists(p), p.toString());
            }
            assertEquals(List.of("removed what a stopped run left half-written: .checkpoint.safetensors.dir4j-k3x9a.tmp, "
                    + ".log.csv.dir4j-0abc.tmp"), notes);
            IOException e = assertThrows(IOException.class, () -> Trainer.lock(out, n -> { }));
            assertTrue(e.getMessage().startsWith(out + " (a training run) is being written by another task of this "
                    + "process"), e.getMessage());
        }
        Trainer.lock(out, n -> { }).close(); // free again
    }

    /**
     * A fresh start over an earlier run (--overwrite) removes its checkpoint with its log: a run that
     * stops before its own first checkpoint leaves nothing a --resume would take for its state.
     */
    @Test
    void aFreshStartDropsTheEarlierRunsCheckpointWithItsLog(@TempDir Path out) throws IOException {
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out).run(false, null, null);
        }
        assertTrue(Files.exists(out.resolve("checkpoint.safetensors")));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer t = new Trainer(net, images, labels, config(4), out).withCheckpointWriter((file, tensors, meta) -> {
                throw new IOException("stopped before the first checkpoint");
            });
            assertThrows(IOException.class, () -> t.run(false, null, null));
        }
        assertFalse(Files.exists(out.resolve("checkpoint.safetensors")));
    }

    /**
     * Where Java2D cannot draw (no fonts), the run says so once, as a note where it reports (a
     * command's stderr), not also as a log warning with its own header; without a reporter, once
     * as a warning of the log.
     */
    @Test
    void plotsThatCannotBeDrawnAreReportedOnce(@TempDir Path out) throws IOException {
        Plots.Renderer noFonts = chart -> {
            throw new InternalError("java.lang.RuntimeException: Fontconfig head is null");
        };
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(Trainer.class.getName());
        List<java.util.logging.LogRecord> warnings = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                warnings.add(r);
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(handler);
        try {
            List<String> lines = new java.util.ArrayList<>();
            try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
                new Trainer(net, images, labels, config(4), out.resolve("a")).withPlotRenderer(noFonts)
                        .run(false, null, lines::add);
            }
            assertEquals(1, lines.stream().filter(l -> l.startsWith("note: plots skipped, Java2D cannot draw here"))
                    .count(), lines.toString());
            assertEquals(List.of(), warnings, "no second report in the log");
            try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
                new Trainer(net, images, labels, config(4), out.resolve("b")).withPlotRenderer(noFonts)
                        .run(false, null, null);
            }
            assertEquals(1, warnings.size(), "without a reporter: once in the log");
            assertTrue(warnings.get(0).getMessage().contains("install fontconfig"), warnings.get(0).getMessage());
            assertFalse(Files.exists(out.resolve("a/loss.png")));
        } finally {
            log.removeHandler(handler);
        }
    }

    @Test
    void aFailedCheckpointWriteKeepsThePreviousCheckpointAndSaysSo(@TempDir Path out) throws IOException {
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out).run(false, null, null, 2);
        }
        Path ckpt = out.resolve("checkpoint.safetensors");
        byte[] before = Files.readAllBytes(ckpt);
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer t = new Trainer(net, images, labels, config(4), out).withCheckpointWriter((file, tensors, meta) -> {
                // a disk that fills up half-way through the temporary file
                Files.write(file.resolveSibling(file.getFileName() + ".partial.tmp"), new byte[100]);
                throw new IOException("No space left on device");
            });
            IOException e = assertThrows(IOException.class, () -> t.run(true, null, null));
            assertTrue(e.getMessage().contains("cannot write checkpoint at step 4"), e.getMessage());
            assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
            assertTrue(e.getMessage().contains("previous checkpoint " + ckpt + " is intact"), e.getMessage());
        }
        assertArrayEquals(before, Files.readAllBytes(ckpt), "the last good checkpoint is untouched");
        // and it still resumes to the weights of an uninterrupted run
        Map<String, double[]> straight;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(4), out.resolve("straight")).run(false, null, null);
            straight = weights(net);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(1))) {
            Trainer.History h = new Trainer(net, images, labels, config(4), out).run(true, null, null);
            assertEquals(List.of(1L, 2L, 3L, 4L), h.steps());
            for (var e : weights(net).entrySet()) {
                assertArrayEquals(straight.get(e.getKey()), e.getValue(), 0.0, e.getKey());
            }
        }
    }

    @Test
    void everyLossTrains(@TempDir Path out) throws IOException {
        for (String loss : new String[] {"tap", "tap-simplified", "triplet"}) {
            try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
                Map<String, double[]> before = weights(net);
                Trainer.History h = new Trainer(net, images, labels, config(2).with(Map.of("loss", loss)),
                        out.resolve(loss)).run(false, null, null);
                assertEquals(2, h.losses().size(), loss);
                for (double l : h.losses()) {
                    assertTrue(Double.isFinite(l) && l >= 0 && (loss.equals("triplet") || l <= 1),
                            loss + " loss " + l);
                }
                Map<String, double[]> after = weights(net);
                assertTrue(before.keySet().stream().anyMatch(k -> !java.util.Arrays.equals(before.get(k),
                        after.get(k))), loss + ": the weights moved");
            }
        }
    }

    /**
     * A loss given through the Java API takes the recipe's place: the AP loss given that way trains
     * to the recipe's AP loss's weights and log exactly; a loss of a researcher's own, made of engine
     * ops, gets each batch's descriptors, class ids and step and trains; its name is recorded, a
     * resume without it is refused (also by dir4j train), with another one is noted; a loss that is
     * not a scalar or does not depend on the descriptors is a clear error.
     */
    @Test
    void aCustomLossTakesTheRecipesPlace(@TempDir Path out) throws IOException {
        TrainConfig cfg = config(2);
        Map<String, double[]> recipe;
        Trainer.History recipeLog;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            recipeLog = new Trainer(net, images, labels, cfg, out.resolve("recipe")).run(false, null, null);
            recipe = weights(net);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Trainer.History h = new Trainer(net, images, labels, cfg, out.resolve("same"))
                    .withLoss("ap-again", (d, ls, step) -> new dir4j.retrieval.loss.APLoss(cfg.nq(), cfg.binMin(),
                            cfg.binMax(), false, true).forward(d, ls, null).loss())
                    .run(false, null, null);
            assertEquals(recipeLog.losses(), h.losses());
            Map<String, double[]> same = weights(net);
            recipe.forEach((k, v) -> assertArrayEquals(v, same.get(k), 0.0, k));
        }

        // mean over positive pairs (i != j, same class) of 1 - s_ij
        List<Long> steps = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        Trainer.BatchLoss mine = (d, ls, step) -> {
            Tensor l = new PositivePairsLoss().loss(d, ls, step);
            steps.add(step);
            values.add(l.item());
            return l;
        };
        Path run = out.resolve("mine");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            Map<String, double[]> before = weights(net);
            Trainer.History h = new Trainer(net, images, labels, cfg, run).withLoss("positive-pairs", mine)
                    .run(false, null, null);
            assertEquals(List.of(0L, 1L), steps);
            assertEquals(values, h.losses(), "the log holds the loss's values");
            assertTrue(values.get(0) > 0 && values.get(0) < 2, "1 - mean similarity: " + values);
            Map<String, double[]> after = weights(net);
            assertTrue(before.keySet().stream().anyMatch(k -> !java.util.Arrays.equals(before.get(k), after.get(k))),
                    "the weights moved");
        }
        assertEquals("positive-pairs", Trainer.recorded(run).runOptions().get(Trainer.CUSTOM_LOSS));
        TrainConfig longer = config(3);
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            IOException e = assertThrows(IOException.class,
                    () -> new Trainer(net, images, labels, longer, run).run(true, null, null));
            assertTrue(e.getMessage().contains("was trained with the custom loss 'positive-pairs' (Trainer"
                    + ".withLoss): give it again to resume"), e.getMessage());
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            List<String> notes = new ArrayList<>();
            new Trainer(net, images, labels, longer, run).withLoss("renamed", mine).run(true, null, notes::add);
            assertTrue(notes.contains("note: resuming with the custom loss 'renamed' (the checkpoint was trained "
                    + "with the custom loss 'positive-pairs')"), notes.toString());
        }

        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(net, images, labels, cfg, out.resolve("rows")).withLoss("rows",
                            (d, ls, step) -> dir4j.engine.Ops.sum(d, new int[] {1}, false)).run(false, null, null));
            assertTrue(e.getMessage().contains("the loss must be a scalar"), e.getMessage());
            IllegalArgumentException detached = assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(net, images, labels, cfg, out.resolve("detached")).withLoss("detached",
                            (d, ls, step) -> dir4j.engine.Ops.sum(dir4j.engine.Ops.mul(d.detach(),
                                    Tensor.scalar(1.0).requiresGrad(true)), new int[] {0, 1}, false))
                            .run(false, null, null));
            assertTrue(detached.getMessage().contains("the loss does not depend on the descriptors"),
                    detached.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(net, images, labels, cfg, out.resolve("x")).withLoss(" ", mine));
        }
    }

    /**
     * A resume's notes name the losses as they were: a run of the recipe's triplet loss resumed
     * with a custom one names the triplet loss (not the recipe now given), and the recipe's loss
     * settings (loss, nq, bins, margin), which a custom loss does not use, are not reported as
     * changes that make the result differ; a constant loss is the clear error, not the engine's.
     */
    @Test
    void aCustomLossResumeNotesTheLossesAsRecorded(@TempDir Path out) throws IOException {
        Trainer.BatchLoss mine = (d, ls, step) -> dir4j.engine.Ops.sum(d, new int[] {0, 1}, false);
        Path recipeRun = out.resolve("triplet");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(2).with(Map.of("loss", "triplet")), recipeRun)
                    .run(false, null, null, 1);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            List<String> notes = new ArrayList<>();
            new Trainer(net, images, labels, config(2), recipeRun).withLoss("mine", mine).run(true, null, notes::add);
            assertTrue(notes.contains("note: resuming with the custom loss 'mine' (the checkpoint was trained with "
                    + "the recipe's loss, triplet)"), notes.toString());
            assertTrue(notes.stream().noneMatch(n -> n.startsWith("note: resuming with loss")
                    || n.contains("uninterrupted")), notes.toString());
        }
        Path customRun = out.resolve("mine");
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(2), customRun).withLoss("mine", mine).run(false, null, null, 1);
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            List<String> notes = new ArrayList<>();
            new Trainer(net, images, labels, config(2).with(Map.of("nq", "10", "margin", "0.1")), customRun)
                    .withLoss("mine", mine).run(true, null, notes::add);
            assertTrue(notes.stream().noneMatch(n -> n.startsWith("note: resuming with")), notes.toString());
        }
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(net, images, labels, config(1), out.resolve("constant")).withLoss("constant",
                            (d, ls, step) -> Tensor.scalar(1.0)).run(false, null, null));
            assertTrue(e.getMessage().contains("the loss does not depend on the descriptors"), e.getMessage());
        }
    }

    @Test
    void trainingLeavesNoNativeMemoryBehind(@TempDir Path out) throws IOException {
        TrainConfig cfg = config(4).with(Map.of("checkpointEvery", "100"));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            long[] live = new long[3];
            for (int run = 0; run < 3; run++) {
                // 1, 2 and 4 steps: the live native bytes afterwards must not grow with the steps
                new Trainer(net, images, labels, cfg, out.resolve("r" + run)).run(false, null, null,
                        run == 2 ? 4 : run + 1);
                live[run] = dir4j.engine.cpu.NativeMemory.liveBytes();
            }
            assertEquals(live[0], live[1], "native bytes live after 1 and 2 steps");
            assertEquals(live[0], live[2], "native bytes live after 1 and 4 steps");
        }
    }

    @Test
    void badSettingsAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainConfig.defaults().with(Map.of("lossy", "ap")));
        assertTrue(e.getMessage().contains("unknown training setting 'lossy'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrainConfig.defaults().with(Map.of("steps", "ten")));
        assertTrue(e.getMessage().contains("steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new ClassBalancedSampler(new int[] {0, 1, 2}, 2, 2, 0));
        assertTrue(e.getMessage().contains("two or more images"), e.getMessage());
        ClassBalancedSampler s = new ClassBalancedSampler(new int[] {0, 0, 1, 1, 2}, 2, 2, 0);
        assertEquals(List.of(2), s.droppedClasses());
        assertArrayEquals(s.batch(7).images(), new ClassBalancedSampler(new int[] {0, 0, 1, 1, 2}, 2, 2, 0)
                .batch(7).images(), "batches depend only on seed and step");
    }

    /** Each setting out of range, alone or beside another, is refused naming it (as {key}) and its value. */
    @Test
    void everySettingOutOfRangeIsRefusedNamingIt() {
        String[][] cases = {
            {"loss", "listwise", "loss", "loss must be ap, tap, tap-simplified or triplet, got listwise"},
            {"nq", "1", "nq", "nq must be in [2, 100] (the AP loss's bins), got 1"},
            {"nq", "101", "nq", "nq must be in [2, 100] (the AP loss's bins), got 101"},
            {"binMin", "-Infinity", "binMin", "binMin must be a finite number, got -Infinity"},
            {"binMax", "-1", "binMax,binMin", "binMax must exceed binMin (-1.0), got -1.0"},
            {"margin", "-1", "margin", "margin must be a finite number, at least 0, got -1.0"},
            {"classesPerBatch", "1", "classesPerBatch", "classesPerBatch must be at least 2"},
            {"imagesPerClass", "1", "imagesPerClass", "imagesPerClass must be at least 2 (a query needs a positive)"},
            {"subBatch", "0", "subBatch", "subBatch must be at least 1, got 0"},
            {"optimizer", "lion", "optimizer", "optimizer must be adam, adamw or sgd, got lion"},
            {"lr", "NaN", "lr", "lr must be a finite number, at least 0, got NaN"},
            {"weightDecay", "-0.1", "weightDecay", "weightDecay must be a finite number, at least 0, got -0.1"},
            {"momentum", "1", "momentum", "momentum must be in [0, 1), got 1.0"},
            {"schedule", "linear", "schedule", "schedule must be constant, step, exponential or cosine, got linear"},
            {"warmup", "-1", "warmup", "warmup must be at least 0, got -1"},
            {"steps", "0", "steps", "steps must be at least 1, got 0"},
            {"cropSize", "0", "cropSize", "cropSize must be at least 1, got 0"},
            {"maxSize", "250", "maxSize,minSize", "maxSize must be at least minSize (256), got 250"},
            {"cropSize", "300", "minSize,cropSize", "minSize must be at least cropSize (300): the crop is cut from the "
                    + "scaled image, got 256"},
            {"tilt", "Infinity", "tilt", "tilt must be a finite number, at least 0, got Infinity"},
            {"jitter", "1.01", "jitter", "jitter must be in [0, 1], got 1.01"},
            {"checkpointEvery", "0", "checkpointEvery", "checkpointEvery must be at least 1, got 0"},
            {"validateEvery", "-1", "validateEvery", "validateEvery must be at least 0 (0: never), got -1"},
        };
        for (String[] c : cases) {
            TrainConfig.InvalidSetting e = assertThrows(TrainConfig.InvalidSetting.class,
                    () -> TrainConfig.defaults().with(Map.of(c[0], c[1])), c[0] + " " + c[1]);
            assertTrue(e.getMessage().startsWith(c[3]), c[0] + " " + c[1] + ": " + e.getMessage());
            assertEquals(List.of(c[2].split(",")), e.settings(), e.getMessage());
            // a command names each setting its own way
            String named = e.message(k -> "<" + k + ">");
            for (String k : c[2].split(",")) {
                assertTrue(named.contains("<" + k + ">"), named);
            }
        }
        // merged() parses without checking: a caller derives a setting first, then validates
        TrainConfig half = TrainConfig.defaults().merged(Map.of("steps", "0"));
        assertEquals(0, half.steps());
        assertThrows(TrainConfig.InvalidSetting.class, half::validated);
    }

    /**
     * What validated() accepts, the AP loss and the augmentation accept (their limits, which the
     * trainer also checks when it is made), and what they refuse, it refuses.
     */
    @Test
    void validatedAgreesWithTheLossAndTheAugmentationAtTheirLimits() {
        for (int nq : new int[] {2, 100}) {
            TrainConfig cfg = TrainConfig.defaults().with(Map.of("nq", "" + nq, "binMin", "0.5", "binMax", "0.5001"));
            new dir4j.retrieval.loss.APLoss(cfg.nq(), cfg.binMin(), cfg.binMax(), false, true);
        }
        for (int nq : new int[] {1, 101}) {
            assertThrows(IllegalArgumentException.class, () -> new dir4j.retrieval.loss.APLoss(nq, -1, 1));
            assertThrows(TrainConfig.InvalidSetting.class, () -> TrainConfig.defaults().with(Map.of("nq", "" + nq)));
        }
        assertThrows(IllegalArgumentException.class, () -> new dir4j.retrieval.loss.APLoss(20, 1, -1));
        TrainConfig equal = TrainConfig.defaults().with(Map.of("cropSize", "1", "minSize", "1", "maxSize", "1",
                "tilt", "0", "jitter", "1"));
        new Augmentation(equal.minSize(), equal.maxSize(), equal.cropSize(), equal.tilt(), equal.jitter());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Augmentation(256, 320, 0, 10, 0.2));
        assertTrue(e.getMessage().contains("need 1 ≤ cropSize ≤ minSize ≤ maxSize, got 0, 256, 320"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Augmentation(256, 320, 224, 10, 1.5));
        assertThrows(IllegalArgumentException.class, () -> new Augmentation(256, 320, 224, Double.NaN, 0.2));
    }

    /**
     * More classes per batch than the labels have is a setting out of range (the option's fault);
     * labels with fewer than two classes of two images are the data's (any settings).
     */
    @Test
    void samplerTellsASettingOutOfRangeFromDataThatCannotTrain(@TempDir Path out) {
        TrainConfig.InvalidSetting e = assertThrows(TrainConfig.InvalidSetting.class,
                () -> new ClassBalancedSampler(new int[] {0, 0, 1, 1, 2}, 3, 2, 0));
        assertEquals("classesPerBatch must be at most 2, the classes of the training data with two or more images, "
                + "got 3", e.getMessage());
        assertEquals(List.of("classesPerBatch"), e.settings());
        assertThrows(TrainConfig.InvalidSetting.class, () -> new ClassBalancedSampler(new int[] {0, 0, 1, 1}, 1, 2, 0));
        assertThrows(TrainConfig.InvalidSetting.class, () -> new ClassBalancedSampler(new int[] {0, 0, 1, 1}, 2, 1, 0));
        IllegalArgumentException data = assertThrows(IllegalArgumentException.class,
                () -> new ClassBalancedSampler(new int[] {0, 0, 1}, 2, 2, 0));
        assertFalse(data instanceof TrainConfig.InvalidSetting, data.getMessage());
        assertTrue(data.getMessage().contains("need at least two classes with two or more images, found 1 (of 2 "
                + "classes)"), data.getMessage());

        // the trainer checks them when it is made (and Trainer.check without a network): nothing written
        TrainConfig tooMany = config(2).with(Map.of("classesPerBatch", "5"));
        assertThrows(TrainConfig.InvalidSetting.class, () -> Trainer.check(images, labels, tooMany));
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            assertThrows(TrainConfig.InvalidSetting.class,
                    () -> new Trainer(net, images, labels, tooMany, out.resolve("run")));
            // a config built directly, unchecked, is checked too
            TrainConfig c = config(2);
            TrainConfig zeroCrop = new TrainConfig(c.loss(), c.nq(), c.binMin(), c.binMax(), c.margin(),
                    c.classesPerBatch(), c.imagesPerClass(), c.subBatch(), c.optimizer(), c.lr(), c.weightDecay(),
                    c.momentum(), c.schedule(), c.warmup(), c.steps(), 0, c.minSize(), c.maxSize(), c.tilt(),
                    c.jitter(), c.frozenBatchNorm(), c.seed(), c.checkpointEvery(), c.validateEvery());
            TrainConfig.InvalidSetting crop = assertThrows(TrainConfig.InvalidSetting.class,
                    () -> new Trainer(net, images, labels, zeroCrop, out.resolve("run")));
            assertEquals(List.of("cropSize"), crop.settings());
        }
        assertThrows(IllegalArgumentException.class, () -> Trainer.check(images, new int[images.size() - 1],
                config(2)));
        assertTrue(Files.notExists(out.resolve("run")), "nothing written");
    }

    /** train-config.json: the recipe, typed, read back by withFile as the same recipe. */
    @Test
    void theRecipeFileReadsBackAsTheSameRecipe(@TempDir Path out) throws IOException {
        TrainConfig cfg = config(3).with(Map.of("lr", "1e-4", "loss", "tap-simplified", "tilt", "7.5"));
        Path file = out.resolve("r.json");
        Files.writeString(file, cfg.toJson());
        assertEquals(cfg, TrainConfig.defaults().withFile(file));
        String json = Files.readString(file);
        assertTrue(json.startsWith("{\n  \"loss\": \"tap-simplified\",\n  \"nq\": 20,\n"), json);
        assertTrue(json.contains("\"frozenBatchNorm\": false,"), json);
        // and a run writes it
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            new Trainer(net, images, labels, config(1), out.resolve("run")).run(false, null, null);
        }
        assertEquals(config(1), TrainConfig.defaults().withFile(out.resolve("run").resolve(Trainer.RECIPE_FILE)));
    }

    @Test
    void augmentationIsDeterministicPerSeed() {
        var aug = new Augmentation(40, 48, 32, 10, 0.2);
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(60, 50,
                java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 50; y++) {
            for (int x = 0; x < 60; x++) {
                img.setRGB(x, y, (x * 4) << 16 | (y * 5) << 8 | 77);
            }
        }
        var a = aug.apply(img, new Random(3));
        var b = aug.apply(img, new Random(3));
        assertEquals(32, a.getWidth());
        assertArrayEquals(a.getRGB(0, 0, 32, 32, null, 0, 32), b.getRGB(0, 0, 32, 32, null, 0, 32));
        Tensor t = Tensor.zeros(1);
        t.close();
    }
}
