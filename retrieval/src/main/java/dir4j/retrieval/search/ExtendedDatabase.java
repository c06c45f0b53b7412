package dir4j.retrieval.search;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.cpu.TopK;
import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import java.util.stream.IntStream;

/**
 * A benchmark's database extended by distractors that do not fit in memory: the revisited
 * Oxford and Paris benchmarks' one million distractor images (ROxford5k+R1M, RParis6k+R1M), or
 * Oxford105k's 100,000 Flickr images. The database's descriptors are in memory; the distractors'
 * are read a block of rows at a time ({@link Rows}), scored against the queries and dropped, so
 * that 8 GiB of 2048-d distractor descriptors need one block of memory.
 *
 * <p>The extended database is the database's images followed by the distractors, as the
 * revisited protocol's evaluation concatenates them: distractors are never positive or junk, and
 * where a distractor and a database image score exactly the same, the image ranks first (ties by
 * lower index, as {@link Rankings}). Only where each database image stands among the distractors
 * matters to mAP and mP@k, so {@link #rank} keeps, for each query, its ranking of the database
 * and its positive and junk images' positions in the extended ranking ({@link dir4j.retrieval.eval.RevisitedProtocol}
 * and {@link dir4j.retrieval.eval.OldProtocol} evaluate that): for Q queries, Q x N integers
 * beside N database images, whatever the number of distractors.
 */
public final class ExtendedDatabase {
    /** Distractor rows read and scored at a time by default: 64 MiB of 2048-d float32 descriptors. */
    public static final int DEFAULT_BLOCK_ROWS = 8192;

    /** Distractor descriptors, read a block of rows at a time. */
    public interface Rows {
        /** Number of rows. */
        long count();

        /** Elements per row. */
        int dimension();

        /**
         * Rows {@code [from, from + n)} as an n x D float tensor, transformed as the database's
         * descriptors were (whitened); freed by the caller (or the memory scope it is read in).
         */
        Tensor read(long from, int n) throws IOException;
    }

    /**
     * Rankings of the extended database: {@code rankings[q]} lists the database's images best
     * first, and {@code positions[q][i]} is where image {@code rankings[q][i]} stands (from 0)
     * among the images and the distractors together, for the images asked for (-1 for others).
     */
    public record Ranked(int[][] rankings, int[][] positions) {}

    private ExtendedDatabase() {}

    /**
     * Each query's k nearest rows of the extended database by dot product, best first, as
     * {@link dir4j.engine.cpu.ScoreOrder} keys: indices below N are database rows, N + i is
     * distractor i.
     *
     * @param progress told the number of distractor rows scored so far, after each block
     */
    public static long[][] nearest(Tensor queries, Tensor database, Rows distractors, int k, int blockRows,
            LongConsumer progress) throws IOException {
        int n = check(queries, database, distractors, blockRows);
        if (k < 0 || k > n + distractors.count()) {
            throw new IllegalArgumentException("k=" + k + " neighbours requested from " + n + " database rows and "
                    + distractors.count() + " distractors");
        }
        int nq = queries.shape(0);
        long[][] keys = new long[nq][];
        if (k == 0) {
            java.util.Arrays.fill(keys, new long[0]);
            return keys;
        }
        TopK[] best = new TopK[nq];
        for (int q = 0; q < nq; q++) {
            best[q] = new TopK(k);
        }
        SimilarityBlocks.forEach(queries, database, n, (scores, q0, qn, d0, dn) ->
                overQueries(qn, dn, i -> offerAll(best[q0 + i], scores, i * dn, dn, d0)));
        blocks(distractors, blockRows, progress, (block, from) -> SimilarityBlocks.forEach(queries, block,
                block.shape(0), (scores, q0, qn, d0, dn) ->
                        overQueries(qn, dn, i -> offerAll(best[q0 + i], scores, i * dn, dn, n + from + d0))));
        for (int q = 0; q < nq; q++) {
            keys[q] = best[q].sortedKeys();
        }
        return keys;
    }

    /**
     * αQE against the extended database ({@link AlphaExpansion#queryExpansion}, the neighbours
     * taken among database images and distractors alike): one pass over the distractors to find
     * the neighbours, then the distractor rows among them are read once more, one by one.
     */
    public static Tensor queryExpansion(Tensor queries, Tensor database, Rows distractors, int k, double alpha,
            int blockRows, LongConsumer progress) throws IOException {
        if (k < 0 || !(alpha >= 0)) {
            throw new IllegalArgumentException("k and alpha must be non-negative, got k=" + k + ", alpha=" + alpha);
        }
        DescriptorMatrix x = DescriptorMatrix.of(queries);
        if (k == 0) {
            check(queries, database, distractors, blockRows);
            return x.toTensor();
        }
        long[][] keys = nearest(queries, database, distractors, k, blockRows, progress);
        int n = database.shape(0);
        Map<Integer, float[]> extra = new TreeMap<>();
        for (long[] row : keys) {
            for (long key : row) {
                int index = ScoreOrder.index(key);
                if (index >= n) {
                    extra.put(index, null);
                }
            }
        }
        for (Map.Entry<Integer, float[]> e : extra.entrySet()) {
            try (MemoryScope scope = MemoryScope.open()) {
                e.setValue(distractors.read(e.getKey() - n, 1).toFloatArray());
            }
        }
        DescriptorMatrix db = DescriptorMatrix.of(database);
        return AlphaExpansion.combine(x, keys, (row, c) -> row < n ? db.get(row, c) : extra.get(row)[c], alpha);
    }

    /**
     * The queries' rankings of the extended database ({@link Ranked}): the database's images by
     * decreasing score, and for each image of {@code relevant[q]} (the positive and junk images
     * of query q: the only ones whose place mAP and mP@k read) the number of distractors scoring
     * strictly higher added to its place; the other images' positions are -1. {@code relevant}
     * null: every image's position. A distractor scoring no higher than the query's last relevant
     * image changes nothing and costs one comparison.
     */
    public static Ranked rank(Tensor queries, Tensor database, int[][] relevant, Rows distractors, int blockRows,
            LongConsumer progress) throws IOException {
        int n = check(queries, database, distractors, blockRows);
        int nq = queries.shape(0);
        if ((long) nq * n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(nq + " queries x " + n + " database images exceed one Java array of "
                    + "scores");
        }
        if (relevant != null && relevant.length != nq) {
            throw new IllegalArgumentException(relevant.length + " relevant lists for " + nq + " queries");
        }
        float[] s = new float[nq * n];
        SimilarityBlocks.forEach(queries, database, n, (scores, q0, qn, d0, dn) -> {
            for (int i = 0; i < qn; i++) {
                System.arraycopy(scores, i * dn, s, (q0 + i) * n + d0, dn);
            }
        });
        int[][] rankings = Rankings.bySimilarity(s, nq, n);
        // per query: the places of its relevant images in its ranking, ascending, and their scores (descending)
        int[][] places = new int[nq][];
        int[][] thresholds = new int[nq][]; // ScoreOrder.sortable: Rankings' order, -0 below +0, NaN last
        for (int q = 0; q < nq; q++) {
            boolean[] wanted = new boolean[n];
            if (relevant == null) {
                java.util.Arrays.fill(wanted, true);
            } else {
                for (int id : relevant[q]) {
                    if (id < 0 || id >= n) {
                        throw new IllegalArgumentException("query " + q + ": relevant image " + id + " is not one of "
                                + "the " + n + " database images");
                    }
                    wanted[id] = true;
                }
            }
            int[] at = new int[n];
            int count = 0;
            for (int p = 0; p < n; p++) {
                if (wanted[rankings[q][p]]) {
                    at[count++] = p;
                }
            }
            places[q] = java.util.Arrays.copyOf(at, count);
            thresholds[q] = new int[count];
            for (int i = 0; i < count; i++) {
                thresholds[q][i] = ScoreOrder.sortable(s[q * n + rankings[q][places[q][i]]]);
            }
        }
        // ahead[q][i]: distractors ranked after relevant image i-1 of q and before relevant image i
        int[][] ahead = new int[nq][];
        for (int q = 0; q < nq; q++) {
            ahead[q] = new int[places[q].length + 1];
        }
        blocks(distractors, blockRows, progress, (block, from) -> SimilarityBlocks.forEach(queries, block,
                block.shape(0), (scores, q0, qn, d0, dn) -> overQueries(qn, dn, i -> {
                    int[] t = thresholds[q0 + i];
                    if (t.length == 0) {
                        return;
                    }
                    int last = t[t.length - 1];
                    int[] a = ahead[q0 + i];
                    for (int j = i * dn, end = j + dn; j < end; j++) {
                        int v = ScoreOrder.sortable(scores[j]);
                        if (v > last) { // else after every relevant image: no place moves (NaN too)
                            a[firstBelow(t, v)]++;
                        }
                    }
                })));
        int[][] positions = new int[nq][n];
        for (int q = 0; q < nq; q++) {
            java.util.Arrays.fill(positions[q], -1);
            int before = 0;
            for (int i = 0; i < places[q].length; i++) {
                before += ahead[q][i];
                positions[q][places[q][i]] = places[q][i] + before;
            }
        }
        return new Ranked(rankings, positions);
    }

    /**
     * The first place p of a descending array of {@link ScoreOrder#sortable} scores whose score is
     * below {@code v} (so that a score equal to the image's ranks after it; n when none is).
     */
    static int firstBelow(int[] descending, int v) {
        int lo = 0;
        int hi = descending.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (descending[mid] < v) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }

    private static void offerAll(TopK best, float[] scores, int at, int count, long firstIndex) {
        for (int j = 0; j < count; j++) {
            best.offer(scores[at + j], (int) (firstIndex + j));
        }
    }

    /** Runs {@code body} for each query of a block, in parallel when the block is large enough to gain. */
    private static void overQueries(int queries, int rows, java.util.function.IntConsumer body) {
        IntStream range = IntStream.range(0, queries);
        ((long) queries * rows >= 1 << 16 && queries > 1 ? range.parallel() : range).forEach(body);
    }

    private interface Block {
        void accept(Tensor rows, long from) throws IOException;
    }

    /** Reads the distractors block by block, each in a memory scope of its own, and reports progress. */
    private static void blocks(Rows distractors, int blockRows, LongConsumer progress, Block body)
            throws IOException {
        long m = distractors.count();
        for (long from = 0; from < m; from += blockRows) {
            int count = (int) Math.min(blockRows, m - from);
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor block = distractors.read(from, count);
                if (block.rank() != 2 || block.shape(0) != count || block.shape(1) != distractors.dimension()) {
                    throw new IllegalStateException("distractor rows " + from + "+" + count + " came as "
                            + dir4j.engine.Shape.str(block.shape()) + ", not " + count + " x " + distractors.dimension());
                }
                body.accept(block, from);
            }
            if (progress != null) {
                progress.accept(from + count);
            }
        }
    }

    /** Checks shapes and sizes; returns the number of database rows. */
    private static int check(Tensor queries, Tensor database, Rows distractors, int blockRows) {
        if (queries.rank() != 2 || database.rank() != 2) {
            throw new IllegalArgumentException("queries and database must be N x D descriptor matrices");
        }
        int dim = database.shape(1);
        if (queries.shape(1) != dim || distractors.dimension() != dim) {
            throw new IllegalArgumentException("dimensions differ: queries " + queries.shape(1) + ", database " + dim
                    + ", distractors " + distractors.dimension());
        }
        if (blockRows < 1) {
            throw new IllegalArgumentException("blocks of " + blockRows + " distractor rows");
        }
        if (distractors.count() < 0 || database.shape(0) + distractors.count() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(database.shape(0) + " database rows and " + distractors.count()
                    + " distractors exceed the 2^31 rows one ranking can index");
        }
        return database.shape(0);
    }
}
