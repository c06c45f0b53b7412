package dir4j.retrieval.extract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.Npy;
import dir4j.engine.io.OutputLock;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.image.BoundingBox;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.image.RgbImage;
import dir4j.retrieval.net.RetrievalNet;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Extraction on a tiny ResNet-18 (base width 4, 8-d descriptors) over the fixture images:
 * equal to calling net.forward on each preprocessed image, batched or not; multi-scale combined
 * as the reference's pool('gem'); resumable with identical output; atomic final file.
 */
class FeatureExtractorTest {
    static RetrievalNet net;
    static final PrintStream QUIET = new PrintStream(PrintStream.nullOutputStream());

    @BeforeAll
    static void tinyNetwork() {
        net = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4), new Random(11));
        net.eval();
    }

    @AfterAll
    static void close() {
        net.close();
    }

    static Path image(String name) {
        return ImageFixtures.path("datasets/roxford5k/jpg/" + name + ".jpg");
    }

    static List<ImageRef> images() {
        List<ImageRef> refs = new ArrayList<>();
        refs.add(ImageRef.of("a", image("all_souls_000001")));               // 24x16
        refs.add(ImageRef.of("b", image("all_souls_000002")));               // 20x20
        refs.add(ImageRef.of("c", image("radcliffe_camera_000003")));        // 16x24
        refs.add(ImageRef.of("d", ImageFixtures.path("images/baseline.jpg"))); // 40x30 -> 32x24
        refs.add(ImageRef.of("a-again", image("all_souls_000001")));         // batched with a
        refs.add(new ImageRef("a-crop", image("all_souls_000001"), new BoundingBox(2, 3.5, 20, 14)));
        refs.add(ImageRef.of("progressive", ImageFixtures.path("images/progressive.jpg"))); // batched with d
        return refs;
    }

    static ExtractionOptions options() {
        return ExtractionOptions.defaults().withPreprocessing(Preprocessing.imagenet(32)).withBatchSize(3)
                .withThreads(2).withQuiet(true);
    }

    /** The network on one preprocessed image, as a user would call it. */
    static float[] direct(ImageRef ref, Preprocessing p, double scale) throws IOException {
        RgbImage img = p.apply(ImageDecoder.read(ref.path()), ref.crop(), scale);
        try (MemoryScope s = MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            return net.forward(Tensor.of(p.normalize(img), 1, 3, img.height(), img.width())).toFloatArray();
        }
    }

    @Test
    void descriptorsEqualTheNetworkOnEachImageBatchedOrNot() throws IOException {
        List<ImageRef> refs = images();
        for (int batch : new int[] {1, 3}) {
            FeatureExtractor fx = new FeatureExtractor(net, options().withBatchSize(batch), QUIET);
            try (FeatureExtractor.Result r = fx.extract(refs, "test")) {
                assertEquals(refs.stream().map(ImageRef::id).toList(), r.ids());
                assertArrayEquals(new int[] {refs.size(), 8}, r.descriptors().shape());
                float[] all = r.descriptors().toFloatArray();
                for (int i = 0; i < refs.size(); i++) {
                    float[] want = direct(refs.get(i), Preprocessing.imagenet(32), 1);
                    float[] got = new float[8];
                    System.arraycopy(all, i * 8, got, 0, 8);
                    assertArrayEquals(want, got, 1e-5f, "image " + refs.get(i).id() + ", batch " + batch);
                }
                // the same image twice gives the same row; the crop gives another
                assertArrayEquals(row(all, 0), row(all, 4), 1e-6f);
                double gap = 0;
                for (int k = 0; k < 8; k++) {
                    gap = Math.max(gap, Math.abs(row(all, 0)[k] - row(all, 5)[k]));
                }
                assertTrue(gap > 1e-4, "the cropped query differs from its whole image: " + gap);
            }
        }
    }

    @Test
    void oneImageAtATimeGivesItsRowOfTheExtraction() throws IOException {
        List<ImageRef> refs = images();
        for (double[] scales : new double[][] {{1}, {1, 0.5}}) {
            FeatureExtractor fx = new FeatureExtractor(net, options().withScales(scales), QUIET);
            try (FeatureExtractor.Result r = fx.extract(refs, "test")) {
                float[] all = r.descriptors().toFloatArray();
                for (int i = 0; i < refs.size(); i++) {
                    ImageRef ref = refs.get(i);
                    float[] one = fx.describe(ImageDecoder.read(ref.path()), ref.crop());
                    assertArrayEquals(row(all, i), one, 1e-6f, "image " + ref.id() + ", " + scales.length + " scales");
                }
            }
            // a region empty once rounded to pixels is named
            IOException e = assertThrows(IOException.class, () -> fx.describe(
                    ImageDecoder.read(refs.get(0).path()), new BoundingBox(5, 5, 5.2, 9)));
            assertTrue(e.getMessage().contains("query region"), e.getMessage());
        }
    }

    @Test
    void aClosedExtractorOrNetworkSaysSoInsteadOfWorkingOnOrFailingElsewhere() throws IOException {
        ImageRef ref = images().get(0);
        RgbImage img = ImageDecoder.read(ref.path());
        FeatureExtractor fx = new FeatureExtractor(net, options(), QUIET);
        float[] before = fx.describe(img, null);
        fx.close();
        fx.close(); // idempotent
        for (org.junit.jupiter.api.function.Executable use : List.<org.junit.jupiter.api.function.Executable>of(
                () -> fx.describe(img, null), () -> fx.extract(List.of(ref), "x"), fx::refresh)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, use);
            assertTrue(e.getMessage().startsWith("the extractor was closed"), e.getMessage());
        }
        try (FeatureExtractor again = new FeatureExtractor(net, options(), QUIET)) {
            assertArrayEquals(before, again.describe(img, null), 0f, "the network itself stays usable");
        }

        RetrievalNet gone = new RetrievalNet(net.options(), new Random(11));
        FeatureExtractor onGone = new FeatureExtractor(gone, options(), QUIET);
        RetrievalNet.Inference taken = gone.inference();
        gone.close();
        try (MemoryScope scope = MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
            Tensor batch = Tensor.of(new float[3 * 32 * 32], 1, 3, 32, 32);
            for (org.junit.jupiter.api.function.Executable use : List.<org.junit.jupiter.api.function.Executable>of(
                    () -> onGone.describe(img, null), () -> gone.forward(batch), gone::inference,
                    () -> taken.describe(batch))) {
                IllegalStateException e = assertThrows(IllegalStateException.class, use);
                assertTrue(e.getMessage().startsWith("the network was closed"), e.getMessage());
            }
        }
    }

    static float[] row(float[] all, int i) {
        float[] r = new float[8];
        System.arraycopy(all, i * 8, r, 0, 8);
        return r;
    }

    @Test
    void twoScalesAreCombinedByTheReferencesSignedGeneralizedMean() throws IOException {
        List<ImageRef> refs = images().subList(0, 4);
        Preprocessing p = Preprocessing.imagenet(32);
        FeatureExtractor fx = new FeatureExtractor(net, options().withScales(1, 0.5).withScalePoolingP(3), QUIET);
        try (FeatureExtractor.Result r = fx.extract(refs, "test")) {
            float[] all = r.descriptors().toFloatArray();
            for (int i = 0; i < refs.size(); i++) {
                float[] d1 = direct(refs.get(i), p, 1);
                float[] d2 = direct(refs.get(i), p, 0.5);
                // by hand: y = cbrt((sign(a)|a|^3 + sign(b)|b|^3) / 2), then y / ||y||
                double[] y = new double[8];
                double norm = 0;
                for (int k = 0; k < 8; k++) {
                    double m = (Math.signum(d1[k]) * Math.pow(Math.abs(d1[k]), 3)
                            + Math.signum(d2[k]) * Math.pow(Math.abs(d2[k]), 3)) / 2;
                    y[k] = Math.signum(m) * Math.cbrt(Math.abs(m));
                    norm += y[k] * y[k];
                }
                for (int k = 0; k < 8; k++) {
                    assertEquals(y[k] / Math.sqrt(norm), all[i * 8 + k], 2e-5, "image " + i + " component " + k);
                }
            }
        }
    }

    @Test
    void scalePoolingMatchesHandValues() {
        float[] y = ScalePooling.combine(new float[][] {{0.6f, -0.8f, 0f}, {0.8f, -0.6f, 0f}}, 3);
        assertArrayEquals(new float[] {(float) Math.sqrt(0.5), (float) -Math.sqrt(0.5), 0f}, y, 1e-6f);
        // one scale: only renormalised
        assertArrayEquals(new float[] {0.6f, 0.8f}, ScalePooling.combine(new float[][] {{3, 4}}, 3), 1e-7f);
        // p = 1 is the plain mean
        assertArrayEquals(new float[] {0.6f, 0.8f}, ScalePooling.combine(new float[][] {{0.2f, 0.8f}, {1.0f, 0.8f}}, 1),
                1e-6f);
        // tiny values are clamped to 1e-6 before the power, as the reference's sympow
        assertEquals(1e-6, ScalePooling.sympow(1e-9, 1), 1e-12);
        assertEquals(0.0, ScalePooling.sympow(0, 3));
    }

    @Test
    void theNetworksLearnedPCanCombineScales() {
        try (RetrievalNet n = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4),
                new Random(2))) {
            Tensor p = n.stateDict().get("adpool.p");
            p.backend().fill(p, 2.5);
            FeatureExtractor fx = new FeatureExtractor(n, options().withScalePoolingP(Double.NaN), QUIET);
            assertEquals(2.5, fx.scalePoolingP(), 1e-6);
        }
        try (RetrievalNet n = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "max", 3, false, false, 4),
                new Random(2))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new FeatureExtractor(n, options().withScalePoolingP(Double.NaN), QUIET));
            assertTrue(e.getMessage().contains("no GeM p"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- files, resume, bad images

    private static List<ImageRef> copies(Path dir, int n) throws IOException {
        Files.createDirectories(dir);
        String[] src = {"all_souls_000001", "all_souls_000002", "radcliffe_camera_000003"};
        List<ImageRef> refs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path p = dir.resolve("img" + i + ".jpg");
            Files.copy(image(src[i % 3]), p);
            refs.add(ImageRef.of("img" + i, p));
        }
        return refs;
    }

    @Test
    void aKilledExtractionResumesFromItsPartsWithIdenticalOutput(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 6);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);

        Path clean = tmp.resolve("clean/feats.npy");
        FeatureExtractor.FileResult cr = new FeatureExtractor(net, o, QUIET).extractToFile(refs, clean, "clean");
        assertEquals(6, cr.rows());
        assertEquals(3, cr.partsWritten());
        assertEquals(tmp.resolve("clean/feats.ids.txt"), cr.ids());
        assertEquals(List.of("img0", "img1", "img2", "img3", "img4", "img5"), Files.readAllLines(cr.ids()));
        assertFalse(Files.exists(tmp.resolve("clean/feats.npy.parts")), "parts removed at the end");

        // image 5 is damaged: the run stops in its third part, after writing the first two
        Path out = tmp.resolve("run/feats.npy");
        byte[] good = Files.readAllBytes(refs.get(5).path());
        Files.write(refs.get(5).path(), new byte[] {(byte) 0xff, (byte) 0xd8, (byte) 0xff, 0, 1, 2});
        IOException e = assertThrows(IOException.class,
                () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "run"));
        assertTrue(e.getMessage().contains(refs.get(5).path().toString()), e.getMessage());
        Path parts = tmp.resolve("run/feats.npy.parts");
        assertFalse(Files.exists(out), "no final file after a failed run");
        assertTrue(Files.exists(parts.resolve("part-000000.npy")));
        assertTrue(Files.exists(parts.resolve("part-000001.npy")));
        assertFalse(Files.exists(parts.resolve("part-000002.npy")));
        long stamp = Files.getLastModifiedTime(parts.resolve("part-000000.npy")).toMillis();

        // repaired and rerun: the finished parts are skipped, the output equals the clean run's
        Files.write(refs.get(5).path(), good);
        FeatureExtractor.FileResult rr = new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "run");
        assertEquals(2, rr.partsReused());
        assertEquals(1, rr.partsWritten());
        assertArrayEquals(Files.readAllBytes(clean), Files.readAllBytes(out), "identical descriptor file");
        assertEquals(Files.readAllLines(cr.ids()), Files.readAllLines(rr.ids()));
        assertFalse(Files.exists(parts), "parts removed at the end");
        try (Stream<Path> s = Files.list(tmp.resolve("run"))) {
            assertEquals(List.of(".feats.npy.lock", "feats.ids.txt", "feats.npy"),
                    s.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary files left (the lock file stays)");
        }
        assertTrue(stamp > 0);
        try (Tensor t = Npy.read(out)) {
            assertArrayEquals(new int[] {6, 8}, t.shape());
            float[] v = t.toFloatArray();
            for (int i = 0; i < 6; i++) {
                double n = 0;
                for (int k = 0; k < 8; k++) {
                    n += v[i * 8 + k] * v[i * 8 + k];
                }
                assertEquals(1.0, n, 1e-5, "row " + i + " is a unit vector");
            }
        }
    }

    /**
     * A run that wrote every part, a short last one included (5 images in parts of 2), but died
     * before the parts were joined (here: its output path is taken by a directory) is resumed from
     * all three parts, and joins them into what a clean run writes.
     */
    @Test
    void aRunKilledBeforeJoiningItsPartsReusesThemAllTheShortLastOneIncluded(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 5);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        FeatureExtractor.FileResult clean = new FeatureExtractor(net, o, QUIET).extractToFile(refs,
                tmp.resolve("clean/feats.npy"), "clean");
        assertEquals(3, clean.partsWritten());
        Path out = tmp.resolve("run/feats.npy");
        Files.createDirectories(out.resolve("in-the-way"));
        assertThrows(IOException.class, () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "run"));
        for (int k = 0; k < 3; k++) {
            assertTrue(Files.exists(tmp.resolve("run/feats.npy.parts/part-00000" + k + ".npy")), "part " + k);
        }
        Files.delete(out.resolve("in-the-way"));
        Files.delete(out);
        FeatureExtractor.FileResult r = new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "run");
        assertEquals(3, r.partsReused(), "the short last part is reused too");
        assertEquals(0, r.partsWritten());
        assertEquals(5, r.rows());
        assertArrayEquals(Files.readAllBytes(clean.descriptors()), Files.readAllBytes(out));
        assertEquals(Files.readAllLines(clean.ids()), Files.readAllLines(r.ids()));
    }

    @Test
    void partsOfAnotherExtractionAreNeverMixedIn(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 4);
        Path out = tmp.resolve("feats.npy");
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        Files.write(refs.get(3).path(), new byte[0]);
        assertThrows(IOException.class, () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "x"));
        Files.copy(image("all_souls_000001"), refs.get(3).path(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);

        // other settings: refused while resuming, with what differs
        ExtractionOptions bigger = o.withPreprocessing(Preprocessing.imagenet(16));
        IOException e = assertThrows(IOException.class,
                () -> new FeatureExtractor(net, bigger, QUIET).extractToFile(refs, out, "x"));
        assertTrue(e.getMessage().contains("different extraction") && e.getMessage().contains("settings"),
                e.getMessage());
        // without resuming, the old parts are deleted and the run starts over
        FeatureExtractor.FileResult r = new FeatureExtractor(net, bigger.withResume(false), QUIET)
                .extractToFile(refs, out, "x");
        assertEquals(0, r.partsReused());
        assertEquals(2, r.partsWritten());
        try (FeatureExtractor.Result mem = new FeatureExtractor(net, bigger, QUIET).extract(refs, "x");
             Tensor disk = Npy.read(out)) {
            assertArrayEquals(mem.descriptors().toFloatArray(), disk.toFloatArray(), 0f);
        }
    }

    /**
     * The parts record which weights and which images made them: a resume with one weight changed
     * (a single element, or a batch-norm statistic) or with another image in the list is refused,
     * naming what changed, never mixed in. The same weights loaded again resume.
     */
    @Test
    void partsOfOtherWeightsOrOtherImagesAreNeverMixedIn(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 4);
        Path out = tmp.resolve("feats.npy");
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        Files.write(refs.get(3).path(), new byte[0]); // the second part fails: the first stays on disk
        assertThrows(IOException.class, () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "x"));
        Files.copy(image("all_souls_000001"), refs.get(3).path(), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        for (String key : new String[] {"fc.bias", "layer1.0.bn1.running_var"}) {
            try (RetrievalNet other = new RetrievalNet(net.options(), null)) {
                other.loadStateDict(net.stateDict(), true);
                Tensor t = other.stateDict().get(key);
                float[] v = t.toFloatArray();
                v[0] += 0.5f;
                try (Tensor changed = Tensor.of(v, t.shape())) {
                    t.backend().copy(changed, t);
                }
                IOException e = assertThrows(IOException.class,
                        () -> new FeatureExtractor(other, o, QUIET).extractToFile(refs, out, "x"), key);
                assertTrue(e.getMessage().contains("different extraction") && e.getMessage().contains("network"),
                        key + ": " + e.getMessage());
            }
        }
        List<ImageRef> otherImages = new ArrayList<>(refs);
        otherImages.set(1, ImageRef.of("img1", refs.get(2).path()));
        IOException e = assertThrows(IOException.class,
                () -> new FeatureExtractor(net, o, QUIET).extractToFile(otherImages, out, "x"));
        assertTrue(e.getMessage().contains("different extraction") && e.getMessage().contains("inputs"), e.getMessage());
        try (RetrievalNet same = new RetrievalNet(net.options(), null)) {
            same.loadStateDict(net.stateDict(), true);
            FeatureExtractor.FileResult r = new FeatureExtractor(same, o, QUIET).extractToFile(refs, out, "x");
            assertEquals(1, r.partsReused(), "the same weights, loaded again: the first part is reused");
            assertEquals(1, r.partsWritten());
        }
    }

    @Test
    void unreadableImagesAreSkippedAndReportedWhenAsked(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 4);
        Files.write(refs.get(1).path(), new byte[0]);
        Path out = tmp.resolve("feats.npy");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        FeatureExtractor.FileResult r = new FeatureExtractor(net, options().withOnError(ExtractionOptions.OnError.SKIP)
                .withChunkSize(3), new PrintStream(log, true, StandardCharsets.UTF_8)).extractToFile(refs, out, "x");
        assertEquals(3, r.rows());
        assertEquals(List.of("img0", "img2", "img3"), Files.readAllLines(r.ids()));
        assertEquals(1, r.skipped().size());
        assertEquals("img1", r.skipped().get(0).id());
        assertTrue(r.skipped().get(0).reason().contains("empty"), r.skipped().get(0).reason());
        Path report = tmp.resolve("feats.skipped.txt");
        assertTrue(Files.readString(report).contains("img1\t" + refs.get(1).path()), Files.readString(report));
        assertTrue(log.toString(StandardCharsets.UTF_8).contains("skipped " + refs.get(1).path()),
                log.toString(StandardCharsets.UTF_8));
        try (Tensor t = Npy.read(out)) {
            assertArrayEquals(new int[] {3, 8}, t.shape());
        }
        // in memory too
        try (FeatureExtractor.Result m = new FeatureExtractor(net, options().withOnError(ExtractionOptions.OnError.SKIP),
                QUIET).extract(refs, "x")) {
            assertEquals(List.of("img0", "img2", "img3"), m.ids());
        }
        // and failing is the default, naming the file
        IOException e = assertThrows(IOException.class, () -> new FeatureExtractor(net, options(), QUIET).extract(refs, "x"));
        assertTrue(e.getMessage().startsWith(refs.get(1).path() + ": the file is empty"), e.getMessage());
    }

    @Test
    void progressBarShowsRateAndTimeLeftAndQuietShowsNothing() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        ProgressBar bar = new ProgressBar("DB", 10, 2, ps, true, false);
        bar.update(5);
        String line = bar.line(System.nanoTime() + 1_000_000_000L);
        assertTrue(line.startsWith("DB [############------------] 5/10 "), line);
        assertTrue(line.matches(".* [0-9.]+ img/s ETA \\d+:\\d\\d:\\d\\d"), line);
        bar.finish();
        String text = buf.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("DB: 5 images in "), text);
        assertTrue(text.contains("2 reused from an earlier run"), text);
        assertEquals("1:02:05", ProgressBar.clock(3725));

        ByteArrayOutputStream none = new ByteArrayOutputStream();
        ProgressBar quiet = new ProgressBar("DB", 10, 0, new PrintStream(none), false, true);
        quiet.update(3);
        quiet.finish();
        assertEquals(0, none.size());
    }

    // ---------------------------------------------------------------- crash safety

    /** Image 5 of 6 damaged: a run in parts of 2 stops in its third part, leaving parts 0 and 1. */
    private static void interruptedRun(List<ImageRef> refs, Path out, ExtractionOptions o) throws IOException {
        byte[] good = Files.readAllBytes(refs.get(5).path());
        Files.write(refs.get(5).path(), new byte[] {(byte) 0xff, (byte) 0xd8, (byte) 0xff, 0, 1, 2});
        try {
            assertThrows(IOException.class, () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "run"));
        } finally {
            Files.write(refs.get(5).path(), good);
        }
        assertTrue(Files.exists(out.resolveSibling("feats.npy.parts/part-000001.npy")));
    }

    /**
     * While one extraction holds the output (here: this process holds its lock, as a second
     * process would), another is refused at once with the holder named, and touches nothing: no
     * parts, the earlier files and even a killed writer's temporary file stay as they were.
     */
    @Test
    void aSecondExtractionToTheSameFileIsRefusedBeforeItTouchesAnything(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 3);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        Path out = tmp.resolve("run/feats.npy");
        Path lock = tmp.resolve("run/.feats.npy.lock");
        assertEquals(lock, FeatureExtractor.lockFile(out));
        Files.createDirectories(out.getParent());
        Files.writeString(out, "earlier");
        Files.writeString(FeatureExtractor.idsFile(out), "earlier\n");
        Path leftover = Files.writeString(tmp.resolve("run/.feats.npy.dir4j-k3x9.tmp"), "a killed writer's");
        try (OutputLock first = OutputLock.acquire(lock, "the first extraction")) {
            IOException e = assertThrows(IOException.class,
                    () -> new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "second"));
            assertEquals(out + " (a descriptor file) is being written by another task of this process; "
                    + "wait for it to finish or stop it (lock file " + lock + ")", e.getMessage());
            assertEquals("earlier", Files.readString(out));
            assertEquals("earlier\n", Files.readString(FeatureExtractor.idsFile(out)));
            assertTrue(Files.exists(leftover), "a live writer's temporary file looks the same: kept");
            assertFalse(Files.exists(tmp.resolve("run/feats.npy.parts")), "no parts started");
        }
        FeatureExtractor.FileResult r = new FeatureExtractor(net, o, QUIET).extractToFile(refs, out, "second");
        assertEquals(3, r.rows());
        assertEquals(List.of("img0", "img1", "img2"), Files.readAllLines(r.ids()));
        assertFalse(Files.exists(leftover), "deleted once the lock was held");
        // released at the end: the next extraction takes it
        try (OutputLock again = OutputLock.acquire(lock, "after")) {
            assertEquals(lock, again.file());
        }
    }

    /**
     * Temporary files of killed writers, beside the output (as large as the .npy) and in the
     * parts folder, are deleted at the start of the next run, with one note; other files stay.
     */
    @Test
    void temporaryFilesOfKilledWritersAreDeletedAtTheStartOfTheNextRun(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 6);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        Path out = tmp.resolve("run/feats.npy");
        interruptedRun(refs, out, o);
        Path parts = tmp.resolve("run/feats.npy.parts");
        List<Path> leftovers = List.of(tmp.resolve("run/.feats.npy.dir4j-0a1b2c.tmp"),
                tmp.resolve("run/.feats.ids.txt.dir4j-zz9.tmp"),
                tmp.resolve("run/.feats.skipped.txt.dir4j-q1.tmp"), parts.resolve(".part-000002.npy.dir4j-x7.tmp"),
                parts.resolve(".part-000001.ids.txt.dir4j-y8.tmp"), parts.resolve(".assembled.npy.dir4j-w2.tmp"));
        for (Path p : leftovers) {
            Files.write(p, new byte[4096]);
        }
        Path notOurs = Files.writeString(tmp.resolve("run/.feats.npy.notes"), "mine");
        Path lookAlike = Files.writeString(tmp.resolve("run/.feats.npy.old.tmp"), "mine");
        // the damaged image stops this run again: what it deleted shows before the parts are joined
        byte[] good = Files.readAllBytes(refs.get(5).path());
        Files.write(refs.get(5).path(), new byte[0]);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertThrows(IOException.class, () -> new FeatureExtractor(net, o.withQuiet(false),
                new PrintStream(log, true, StandardCharsets.UTF_8)).extractToFile(refs, out, "run"));
        for (Path p : leftovers) {
            assertFalse(Files.exists(p), p + " deleted");
        }
        assertTrue(Files.exists(notOurs) && Files.exists(lookAlike), "a user's files stay");
        assertTrue(Files.exists(parts.resolve("part-000000.npy")) && Files.exists(parts.resolve("part-000001.npy")),
                "the finished parts are kept");
        String text = log.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("run: deleted 6 temporary files left by an interrupted run (.feats.npy.dir4j-0a1b2c.tmp, "
                + "...)"), text);
        assertTrue(text.contains("run: resuming, 2 of 3 parts (4 images) already done"), text);
        Files.write(refs.get(5).path(), good);
    }

    /**
     * A part is reused only when its ids are the ones the list gives its chunk: two parts whose ids
     * files were swapped (their rows would get each other's ids) are both redone, and the output
     * equals a clean run's.
     */
    @Test
    void partsWithTheIdsOfOtherImagesAreRedone(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 6);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        FeatureExtractor.FileResult clean = new FeatureExtractor(net, o, QUIET).extractToFile(refs,
                tmp.resolve("clean/feats.npy"), "clean");
        Path out = tmp.resolve("run/feats.npy");
        interruptedRun(refs, out, o);
        Path parts = tmp.resolve("run/feats.npy.parts");
        byte[] ids0 = Files.readAllBytes(parts.resolve("part-000000.ids.txt"));
        Files.write(parts.resolve("part-000000.ids.txt"), Files.readAllBytes(parts.resolve("part-000001.ids.txt")));
        Files.write(parts.resolve("part-000001.ids.txt"), ids0);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        FeatureExtractor.FileResult r = new FeatureExtractor(net, o, new PrintStream(log, true, StandardCharsets.UTF_8))
                .extractToFile(refs, out, "run");
        assertEquals(0, r.partsReused());
        assertEquals(3, r.partsWritten());
        assertEquals(List.of("img0", "img1", "img2", "img3", "img4", "img5"), Files.readAllLines(r.ids()));
        assertArrayEquals(Files.readAllBytes(clean.descriptors()), Files.readAllBytes(out));
        String text = log.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("part-000000.npy holds the ids of other images ('img2' where the list has 'img0', "
                + "image 1 of the part); redoing it"), text);
        assertTrue(text.contains("part-000001.npy holds the ids of other images ('img0' where the list has 'img2', "
                + "image 1 of the part); redoing it"), text);
    }

    /**
     * A part whose data changed after it was written (a flipped byte: 3.4e38 in a unit vector)
     * fails its checksum and is redone, as is a part without a checksum (an older version's);
     * the output equals a clean run's.
     */
    @Test
    void partsWhoseDataChangedAreRedone(@TempDir Path tmp) throws IOException {
        List<ImageRef> refs = copies(tmp.resolve("imgs"), 6);
        ExtractionOptions o = options().withChunkSize(2).withThreads(1);
        FeatureExtractor.FileResult clean = new FeatureExtractor(net, o, QUIET).extractToFile(refs,
                tmp.resolve("clean/feats.npy"), "clean");
        Path out = tmp.resolve("run/feats.npy");
        Path parts = tmp.resolve("run/feats.npy.parts");
        for (String damage : new String[] {"flip", "no checksum"}) {
            interruptedRun(refs, out, o);
            Path part0 = parts.resolve("part-000000.npy");
            if (damage.equals("flip")) {
                byte[] b = Files.readAllBytes(part0);
                b[b.length - 1] = 0x7f;
                b[b.length - 2] = 0x7f;
                b[b.length - 3] = (byte) 0xff;
                b[b.length - 4] = (byte) 0xff;
                Files.write(part0, b);
            } else {
                Files.delete(parts.resolve("part-000000.crc32"));
            }
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            FeatureExtractor.FileResult r = new FeatureExtractor(net, o, new PrintStream(log, true,
                    StandardCharsets.UTF_8)).extractToFile(refs, out, "run");
            assertEquals(1, r.partsReused(), damage);
            assertEquals(2, r.partsWritten(), damage);
            assertArrayEquals(Files.readAllBytes(clean.descriptors()), Files.readAllBytes(out), damage);
            assertEquals(Files.readAllLines(clean.ids()), Files.readAllLines(r.ids()), damage);
            String text = log.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains(damage.equals("flip")
                    ? "part-000000.npy does not match its checksum (CRC-32 " : "part-000000.npy has no checksum "
                    + "(part-000000.crc32); redoing it"), damage + ": " + text);
            Files.delete(out);
        }
    }

    @Test
    void sidecarFilesAreNamedAfterTheDescriptorFile() {
        assertEquals(Path.of("x/feats.qdescs.ids.txt"), FeatureExtractor.idsFile(Path.of("x/feats.qdescs.npy")));
        assertEquals(Path.of("feats.skipped.txt"), FeatureExtractor.skippedFile(Path.of("feats.npy")));
    }
}
