package dir4j.retrieval.eval;

import dir4j.engine.Tensor;
import dir4j.retrieval.search.Rankings;
import java.util.List;
import java.util.Locale;

/**
 * The original Oxford 5k / Paris 6k evaluation (oxford5k, paris6k): positives = ok (the "good"
 * and "ok" images), junk = junk; mAP only, as cirtorch's {@code compute_map_and_print} runs it.
 */
public final class OldProtocol {
    private OldProtocol() {}

    /** mAP of full rankings ({@code rankings[q]}: database indices, best first). */
    public static ProtocolResult evaluate(int[][] rankings, List<Judgement> groundTruth) {
        return MeanAveragePrecision.compute(rankings, groundTruth);
    }

    /**
     * mAP of rankings of the database extended by distractors (Oxford105k: Oxford5k with 100k
     * Flickr images): {@code positions[q][i]} is where database image {@code rankings[q][i]}
     * stands among database and distractors together.
     */
    public static ProtocolResult evaluate(int[][] rankings, int[][] positions, List<Judgement> groundTruth) {
        return MeanAveragePrecision.compute(rankings, positions, groundTruth);
    }

    /** mAP of a Q x N similarity matrix (queries in rows). */
    public static ProtocolResult evaluate(Tensor similarities, List<Judgement> groundTruth) {
        return evaluate(Rankings.bySimilarity(similarities), groundTruth);
    }

    /** {@code >> dataset: mAP 67.49}, as the reference prints it. */
    public static String report(String dataset, ProtocolResult result) {
        double p = RevisitedResult.percent(result.map());
        return ">> " + dataset + ": mAP " + (Double.isNaN(p) ? "nan" : String.format(Locale.ROOT, "%.2f", p));
    }
}
