package dir4j.retrieval.search;

import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.cpu.TopK;
import dir4j.engine.Tensor;

/**
 * α-weighted query expansion (αQE) and database-side augmentation (αDBA), exactly as the
 * reference's {@code expand_descriptors} (dirtorch/test_dir.py):
 *
 * <pre>
 *   x' = normalise( (x + Σ_{j ∈ N_k(x)} s(x, d_j)^α · d_j) / (k + 1) )
 * </pre>
 *
 * where N_k(x) are the k database rows most similar to x by dot product s. For αDBA the
 * database expands itself and each row's similarity to itself is set to 0 (not removed: it stays
 * a candidate with score 0, as in the reference). The reference pipeline applies αDBA to the
 * database first and then αQE to the queries against the augmented database. k = 0 returns the
 * descriptors unchanged; with α not an integer, a negative similarity among the neighbours gives
 * NaN, as numpy's power does.
 */
public final class AlphaExpansion {
    private AlphaExpansion() {}

    /** αQE: each query expanded with its k nearest database rows (the caller owns the result). */
    public static Tensor queryExpansion(Tensor queries, Tensor database, int k, double alpha) {
        return expand(queries, database, k, alpha, false);
    }

    /** αDBA: each database row expanded with its k nearest other rows (the caller owns the result). */
    public static Tensor databaseAugmentation(Tensor database, int k, double alpha) {
        return expand(database, database, k, alpha, true);
    }

    private static Tensor expand(Tensor descriptors, Tensor database, int k, double alpha, boolean self) {
        if (k < 0 || !(alpha >= 0)) {
            throw new IllegalArgumentException("k and alpha must be non-negative, got k=" + k + ", alpha=" + alpha);
        }
        DescriptorMatrix x = DescriptorMatrix.of(descriptors);
        if (k == 0) {
            return x.toTensor();
        }
        int n = database.shape(0);
        if (k > n) {
            throw new IllegalArgumentException("k=" + k + " neighbours requested from a database of " + n + " rows");
        }
        TopK[] best = new TopK[x.rows()];
        for (int i = 0; i < best.length; i++) {
            best[i] = new TopK(k);
        }
        SimilarityBlocks.forEach(descriptors, database, n, (scores, q0, qn, d0, dn) -> {
            for (int i = 0; i < qn; i++) {
                int q = q0 + i;
                int base = i * dn;
                for (int j = 0; j < dn; j++) {
                    int row = d0 + j;
                    best[q].offer(self && row == q ? 0f : scores[base + j], row);
                }
            }
        });
        DescriptorMatrix db = self ? x : DescriptorMatrix.of(database);
        long[][] keys = new long[x.rows()][];
        for (int q = 0; q < keys.length; q++) {
            keys[q] = best[q].sortedKeys();
        }
        return combine(x, keys, (row, c) -> db.get(row, c), alpha);
    }

    /** Element {@code col} of neighbour {@code row} (an index as the neighbours' keys give it). */
    interface NeighbourRows {
        float get(int row, int col);
    }

    /**
     * The expansion itself: each row of {@code x} plus its neighbours ({@code keys[q]}: the
     * {@link ScoreOrder} keys of its k best, best first) weighted by score^α, normalised.
     */
    static Tensor combine(DescriptorMatrix x, long[][] keys, NeighbourRows rows, double alpha) {
        int dim = x.cols();
        float[] out = new float[x.data().length];
        double[] acc = new double[dim];
        for (int q = 0; q < x.rows(); q++) {
            for (int c = 0; c < dim; c++) {
                acc[c] = x.get(q, c);
            }
            for (long key : keys[q]) {
                int row = ScoreOrder.index(key);
                double w = Math.pow(ScoreOrder.score(key), alpha);
                for (int c = 0; c < dim; c++) {
                    acc[c] += w * rows.get(row, c);
                }
            }
            // the reference divides by k + 1 (np.mean) before normalising: no effect on the result
            double norm = 0;
            for (int c = 0; c < dim; c++) {
                norm += acc[c] * acc[c];
            }
            double inv = 1 / Math.sqrt(norm);
            for (int c = 0; c < dim; c++) {
                out[q * dim + c] = (float) (acc[c] * inv);
            }
        }
        return Tensor.of(out, x.rows(), dim);
    }
}
