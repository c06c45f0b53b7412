package dir4j.retrieval.loss;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Exact (non-interpolated) average precision of one ranking: items sorted by decreasing score
 * (ties kept in index order), AP = (1/P)·Σ over positives at rank r of precision@r. It is what the
 * quantised AP of {@link APLoss} approximates; their difference is the quantisation gap.
 */
public final class ExactAp {
    private ExactAp() {}

    /**
     * AP of one query's scores against 0/1 labels, skipping index {@code skip} (−1 for none);
     * NaN when there is no positive.
     */
    public static double of(double[] scores, double[] labels, int skip) {
        Integer[] order = IntStream.range(0, scores.length).filter(j -> j != skip).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -scores[j]));
        double hits = 0;
        double sum = 0;
        for (int r = 0; r < order.length; r++) {
            if (labels[order[r]] > 0.5) {
                hits++;
                sum += hits / (r + 1);
            }
        }
        return hits == 0 ? Double.NaN : sum / hits;
    }
}
