package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.ScoreOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The database extended by streamed distractors gives what the whole concatenation, in memory,
 * gives: each image's place in the full ranking, the k nearest rows, αQE; in any block size.
 */
class ExtendedDatabaseTest {
    /** Distractors from an in-memory tensor, counting the blocks read. */
    static class Held implements ExtendedDatabase.Rows {
        final Tensor rows;
        final List<long[]> reads = new ArrayList<>();

        Held(Tensor rows) {
            this.rows = rows;
        }

        @Override
        public long count() {
            return rows.shape(0);
        }

        @Override
        public int dimension() {
            return rows.shape(1);
        }

        @Override
        public Tensor read(long from, int n) {
            reads.add(new long[] {from, n});
            return Ops.contiguous(rows.slice(0, (int) from, (int) from + n));
        }
    }

    static Tensor unitRows(Random rng, int n, int d) {
        Tensor t = Tensor.randn(rng, n, d);
        return t.div(t.pow(2).sum(1, true).sqrt());
    }

    /** Positions of the database's images (ranked) in the ranking of database + distractors. */
    static int[][] expectedPositions(int[][] full, int n) {
        int[][] pos = new int[full.length][];
        for (int q = 0; q < full.length; q++) {
            List<Integer> p = new ArrayList<>();
            for (int i = 0; i < full[q].length; i++) {
                if (full[q][i] < n) {
                    p.add(i);
                }
            }
            pos[q] = p.stream().mapToInt(Integer::intValue).toArray();
        }
        return pos;
    }

    @Test
    void rankingsAndPositionsAreThoseOfTheConcatenatedDatabaseInAnyBlockSize() throws Exception {
        Random rng = new Random(3);
        try (MemoryScope scope = MemoryScope.open()) {
            int n = 23;
            int m = 61;
            Tensor queries = unitRows(rng, 5, 6);
            Tensor db = unitRows(rng, n, 6);
            Tensor distractors = unitRows(rng, m, 6);
            // a distractor that duplicates database image 4: it scores exactly the same and ranks after it
            float[] x = distractors.toFloatArray();
            float[] b = db.toFloatArray();
            System.arraycopy(b, 4 * 6, x, 10 * 6, 6);
            distractors = Tensor.of(x, m, 6);
            Tensor all = Ops.concat(0, db, distractors);
            int[][] full = Rankings.bySimilarity(queries, all);
            int[][] positions = expectedPositions(full, n);
            int[][] rankings = new int[full.length][];
            for (int q = 0; q < full.length; q++) {
                rankings[q] = java.util.Arrays.stream(full[q]).filter(i -> i < n).toArray();
            }
            for (int block : new int[] {1, 7, 61, 1000}) {
                Held held = new Held(distractors);
                long[] last = {0};
                ExtendedDatabase.Ranked r = ExtendedDatabase.rank(queries, db, null, held, block,
                        done -> last[0] = done);
                assertArrayEquals(rankings, r.rankings(), "block " + block);
                assertArrayEquals(positions, r.positions(), "block " + block);
                assertEquals(m, last[0]);
                assertEquals((m + block - 1) / block, held.reads.size());
            }
            // the duplicate: right after image 4 in every query's ranking
            ExtendedDatabase.Ranked r = ExtendedDatabase.rank(queries, db, null, new Held(distractors), 8, null);
            for (int q = 0; q < 5; q++) {
                int at = java.util.Arrays.asList(java.util.Arrays.stream(full[q]).boxed().toArray()).indexOf(4);
                assertEquals(n + 10, full[q][at + 1], "query " + q);
                int p = java.util.Arrays.stream(r.rankings()[q]).boxed().toList().indexOf(4);
                assertEquals(at, r.positions()[q][p]);
            }
        }
    }

    /** Asked for some images only, each of them gets its full place, every other image -1. */
    @Test
    void theImagesAskedForGetTheirPlacesAndTheOthersNone() throws Exception {
        Random rng = new Random(8);
        try (MemoryScope scope = MemoryScope.open()) {
            int n = 30;
            Tensor queries = unitRows(rng, 3, 6);
            Tensor db = unitRows(rng, n, 6);
            Tensor distractors = unitRows(rng, 200, 6);
            ExtendedDatabase.Ranked all = ExtendedDatabase.rank(queries, db, null, new Held(distractors), 32, null);
            int[][] relevant = {{0, 7, 29}, {}, {3, 4, 5, 6, 28, 2}};
            for (int block : new int[] {1, 13, 200}) {
                ExtendedDatabase.Ranked some = ExtendedDatabase.rank(queries, db, relevant, new Held(distractors),
                        block, null);
                assertArrayEquals(all.rankings(), some.rankings());
                for (int q = 0; q < 3; q++) {
                    java.util.Set<Integer> asked = java.util.Arrays.stream(relevant[q]).boxed()
                            .collect(java.util.stream.Collectors.toSet());
                    for (int p = 0; p < n; p++) {
                        int expected = asked.contains(all.rankings()[q][p]) ? all.positions()[q][p] : -1;
                        assertEquals(expected, some.positions()[q][p], "query " + q + " place " + p);
                    }
                }
            }
            // the places moved: some distractors rank among the images asked for
            assertTrue(all.positions()[0][n - 1] > n - 1);
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> ExtendedDatabase.rank(
                    queries, db, new int[][] {{0}, {30}, {1}}, new Held(distractors), 8, null));
            assertTrue(bad.getMessage().contains("relevant image 30"), bad.getMessage());
        }
    }

    @Test
    void withoutDistractorsTheRankingIsTheDatabasesAndEachImageStaysInPlace() throws Exception {
        Random rng = new Random(5);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor queries = unitRows(rng, 4, 5);
            Tensor db = unitRows(rng, 17, 5);
            ExtendedDatabase.Ranked r = ExtendedDatabase.rank(queries, db, null, new Held(Tensor.zeros(0, 5)), 4,
                    null);
            assertArrayEquals(Rankings.bySimilarity(queries, db), r.rankings());
            for (int[] p : r.positions()) {
                assertArrayEquals(java.util.stream.IntStream.range(0, 17).toArray(), p);
            }
        }
    }

    @Test
    void nearestAndQueryExpansionTakeNeighboursFromImagesAndDistractorsAlike() throws Exception {
        Random rng = new Random(11);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor queries = unitRows(rng, 6, 8);
            Tensor db = unitRows(rng, 9, 8);
            Tensor distractors = unitRows(rng, 40, 8);
            Tensor all = Ops.concat(0, db, distractors);
            for (int block : new int[] {1, 5, 64}) {
                long[][] keys = ExtendedDatabase.nearest(queries, db, new Held(distractors), 4, block, null);
                int[][] top = Rankings.bySimilarity(queries, all);
                boolean fromDistractors = false;
                for (int q = 0; q < 6; q++) {
                    for (int j = 0; j < 4; j++) {
                        assertEquals(top[q][j], ScoreOrder.index(keys[q][j]), "query " + q + " rank " + j);
                        fromDistractors |= top[q][j] >= 9;
                    }
                }
                assertTrue(fromDistractors, "the case must take neighbours among the distractors");
                Held held = new Held(distractors);
                Tensor expanded = ExtendedDatabase.queryExpansion(queries, db, held, 4, 3, block, null);
                assertArrayEquals(AlphaExpansion.queryExpansion(queries, all, 4, 3).toFloatArray(),
                        expanded.toFloatArray(), 1e-6f, "block " + block);
            }
            assertArrayEquals(queries.toFloatArray(),
                    ExtendedDatabase.queryExpansion(queries, db, new Held(distractors), 0, 3, 8, null).toFloatArray());
        }
    }

    /**
     * Blocks beyond the similarity blocks' 8,192 rows (a database and a distractor block of more
     * rows, scored in several pieces each), the first distractor among the nearest rows, k = every
     * row and α = 0.
     */
    @Test
    void largeBlocksTheFirstDistractorAndEveryRowAsNeighbours() throws Exception {
        Random rng = new Random(21);
        try (MemoryScope scope = MemoryScope.open()) {
            int n = 8200;
            Tensor queries = unitRows(rng, 3, 4);
            Tensor db = unitRows(rng, n, 4);
            float[] x = unitRows(rng, 8300, 4).toFloatArray();
            System.arraycopy(queries.toFloatArray(), 0, x, 0, 4); // distractor 0 = query 0: its nearest row
            System.arraycopy(queries.toFloatArray(), 4, x, 8250 * 4, 4); // 8250, in the block's second piece = query 1
            Tensor distractors = Tensor.of(x, 8300, 4);
            Tensor all = Ops.concat(0, db, distractors);
            int[][] full = Rankings.bySimilarity(queries, all);
            ExtendedDatabase.Ranked r = ExtendedDatabase.rank(queries, db, null, new Held(distractors), 8300, null);
            assertArrayEquals(expectedPositions(full, n), r.positions());
            long[][] keys = ExtendedDatabase.nearest(queries, db, new Held(distractors), 3, 8300, null);
            assertEquals(n, ScoreOrder.index(keys[0][0]));
            assertEquals(n + 8250, ScoreOrder.index(keys[1][0]));
            for (int q = 0; q < 3; q++) {
                for (int j = 0; j < 3; j++) {
                    assertEquals(full[q][j], ScoreOrder.index(keys[q][j]));
                }
            }
            assertArrayEquals(AlphaExpansion.queryExpansion(queries, all, 3, 0).toFloatArray(),
                    ExtendedDatabase.queryExpansion(queries, db, new Held(distractors), 3, 0, 8300, null)
                            .toFloatArray(), 1e-6f);
            Tensor smallDb = unitRows(rng, 5, 4);
            Tensor few = unitRows(rng, 6, 4);
            assertEquals(11, ExtendedDatabase.nearest(queries, smallDb, new Held(few), 11, 4, null)[0].length);
            assertEquals(0, ExtendedDatabase.nearest(queries, smallDb, new Held(few), 0, 4, null)[2].length);
            assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.nearest(queries, smallDb, new Held(few), -1, 4, null));
            assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.nearest(queries, smallDb, new Held(few), 12, 4, null));
        }
    }

    @Test
    void placesAmongDescendingScoresPutEqualScoresAfterAndNanLast() {
        int[] d = {sortable(0.9f), sortable(0.5f), sortable(0.5f), sortable(0f), sortable(-0f), sortable(-0.2f)};
        assertEquals(0, ExtendedDatabase.firstBelow(d, sortable(1f)));
        assertEquals(1, ExtendedDatabase.firstBelow(d, sortable(0.9f)));
        assertEquals(1, ExtendedDatabase.firstBelow(d, sortable(0.7f)));
        assertEquals(3, ExtendedDatabase.firstBelow(d, sortable(0.5f)));
        // +0 ranks above -0, as Rankings orders them
        assertEquals(4, ExtendedDatabase.firstBelow(d, sortable(0f)));
        assertEquals(5, ExtendedDatabase.firstBelow(d, sortable(-0f)));
        assertEquals(6, ExtendedDatabase.firstBelow(d, sortable(-0.2f)));
        assertEquals(6, ExtendedDatabase.firstBelow(d, sortable(-5f)));
        assertEquals(6, ExtendedDatabase.firstBelow(d, sortable(Float.NaN)));
        assertEquals(0, ExtendedDatabase.firstBelow(new int[0], sortable(1f)));
        // the order of Rankings (ScoreOrder's keys, smaller first) for every pair of these scores
        float[] f = {0.9f, 0.5f, 0f, -0f, -0.2f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (float a : f) {
            for (float b : f) {
                assertEquals(ScoreOrder.key(a, 0) < ScoreOrder.key(b, 0), sortable(a) > sortable(b), a + " vs " + b);
            }
        }
    }

    static int sortable(float f) {
        return ScoreOrder.sortable(f);
    }

    @Test
    void mismatchedShapesAndSizesAreRefused() {
        Random rng = new Random(1);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor queries = unitRows(rng, 2, 4);
            Tensor db = unitRows(rng, 3, 4);
            IllegalArgumentException dim = assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.rank(queries, db, null, new Held(unitRows(rng, 5, 3)), 8, null));
            assertTrue(dim.getMessage().contains("distractors 3"), dim.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.rank(queries, db, null, new Held(unitRows(rng, 5, 4)), 0, null));
            IllegalArgumentException k = assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.nearest(queries, db, new Held(unitRows(rng, 5, 4)), 9, 8, null));
            assertTrue(k.getMessage().contains("k=9"), k.getMessage());
            ExtendedDatabase.Rows huge = new Held(unitRows(rng, 1, 4)) {
                @Override
                public long count() {
                    return Integer.MAX_VALUE;
                }
            };
            IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                    () -> ExtendedDatabase.rank(queries, db, null, huge, 8, null));
            assertTrue(big.getMessage().contains("2^31"), big.getMessage());
        }
    }
}
