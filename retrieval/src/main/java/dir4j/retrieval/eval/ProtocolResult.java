package dir4j.retrieval.eval;

/**
 * The outcome of one protocol over a set of queries ({@link MeanAveragePrecision#compute}), the
 * reference's {@code map, aps, pr, prs}.
 *
 * @param map                mean AP over the queries that have positives (NaN when none has)
 * @param aps                per-query AP; NaN for an excluded query
 * @param kappas             the k of each precision column
 * @param meanPrecisionAt    mP@k per kappa, over the queries that have positives
 * @param precisionAt        per query and kappa; NaN rows for excluded queries
 * @param excludedQueries    queries without positives, left out of the means
 */
public record ProtocolResult(double map, double[] aps, int[] kappas, double[] meanPrecisionAt,
                             double[][] precisionAt, int excludedQueries) {

    /** Number of queries evaluated (excluded ones included). */
    public int queries() {
        return aps.length;
    }

    /** mP@k for one of the evaluated k. */
    public double meanPrecisionAt(int k) {
        for (int i = 0; i < kappas.length; i++) {
            if (kappas[i] == k) {
                return meanPrecisionAt[i];
            }
        }
        throw new IllegalArgumentException("precision at " + k + " was not computed (kappas "
                + java.util.Arrays.toString(kappas) + ")");
    }
}
