package dir4j.retrieval.search;

import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.Tensor;
import java.util.Arrays;

/**
 * Full rankings of a database: for each query, every database index by decreasing similarity
 * (ties by lower index, NaN last). The revisited Oxford/Paris evaluation ranks the whole
 * database, as the reference's {@code np.argsort(-scores)} does.
 */
public final class Rankings {
    private Rankings() {}

    /** Rankings from a Q x N similarity matrix (queries in rows). */
    public static int[][] bySimilarity(Tensor similarities) {
        DescriptorMatrix s = DescriptorMatrix.of(similarities);
        return bySimilarity(s.data(), s.rows(), s.cols());
    }

    /** Rankings from a row-major Q x N similarity array. */
    public static int[][] bySimilarity(float[] similarities, int queries, int database) {
        if ((long) queries * database != similarities.length) {
            throw new IllegalArgumentException(similarities.length + " similarities do not fill " + queries + " x "
                    + database);
        }
        int[][] ranks = new int[queries][];
        long[] keys = new long[database];
        for (int q = 0; q < queries; q++) {
            for (int j = 0; j < database; j++) {
                keys[j] = ScoreOrder.key(similarities[q * database + j], j);
            }
            Arrays.sort(keys);
            int[] r = new int[database];
            for (int j = 0; j < database; j++) {
                r[j] = ScoreOrder.index(keys[j]);
            }
            ranks[q] = r;
        }
        return ranks;
    }

    /** Rankings of the database for queries, by dot product, through the index's blocked search. */
    public static int[][] bySimilarity(Tensor queries, Tensor database) {
        try (ExactIndex index = new ExactIndex(database.shape(1))) {
            index.add(database);
            return index.search(queries, index.size()).indices();
        }
    }
}
