package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Json;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.eval.RevisitedProtocol;
import dir4j.retrieval.eval.RevisitedResult;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.search.AlphaExpansion;
import dir4j.retrieval.search.Rankings;
import dir4j.retrieval.synth.SyntheticLandmarks;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j eval` end to end: the synthetic benchmark, the miniature roxford5k, whitening sources, reuse, errors. */
class EvalCommandTest {
    /** 2 test queries, 2 x (2 easy + 1 hard + 1 junk) views + 3 distractors = 11 database images of 48 px. */
    static final SyntheticLandmarks.Config TINY = new SyntheticLandmarks.Config(7, 48, 3, 2, 1, 2, 2, 1, 1, 3);
    static final String[] TINY_NET = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "16",
        "--seed", "1"};

    @TempDir
    static Path shared;
    static Path synthRoot;

    @TempDir
    Path dir;

    @BeforeAll
    static void makeSynth() throws IOException {
        synthRoot = shared.resolve("data");
        SyntheticLandmarks.generate(synthRoot, TINY, null);
    }

    static String[] args(String... more) {
        return more;
    }

    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static RetrievalNet tinyNet() {
        return new RetrievalNet(new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4), new Random(1));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> json(Path file, String dataset) throws IOException {
        Map<String, Object> all = (Map<String, Object>) Json.parse(Files.readString(file, StandardCharsets.UTF_8));
        return (Map<String, Object>) all.get(dataset);
    }

    static double number(Map<String, Object> m, String key) {
        return assertInstanceOf(Number.class, m.get(key), key).doubleValue();
    }

    @Test
    void synthWithATinyRandomNetworkPrintsTheReferenceTableAndMatchesTheLibrary() throws IOException {
        Path out = dir.resolve("res.json");
        Run r = run(concat(args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(), "--image-size", "48",
                "--json", out.toString(), "--quiet"), TINY_NET));
        assertEquals(0, r.rc(), r.toString());
        String[] lines = r.out().split("\n");
        assertTrue(lines[0].startsWith(">> synth: mAP E: "), r.out());
        assertTrue(lines[1].startsWith(">> synth: mP@k[1, 5, 10] E: ["), r.out());
        assertTrue(lines[2].startsWith(" * mAP-easy = "), r.out());
        assertTrue(lines[3].startsWith(" * mAP-medium = "), r.out());
        assertTrue(lines[4].startsWith(" * mAP-hard = "), r.out());
        assertEquals("saved to " + out, lines[5]);

        // the same pipeline through the library
        RetrievalDataset d = RetrievalDataset.load("synth", synthRoot);
        RevisitedResult want;
        try (RetrievalNet net = tinyNet(); MemoryScope scope = MemoryScope.open()) {
            FeatureExtractor fx = new FeatureExtractor(net, ExtractionOptions.defaults()
                    .withPreprocessing(Preprocessing.imagenet(48)).withQuiet(true));
            Tensor db = fx.extract(d.databaseImages(), "DB").descriptors();
            Tensor q = fx.extract(d.queryImages(), "query").descriptors();
            assertEquals(11, db.shape(0));
            assertEquals(2, q.shape(0));
            want = RevisitedProtocol.evaluate(Rankings.bySimilarity(q, db), d.revisitedGroundTruth());
        }
        assertEquals(want.report("synth"), lines[0] + "\n" + lines[1]);
        assertEquals(" * mAP-medium = " + EvalCommand.pythonG(want.medium().map()), lines[3]);
        Map<String, Object> res = json(out, "synth");
        assertEquals(want.easy().map(), number(res, "mAP-easy"));
        assertEquals(want.medium().map(), number(res, "mAP-medium"));
        assertEquals(want.hard().map(), number(res, "mAP-hard"));
        assertEquals(2L, res.get("queries"));
        assertEquals(List.of(1L, 5L, 10L), ((Map<?, ?>) res.get("mP@k")).get("k"));

        // another dataset's entry joins the file; the first stays
        Run val = run(concat(args("eval", "--dataset", "synth-val", "--data-root", synthRoot.toString(), "--image-size",
                "48", "--json", out.toString(), "--quiet", "--detailed"), TINY_NET));
        assertEquals(0, val.rc(), val.toString());
        assertTrue(val.out().startsWith(">> synth-val: mAP E: "), val.out());
        assertEquals(want.medium().map(), number(json(out, "synth"), "mAP-medium"));
        assertEquals(1, ((List<?>) json(out, "synth-val").get("APs-medium")).size(), "one val query, detailed");
    }

    @Test
    void whiteningThenDbaThenQeAsTheReferenceOrdersThem() throws IOException {
        Path root = ImageFixtures.path("datasets");
        Path out = dir.resolve("r.json");
        Run r = run(concat(args("eval", "--dataset", "roxford5k", "--data-root", root.toString(), "--image-size", "32",
                "--whiten", "learn-on-db", "--whitenp", "0.5", "--adba", "1", "3", "--aqe", "1", "2", "--json",
                out.toString()), TINY_NET));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("keeping 2 components"), r.err());

        RetrievalDataset d = RetrievalDataset.load("roxford5k", root);
        RevisitedResult want;
        try (RetrievalNet net = tinyNet(); MemoryScope scope = MemoryScope.open()) {
            FeatureExtractor fx = new FeatureExtractor(net, ExtractionOptions.defaults()
                    .withPreprocessing(Preprocessing.imagenet(32)).withQuiet(true));
            Tensor db = fx.extract(d.databaseImages(), "DB").descriptors();
            Tensor q = fx.extract(d.queryImages(), "query").descriptors();
            PcaWhitening w = PcaWhitening.learn(db);
            WhiteningOptions o = new WhiteningOptions(0.5, 2, 1);
            db = AlphaExpansion.databaseAugmentation(w.apply(db, o), 1, 3);
            q = AlphaExpansion.queryExpansion(w.apply(q, o), db, 1, 2);
            want = RevisitedProtocol.evaluate(Rankings.bySimilarity(q, db), d.revisitedGroundTruth());
        }
        assertTrue(r.out().startsWith(want.report("roxford5k") + "\n"), r.out() + "\nwant\n" + want.report("roxford5k"));
        Map<String, Object> res = json(out, "roxford5k");
        assertEquals(want.medium().map(), number(res, "mAP-medium"));
        Map<?, ?> settings = (Map<?, ?>) res.get("settings");
        assertEquals(List.of(1L, 3.0), settings.get("adba"));
        assertEquals(List.of(1L, 2.0), settings.get("aqe"));
        assertEquals(0.5, settings.get("whitenp"));
        assertEquals(2L, settings.get("whitenv"));
    }

    /**
     * A network checkpoint that carries its own whitening (the reference's layout: pca.NAME.* tensors and
     * scalars in metadata, as dir4j convert writes it): without --whiten, eval says that the reference
     * evaluates with it; with --whiten from-checkpoint NAME, the table is the library's for the
     * extracted descriptors whitened by that PCA.
     */
    @Test
    void aCheckpointsOwnWhiteningIsSuggestedAndApplied() throws IOException {
        Path root = ImageFixtures.path("datasets");
        Path ckpt = dir.resolve("with_pca.safetensors");
        Random rng = new Random(11);
        double[] mean = rng.doubles(16, -0.1, 0.1).toArray();
        double[] components = rng.doubles(4 * 16, -1, 1).toArray();
        double[] variance = {2.0, 1.0, 0.5, 0.25};
        try (RetrievalNet net = tinyNet(); MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> t = new LinkedHashMap<>(net.stateDict());
            t.put("pca.Landmarks_clean.mean_", Tensor.ofDoubles(mean, 16));
            t.put("pca.Landmarks_clean.components_", Tensor.ofDoubles(components, 4, 16));
            t.put("pca.Landmarks_clean.explained_variance_", Tensor.ofDoubles(variance, 4));
            Safetensors.write(ckpt, t, Map.of("model_options", "{\"arch\": \"resnet18_rmac\", \"pooling\": \"gem\"}",
                    "pca.Landmarks_clean", "{\"class\": \"sklearn.decomposition.pca.PCA\", \"whiten\": true}"));
        }
        String[] base = args("eval", "--dataset", "roxford5k", "--data-root", root.toString(), "--image-size", "32",
                "--checkpoint", ckpt.toString());
        Run plain = run(base);
        assertEquals(0, plain.rc(), plain.toString());
        assertTrue(plain.err().contains("the checkpoint carries whitening [Landmarks_clean]; the reference evaluates "
                + "with it: --whiten from-checkpoint Landmarks_clean"), plain.err());

        Path out = dir.resolve("w.json");
        Run whitened = run(concat(base, "--whiten", "from-checkpoint", "Landmarks_clean", "--whitenp", "0.5",
                "--json", out.toString(), "--quiet"));
        assertEquals(0, whitened.rc(), whitened.toString());
        RetrievalDataset d = RetrievalDataset.load("roxford5k", root);
        RevisitedResult want;
        try (RetrievalNet net = tinyNet(); MemoryScope scope = MemoryScope.open()) {
            FeatureExtractor fx = new FeatureExtractor(net, ExtractionOptions.defaults()
                    .withPreprocessing(Preprocessing.imagenet(32)).withQuiet(true));
            PcaWhitening w = PcaWhitening.of(new dir4j.retrieval.whiten.PcaParameters(mean, components, variance, true));
            WhiteningOptions o = new WhiteningOptions(0.5, 4, 1);
            Tensor db = w.apply(fx.extract(d.databaseImages(), "DB").descriptors(), o);
            Tensor q = w.apply(fx.extract(d.queryImages(), "query").descriptors(), o);
            want = RevisitedProtocol.evaluate(Rankings.bySimilarity(q, db), d.revisitedGroundTruth());
        }
        assertTrue(whitened.out().startsWith(want.report("roxford5k") + "\n"),
                whitened.out() + "\nwant\n" + want.report("roxford5k"));
        assertEquals(want.medium().map(), number(json(out, "roxford5k"), "mAP-medium"));
    }

    /** The old protocol (oxford5k: ok/junk per query): the reference's single mAP line, and the library's value. */
    @Test
    void theOldProtocolPrintsOneMapAsTheReferenceDoes() throws IOException {
        Path root = ImageFixtures.path("datasets");
        Path out = dir.resolve("old.json");
        Run r = run(concat(args("eval", "--dataset", "oxford5k", "--data-root", root.toString(), "--image-size", "32",
                "--json", out.toString(), "--quiet", "--detailed"), TINY_NET));
        assertEquals(0, r.rc(), r.toString());
        RetrievalDataset d = RetrievalDataset.load("oxford5k", root);
        dir4j.retrieval.eval.ProtocolResult want;
        try (RetrievalNet net = tinyNet(); MemoryScope scope = MemoryScope.open()) {
            FeatureExtractor fx = new FeatureExtractor(net, ExtractionOptions.defaults()
                    .withPreprocessing(Preprocessing.imagenet(32)).withQuiet(true));
            Tensor db = fx.extract(d.databaseImages(), "DB").descriptors();
            Tensor q = fx.extract(d.queryImages(), "query").descriptors();
            want = dir4j.retrieval.eval.OldProtocol.evaluate(Rankings.bySimilarity(q, db), d.classicGroundTruth());
        }
        assertEquals(dir4j.retrieval.eval.OldProtocol.report("oxford5k", want) + "\n * mAP = "
                + EvalCommand.pythonG(want.map()) + "\nsaved to " + out + "\n", r.out());
        Map<String, Object> res = json(out, "oxford5k");
        assertEquals(want.map(), number(res, "mAP"));
        assertEquals((long) d.queryNames().size(), res.get("queries"));
        assertEquals((long) want.excludedQueries(), res.get("queries-without-positives"));
        assertEquals(d.queryNames().size(), ((List<?>) res.get("APs")).size());
        assertTrue(res.get("mAP-medium") == null, "no revisited entries for the old protocol: " + res.keySet());
    }

    /**
     * Returns once {@code t} sleeps between tries of a waiting {@code OutputLock.acquire} (or after
     * 60 s): a holder that releases then has been waited for, however slow the machine.
     */
    static void waitUntilWaitingForALock(Thread t) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (System.nanoTime() < deadline) {
            StackTraceElement[] stack = t.getStackTrace();
            boolean sleeping = java.util.Arrays.stream(stack).limit(8).anyMatch(f -> f.getClassName()
                    .equals("java.lang.Thread") && f.getMethodName().startsWith("sleep"));
            boolean inAcquire = java.util.Arrays.stream(stack).anyMatch(f -> f.getClassName().equals(
                    "dir4j.engine.io.OutputLock") && f.getMethodName().equals("acquire"));
            if (sleeping && inAcquire) {
                return;
            }
            Thread.sleep(20);
        }
    }

    /** Kept descriptor files that are links (to a larger disk, say) are rewritten where they point, the links kept. */
    @Test
    void keptDescriptorFilesGivenAsLinksAreWrittenWhereTheyPoint() throws Exception {
        Path descs = Files.createDirectories(dir.resolve("linked"));
        Path far = Files.createDirectories(dir.resolve("far"));
        Path db = Files.createSymbolicLink(descs.resolve("synth.dbdescs.npy"), far.resolve("db.npy"));
        Path q = Files.createSymbolicLink(descs.resolve("synth.qdescs.npy"), far.resolve("q.npy"));
        Files.writeString(far.resolve("db.npy"), "an earlier network's");
        Run r = run(concat(concat(args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(), "--image-size",
                "48", "--quiet"), "--descriptors-dir", descs.toString()), TINY_NET));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(Files.isSymbolicLink(db) && Files.isSymbolicLink(q), "the links stay links");
        try (MemoryScope scope = MemoryScope.open()) {
            assertEquals(RetrievalDataset.load("synth", synthRoot).imageNames().size(),
                    dir4j.engine.io.Npy.read(far.resolve("db.npy")).shape(0), "written where the link points");
            assertEquals(2, dir4j.engine.io.Npy.read(far.resolve("q.npy")).rank());
        }
    }

    @Test
    void descriptorsAreKeptAndReusedAndWhiteningsFromFileCheckpointAndDatabaseAgree() throws Exception {
        Path descs = dir.resolve("descs");
        String[] base = args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(), "--image-size", "48",
                "--quiet");
        // another eval extracting this dataset's descriptors there: this one waits, touching nothing, until it is done
        Files.createDirectories(descs);
        Files.writeString(descs.resolve("synth.dbdescs.npy"), "theirs");
        var held = new java.util.concurrent.CountDownLatch(1);
        var untouched = new java.util.concurrent.atomic.AtomicBoolean();
        Thread evaluating = Thread.currentThread();
        Thread extracting = Thread.ofPlatform().start(() -> {
            try (var busy = dir4j.engine.io.OutputLock.acquire(descs.resolve(".synth.eval.lock"), "busy")) {
                held.countDown();
                waitUntilWaitingForALock(evaluating); // the eval below starts meanwhile and must wait
                untouched.set(Files.readString(descs.resolve("synth.dbdescs.npy")).equals("theirs"));
                Files.delete(descs.resolve("synth.dbdescs.npy"));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        held.await();
        Run waited = run(concat(concat(args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(),
                "--image-size", "48"), "--descriptors-dir", descs.toString()), TINY_NET));
        extracting.join();
        assertTrue(untouched.get(), "the waiting eval left the other's file alone");
        assertEquals(0, waited.rc(), waited.toString());
        assertTrue(waited.err().contains(descs.resolve("synth") + ".*descs.npy (descriptors of synth) is being written "
                + "by another task of this process; waiting"), waited.err());
        for (String f : new String[] {"synth.dbdescs.npy", "synth.qdescs.npy", "synth.extraction.properties"}) {
            Files.deleteIfExists(descs.resolve(f));
        }
        Run first = run(concat(concat(base, "--descriptors-dir", descs.toString()), TINY_NET));
        assertEquals(0, first.rc(), first.toString());
        Path dbFile = descs.resolve("synth.dbdescs.npy");
        assertTrue(Files.isRegularFile(dbFile) && Files.isRegularFile(descs.resolve("synth.qdescs.npy")));
        assertEquals(RetrievalDataset.load("synth", synthRoot).imageNames(),
                Files.readAllLines(descs.resolve("synth.dbdescs.ids.txt")));

        // reuse without a network: the same table
        Run reused = run(concat(base, "--descriptors-dir", descs.toString()));
        assertEquals(0, reused.rc(), reused.toString());
        assertEquals(first.out(), reused.out());
        // a plain extract writing one of the kept files (its own lock, not eval's): the reuse waits for it
        var extractHeld = new java.util.concurrent.CountDownLatch(1);
        Thread writer = Thread.ofPlatform().start(() -> {
            try (var busy = dir4j.engine.io.OutputLock.acquire(FeatureExtractor.lockFile(dbFile), "busy")) {
                extractHeld.countDown();
                waitUntilWaitingForALock(evaluating);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        extractHeld.await();
        Run afterExtract = run(args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(), "--image-size",
                "48", "--descriptors-dir", descs.toString()));
        writer.join();
        assertEquals(0, afterExtract.rc(), afterExtract.toString());
        assertTrue(afterExtract.err().contains(dbFile.toAbsolutePath() + " (a descriptor file) is being written by "
                + "another task of this process; waiting"), afterExtract.err());
        assertTrue(afterExtract.out().startsWith(first.out().strip()), afterExtract.out());
        // reuse with another network is refused, not silently mixed
        Run other = run(concat(concat(base, "--descriptors-dir", descs.toString(), "--seed", "2"),
                "--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "16"));
        assertEquals(1, other.rc(), other.toString());
        assertTrue(other.err().contains("made with") && other.err().contains("seed 2"), other.err());
        // and so is reuse under extraction settings given without a network (they could not be applied)
        Run scales = run(concat(base, "--descriptors-dir", descs.toString(), "--scales", "1,0.5"));
        assertEquals(1, scales.rc(), scales.toString());
        assertTrue(scales.err().contains("made with extraction image-size 48, scales 1,")
                && scales.err().contains("now image-size 48, scales 1,0.5"), scales.err());
        // a --json file that is not text: named, with what it should be
        Path binary = Files.write(dir.resolve("results.json"), new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1});
        Run notText = run(concat(base, "--descriptors-dir", descs.toString(), "--json", binary.toString()));
        assertEquals(1, notText.rc(), notText.toString());
        assertTrue(notText.err().contains(binary + " exists but is not JSON (not UTF-8 text)"), notText.err());

        // a whitening learned by dir4j whiten on the same database = learn-on-db (10 components: 11 rows of 16-d)
        Path w = dir.resolve("w.safetensors");
        Run learn = run("whiten", "--learn", dbFile.toString(), "--out", w.toString(), "--whitenv", "10", "--quiet");
        assertEquals(0, learn.rc(), learn.toString());
        Run fromFile = run(concat(base, "--descriptors-dir", descs.toString(), "--whiten", "file", w.toString()));
        Run onDb = run(concat(base, "--descriptors-dir", descs.toString(), "--whiten", "learn-on-db"));
        assertEquals(0, fromFile.rc(), fromFile.toString());
        assertEquals(fromFile.out(), onDb.out());

        // the same whitening inside a checkpoint (as the reference ships it), with the network's weights
        Path ckpt = dir.resolve("net.safetensors");
        try (RetrievalNet net = tinyNet(); Safetensors.Contents pca = Safetensors.read(w, false)) {
            Map<String, Tensor> all = new LinkedHashMap<>(net.stateDict());
            all.putAll(pca.tensors());
            Map<String, String> meta = new LinkedHashMap<>(pca.metadata());
            meta.put("model_options", "{\"arch\": \"resnet18_rmac\", \"pooling\": \"gem\"}");
            Safetensors.write(ckpt, all, meta);
        }
        Run fromCheckpoint = run(concat(base, "--checkpoint", ckpt.toString(), "--whiten", "from-checkpoint",
                "learned"));
        assertEquals(0, fromCheckpoint.rc(), fromCheckpoint.toString());
        assertEquals(fromFile.out(), fromCheckpoint.out());
        Run missing = run(concat(base, "--checkpoint", ckpt.toString(), "--whiten", "from-checkpoint", "Landmarks"));
        assertEquals(1, missing.rc(), missing.toString());
        assertTrue(missing.err().contains("[learned], not 'Landmarks'"), missing.err());
    }

    /**
     * An eval with another network that stops between the database and the query descriptors
     * leaves nothing that a later eval reuses as the first network's: its rerun gives the first table.
     * (It used to leave the other network's database file beside the first's query file and record.)
     */
    @Test
    void anInterruptedEvalLeavesNoMixOfTwoNetworksDescriptors() throws IOException {
        Path root = dir.resolve("data");
        SyntheticLandmarks.generate(root, TINY, null);
        Path descs = dir.resolve("descs");
        String[] base = args("eval", "--dataset", "synth", "--data-root", root.toString(), "--image-size", "48",
                "--quiet", "--descriptors-dir", descs.toString());
        Run first = run(concat(base, TINY_NET));
        assertEquals(0, first.rc(), first.toString());
        // the database descriptors removed by hand, then another network, whose query extraction fails (an
        // unreadable query image) after the database's: the first network's query file and record must not
        // survive beside the other's database file
        Files.delete(descs.resolve("synth.dbdescs.npy"));
        Path query = root.resolve("synth/jpg/test_q000.jpg");
        byte[] image = Files.readAllBytes(query);
        Files.write(query, new byte[0]);
        Run other = run(concat(base, "--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "16",
                "--seed", "2"));
        assertEquals(1, other.rc(), other.toString());
        Files.write(query, image);
        Run again = run(concat(base, TINY_NET));
        assertEquals(0, again.rc(), again.toString());
        assertEquals(first.out(), again.out());
    }

    /** The route --descriptors-dir documents: extract --dataset synth --out DIR/synth.npy, then eval reuses it. */
    @Test
    void descriptorsFromExtractDatasetGiveTheTableOfEvalsOwnExtraction() throws IOException {
        String[] base = args("eval", "--dataset", "synth", "--data-root", synthRoot.toString(), "--image-size", "48",
                "--quiet");
        Run own = run(concat(base, TINY_NET));
        assertEquals(0, own.rc(), own.toString());
        Path descs = dir.resolve("fromExtract");
        Run extract = run(concat(args("extract", "--dataset", "synth", "--data-root", synthRoot.toString(),
                "--image-size", "48", "--quiet", "--out", descs.resolve("synth.npy").toString()), TINY_NET));
        assertEquals(0, extract.rc(), extract.toString());
        Run reused = run(concat(base, "--descriptors-dir", descs.toString()));
        assertEquals(0, reused.rc(), reused.toString());
        assertEquals(own.out(), reused.out());
    }

    @Test
    void aReferenceCheckpointsPcaWhitensReusedDescriptors() throws IOException {
        // 6-d descriptors for the miniature roxford5k, whitened by the sklearn PCA of a reference-shaped checkpoint
        Path descs = Files.createDirectories(dir.resolve("d"));
        Random rng = new Random(4);
        try (MemoryScope scope = MemoryScope.open()) {
            for (String[] f : new String[][] {{"roxford5k.dbdescs.npy", "3"}, {"roxford5k.qdescs.npy", "2"}}) {
                int n = Integer.parseInt(f[1]);
                Tensor t = Tensor.randn(rng, n, 6);
                Npy.write(descs.resolve(f[0]), t.div(t.pow(2).sum(1, true).sqrt()));
            }
        }
        Path ckpt = ImageFixtures.path("whiten/reference_pca/retrieval_zip.pt");
        Run r = run("eval", "--dataset", "roxford5k", "--data-root", ImageFixtures.path("datasets").toString(),
                "--descriptors-dir", descs.toString(), "--whiten", "file", ckpt.toString(), "--whitenv", "3");
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("whitenp 0.25, whitenv 3, whitenm 1.0"), r.err());
        assertTrue(r.out().startsWith(">> roxford5k: mAP E: "), r.out());
    }

    @Test
    void aWhitenvAboveTheComponentsIsReportedAsTheNumberKept() throws IOException {
        Path descs = Files.createDirectories(dir.resolve("d"));
        Random rng = new Random(4);
        try (MemoryScope scope = MemoryScope.open()) {
            for (String[] f : new String[][] {{"roxford5k.dbdescs.npy", "3"}, {"roxford5k.qdescs.npy", "2"}}) {
                Tensor t = Tensor.randn(rng, Integer.parseInt(f[1]), 6);
                Npy.write(descs.resolve(f[0]), t.div(t.pow(2).sum(1, true).sqrt()));
            }
        }
        Path ckpt = ImageFixtures.path("whiten/reference_pca/retrieval_zip.pt");
        String[] base = args("eval", "--dataset", "roxford5k", "--data-root", ImageFixtures.path("datasets").toString(),
                "--descriptors-dir", descs.toString(), "--whiten", "file", ckpt.toString());
        // the checkpoint's PCA keeps 4 components of the 6 dimensions
        Path all = dir.resolve("all.json");
        Path hundred = dir.resolve("100.json");
        Run r4 = run(concat(base, "--whitenv", "4", "--json", all.toString()));
        Run r100 = run(concat(base, "--whitenv", "100", "--json", hundred.toString()));
        assertEquals(0, r4.rc(), r4.toString());
        assertEquals(0, r100.rc(), r100.toString());
        assertTrue(r100.err().contains("whitening from " + ckpt + " (whitenp 0.25, whitenv 4, whitenm 1.0)"),
                r100.err());
        String note = "whitenv 100 is more than the whitening's 4 components: keeping all 4";
        assertEquals(1, r100.err().split(java.util.regex.Pattern.quote(note), -1).length - 1, r100.err());
        assertFalse(r4.err().contains("more than"), r4.err());
        assertEquals(4L, ((Map<?, ?>) json(hundred, "roxford5k").get("settings")).get("whitenv"));
        assertEquals(json(all, "roxford5k").get("mAP-medium"), json(hundred, "roxford5k").get("mAP-medium"));
        Run quiet = run(concat(base, "--whitenv", "100", "--quiet"));
        assertEquals(0, quiet.rc(), quiet.toString());
        assertEquals("", quiet.err());
    }

    @Test
    void badCommandLinesExitWithTwoAndFailuresWithOne() {
        Path root = ImageFixtures.path("datasets");
        String[] ds = args("eval", "--dataset", "roxford5k", "--data-root", root.toString());
        Run unknown = run(concat(args("eval", "--dataset", "holidays", "--data-root", root.toString()), TINY_NET));
        assertEquals(2, unknown.rc());
        assertTrue(unknown.err().contains("unknown dataset 'holidays'") && unknown.err().contains("synth-val"),
                unknown.err());
        assertEquals(2, run(concat(concat(ds, "--whiten", "sometimes"), TINY_NET)).rc());
        assertEquals(2, run(concat(concat(ds, "--aqe", "1"), TINY_NET)).rc(), "K and ALPHA both needed");
        assertEquals(2, run(concat(concat(ds, "--aqe", "one", "3"), TINY_NET)).rc());
        assertEquals(2, run(concat(concat(ds, "--aqe", "9", "3"), TINY_NET)).rc(), "K beyond the 3 database images");
        assertEquals(2, run(concat(concat(ds, "--whiten", "from-checkpoint"), TINY_NET)).rc(), "needs --checkpoint");
        assertEquals(2, run(concat(ds, "--whitenp", "0.5")).rc(), "no network, and --whitenp without --whiten");
        Run noNet = run(ds);
        assertEquals(2, noNet.rc());
        assertTrue(noNet.err().contains("a network is needed"), noNet.err());
        Run noRoot = run(concat(args("eval", "--dataset", "roxford5k", "--data-root", "/nonexistent/data"), TINY_NET));
        assertEquals(1, noRoot.rc());
        assertTrue(noRoot.err().contains("/nonexistent/data") && noRoot.err().contains("roxford5k/gnd_roxford5k.pkl"),
                noRoot.err());
        if (!cudaUsable()) { // here: CUDA cannot start, which is a usage error that says to use the CPU
            Run cuda = run(concat(concat(ds, "--device", "cuda"), TINY_NET));
            assertEquals(2, cuda.rc(), cuda.toString());
            assertTrue(cuda.err().contains("--device cuda") && cuda.err().contains("--device cpu"), cuda.err());
        }
        CliRun.assertHelpDocumentsEveryOption("eval");
    }

    static boolean cudaUsable() {
        try {
            dir4j.engine.Backends.of(dir4j.engine.Device.cuda(0));
            return true;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    @Test
    void percentagesArePrintedAsPythonsPercentG() {
        assertEquals("0.907568", EvalCommand.pythonG(0.9075684));
        assertEquals("0.25", EvalCommand.pythonG(0.25));
        assertEquals("1", EvalCommand.pythonG(1.0));
        assertEquals("0", EvalCommand.pythonG(0.0));
        assertEquals("0.0001", EvalCommand.pythonG(1e-4));
        assertEquals("1.5e-05", EvalCommand.pythonG(1.5e-5));
        assertEquals("1.23457e+06", EvalCommand.pythonG(1234567));
        assertEquals("nan", EvalCommand.pythonG(Double.NaN));
    }
}
