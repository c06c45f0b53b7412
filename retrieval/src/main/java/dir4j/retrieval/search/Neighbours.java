package dir4j.retrieval.search;

import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.cpu.TopK;

/**
 * The k nearest database rows of each query, best first ({@link ExactIndex#search}).
 *
 * @param indices {@code indices[q][r]}: database row of query q's r-th neighbour
 * @param scores  {@code scores[q][r]}: its dot-product similarity
 */
public record Neighbours(int[][] indices, float[][] scores) {
    public Neighbours {
        if (indices.length != scores.length) {
            throw new IllegalArgumentException(indices.length + " index rows but " + scores.length + " score rows");
        }
    }

    /** Number of queries. */
    public int queries() {
        return indices.length;
    }

    static Neighbours of(TopK[] selections) {
        int[][] indices = new int[selections.length][];
        float[][] scores = new float[selections.length][];
        for (int q = 0; q < selections.length; q++) {
            long[] keys = selections[q].sortedKeys();
            indices[q] = new int[keys.length];
            scores[q] = new float[keys.length];
            for (int r = 0; r < keys.length; r++) {
                indices[q][r] = ScoreOrder.index(keys[r]);
                scores[q][r] = ScoreOrder.score(keys[r]);
            }
        }
        return new Neighbours(indices, scores);
    }
}
