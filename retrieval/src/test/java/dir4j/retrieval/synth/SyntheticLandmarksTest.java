package dir4j.retrieval.synth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The synthetic benchmark: deterministic, complete, in the revisited layout, never half-written. */
class SyntheticLandmarksTest {
    static final SyntheticLandmarks.Config TINY = new SyntheticLandmarks.Config(7, 48, 3, 2, 1, 2, 2, 1, 1, 3);

    @TempDir
    Path tmp;

    @Test
    void sameSeedGivesIdenticalFilesAndTheExpectedLayout() throws IOException {
        Path a = SyntheticLandmarks.generate(tmp.resolve("a"), TINY, null);
        Path b = SyntheticLandmarks.generate(tmp.resolve("b"), TINY, null);
        List<String> names;
        try (var s = Files.list(a.resolve("jpg"))) {
            names = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        // train 3×2, val 1 query + 4 views + 3 distractors, test 2 queries + 8 views + 3 distractors
        assertEquals(6 + 8 + 13, names.size());
        for (String n : names) {
            assertArrayEquals(Files.readAllBytes(a.resolve("jpg").resolve(n)),
                    Files.readAllBytes(b.resolve("jpg").resolve(n)), n);
        }
        assertArrayEquals(Files.readAllBytes(a.resolve("gnd_synth.pkl")), Files.readAllBytes(b.resolve("gnd_synth.pkl")));
        List<String> train = Files.readAllLines(a.resolve("train.txt"));
        assertEquals(6, train.size());
        assertEquals("jpg/train_l000_v00.jpg 0", train.get(0));
        assertEquals("jpg/train_l002_v01.jpg 2", train.get(5));
        byte[] pkl = Files.readAllBytes(a.resolve("gnd_synth.pkl"));
        assertEquals((byte) 0x80, pkl[0]);
        assertEquals('.', pkl[pkl.length - 1]);
        String ascii = new String(pkl, java.nio.charset.StandardCharsets.ISO_8859_1);
        for (String key : new String[] {"imlist", "qimlist", "gnd", "bbx", "easy", "hard", "junk", "test_q001",
            "test_x002"}) {
            assertTrue(ascii.contains(key), key);
        }
    }

    /**
     * What the files hold: every image a JPEG of the configured size; per split one query per
     * landmark, whose easy, hard and junk lists name exactly that landmark's views of each
     * difficulty, distractors in no list, and a query box inside its image.
     */
    @Test
    void imagesAndGroundTruthsHoldWhatTheConfigurationAsks() throws IOException {
        SyntheticLandmarks.Config c = new SyntheticLandmarks.Config(7, 40, 3, 2, 2, 3, 3, 2, 1, 4);
        Path root = tmp.resolve("content");
        Path dir = SyntheticLandmarks.generate(root, c, null);
        try (var s = Files.list(dir.resolve("jpg"))) {
            for (Path p : s.toList()) {
                java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(p.toFile());
                assertTrue(img != null && img.getWidth() == 40 && img.getHeight() == 40, p + ": " + img);
            }
        }
        for (String[] split : new String[][] {{"synth-val", "val", "2"}, {"synth", "test", "3"}}) {
            dir4j.retrieval.data.RetrievalDataset d = dir4j.retrieval.data.RetrievalDataset.load(split[0], root);
            int landmarks = Integer.parseInt(split[2]);
            List<String> queries = d.queryNames();
            assertEquals(landmarks, queries.size(), split[0]);
            assertEquals(landmarks * (3 + 2 + 1) + 4, d.imageNames().size(), split[0]);
            var gts = d.revisitedGroundTruth();
            for (int q = 0; q < landmarks; q++) {
                assertEquals(String.format("%s_q%03d", split[1], q), queries.get(q));
                String views = String.format("%s_l%03d_v", split[1], q);
                int[][] lists = {gts.get(q).easy(), gts.get(q).hard(), gts.get(q).junk()};
                int[] sizes = {3, 2, 1};
                int v = 0;
                for (int k = 0; k < 3; k++) {
                    assertEquals(sizes[k], lists[k].length, split[0] + " query " + q + " list " + k);
                    for (int i : lists[k]) {
                        assertEquals(views + String.format("%02d", v++), d.imageNames().get(i));
                    }
                }
                var box = d.queryBoxes().get(q);
                assertTrue(box.x1() >= 0 && box.y1() >= 0 && box.x2() <= 40 && box.y2() <= 40
                        && box.x2() > box.x1() && box.y2() > box.y1(), "query " + q + " box " + box);
            }
            for (int x = 0; x < 4; x++) {
                assertEquals(String.format("%s_x%03d", split[1], x), d.imageNames().get(landmarks * 6 + x));
            }
        }
        List<String> train = Files.readAllLines(dir.resolve("train.txt"));
        assertEquals(3 * 2, train.size());
        assertEquals("jpg/train_l001_v01.jpg 1", train.get(3));
    }

    @Test
    void existingBenchmarkIsKeptAndAnotherConfigurationIsRefused() throws IOException {
        Path dir = SyntheticLandmarks.generate(tmp, TINY, null);
        long before = Files.getLastModifiedTime(dir.resolve("gnd_synth.pkl")).toMillis();
        SyntheticLandmarks.generate(tmp, TINY, null);
        assertEquals(before, Files.getLastModifiedTime(dir.resolve("gnd_synth.pkl")).toMillis());
        var other = new SyntheticLandmarks.Config(8, 48, 3, 2, 1, 2, 2, 1, 1, 3);
        IOException e = assertThrows(IOException.class, () -> SyntheticLandmarks.generate(tmp, other, null));
        assertTrue(e.getMessage().contains("another configuration"), e.getMessage());
        try (var s = Files.list(tmp)) {
            assertEquals(List.of(".synth.lock", "synth"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temp folder left (the lock file stays)");
        }
    }

    /**
     * One generator per data root: a second waits while the first works (and then finds its
     * benchmark, or makes it); the next one to generate removes the half-written folders of killed
     * generators, and nothing else.
     */
    @Test
    void oneGeneratorAtATimeAndKilledGeneratorsLeftoversGo(@TempDir Path root) throws Exception {
        Path killed = dir4j.engine.io.AtomicFiles.temporaryFolderBeside(root.resolve("synth"));
        Files.createDirectories(killed.resolve("jpg"));
        Files.write(killed.resolve("jpg/a.jpg"), new byte[1000]);
        Path users = Files.createDirectories(root.resolve(".synth.old.tmp"));
        var held = new java.util.concurrent.CountDownLatch(1);
        var waited = new java.util.concurrent.atomic.AtomicBoolean();
        Thread other = Thread.ofPlatform().start(() -> {
            try (var lock = dir4j.engine.io.OutputLock.acquire(root.resolve(".synth.lock"), "held")) {
                held.countDown();
                Thread.sleep(1500);
                waited.set(Files.exists(killed) && Files.notExists(root.resolve("synth")));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        held.await();
        Path dir = SyntheticLandmarks.generate(root, TINY, null);
        other.join();
        assertTrue(waited.get(), "nothing was touched while the other generator held the data root");
        assertTrue(Files.isRegularFile(dir.resolve("synth.properties")));
        assertFalse(Files.exists(killed), "the killed generator's folder is gone");
        assertTrue(Files.isDirectory(users), "a user's look-alike folder stays");
    }

    /**
     * A generation stopped part-way is resumed: the images already written whole are kept (not
     * rendered again), a half-written one's temporary file goes, an image found empty or cut short
     * is rendered again, and the result is the same file for file as an uninterrupted run's. A stopped generation of another configuration is removed.
     */
    @Test
    void aStoppedGenerationIsResumedToTheSameFiles() throws IOException {
        Path whole = SyntheticLandmarks.generate(tmp.resolve("whole"), TINY, null);
        List<String> names;
        try (var s = Files.list(whole.resolve("jpg"))) {
            names = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        Path root = tmp.resolve("stopped");
        Path partial = SyntheticLandmarks.partialFolder(root.resolve("synth"));
        Files.createDirectories(partial.resolve("jpg"));
        try (var out = Files.newOutputStream(partial.resolve("synth.properties"))) {
            TINY.toProperties().store(out, null);
        }
        for (String n : names.subList(0, 10)) {
            Files.copy(whole.resolve("jpg").resolve(n), partial.resolve("jpg").resolve(n));
        }
        // kept as found: a whole JPEG of another image in its place shows it was not rendered again
        byte[] kept = Files.readAllBytes(whole.resolve("jpg").resolve(names.get(1)));
        Files.write(partial.resolve("jpg").resolve(names.get(0)), kept);
        // renamed into place but not on disk when the machine stopped (a power cut): empty, or cut short
        Files.write(partial.resolve("jpg").resolve(names.get(2)), new byte[0]);
        byte[] third = Files.readAllBytes(whole.resolve("jpg").resolve(names.get(3)));
        Files.write(partial.resolve("jpg").resolve(names.get(3)), java.util.Arrays.copyOf(third, third.length / 2));
        Path cut = Files.write(partial.resolve("jpg").resolve("." + names.get(11) + ".dir4j-k3x9.tmp"), new byte[7]);
        List<String> notes = new java.util.ArrayList<>();
        List<Integer> reported = new java.util.ArrayList<>();
        Path dir = SyntheticLandmarks.generate(root, TINY, (done, total) -> reported.add(done), notes::add);
        assertEquals(List.of("resuming a stopped generation in " + partial + ": 8 of 27 images already made"), notes);
        assertEquals(19, reported.size(), "the 17 missing images and the 2 not whole rendered: " + reported);
        assertEquals(27, (int) reported.get(reported.size() - 1));
        assertFalse(Files.exists(partial));
        assertFalse(Files.exists(dir.resolve("jpg").resolve(cut.getFileName())));
        assertArrayEquals(kept, Files.readAllBytes(dir.resolve("jpg").resolve(names.get(0))));
        for (String n : names.subList(1, names.size())) {
            assertArrayEquals(Files.readAllBytes(whole.resolve("jpg").resolve(n)),
                    Files.readAllBytes(dir.resolve("jpg").resolve(n)), n);
        }
        for (String f : new String[] {"gnd_synth.pkl", "gnd_synth-val.pkl", "train.txt"}) {
            assertArrayEquals(Files.readAllBytes(whole.resolve(f)), Files.readAllBytes(dir.resolve(f)), f);
        }
        java.util.Properties made = new java.util.Properties();
        try (var in = Files.newInputStream(dir.resolve("synth.properties"))) {
            made.load(in);
        }
        assertEquals(TINY.toProperties(), made);
        try (var s = Files.list(dir.resolve("jpg"))) {
            assertEquals(names, s.map(p -> p.getFileName().toString()).sorted().toList());
        }

        // another configuration's stopped generation: removed, and this one made from scratch
        Path other = tmp.resolve("other");
        Path otherPartial = SyntheticLandmarks.partialFolder(other.resolve("synth"));
        Files.createDirectories(otherPartial.resolve("jpg"));
        try (var out = Files.newOutputStream(otherPartial.resolve("synth.properties"))) {
            new SyntheticLandmarks.Config(8, 48, 3, 2, 1, 2, 2, 1, 1, 3).toProperties().store(out, null);
        }
        Files.write(otherPartial.resolve("jpg").resolve(names.get(0)), "theirs".getBytes());
        notes.clear();
        Path fresh = SyntheticLandmarks.generate(other, TINY, null, notes::add);
        assertEquals(List.of("removed " + otherPartial + ", a stopped generation of another configuration"), notes);
        assertArrayEquals(Files.readAllBytes(whole.resolve("jpg").resolve(names.get(0))),
                Files.readAllBytes(fresh.resolve("jpg").resolve(names.get(0))));
    }

    /** The smallest sizes are accepted and one less of any is refused, with the limits named. */
    @Test
    void sizesAreCheckedAtTheirLimits() {
        int[] least = {32, 2, 2, 1, 1, 1, 0, 0, 0};
        new SyntheticLandmarks.Config(1, 32, 2, 2, 1, 1, 1, 0, 0, 0).validate();
        new SyntheticLandmarks.Config(1, 32, 2, 2, 1, 1, 0, 1, 0, 0).validate();
        for (int i = 0; i < least.length; i++) {
            int[] v = least.clone();
            v[i]--; // (easy or hard views one less: easy + hard below 1)
            var c = new SyntheticLandmarks.Config(1, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::validate, c.toString());
            assertTrue(e.getMessage().contains("image ≥ 32 px, ≥ 2 training landmarks"), e.getMessage());
        }
    }

    @Test
    void pickleWriterEncodesPlainContainers() {
        byte[] b = PickleWriter.write(java.util.Map.of("k", List.of(1, 300, 70000, -1)));
        // PROTO 2, EMPTY_DICT, MARK, BINUNICODE "k", EMPTY_LIST, MARK, K 1, M 300, J 70000, J -1, APPENDS, SETITEMS, STOP
        byte[] want = {(byte) 0x80, 2, '}', '(', 'X', 1, 0, 0, 0, 'k', ']', '(', 'K', 1, 'M', 44, 1,
            'J', 0x70, 0x11, 1, 0, 'J', -1, -1, -1, -1, 'e', 'u', '.'};
        assertArrayEquals(want, b);
    }
}
