package dir4j.retrieval.eval;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * A query's ground truth in the Revisited Oxford/Paris annotation (gnd_roxford5k.pkl,
 * gnd_rparis6k.pkl): database indices labelled easy, hard and junk. Each difficulty setup of
 * Radenović et al., "Revisiting Oxford and Paris" (CVPR 2018) turns it into positives and junk.
 */
public record RevisitedGroundTruth(int[] easy, int[] hard, int[] junk) {
    public RevisitedGroundTruth {
        easy = easy.clone();
        hard = hard.clone();
        junk = junk.clone();
    }

    @Override
    public int[] easy() {
        return easy.clone();
    }

    @Override
    public int[] hard() {
        return hard.clone();
    }

    @Override
    public int[] junk() {
        return junk.clone();
    }

    /** Easy setup: positives = easy; junk = junk + hard (hard images are ignored). */
    public Judgement easySetup() {
        return new Judgement(easy, concat(junk, hard));
    }

    /** Medium setup: positives = easy + hard; junk = junk. */
    public Judgement mediumSetup() {
        return new Judgement(concat(easy, hard), junk);
    }

    /** Hard setup: positives = hard; junk = junk + easy (easy images are ignored). */
    public Judgement hardSetup() {
        return new Judgement(hard, concat(junk, easy));
    }

    private static int[] concat(int[] a, int[] b) {
        return IntStream.concat(Arrays.stream(a), Arrays.stream(b)).toArray();
    }
}
