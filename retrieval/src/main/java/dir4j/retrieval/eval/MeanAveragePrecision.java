package dir4j.retrieval.eval;

import java.util.List;

/**
 * Mean average precision and mean precision at k over queries (cirtorch's {@code compute_map}).
 */
public final class MeanAveragePrecision {
    private MeanAveragePrecision() {}

    /**
     * For each query q, {@code rankings[q]} lists database indices by decreasing similarity and
     * {@code judgements.get(q)} says which are positive and which junk. Each query's AP
     * ({@link AveragePrecision#trapezoid}) and P@k ({@link AveragePrecision#precisionAt}) are
     * taken on its ranking with junk removed; queries without positives are excluded from both
     * means (counted, and divided out: mean = sum / (queries − excluded)).
     */
    public static ProtocolResult compute(int[][] rankings, List<Judgement> judgements, int... kappas) {
        return compute(rankings, null, judgements, kappas);
    }

    /**
     * The same for rankings of a database extended by distractors: {@code positions[q][i]} is
     * where {@code rankings[q][i]} stands among the database and the distractors together
     * ({@link AveragePrecision#positiveRanks(int[], int[], Judgement)}); null for no distractors.
     */
    public static ProtocolResult compute(int[][] rankings, int[][] positions, List<Judgement> judgements,
            int... kappas) {
        if (positions != null && positions.length != rankings.length) {
            throw new IllegalArgumentException(positions.length + " position lists for " + rankings.length
                    + " rankings");
        }
        if (rankings.length != judgements.size()) {
            throw new IllegalArgumentException(rankings.length + " rankings but ground truth for "
                    + judgements.size() + " queries");
        }
        for (int k : kappas) {
            if (k < 1) {
                throw new IllegalArgumentException("precision cut-offs must be positive, got " + k);
            }
        }
        int nq = rankings.length;
        double[] aps = new double[nq];
        double[][] prs = new double[nq][kappas.length];
        double apSum = 0;
        double[] prSum = new double[kappas.length];
        int excluded = 0;
        for (int q = 0; q < nq; q++) {
            Judgement judgement = judgements.get(q);
            if (judgement.positiveCount() == 0) {
                aps[q] = Double.NaN;
                java.util.Arrays.fill(prs[q], Double.NaN);
                excluded++;
                continue;
            }
            int[] ranks = AveragePrecision.positiveRanks(rankings[q], positions == null ? null : positions[q],
                    judgement);
            aps[q] = AveragePrecision.trapezoid(ranks, judgement.positiveCount());
            apSum += aps[q];
            for (int j = 0; j < kappas.length; j++) {
                prs[q][j] = AveragePrecision.precisionAt(ranks, kappas[j]);
                prSum[j] += prs[q][j];
            }
        }
        int counted = nq - excluded;
        double[] mpr = new double[kappas.length];
        for (int j = 0; j < kappas.length; j++) {
            mpr[j] = counted == 0 ? Double.NaN : prSum[j] / counted;
        }
        return new ProtocolResult(counted == 0 ? Double.NaN : apSum / counted, aps, kappas.clone(), mpr, prs, excluded);
    }
}
