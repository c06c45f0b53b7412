package dir4j.retrieval.loss;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * In-batch triplet sampling from class ids: every (anchor, positive) pair of the same class, each
 * with one negative of another class, chosen at random (seeded) or as the hardest (the negative
 * most similar to the anchor under given scores).
 */
public final class TripletSampler {
    /** How negatives are chosen. */
    public enum Negatives { RANDOM, HARDEST }

    /** Parallel index arrays. */
    public record Triplets(int[] anchors, int[] positives, int[] negatives) {
        public int size() {
            return anchors.length;
        }
    }

    private TripletSampler() {}

    /**
     * Triplets for a batch. {@code scores} (N×N similarities, row-major) is needed for HARDEST and
     * ignored for RANDOM.
     */
    public static Triplets sample(int[] classes, Negatives mode, double[] scores, Random rng) {
        int n = classes.length;
        if (mode == Negatives.HARDEST && (scores == null || scores.length != (long) n * n)) {
            throw new IllegalArgumentException("hardest-negative sampling needs the N×N scores");
        }
        List<int[]> out = new ArrayList<>();
        for (int a = 0; a < n; a++) {
            List<Integer> negs = new ArrayList<>();
            for (int j = 0; j < n; j++) {
                if (classes[j] != classes[a]) {
                    negs.add(j);
                }
            }
            if (negs.isEmpty()) {
                continue;
            }
            for (int p = 0; p < n; p++) {
                if (p == a || classes[p] != classes[a]) {
                    continue;
                }
                int neg;
                if (mode == Negatives.RANDOM) {
                    neg = negs.get(rng.nextInt(negs.size()));
                } else {
                    neg = negs.get(0);
                    for (int j : negs) {
                        if (scores[a * n + j] > scores[a * n + neg]) {
                            neg = j;
                        }
                    }
                }
                out.add(new int[] {a, p, neg});
            }
        }
        int[] as = new int[out.size()];
        int[] ps = new int[out.size()];
        int[] ns = new int[out.size()];
        for (int i = 0; i < as.length; i++) {
            as[i] = out.get(i)[0];
            ps[i] = out.get(i)[1];
            ns[i] = out.get(i)[2];
        }
        return new Triplets(as, ps, ns);
    }
}
