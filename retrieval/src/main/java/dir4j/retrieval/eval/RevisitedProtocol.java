package dir4j.retrieval.eval;

import dir4j.engine.Tensor;
import dir4j.retrieval.search.Rankings;
import java.util.List;

/**
 * The Revisited Oxford/Paris evaluation (roxford5k, rparis6k): mAP and mP@k for the Easy,
 * Medium and Hard setups ({@link RevisitedGroundTruth}), as cirtorch's
 * {@code compute_map_and_print} runs it.
 */
public final class RevisitedProtocol {
    /** The reference's precision cut-offs. */
    public static final int[] DEFAULT_KAPPAS = {1, 5, 10};

    private RevisitedProtocol() {}

    /** Evaluates full rankings ({@code rankings[q]}: database indices, best first) at k = 1, 5, 10. */
    public static RevisitedResult evaluate(int[][] rankings, List<RevisitedGroundTruth> groundTruth) {
        return evaluate(rankings, groundTruth, DEFAULT_KAPPAS);
    }

    /** Evaluates full rankings at the given precision cut-offs. */
    public static RevisitedResult evaluate(int[][] rankings, List<RevisitedGroundTruth> groundTruth, int... kappas) {
        return evaluate(rankings, null, groundTruth, kappas);
    }

    /**
     * Evaluates rankings of the database extended by distractors (the revisited benchmarks'
     * +R1M): {@code positions[q][i]} is where database image {@code rankings[q][i]} stands among
     * database and distractors together ({@link dir4j.retrieval.search.ExtendedDatabase#rank}).
     */
    public static RevisitedResult evaluate(int[][] rankings, int[][] positions, List<RevisitedGroundTruth> groundTruth,
            int... kappas) {
        return new RevisitedResult(
                MeanAveragePrecision.compute(rankings, positions,
                        groundTruth.stream().map(RevisitedGroundTruth::easySetup).toList(), kappas),
                MeanAveragePrecision.compute(rankings, positions,
                        groundTruth.stream().map(RevisitedGroundTruth::mediumSetup).toList(), kappas),
                MeanAveragePrecision.compute(rankings, positions,
                        groundTruth.stream().map(RevisitedGroundTruth::hardSetup).toList(), kappas));
    }

    /** Evaluates a Q x N similarity matrix (queries in rows), ranking each row by decreasing score. */
    public static RevisitedResult evaluate(Tensor similarities, List<RevisitedGroundTruth> groundTruth) {
        return evaluate(Rankings.bySimilarity(similarities), groundTruth, DEFAULT_KAPPAS);
    }
}
