package dir4j.retrieval.eval;

/**
 * Per-query metrics of the Oxford/Paris protocols, as cnnimageretrieval-pytorch's
 * cirtorch/utils/evaluate.py computes them ({@code compute_ap} and the body of
 * {@code compute_map}). Ranks are zero-based positions in a ranking from which the junk images
 * have been removed.
 */
public final class AveragePrecision {
    private AveragePrecision() {}

    /**
     * Zero-based ranks of the positives once junk is removed: each positive's position minus the
     * number of junk images ranked strictly before it. Positives absent from the ranking have no
     * rank. An index listed as both positive and junk counts as a positive at its own position
     * and as junk for the positives after it, as in the reference.
     */
    public static int[] positiveRanks(int[] ranking, Judgement judgement) {
        return positiveRanks(ranking, null, judgement);
    }

    /**
     * The same where {@code ranking[i]} stands at position {@code positions[i]} of a longer
     * ranking (null: position i): a database followed by distractors, none of them positive or
     * junk, ranked among its images. A positive's rank is then its position minus the junk images
     * ranked before it. Only the positives' positions are read (they must be at least i).
     */
    public static int[] positiveRanks(int[] ranking, int[] positions, Judgement judgement) {
        if (positions != null && positions.length != ranking.length) {
            throw new IllegalArgumentException(positions.length + " positions for a ranking of " + ranking.length);
        }
        int max = -1;
        for (int id : ranking) {
            max = Math.max(max, id);
        }
        boolean[] positive = mark(judgement.positives(), max);
        boolean[] junk = mark(judgement.junk(), max);
        int[] ranks = new int[ranking.length];
        int found = 0;
        int junkBefore = 0;
        for (int position = 0; position < ranking.length; position++) {
            int id = ranking[position];
            if (id < 0) {
                continue;
            }
            if (positive[id]) {
                int at = positions == null ? position : positions[position];
                if (at < position) {
                    throw new IllegalArgumentException("positive " + id + " has no position in the extended ranking ("
                            + at + ")");
                }
                ranks[found++] = at - junkBefore;
            }
            if (junk[id]) {
                junkBefore++;
            }
        }
        return java.util.Arrays.copyOf(ranks, found);
    }

    /**
     * Average precision as the area under the precision-recall curve by the trapezoid rule
     * (compute_ap): each of the {@code positives} relevant images contributes a recall step of
     * 1/positives times the mean of the precision just before it, j / rank (1 when rank = 0),
     * and just at it, (j + 1) / (rank + 1), where j is the number of positives ranked before it.
     * Positives missing from {@code ranks} contribute nothing.
     */
    public static double trapezoid(int[] ranks, int positives) {
        double recallStep = 1.0 / positives;
        double ap = 0;
        for (int j = 0; j < ranks.length; j++) {
            int rank = ranks[j];
            double left = rank == 0 ? 1.0 : (double) j / rank;
            double right = (double) (j + 1) / (rank + 1);
            ap += (left + right) * recallStep / 2;
        }
        return ap;
    }

    /**
     * Precision at k as the revisited protocol defines it (compute_map): with the positives'
     * one-based ranks r (junk removed), k is first capped at the worst of them,
     * kq = min(max r, k), and the precision is |{r ≤ kq}| / kq. So a query whose positives all
     * appear before rank k is not penalised for having fewer than k of them. A query none of
     * whose positives appear in the ranking scores 0 (the reference fails there).
     */
    public static double precisionAt(int[] ranks, int k) {
        if (ranks.length == 0) {
            return 0;
        }
        int worst = 0;
        for (int r : ranks) {
            worst = Math.max(worst, r + 1);
        }
        int kq = Math.min(worst, k);
        int hits = 0;
        for (int r : ranks) {
            if (r + 1 <= kq) {
                hits++;
            }
        }
        return (double) hits / kq;
    }

    private static boolean[] mark(int[] ids, int max) {
        boolean[] m = new boolean[max + 1];
        for (int id : ids) {
            if (id >= 0 && id <= max) {
                m[id] = true;
            }
        }
        return m;
    }
}
