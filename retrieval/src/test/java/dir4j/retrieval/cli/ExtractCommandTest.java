package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.engine.io.OutputLock;
import dir4j.retrieval.data.ImageList;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.net.RetrievalNet;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** `dir4j extract` end to end on the fixture images and the miniature roxford5k. */
class ExtractCommandTest {
    @TempDir
    Path dir;

    /** `dir4j extract ARGS`, in-process. */
    static CliRun.Run run(String... args) {
        String[] all = new String[args.length + 1];
        all[0] = "extract";
        System.arraycopy(args, 0, all, 1, args.length);
        return CliRun.run(all);
    }

    @Test
    void imageListGivesTheExtractorsDescriptorsAndIds() throws Exception {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"),
                "# three images\nall_souls_000001.jpg\nradcliffe_camera_000003.jpg\n\nall_souls_000002.jpg\n");
        Path out = dir.resolve("feats.npy");
        var r = run("--images", list.toString(), "--root", jpg.toString(), "--arch", "resnet18", "--random-init",
                "--seed", "5", "--base-width", "4", "--out-dim", "8", "--image-size", "32", "--scales", "1,1/2",
                "--out", out.toString(), "--quiet");
        assertEquals(0, r.rc(), r.err());
        assertTrue(r.out().contains("wrote " + out + " (3x8 float32)"), r.out());
        assertEquals("", r.err());
        assertEquals(List.of("all_souls_000001.jpg", "radcliffe_camera_000003.jpg", "all_souls_000002.jpg"),
                Files.readAllLines(dir.resolve("feats.ids.txt")));
        try (RetrievalNet net = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4),
                new Random(5));
             FeatureExtractor.Result want = new FeatureExtractor(net, ExtractionOptions.defaults()
                     .withPreprocessing(Preprocessing.imagenet(32)).withScales(1, 0.5).withQuiet(true))
                     .extract(ImageList.read(list, jpg, true), "x");
             Tensor got = Npy.read(out)) {
            assertArrayEquals(new int[] {3, 8}, got.shape());
            assertArrayEquals(want.descriptors().toFloatArray(), got.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void datasetWritesQueryAndDatabaseFilesWithTheReferencesNames() throws Exception {
        Path out = dir.resolve("rox/feats.npy");
        var r = run("--dataset", "roxford5k", "--data-root", ImageFixtures.path("datasets").toString(),
                "--checkpoint", ImageFixtures.path("datasets/checkpoint/tiny_resnet18_w2.pt").toString(),
                "--image-size", "20", "--out", out.toString(), "--threads", "1");
        assertEquals(0, r.rc(), r.err());
        assertTrue(r.err().contains("roxford5k (revisited protocol): 3 database images, 2 queries"), r.err());
        assertTrue(r.err().contains("query: 2 images in"), r.err());
        try (Tensor db = Npy.read(dir.resolve("rox/feats.dbdescs.npy"));
             Tensor q = Npy.read(dir.resolve("rox/feats.qdescs.npy"))) {
            assertArrayEquals(new int[] {3, 8}, db.shape());
            assertArrayEquals(new int[] {2, 8}, q.shape());
        }
        assertEquals(List.of("all_souls_000001", "all_souls_000002", "radcliffe_camera_000003"),
                Files.readAllLines(dir.resolve("rox/feats.dbdescs.ids.txt")));
        assertEquals(List.of("all_souls_000001", "radcliffe_camera_000003"),
                Files.readAllLines(dir.resolve("rox/feats.qdescs.ids.txt")));
    }

    @Test
    void badUsageAndBadInputGiveScriptableExitCodes() throws Exception {
        Path list = Files.writeString(dir.resolve("list.txt"), "missing.jpg\n");
        var cuda = run("--images", list.toString(), "--arch", "resnet18", "--random-init", "--out",
                dir.resolve("f.npy").toString(), "--device", "cuda");
        assertEquals(2, cuda.rc());
        assertTrue(cuda.err().contains("--device cpu"), cuda.err());

        var noNet = run("--images", list.toString(), "--out", dir.resolve("f.npy").toString());
        assertEquals(2, noNet.rc());
        assertTrue(noNet.err().contains("--checkpoint FILE, or --arch NAME --random-init"), noNet.err());

        var missing = run("--images", list.toString(), "--arch", "resnet18", "--random-init", "--base-width", "4",
                "--out", dir.resolve("f.npy").toString());
        assertEquals(1, missing.rc());
        assertTrue(missing.err().contains("line 1: missing.jpg"), missing.err());

        var both = run("--images", list.toString(), "--dataset", "roxford5k", "--out", "f.npy");
        assertEquals(2, both.rc());

        var noRoot = run("--dataset", "roxford5k", "--data-root", dir.resolve("none").toString(), "--arch", "resnet18",
                "--random-init", "--out", dir.resolve("f.npy").toString());
        assertEquals(1, noRoot.rc());
        assertTrue(noRoot.err().contains("does not exist"), noRoot.err());

        // sizes are checked by their option names, before the network is built
        var zero = run("--images", list.toString(), "--arch", "resnet18", "--random-init", "--out",
                dir.resolve("f.npy").toString(), "--chunk-size", "0");
        assertEquals(2, zero.rc(), zero.err());
        assertTrue(zero.err().startsWith("dir4j extract: --batch-size, --chunk-size and --threads must be at least 1, "
                + "got 8, 0, default"), zero.err());
    }

    /**
     * With --on-error skip a missing image is left out like an unreadable one (the route for the
     * million distractors, where some files may be gone); a scale below one pixel is a bad
     * command line; and a run that left every image out fails.
     */
    @Test
    void skippingLeavesMissingImagesOutAndAnEmptyResultFails() throws Exception {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"), "all_souls_000001.jpg\ngone.jpg\nall_souls_000002.jpg\n");
        String[] net = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "8", "--image-size",
            "32", "--root", jpg.toString(), "--quiet"};
        Path out = dir.resolve("skip.npy");
        var skip = run(concat(net, "--images", list.toString(), "--on-error", "skip", "--out", out.toString()));
        assertEquals(0, skip.rc(), skip.err());
        assertTrue(skip.out().contains("(2x8 float32)") && skip.out().contains("1 image left out"), skip.out());
        assertEquals(List.of("all_souls_000001.jpg", "all_souls_000002.jpg"),
                Files.readAllLines(dir.resolve("skip.ids.txt")));
        String skipped = Files.readString(dir.resolve("skip.skipped.txt"));
        assertTrue(skipped.contains("gone.jpg"), skipped);
        var fail = run(concat(net, "--images", list.toString(), "--out", dir.resolve("fail.npy").toString()));
        assertEquals(1, fail.rc(), fail.err());
        assertTrue(fail.err().contains("line 2: gone.jpg"), fail.err());

        var tiny = run(concat(net, "--images", list.toString(), "--scales", "0.01", "--out",
                dir.resolve("tiny.npy").toString()));
        assertEquals(2, tiny.rc(), tiny.err());
        assertTrue(tiny.err().contains("--scales 0.01 of --image-size 32 is less than one pixel"), tiny.err());

        Path none = Files.writeString(dir.resolve("none.txt"), "gone.jpg\nalso-gone.jpg\n");
        var empty = run(concat(net, "--images", none.toString(), "--on-error", "skip", "--out",
                dir.resolve("empty.npy").toString()));
        assertEquals(1, empty.rc(), empty.err());
        assertTrue(empty.err().contains("every image of empty.npy was left out"), empty.err());
        assertFalse(Files.exists(dir.resolve("empty.npy")) || Files.exists(dir.resolve("empty.ids.txt")));
        assertTrue(Files.readString(dir.resolve("empty.skipped.txt")).contains("also-gone.jpg"));
    }

    /**
     * A panorama whose shorter side rounds to no pixel at --image-size (400x2 at 32: 32 x
     * int(0.5 + 0.16)) cannot be described, as PIL cannot resize it: the run fails naming it and
     * the sizes (exit 1), or with --on-error skip leaves it out and lists why.
     */
    @Test
    void aPanoramaTooThinForTheImageSizeFailsOrIsSkippedSayingWhy() throws Exception {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path pano = dir.resolve("pano.png");
        javax.imageio.ImageIO.write(new java.awt.image.BufferedImage(400, 2,
                java.awt.image.BufferedImage.TYPE_3BYTE_BGR), "png", pano.toFile());
        Path list = Files.writeString(dir.resolve("list.txt"), "all_souls_000001.jpg\n" + pano + "\n");
        String[] net = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "8", "--image-size",
            "32", "--root", jpg.toString(), "--quiet", "--images", list.toString()};
        String why = pano + ": a 400x2 image resized to a longer side of 32 would be 32x0 pixels: too elongated to "
                + "describe at this size";
        var fail = run(concat(net, "--out", dir.resolve("fail.npy").toString()));
        assertEquals(1, fail.rc(), fail.err());
        assertTrue(fail.err().startsWith("dir4j extract: " + why + " (fix or remove the image"), fail.err());
        var skip = run(concat(net, "--on-error", "skip", "--out", dir.resolve("skip.npy").toString()));
        assertEquals(0, skip.rc(), skip.err());
        assertTrue(skip.out().contains("(1x8 float32)") && skip.out().contains("1 image left out"), skip.out());
        assertTrue(Files.readString(dir.resolve("skip.skipped.txt")).contains(pano + "\t" + why + "\n"),
                Files.readString(dir.resolve("skip.skipped.txt")));
    }

    /**
     * Two extracts to the same --out: while one runs (here: holds the output's lock, as another
     * process's extract would), the second is refused at once with exit status 1, naming the
     * output and the lock, and writes nothing; the earlier output stays as it was.
     */
    @Test
    void aSecondExtractToTheSameOutIsRefusedWhileTheFirstRuns() throws Exception {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"), "all_souls_000001.jpg\nall_souls_000002.jpg\n");
        Path out = dir.resolve("feats.npy");
        String[] args = {"--images", list.toString(), "--root", jpg.toString(), "--arch", "resnet18", "--random-init",
            "--base-width", "4", "--out-dim", "8", "--image-size", "32", "--scales", "1,1/2", "--out", out.toString(),
            "--quiet"};
        assertEquals(0, run(args).rc());
        byte[] first = Files.readAllBytes(out);
        Path lock = dir.resolve(".feats.npy.lock");
        try (OutputLock held = OutputLock.acquire(lock, "the first extract")) {
            var second = run(concat(args, "--scale-pooling-p", "1", "--no-resume"));
            assertEquals(1, second.rc(), second.err());
            assertEquals("dir4j extract: " + out + " (a descriptor file) is being written by another task of "
                    + "this process; wait for it to finish or stop it (lock file " + lock + ")\n",
                    second.err().replace(System.lineSeparator(), "\n"));
            assertEquals("", second.out());
            assertArrayEquals(first, Files.readAllBytes(out));
            assertFalse(Files.exists(dir.resolve("feats.npy.parts")));
        }
        var after = run(concat(args, "--scale-pooling-p", "1"));
        assertEquals(0, after.rc(), after.err());
        assertFalse(java.util.Arrays.equals(first, Files.readAllBytes(out)), "another exponent, other descriptors");
    }

    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void helpDocumentsEveryOption() {
        String help = new CommandLine(new Main()).getSubcommands().get("extract").getUsageMessage();
        for (String o : new String[] {"--images", "--dataset", "--root", "--labelled", "--data-root", "--checkpoint",
            "--arch", "--random-init", "--seed", "--out-dim", "--base-width", "--image-size", "--upscale",
            "--interpolation", "--scales", "--scale-pooling-p", "--batch-size", "--threads", "--chunk-size", "--out",
            "--[no-]resume", "--on-error", "--max-pixels", "--[no-]exif-orientation", "--quiet", "--device"}) {
            assertTrue(help.contains(o), "help lacks " + o + ":\n" + help);
        }
        assertTrue(help.contains("Exit status"), help);
    }
}
