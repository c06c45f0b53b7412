package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExactIndexTest {

    static float[] unitRows(Random rng, int n, int d) {
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++) {
            double norm = 0;
            for (int j = 0; j < d; j++) {
                x[i * d + j] = (float) rng.nextGaussian();
                norm += x[i * d + j] * x[i * d + j];
            }
            for (int j = 0; j < d; j++) {
                x[i * d + j] /= (float) Math.sqrt(norm);
            }
        }
        return x;
    }

    /** Brute force in float64: every score, then a full sort (score desc, row asc). */
    static int[] bruteForce(float[] q, int qi, float[] db, int n, int d, double[] scoresOut) {
        Integer[] order = new Integer[n];
        double[] s = new double[n];
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int c = 0; c < d; c++) {
                acc += (double) q[qi * d + c] * db[j * d + c];
            }
            s[j] = acc;
            order[j] = j;
        }
        Arrays.sort(order, (a, b) -> s[a] != s[b] ? Double.compare(s[b], s[a]) : Integer.compare(a, b));
        int[] out = new int[n];
        for (int j = 0; j < n; j++) {
            out[j] = order[j];
            scoresOut[j] = s[order[j]];
        }
        return out;
    }

    @Test
    void searchMatchesBruteForceAcrossQueryAndDatabaseBlocks() {
        // 9000 rows span two database blocks (8192), 520 queries two query blocks (512)
        Random rng = new Random(7);
        int n = 9000;
        int d = 24;
        int nq = 520;
        int k = 10;
        float[] db = unitRows(rng, n, d);
        float[] q = unitRows(rng, nq, d);
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(d)) {
            index.add(Tensor.of(db, n, d));
            Neighbours nb = index.search(Tensor.of(q, nq, d), k);
            assertEquals(nq, nb.queries());
            double[] scores = new double[n];
            for (int i = 0; i < nq; i++) {
                int[] expected = bruteForce(q, i, db, n, d, scores);
                assertEquals(k, nb.indices()[i].length);
                for (int r = 0; r < k; r++) {
                    assertEquals(scores[r], nb.scores()[i][r], 2e-6, "query " + i + " rank " + r + " score");
                    // float32 SGEMM may swap rows whose float64 scores are closer than its rounding
                    if (nb.indices()[i][r] != expected[r]) {
                        int got = nb.indices()[i][r];
                        int pos = Arrays.stream(expected).boxed().toList().indexOf(got);
                        assertTrue(Math.abs(scores[pos] - scores[r]) < 2e-6, "query " + i + " rank " + r
                                + ": row " + got + " instead of " + expected[r]);
                    }
                }
            }
        }
    }

    /**
     * A service's use: threads search while another adds rows (the storage grows and moves) and
     * finally closes the index. Each search sees a whole prefix of the rows added (its results are
     * brute force's over one of the prefix sizes), and a search after the close is refused as a
     * closed index's, never a read of freed memory.
     */
    @Test
    void searchesRunWhileAnotherThreadAddsAndCloses() throws Exception {
        int d = 32;
        int first = 200;
        int chunk = 50;
        int total = 2000;
        float[] all = unitRows(new Random(21), total, d);
        int queries = 6;
        float[] q = Arrays.copyOf(all, queries * d);
        List<int[][]> expected = new ArrayList<>(); // per prefix size, per query, the 5 best rows
        for (int n = first; n <= total; n += chunk) {
            int[][] top = new int[queries][];
            for (int i = 0; i < queries; i++) {
                top[i] = Arrays.copyOf(bruteForce(q, i, all, n, d, new double[n]), 5);
            }
            expected.add(top);
        }
        ExactIndex index = new ExactIndex(d);
        try (MemoryScope scope = MemoryScope.open()) {
            index.add(Tensor.of(Arrays.copyOf(all, first * d), first, d));
        }
        var searches = new java.util.concurrent.atomic.AtomicInteger();
        var refused = new java.util.concurrent.atomic.AtomicInteger();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> searchers = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            searchers.add(Thread.ofPlatform().start(() -> {
                while (true) { // until the close refuses a search
                    try (MemoryScope scope = MemoryScope.open()) {
                        Neighbours n = index.search(Tensor.of(q, queries, d), 5);
                        searches.incrementAndGet();
                        if (expected.stream().noneMatch(e -> Arrays.deepEquals(e, n.indices()))) {
                            failures.add(new AssertionError("results of no prefix: "
                                    + Arrays.deepToString(n.indices())));
                        }
                    } catch (IllegalStateException e) {
                        if (!"the index was closed".equals(e.getMessage())) {
                            failures.add(e);
                        }
                        refused.incrementAndGet();
                        return;
                    } catch (Throwable e) {
                        failures.add(e);
                        return;
                    }
                }
            }));
        }
        for (int n = first; n < total; n += chunk) {
            try (MemoryScope scope = MemoryScope.open()) {
                index.add(Tensor.of(Arrays.copyOfRange(all, n * d, (n + chunk) * d), chunk, d));
            }
            Thread.sleep(2);
        }
        assertEquals(total, index.size());
        assertEquals(Integer.toString(total - 1), index.id(total - 1));
        Thread.sleep(50);
        index.close();
        for (Thread t : searchers) {
            assertTrue(t.join(java.time.Duration.ofSeconds(60)), "a searcher still runs after the close");
        }
        assertTrue(failures.isEmpty(), () -> failures.size() + " failures, the first: " + failures.get(0));
        assertTrue(searches.get() > 0 && refused.get() == 4, searches + " searches, " + refused + " refused");
    }

    /**
     * The two moments a search could read freed storage, each met many times: an add that moves the
     * rows (the storage is full, so any add grows it and frees the old one) and the close, both while
     * searches are in progress. Every search finishes on the rows it started with or is refused as a
     * closed index's.
     */
    @Test
    void addsThatMoveTheRowsAndClosesWaitForTheSearchesInProgress() throws Exception {
        int d = 64;
        int n = 4000; // the storage holds exactly these after the first add
        float[] db = unitRows(new Random(22), n + 1, d);
        float[] q = Arrays.copyOf(db, 8 * d);
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int round = 0; round < 40 && failures.isEmpty(); round++) {
            ExactIndex index = new ExactIndex(d);
            try (MemoryScope scope = MemoryScope.open()) {
                index.add(Tensor.of(Arrays.copyOf(db, n * d), n, d));
            }
            var searches = new java.util.concurrent.atomic.AtomicInteger();
            List<Thread> searchers = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                searchers.add(Thread.ofPlatform().start(() -> {
                    while (true) {
                        try (MemoryScope scope = MemoryScope.open()) {
                            Neighbours found = index.search(Tensor.of(q, 8, d), 3);
                            if (found.indices()[5][0] != 5) {
                                failures.add(new AssertionError("query 5 found " + found.indices()[5][0]));
                            }
                            searches.incrementAndGet();
                        } catch (IllegalStateException e) {
                            if (!"the index was closed".equals(e.getMessage())) {
                                failures.add(e);
                            }
                            return;
                        } catch (Throwable e) {
                            failures.add(e);
                            return;
                        }
                    }
                }));
            }
            while (searches.get() < 3 && failures.isEmpty()) {
                Thread.onSpinWait();
            }
            try (MemoryScope scope = MemoryScope.open()) {
                index.add(Tensor.of(Arrays.copyOfRange(db, n * d, (n + 1) * d), 1, d));
            }
            int before = searches.get();
            while (searches.get() < before + 3 && failures.isEmpty()) {
                Thread.onSpinWait();
            }
            index.close();
            for (Thread t : searchers) {
                assertTrue(t.join(java.time.Duration.ofSeconds(60)), "a searcher still runs after the close");
            }
        }
        assertTrue(failures.isEmpty(), () -> failures.size() + " failures, the first: " + failures.get(0));
    }

    @Test
    void scoresAreBestFirstAndTiesGoToTheLowerRow() {
        float[] db = {
            1, 0,      // 0: score 1
            0, 1,      // 1: score 0
            1, 0,      // 2: duplicate of 0, score 1
            -1, 0,     // 3: score -1
            0.6f, 0.8f // 4: score 0.6
        };
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(2)) {
            index.add(Tensor.of(db, 5, 2));
            Neighbours nb = index.search(Tensor.of(new float[] {1, 0}, 1, 2), 3);
            assertArrayEquals(new int[] {0, 2, 4}, nb.indices()[0]);
            assertArrayEquals(new float[] {1, 1, 0.6f}, nb.scores()[0], 1e-7f);
        }
    }

    /** float64 rows and a transposed (non-contiguous) view are added as the same float32 rows. */
    @Test
    void float64AndStridedDescriptorsAddAsTheirFloat32Rows() {
        float[] db = {1, 0, 0, 1, 0.6f, 0.8f, -1, 0};
        double[] asDoubles = new double[db.length];
        for (int i = 0; i < db.length; i++) {
            asDoubles[i] = db[i];
        }
        // the same 4 x 2 rows as the transpose of their 2 x 4 columns
        float[] columns = {1, 0, 0.6f, -1, 0, 1, 0.8f, 0};
        try (MemoryScope scope = MemoryScope.open(); ExactIndex plain = new ExactIndex(2);
             ExactIndex doubles = new ExactIndex(2); ExactIndex strided = new ExactIndex(2)) {
            plain.add(Tensor.of(db, 4, 2));
            doubles.add(Tensor.ofDoubles(asDoubles, 4, 2));
            Tensor t = Tensor.of(columns, 2, 4).transpose(0, 1);
            assertFalse(t.isContiguous(), "a strided view");
            strided.add(t);
            Tensor q = Tensor.of(new float[] {0.8f, 0.6f, 0, -1}, 2, 2);
            Neighbours want = plain.search(q, 4);
            for (ExactIndex other : new ExactIndex[] {doubles, strided}) {
                Neighbours got = other.search(q, 4);
                for (int r = 0; r < 2; r++) {
                    assertArrayEquals(want.indices()[r], got.indices()[r]);
                    assertArrayEquals(want.scores()[r], got.scores()[r], 0f);
                }
            }
            assertArrayEquals(new int[] {2, 0, 1, 3}, want.indices()[0], "0.8·0.6 + 0.6·0.8 = 0.96 first");
        }
    }

    /**
     * k above the backend's top-k limit (1,024; full rankings, as an evaluation over a large
     * database asks) takes the path that merges every score: the same neighbours and scores as the
     * brute force, across a database block, and rows of later blocks keep their block's offset.
     */
    @Test
    void kAboveTheTopKLimitMergesEveryScoreAcrossBlocks() {
        Random rng = new Random(11);
        int n = 9000; // two database blocks of 8192 on the CPU
        int d = 16;
        int nq = 3;
        int k = dir4j.engine.Backend.TOPK_MAX + 500;
        float[] db = unitRows(rng, n, d);
        float[] q = unitRows(rng, nq, d);
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(d)) {
            index.add(Tensor.of(db, n, d));
            Neighbours nb = index.search(Tensor.of(q, nq, d), k);
            double[] scores = new double[n];
            for (int i = 0; i < nq; i++) {
                int[] expected = bruteForce(q, i, db, n, d, scores);
                int[] got = nb.indices()[i];
                assertEquals(k, got.length);
                assertEquals(k, Arrays.stream(got).distinct().count(), "query " + i + ": rows named once");
                for (int r = 0; r < k; r++) {
                    double own = 0;
                    for (int c = 0; c < d; c++) {
                        own += (double) q[i * d + c] * db[got[r] * d + c];
                    }
                    assertEquals(own, nb.scores()[i][r], 2e-6, "query " + i + " rank " + r + ": row " + got[r]
                            + " has the score given");
                    assertEquals(scores[r], nb.scores()[i][r], 2e-6, "query " + i + " rank " + r);
                }
                assertTrue(Arrays.stream(got).anyMatch(r -> r >= 8192), "a neighbour from the second block");
                assertEquals(expected[0], got[0], "query " + i + ": the best row");
            }
        }
    }

    @Test
    void kBeyondTheIndexSizeReturnsEveryRowInOrder() {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(2)) {
            index.add(Tensor.of(new float[] {0, 1, 1, 0, -1, 0}, 3, 2));
            Neighbours nb = index.search(Tensor.of(new float[] {0.8f, 0.6f, -1, 0}, 2, 2), 50);
            assertArrayEquals(new int[] {1, 0, 2}, nb.indices()[0]);
            assertArrayEquals(new int[] {2, 0, 1}, nb.indices()[1]);
            assertArrayEquals(new float[] {1, 0, -1}, nb.scores()[1], 1e-7f);
        }
    }

    @Test
    void addsAccumulateRowsAndIdsAcrossCallsAndOutliveTheCallersScope() {
        Random rng = new Random(3);
        float[] a = unitRows(rng, 20, 8);
        float[] b = unitRows(rng, 30, 8);
        ExactIndex index = new ExactIndex(8);
        try (MemoryScope scope = MemoryScope.open()) {
            index.add(Tensor.of(a, 20, 8));
            List<String> ids = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                ids.add("img_" + i + ".jpg");
            }
            index.add(Tensor.of(b, 30, 8), ids);
        }
        try (MemoryScope scope = MemoryScope.open(); index) {
            assertEquals(50, index.size());
            assertEquals("19", index.id(19));
            assertEquals("img_0.jpg", index.id(20));
            // each row is its own nearest neighbour
            float[] all = index.descriptors().toFloatArray();
            assertArrayEquals(a, Arrays.copyOf(all, 160));
            Neighbours nb = index.search(index.descriptors(), 1);
            for (int i = 0; i < 50; i++) {
                assertEquals(i, nb.indices()[i][0]);
                assertEquals(1f, nb.scores()[i][0], 1e-6f);
            }
        }
    }

    @Test
    void saveThenLoadRestoresDescriptorsIdsAndResults(@TempDir Path dir) throws IOException {
        Random rng = new Random(11);
        float[] db = unitRows(rng, 40, 6);
        float[] q = unitRows(rng, 5, 6);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            ids.add("oxford_" + (1000 + i));
        }
        Path folder = dir.resolve("index");
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(6)) {
            index.add(Tensor.of(db, 40, 6), ids);
            Neighbours before = index.search(Tensor.of(q, 5, 6), 7);
            index.save(folder);
            try (ExactIndex loaded = ExactIndex.load(folder)) {
                assertEquals(ids, loaded.ids());
                assertArrayEquals(db, loaded.descriptors().toFloatArray());
                Neighbours after = loaded.search(Tensor.of(q, 5, 6), 7);
                assertArrayEquals(before.indices(), after.indices());
            }
        }
        try (Stream<Path> files = Files.list(folder)) {
            assertEquals(List.of(ExactIndex.DESCRIPTORS, ExactIndex.IDS),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary files left behind");
        }
    }

    /**
     * A service thread interrupted (a cancelled request) while saving or loading: Java closes the
     * file the thread was using, and the error says the interrupt did it, naming the folder, rather
     * than a bare ClosedByInterruptException or "cannot be mapped for reading: null"; the
     * interrupt is kept and the index is still usable.
     */
    @Test
    void anInterruptedSaveOrLoadSaysSoNamingTheFolder(@TempDir Path dir) throws IOException {
        Path saved = dir.resolve("saved");
        Path other = dir.resolve("other");
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(3)) {
            index.add(Tensor.of(new float[] {1, 0, 0, 0, 1, 0}, 2, 3));
            index.save(saved);
            IOException save;
            IOException load;
            Thread.currentThread().interrupt();
            try {
                save = assertThrows(IOException.class, () -> index.save(other));
                load = assertThrows(IOException.class, () -> ExactIndex.load(saved));
                assertTrue(Thread.currentThread().isInterrupted(), "the interrupt is kept");
            } finally {
                Thread.interrupted();
            }
            assertEquals("interrupted while saving the index in " + other + " (an interrupt closes the files a "
                    + "thread is reading or writing)", save.getMessage());
            assertEquals("interrupted while loading the index in " + saved + " (an interrupt closes the files a "
                    + "thread is reading or writing)", load.getMessage());
            index.save(other);
            try (ExactIndex loaded = ExactIndex.load(other)) {
                assertEquals(List.of("0", "1"), loaded.ids());
                assertEquals(1, loaded.search(Tensor.of(new float[] {0, 1, 0}, 1, 3), 1).indices()[0][0]);
            }
        }
    }

    @Test
    void loadRejectsAnIdsFileThatDisagreesWithTheDescriptors(@TempDir Path dir) throws IOException {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(3)) {
            index.add(Tensor.of(new float[] {1, 0, 0, 0, 1, 0}, 2, 3));
            index.save(dir);
        }
        Files.writeString(dir.resolve(ExactIndex.IDS), "only-one\n");
        IOException e = assertThrows(IOException.class, () -> ExactIndex.load(dir));
        assertTrue(e.getMessage().contains("2 rows but ids.txt has 1 ids"), e.getMessage());
        assertThrows(IOException.class, () -> ExactIndex.load(dir.resolve("missing")));
    }

    @Test
    void mismatchedDimensionsAndBadIdsAreRejectedWithTheShapes() {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> index.add(Tensor.of(new float[6], 2, 3)));
            assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("dimension 4"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> index.add(Tensor.of(new float[4], 1, 4), List.of("a\nb")));
            assertThrows(IllegalArgumentException.class, () -> index.search(Tensor.of(new float[3], 1, 3), 1));
            assertThrows(IllegalArgumentException.class, () -> index.search(Tensor.of(new float[4], 1, 4), 0));
        }
    }

    @Test
    void anEmptyIndexReturnsNoNeighbours() {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(2)) {
            Neighbours nb = index.search(Tensor.of(new float[] {1, 0}, 1, 2), 5);
            assertEquals(0, nb.indices()[0].length);
        }
    }

    private static final String FINITE = ", not a finite value: dot-product search needs finite ";
    private static final String WHY = " (one NaN or infinity makes every score it touches NaN)";

    /**
     * A NaN or infinity in a row to add is refused naming the row, the element and the value, and
     * nothing is added; a query holding one is refused the same way (it used to come back with
     * NaN scores ranked first). Vector lanes, a lane remainder and a second check block are hit.
     */
    @Test
    void nonFiniteDescriptorsAndQueriesAreRefusedNamingRowElementAndValue() {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(4)) {
            index.add(Tensor.of(new float[] {1, 0, 0, 0, 0, 1, 0, 0}, 2, 4), List.of("a", "b"));
            float[] bad = {0, 0, 1, 0, 0, 0, Float.NaN, 1};
            IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                    () -> index.add(Tensor.of(bad, 2, 4), List.of("c", "d")));
            assertEquals("descriptor row 1 holds NaN at element 2" + FINITE + "descriptors" + WHY, nan.getMessage());
            IllegalArgumentException inf = assertThrows(IllegalArgumentException.class,
                    () -> index.add(Tensor.ofDoubles(new double[] {0, Double.NEGATIVE_INFINITY, 0, 0}, 1, 4)));
            assertEquals("descriptor row 0 holds -infinity at element 1" + FINITE + "descriptors" + WHY,
                    inf.getMessage());
            IllegalArgumentException wide = assertThrows(IllegalArgumentException.class,
                    () -> index.add(Tensor.ofDoubles(new double[] {0, 0, 0, 1e300}, 1, 4)));
            assertEquals("descriptor row 0 holds 1.0E300 (+infinity as float32, beyond its range) at element 3"
                    + FINITE + "descriptors" + WHY, wide.getMessage());
            assertEquals(2, index.size(), "nothing of a refused block is added");
            assertEquals(List.of("a", "b"), index.ids());
            index.add(Tensor.of(new float[] {0, 0, 1, 0}, 1, 4), List.of("c"));
            assertArrayEquals(new float[] {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, index.descriptors().toFloatArray());

            IllegalArgumentException query = assertThrows(IllegalArgumentException.class,
                    () -> index.search(Tensor.of(new float[] {1, 0, 0, 0, 0, 1, 0, Float.NaN}, 2, 4), 3));
            assertEquals("query row 1 holds NaN at element 3" + FINITE + "queries" + WHY, query.getMessage());
            // float64 and strided queries are checked as the float32 values that are scored
            Tensor columns = Tensor.ofDoubles(new double[] {1, 0, 0, Double.POSITIVE_INFINITY, 0, 0, 0, 0}, 4, 2)
                    .transpose(0, 1);
            assertFalse(columns.isContiguous());
            IllegalArgumentException strided = assertThrows(IllegalArgumentException.class,
                    () -> index.search(columns, 3));
            assertEquals("query row 1 holds +infinity at element 1" + FINITE + "queries" + WHY, strided.getMessage());
            // finite queries still search as before
            Neighbours nb = index.search(Tensor.of(new float[] {0, 0, 1, 0}, 1, 4), 3);
            assertArrayEquals(new int[] {2, 0, 1}, nb.indices()[0]);
            assertArrayEquals(new float[] {1, 0, 0}, nb.scores()[0], 0f);
        }
        try (MemoryScope scope = MemoryScope.open(); ExactIndex empty = new ExactIndex(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> empty.search(Tensor.of(new float[] {Float.NaN, 0}, 1, 2), 1));
            assertTrue(e.getMessage().startsWith("query row 0 holds NaN at element 0"), e.getMessage());
        }
        // 50 rows of 100: 5,000 values, past the first 4,096-value check block; a value in the vector
        // lanes of the first block and one in the second block's tail are both found
        Random rng = new Random(5);
        for (int at : new int[] {3 * 100 + 7, 45 * 100 + 99, 49 * 100 + 99}) {
            float[] v = unitRows(rng, 50, 100);
            v[at] = Float.POSITIVE_INFINITY;
            try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(100)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> index.add(Tensor.of(v, 50, 100)));
                assertEquals("descriptor row " + at / 100 + " holds +infinity at element " + at % 100 + FINITE
                        + "descriptors" + WHY, e.getMessage());
                assertEquals(0, index.size());
                IllegalArgumentException q = assertThrows(IllegalArgumentException.class,
                        () -> index.search(Tensor.of(v, 50, 100), 1));
                assertTrue(q.getMessage().startsWith("query row " + at / 100 + " holds +infinity at element "
                        + at % 100 + ","), q.getMessage());
            }
            assertEquals(at, dir4j.engine.cpu.FloatScan.firstNonFinite(java.lang.foreign.MemorySegment.ofArray(v), 0, v.length));
        }
        assertEquals(-1, dir4j.engine.cpu.FloatScan.firstNonFinite(java.lang.foreign.MemorySegment.ofArray(unitRows(rng, 50, 100)), 0,
                5000));
    }

    /** A saved index whose descriptors.npy holds a NaN is refused naming the file and the row. */
    @Test
    void loadRefusesDescriptorsHoldingNaN(@TempDir Path dir) throws IOException {
        Path folder = dir.resolve("index");
        Files.createDirectories(folder);
        try (MemoryScope scope = MemoryScope.open()) {
            dir4j.engine.io.Npy.write(folder.resolve(ExactIndex.DESCRIPTORS),
                    Tensor.of(new float[] {1, 0, Float.NaN, 1}, 2, 2));
        }
        Files.writeString(folder.resolve(ExactIndex.IDS), "x\ny\n");
        IOException e = assertThrows(IOException.class, () -> ExactIndex.load(folder));
        assertEquals(folder.resolve(ExactIndex.DESCRIPTORS) + ": descriptor row 1 holds NaN at element 0" + FINITE
                + "descriptors" + WHY, e.getMessage());
    }

    /**
     * append grows a saved index on disk, a block of saved rows at a time (several blocks here):
     * the result is what one index of all the rows saves; what it refuses leaves the folder as it
     * was, with nothing beside it.
     */
    @Test
    void appendGrowsASavedIndexWithoutLoadingIt(@TempDir Path dir) throws IOException {
        int d = 8;
        float[] a = unitRows(new Random(41), 37, d);
        float[] b = unitRows(new Random(42), 11, d);
        List<String> idsA = java.util.stream.IntStream.range(0, 37).mapToObj(i -> "a" + i).toList();
        List<String> idsB = java.util.stream.IntStream.range(0, 11).mapToObj(i -> "b" + i).toList();
        Path folder = dir.resolve("idx");
        long block = ExactIndex.appendBlockBytes;
        ExactIndex.appendBlockBytes = 5L * d * Float.BYTES; // 5 rows a block: 8 blocks, the last partial
        try (MemoryScope scope = MemoryScope.open(); ExactIndex index = new ExactIndex(d)) {
            index.add(Tensor.of(a, 37, d), idsA);
            index.save(folder);
            // float64 rows are stored as float32, as add stores them
            double[] b64 = new double[b.length];
            for (int i = 0; i < b.length; i++) {
                b64[i] = b[i];
            }
            assertEquals(37, ExactIndex.append(folder, Tensor.ofDoubles(b64, 11, d), idsB));
            try (ExactIndex grown = ExactIndex.load(folder); ExactIndex whole = new ExactIndex(d)) {
                whole.add(Tensor.of(a, 37, d), idsA);
                whole.add(Tensor.of(b, 11, d), idsB);
                assertEquals(whole.ids(), grown.ids());
                assertArrayEquals(whole.descriptors().toFloatArray(), grown.descriptors().toFloatArray());
            }
            // refused: another dimension, a NaN row (named in the new rows), an id count that does not fit
            IllegalArgumentException wide = assertThrows(IllegalArgumentException.class,
                    () -> ExactIndex.append(folder, Tensor.of(new float[12], 1, 12), List.of("w")));
            assertTrue(wide.getMessage().contains("holds 8-d descriptors; these are 12-d"), wide.getMessage());
            float[] bad = unitRows(new Random(43), 3, d);
            bad[2 * d + 1] = Float.NaN;
            IllegalArgumentException nan = assertThrows(IllegalArgumentException.class,
                    () -> ExactIndex.append(folder, Tensor.of(bad, 3, d), List.of("x", "y", "z")));
            assertTrue(nan.getMessage().contains("row 2"), nan.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> ExactIndex.append(folder, Tensor.of(bad, 3, d), List.of("x")));
            try (ExactIndex same = ExactIndex.load(folder)) {
                assertEquals(48, same.size());
            }
            try (var left = Files.list(dir)) {
                assertEquals(List.of(folder), left.toList(), "nothing beside the index");
            }
            // a folder whose files disagree is named, not grown
            Files.write(folder.resolve(ExactIndex.IDS), List.of("only"));
            IOException torn = assertThrows(IOException.class,
                    () -> ExactIndex.append(folder, Tensor.of(b, 11, d), idsB));
            assertTrue(torn.getMessage().contains("48 rows but ids.txt has 1 ids"), torn.getMessage());
            assertThrows(java.nio.file.NoSuchFileException.class,
                    () -> ExactIndex.append(dir.resolve("none"), Tensor.of(b, 11, d), idsB));
        } finally {
            ExactIndex.appendBlockBytes = block;
        }
    }
}
