package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Lucene HNSW index: recall against exact search, scores, persistence, and refusals. */
class HnswIndexTest {
    @TempDir
    Path dir;

    /** n random unit vectors of dimension d (directions uniform on the sphere). */
    static float[] unitRows(Random rng, int n, int d) {
        float[] v = new float[n * d];
        for (int i = 0; i < n; i++) {
            double sq = 0;
            for (int j = 0; j < d; j++) {
                double x = rng.nextGaussian();
                v[i * d + j] = (float) x;
                sq += x * x;
            }
            float inv = (float) (1 / Math.sqrt(sq));
            for (int j = 0; j < d; j++) {
                v[i * d + j] *= inv;
            }
        }
        return v;
    }

    static List<String> ids(int n) {
        return IntStream.range(0, n).mapToObj(i -> "img" + i).toList();
    }

    /** Fraction of the exact top-k rows that the approximate top-k found, over all queries. */
    static double recall(Neighbours exact, Neighbours approx, int k) {
        long hit = 0;
        for (int q = 0; q < exact.queries(); q++) {
            Set<Integer> truth = new HashSet<>();
            for (int r = 0; r < k; r++) {
                truth.add(exact.indices()[q][r]);
            }
            for (int r = 0; r < Math.min(k, approx.indices()[q].length); r++) {
                hit += truth.contains(approx.indices()[q][r]) ? 1 : 0;
            }
        }
        return hit / (double) (exact.queries() * k);
    }

    /**
     * Lucene's indexing buffer: twice the vectors, 64 MB at least and 1900 MB at most, and never more
     * than a quarter of the heap (a buffer beyond the heap ended in an OutOfMemoryError in Lucene's
     * threads, which left the JVM hanging; `dir4j index` with -Xmx40m on 60,000 x 256 now builds).
     */
    @Test
    void theIndexingBufferStaysWithinAQuarterOfTheHeap() {
        double quarter = Runtime.getRuntime().maxMemory() / (double) (1 << 20) / 4;
        assertEquals(Math.min(quarter, 64), HnswIndex.ramBufferMb(1000, 256), 1e-9);
        assertEquals(Math.min(quarter, 2.0 * 100_000 * 512 * 4 / (1 << 20)), HnswIndex.ramBufferMb(100_000, 512), 1e-9);
        assertEquals(Math.min(quarter, 1900), HnswIndex.ramBufferMb(1_000_000, 2048), 1e-9);
    }

    @Test
    void recallAtTenAgainstExactSearchIsAtLeastNinetyPercentAndSurvivesReopening() throws IOException {
        int n = 2500;
        int d = 64;
        Random rng = new Random(11);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(unitRows(rng, n, d), n, d);
            Tensor queries = Tensor.of(unitRows(rng, 100, d), 100, d);
            Neighbours exact = exactTop10(db, queries);
            Path folder = dir.resolve("hnsw");
            Neighbours approx;
            try (HnswIndex h = HnswIndex.build(folder, db, ids(n), HnswIndex.Options.DEFAULTS)) {
                assertEquals(n, h.size());
                assertEquals(d, h.dimension());
                assertEquals("img2499", h.id(2499));
                approx = h.search(queries, 10);
                double r = recall(exact, approx, 10);
                assertTrue(r >= 0.9, "recall@10 " + r);
                // scores are the dot products of the rows returned, best first
                float[] all = db.toFloatArray();
                float[] qs = queries.toFloatArray();
                for (int q = 0; q < 100; q++) {
                    assertEquals(10, approx.indices()[q].length);
                    for (int j = 0; j < 10; j++) {
                        int row = approx.indices()[q][j];
                        double dot = 0;
                        for (int c = 0; c < d; c++) {
                            dot += qs[q * d + c] * all[row * d + c];
                        }
                        assertEquals(dot, approx.scores()[q][j], 1e-5, "query " + q + " rank " + j);
                        if (j > 0) {
                            assertTrue(approx.scores()[q][j - 1] >= approx.scores()[q][j]);
                        }
                    }
                }
                // more candidates never lose recall here, and two threads give the same answers
                Neighbours wide = h.search(queries, 10, 400, 2);
                assertTrue(recall(exact, wide, 10) >= r, "ef 400 vs 100");
                assertTrue(recall(exact, wide, 10) >= 0.99, "ef 400: " + recall(exact, wide, 10));
                Neighbours single = h.search(queries, 10, 400, 1);
                for (int q = 0; q < 100; q++) {
                    assertArrayEquals(single.indices()[q], wide.indices()[q]);
                }
            }
            try (DescriptorIndex reopened = DescriptorIndex.open(folder)) {
                HnswIndex h = assertInstanceOf(HnswIndex.class, reopened);
                assertEquals(16, h.options().maxConn());
                Neighbours again = h.search(queries, 10);
                for (int q = 0; q < 100; q++) {
                    assertArrayEquals(approx.indices()[q], again.indices()[q]);
                    assertArrayEquals(approx.scores()[q], again.scores()[q], 1e-6f);
                }
                assertEquals(ids(n), h.ids());
            }
        }
    }

    @Test
    void aParallelBuildMergesIntoOneGraphWithTheSameRecallAndRowNumbers() throws IOException {
        int n = 1200;
        int d = 16;
        Random rng = new Random(5);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(unitRows(rng, n, d), n, d);
            try (HnswIndex h = HnswIndex.build(dir.resolve("p"), db, ids(n),
                    HnswIndex.Options.DEFAULTS.withThreads(2).withMaxConn(12).withBeamWidth(80));
                 ExactIndex e = new ExactIndex(d)) {
                e.add(db, ids(n));
                assertEquals(1, h.segments(), "the two threads' segments are merged into one graph");
                // each database row finds itself first: rows map back through the merge
                Tensor some = db.slice(0, 500, 700); // rows of both halves: 0..599 and 600..1199
                Neighbours self = h.search(some, 1, 50, 1);
                int found = 0;
                for (int q = 0; q < 200; q++) {
                    found += self.indices()[q][0] == 500 + q ? 1 : 0;
                }
                assertTrue(found >= 198, found + " of 200 rows found themselves");
                Tensor queries = Tensor.of(unitRows(rng, 50, d), 50, d);
                assertTrue(recall(e.search(queries, 10), h.search(queries, 10), 10) >= 0.9);
            }
        }
    }

    /**
     * Ten appends in a row (`dir4j index --append` ten times) leave one segment, one graph, as a
     * build does (a search visits one graph, not eleven), with the recall@10 against exact search
     * of an index built from all the rows at once, and every row where its ids say.
     */
    @Test
    void tenAppendsInARowKeepOneGraphWithABuildsRecall() throws IOException {
        int first = 300;
        int step = 100;
        int n = first + 10 * step;
        int d = 16;
        Random rng = new Random(21);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor db = Tensor.of(unitRows(rng, n, d), n, d);
            Tensor queries = Tensor.of(unitRows(rng, 200, d), 200, d);
            Neighbours exact = exactTop10(db, queries);
            double built;
            try (HnswIndex whole = HnswIndex.build(dir.resolve("whole"), db, ids(n), HnswIndex.Options.DEFAULTS)) {
                built = recall(exact, whole.search(queries, 10), 10);
            }
            Path folder = dir.resolve("appended");
            HnswIndex.build(folder, db.slice(0, 0, first), ids(first), HnswIndex.Options.DEFAULTS).close();
            for (int i = 0; i < 10; i++) {
                int from = first + i * step;
                HnswIndex.append(folder, db.slice(0, from, from + step), ids(n).subList(from, from + step),
                        i % 2 + 1).close();
            }
            try (HnswIndex h = HnswIndex.open(folder)) {
                assertEquals(1, h.segments(), "one graph after ten appends");
                assertEquals(ids(n), h.ids());
                assertEquals(HnswIndex.Options.DEFAULTS, h.options());
                double appended = recall(exact, h.search(queries, 10), 10);
                assertTrue(appended >= 0.9 && appended >= built - 0.03, "recall@10 after ten appends " + appended
                        + ", built at once " + built);
                Neighbours self = h.search(db, 1);
                int found = 0;
                for (int r = 0; r < n; r++) {
                    found += self.indices()[r][0] == r ? 1 : 0;
                }
                assertTrue(found >= n - 5, found + " of " + n + " rows found themselves");
            }
        }
    }

    @Test
    void descriptorsWiderThanLucenesDefaultLimitAreIndexed() throws IOException {
        int n = 300;
        int d = 2048;
        try (MemoryScope scope = MemoryScope.open();
             HnswIndex h = HnswIndex.build(dir.resolve("wide"), Tensor.of(unitRows(new Random(2), n, d), n, d), ids(n),
                     HnswIndex.Options.DEFAULTS)) {
            Tensor q = Tensor.of(unitRows(new Random(2), 3, d), 3, d); // the first three rows again
            Neighbours r = h.search(q, 2);
            for (int i = 0; i < 3; i++) {
                assertEquals(i, r.indices()[i][0]);
                assertEquals(1.0, r.scores()[i][0], 1e-5);
            }
        }
    }

    @Test
    void rebuildingReplacesAnIndexButAForeignFolderAndNonUnitVectorsAreRefused() throws IOException {
        int d = 8;
        try (MemoryScope scope = MemoryScope.open()) {
            Path folder = dir.resolve("idx");
            HnswIndex.build(folder, Tensor.of(unitRows(new Random(1), 20, d), 20, d), ids(20),
                    HnswIndex.Options.DEFAULTS).close();
            try (HnswIndex h = HnswIndex.build(folder, Tensor.of(unitRows(new Random(2), 30, d), 30, d), ids(30),
                    HnswIndex.Options.DEFAULTS)) {
                assertEquals(30, h.size());
                assertEquals(30, h.search(Tensor.of(unitRows(new Random(3), 1, d), 1, d), 100).indices()[0].length);
            }
            Path foreign = Files.createDirectories(dir.resolve("photos"));
            Files.writeString(foreign.resolve("holiday.txt"), "keep me");
            IOException e = assertThrows(IOException.class, () -> HnswIndex.build(foreign,
                    Tensor.of(unitRows(new Random(1), 20, d), 20, d), ids(20), HnswIndex.Options.DEFAULTS));
            assertTrue(e.getMessage().contains("not an index folder"), e.getMessage());
            assertEquals("keep me", Files.readString(foreign.resolve("holiday.txt")));

            float[] v = unitRows(new Random(1), 20, d);
            for (int j = 0; j < d; j++) {
                v[7 * d + j] *= 2;
            }
            IllegalArgumentException notUnit = assertThrows(IllegalArgumentException.class,
                    () -> HnswIndex.build(dir.resolve("n"), Tensor.of(v, 20, d), ids(20), HnswIndex.Options.DEFAULTS));
            assertTrue(notUnit.getMessage().contains("descriptor row 7 has L2 norm 2.0"), notUnit.getMessage());
            assertTrue(Files.notExists(dir.resolve("n")), "nothing left behind");
            List<String> left = new ArrayList<>();
            try (var s = Files.list(dir)) {
                s.forEach(p -> left.add(p.getFileName().toString()));
            }
            assertEquals(List.of("idx", "photos"), left.stream().sorted().toList(), "no temporary folders");
            assertThrows(IllegalArgumentException.class, () -> HnswIndex.build(dir.resolve("m"),
                    Tensor.of(unitRows(new Random(1), 20, d), 20, d), ids(19), HnswIndex.Options.DEFAULTS));
        }
    }

    /**
     * A damaged index folder is refused with a message that names the file and what is wrong: no
     * properties, another format, unreadable numbers, an ids file of another length, a Lucene index of
     * another size; the intact index opens.
     */
    @Test
    void aDamagedIndexFolderIsRefusedSayingWhatIsWrong() throws IOException {
        int d = 8;
        Path good = dir.resolve("good");
        Path small = dir.resolve("small");
        try (MemoryScope scope = MemoryScope.open()) {
            HnswIndex.build(good, Tensor.of(unitRows(new Random(1), 20, d), 20, d), ids(20),
                    HnswIndex.Options.DEFAULTS).close();
            HnswIndex.build(small, Tensor.of(unitRows(new Random(2), 12, d), 12, d), ids(12),
                    HnswIndex.Options.DEFAULTS).close();
        }
        Path props = good.resolve(HnswIndex.PROPERTIES);
        String original = Files.readString(props, java.nio.charset.StandardCharsets.ISO_8859_1);
        try (HnswIndex h = HnswIndex.open(good)) {
            assertEquals(20, h.size());
        }

        Path empty = Files.createDirectories(dir.resolve("empty"));
        IOException none = assertThrows(IOException.class, () -> HnswIndex.open(empty));
        assertTrue(none.getMessage().contains("not an HNSW index folder: expected hnsw.properties, ids.txt and lucene/"),
                none.getMessage());

        Files.writeString(props, original.replace("dir4j-hnsw-1", "dir4j-hnsw-9"));
        IOException format = assertThrows(IOException.class, () -> HnswIndex.open(good));
        assertTrue(format.getMessage().contains("format 'dir4j-hnsw-9' is not dir4j-hnsw-1"), format.getMessage());

        Files.writeString(props, original.replaceAll("(?m)^size=.*$", "size=twenty"));
        IOException numbers = assertThrows(IOException.class, () -> HnswIndex.open(good));
        assertTrue(numbers.getMessage().contains("dimension, size, maxConn and beamWidth must be numbers"),
                numbers.getMessage());

        Files.writeString(props, original.replaceAll("(?m)^size=.*$", "size=21"));
        IOException count = assertThrows(IOException.class, () -> HnswIndex.open(good));
        assertTrue(count.getMessage().contains("ids.txt has 20 ids but hnsw.properties says 21 rows"),
                count.getMessage());

        // the ids and properties of 20 rows over the Lucene index of another folder's 12
        Files.writeString(props, original);
        deleteTree(good.resolve(HnswIndex.LUCENE));
        copyTree(small.resolve(HnswIndex.LUCENE), good.resolve(HnswIndex.LUCENE));
        IOException lucene = assertThrows(IOException.class, () -> HnswIndex.open(good));
        assertTrue(lucene.getMessage().contains("the Lucene index holds 12 vectors but hnsw.properties says 20"),
                lucene.getMessage());
    }

    /**
     * After close(), searching (one thread or several) fails with an IllegalStateException in
     * ExactIndex's words, not Lucene's AlreadyClosedException; closing twice is harmless.
     */
    @Test
    void aClosedIndexRefusesSearchAsAClosedExactIndexDoes() throws IOException {
        int d = 8;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor rows = Tensor.of(unitRows(new Random(4), 20, d), 20, d);
            HnswIndex h = HnswIndex.build(dir.resolve("idx"), rows, ids(20), HnswIndex.Options.DEFAULTS);
            assertEquals(0, h.search(rows.slice(0, 0, 1), 1).indices()[0][0]);
            h.close();
            h.close(); // again: nothing happens
            String exactSays;
            try (ExactIndex exact = new ExactIndex(d)) {
                exact.close();
                exactSays = assertThrows(IllegalStateException.class, () -> exact.search(rows, 1)).getMessage();
            }
            IllegalStateException one = assertThrows(IllegalStateException.class, () -> h.search(rows, 3));
            assertEquals(exactSays, one.getMessage());
            assertEquals("the index was closed", one.getMessage());
            IllegalStateException many = assertThrows(IllegalStateException.class, () -> h.search(rows, 3, 50, 4));
            assertEquals("the index was closed", many.getMessage());
            assertEquals("the index was closed", assertThrows(IllegalStateException.class, h::segments).getMessage());
            // what is held in memory stays readable, as with ExactIndex
            assertEquals(20, h.size());
            assertEquals("img3", h.id(3));
            // and the folder opens again
            try (HnswIndex again = HnswIndex.open(dir.resolve("idx"))) {
                assertEquals(0, again.search(rows.slice(0, 0, 1), 1).indices()[0][0]);
            }
        }
    }

    /**
     * A service thread interrupted (a cancelled request) while building or opening an index: Java
     * closes the files the thread was using, and the error says the interrupt did it, naming the
     * folder, rather than Lucene's bare ClosedChannelException; the interrupt is kept, no
     * temporary folder is left and the index that was there opens as before.
     */
    @Test
    void anInterruptedBuildOrOpenSaysSoNamingTheFolder() throws IOException {
        int d = 8;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor rows = Tensor.of(unitRows(new Random(5), 300, d), 300, d);
            Path folder = dir.resolve("idx");
            HnswIndex.build(folder, rows, ids(300), HnswIndex.Options.DEFAULTS).close();
            Path other = dir.resolve("other");
            IOException build;
            IOException open;
            Thread.currentThread().interrupt();
            try {
                build = assertThrows(IOException.class, () -> HnswIndex.build(other, rows, ids(300),
                        HnswIndex.Options.DEFAULTS));
                open = assertThrows(IOException.class, () -> HnswIndex.open(folder));
                assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is kept");
            } finally {
                Thread.interrupted();
            }
            assertEquals("interrupted while building the HNSW index in " + other + " (an interrupt closes the files "
                    + "a thread is reading or writing)", build.getMessage());
            assertEquals("interrupted while opening the HNSW index in " + folder + " (an interrupt closes the files "
                    + "a thread is reading or writing)", open.getMessage());
            try (var left = Files.list(dir)) {
                assertEquals(List.of("idx"), left.map(p -> p.getFileName().toString()).toList());
            }
            try (HnswIndex again = HnswIndex.open(folder)) {
                assertEquals(7, again.search(rows.slice(0, 7, 8), 1).indices()[0][0]);
            }
        }
    }

    /**
     * A service closes an index (after swapping in a rebuilt one) while request threads are still
     * searching it: a search that started before the close finishes with the right answers, and
     * one that starts after it fails with "the index was closed", never with Lucene's
     * NullPointerException or the unmapped file's "Already closed".
     */
    @Test
    void closingWhileOtherThreadsSearchLetsSearchesInProgressFinish() throws Exception {
        int n = 2000;
        int d = 32;
        Random rng = new Random(12);
        float[] db = unitRows(rng, n, d);
        float[] qs = unitRows(rng, 200, d);
        Path folder = dir.resolve("live");
        Neighbours expected;
        try (Tensor rows = Tensor.of(db, n, d); Tensor queries = Tensor.of(qs, 200, d);
             HnswIndex built = HnswIndex.build(folder, rows, ids(n), HnswIndex.Options.DEFAULTS)) {
            expected = built.search(queries, 5);
        }
        List<String> wrong = java.util.Collections.synchronizedList(new ArrayList<>());
        java.util.concurrent.atomic.AtomicInteger finished = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
        for (int round = 0; round < 10; round++) {
            HnswIndex h = HnswIndex.open(folder);
            java.util.concurrent.CountDownLatch searching = new java.util.concurrent.CountDownLatch(2);
            List<Thread> searchers = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                Thread s = new Thread(() -> {
                    try (Tensor queries = Tensor.of(qs, 200, d)) {
                        searching.countDown();
                        while (true) {
                            Neighbours got = h.search(queries, 5);
                            for (int q = 0; q < 200; q++) {
                                if (!java.util.Arrays.equals(expected.indices()[q], got.indices()[q])) {
                                    wrong.add("query " + q + ": rows " + java.util.Arrays.toString(got.indices()[q]));
                                }
                            }
                            finished.incrementAndGet();
                        }
                    } catch (IllegalStateException e) {
                        if (e.getMessage().equals("the index was closed")) {
                            refused.incrementAndGet();
                        } else {
                            wrong.add(e.toString());
                        }
                    } catch (RuntimeException e) {
                        wrong.add(e.toString());
                    }
                });
                s.start();
                searchers.add(s);
            }
            searching.await();
            Thread.sleep(5 + round);
            h.close();
            for (Thread s : searchers) {
                s.join(60_000);
                assertTrue(!s.isAlive(), "a search still running a minute after close");
            }
        }
        assertEquals(List.of(), wrong.subList(0, Math.min(5, wrong.size())), wrong.size() + " wrong outcomes");
        assertEquals(20, refused.get(), "each searcher ends refused once its index is closed");
        assertTrue(finished.get() > 0, "searches completed before the closes");
    }

    private static void deleteTree(Path p) throws IOException {
        try (var s = Files.walk(p)) {
            for (Path f : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (var s = Files.walk(from)) {
            for (Path f : s.toList()) {
                Files.copy(f, to.resolve(from.relativize(f).toString()));
            }
        }
    }

    /** The exact top 10 of each query among the rows of {@code db} (ids by row number). */
    private static Neighbours exactTop10(Tensor db, Tensor queries) {
        try (ExactIndex e = new ExactIndex(db.shape(1))) {
            e.add(db, ids(db.shape(0)));
            return e.search(queries, 10);
        }
    }
}
