package dir4j.retrieval.eval;

/**
 * One query's relevance judgement under one protocol, the reference's {@code {'ok': …, 'junk': …}}:
 * database indices that count as positives, and junk indices that are removed from the ranking
 * before precision is measured (they neither help nor hurt). The old Oxford/Paris ground truth
 * is already in this form (ok = good + ok); {@link RevisitedGroundTruth} builds it per difficulty.
 *
 * @param positives database indices of the relevant images (may be empty: the query is then
 *                  excluded from the mean)
 * @param junk      database indices to ignore (may be empty)
 */
public record Judgement(int[] positives, int[] junk) {
    public Judgement {
        positives = positives.clone();
        junk = junk.clone();
    }

    @Override
    public int[] positives() {
        return positives.clone();
    }

    @Override
    public int[] junk() {
        return junk.clone();
    }

    int positiveCount() {
        return positives.length;
    }
}
