package dir4j.retrieval.loss;

import dir4j.engine.Backend.ApBins;
import dir4j.engine.DType;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;

/**
 * The listwise AP loss of Revaud et al. (ICCV 2019), as in the reference implementation: each
 * row of an N×M score matrix is one query ranking M items; scores are soft-assigned to nq
 * triangular bins (width Δ = (max − min)/(nq − 1), centres from max down to min, the end bins
 * saturating), giving per query n_k and n⁺_k; precision P_k = cumsum(n⁺)_k / cumsum(n)_k,
 * recall increments r_k = n⁺_k / Σn⁺, AP = Σ_k P_k·r_k, and the loss is 1 − mean(AP·weight).
 *
 * <p>Differences from the reference, all documented: queries without any positive (whose AP is
 * 0/0 = NaN there) are excluded from the mean and counted in {@link Result#excluded()};
 * {@code excludeSelf} leaves out score (i, i) when queries are the database; the N×2nq×M
 * quantisation tensor is never formed (see {@link NnOps#apHistogram}).
 */
public class APLoss {
    /** Defaults of the reference: 25 bins over [0, 1]. */
    public static final int DEFAULT_NQ = 25;

    private final ApBins bins;
    private final boolean distance;
    private final boolean excludeSelf;

    /** The reference's APLoss(nq, min, max). */
    public APLoss(int nq, double min, double max) {
        this(nq, min, max, false, false);
    }

    /**
     * @param distance    score → 1 − √(2.001 − 2s) first (the reference's APLoss_dist)
     * @param excludeSelf leave out score (i, i): queries are the first N database items
     */
    public APLoss(int nq, double min, double max, boolean distance, boolean excludeSelf) {
        this.bins = new ApBins(nq, min, max);
        this.distance = distance;
        this.excludeSelf = excludeSelf;
    }

    public ApBins bins() {
        return bins;
    }

    /**
     * The loss and its by-products.
     *
     * @param loss      1 − mean over included queries of AP·weight (a scalar in the graph)
     * @param ap        per-query AP [N] (NaN for excluded queries), detached
     * @param histogram [N, 2, nq]: n_k and n⁺_k, detached
     * @param excluded  queries left out for having no positive
     */
    public record Result(Tensor loss, Tensor ap, Tensor histogram, int excluded) {}

    /**
     * The loss of scores [N, M] against labels [N, M] (1 = positive, 0 = negative; same dtype
     * as the scores); queryWeights [N] may be null.
     */
    public Result forward(Tensor scores, Tensor labels, Tensor queryWeights) {
        if (scores.rank() != 2 || !java.util.Arrays.equals(scores.shape(), labels.shape())) {
            throw new IllegalArgumentException("AP loss: scores " + Shape.str(scores.shape()) + " and labels "
                    + Shape.str(labels.shape()) + " must both be N×M");
        }
        int n = scores.shape(0);
        if (queryWeights != null && (queryWeights.rank() != 1 || queryWeights.shape(0) != n)) {
            throw new IllegalArgumentException("AP loss: query weights " + Shape.str(queryWeights.shape())
                    + " must be [" + n + "]");
        }
        checkFinite(scores);
        Tensor x = distance ? Ops.affine(Ops.sqrt(Ops.affine(scores, -2, 2.001)), -1, 1) : scores;
        Tensor lab = labels;
        if (excludeSelf) {
            lab = labelsWithoutDiagonal(labels);
        }
        Tensor hist = NnOps.apHistogram(x, lab, bins, excludeSelf);
        Tensor c = Ops.select(hist, 1, 0);
        Tensor cp = Ops.select(hist, 1, 1);
        Tensor positives = Ops.sum(lab, new int[] {1}, false);
        // a query with no positive gets denominator 1 (finite, gradient 0), then is left out
        Tensor none = Ops.equal(positives, Tensor.zeros(positives.dtype(), positives.device()));
        Tensor ap = apFromHistogram(c, cp, Ops.add(positives, none));
        double[] noneMask = none.toDoubleArray();
        int[] keep = java.util.stream.IntStream.range(0, n).filter(i -> noneMask[i] == 0).toArray();
        if (keep.length == 0) {
            throw new IllegalArgumentException("AP loss: none of the " + n
                    + " queries has a positive; check the labels (classes need at least two images)");
        }
        Tensor weighted = queryWeights == null ? ap : Ops.mul(ap, queryWeights);
        Tensor kept = keep.length == n ? weighted : Ops.indexSelect(weighted, 0, Tensor.ofInts(keep, keep.length)
                .to(weighted.device()));
        Tensor loss = Ops.affine(Ops.mean(kept, null, false), -1, 1);
        double[] apv = ap.toDoubleArray();
        for (int i = 0; i < n; i++) {
            if (noneMask[i] != 0) {
                apv[i] = Double.NaN;
            }
        }
        Tensor apReport = scores.dtype() == DType.FLOAT64 ? Tensor.ofDoubles(apv, n) : Tensor.ofDoubles(apv, n)
                .to(scores.dtype());
        return new Result(loss, apReport, hist.detach(), n - keep.length);
    }

    /**
     * The loss of descriptors [N, D] (rows L2-normalised) with integer class ids: S = D·Dᵀ,
     * label (i, j) = [class_i == class_j].
     */
    public Result forward(Tensor descriptors, int[] classIds, Tensor queryWeights) {
        if (descriptors.rank() != 2 || descriptors.shape(0) != classIds.length) {
            throw new IllegalArgumentException("AP loss: descriptors " + Shape.str(descriptors.shape()) + " and "
                    + classIds.length + " class ids must agree in N");
        }
        Tensor scores = Ops.gram(descriptors);
        return forward(scores, sameClass(classIds, descriptors.dtype()), queryWeights);
    }

    /** The N×N 0/1 matrix [class_i == class_j]. */
    public static Tensor sameClass(int[] classIds, DType dtype) {
        int n = classIds.length;
        if (dtype == DType.FLOAT64) {
            double[] y = new double[n * n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    y[i * n + j] = classIds[i] == classIds[j] ? 1 : 0;
                }
            }
            return Tensor.ofDoubles(y, n, n);
        }
        float[] y = new float[n * n];
        dir4j.engine.cpu.CpuThreads.parallelFor(n, i -> {
            for (int j = 0; j < n; j++) {
                y[i * n + j] = classIds[i] == classIds[j] ? 1f : 0f;
            }
        });
        Tensor t = Tensor.of(y, n, n);
        if (dtype == DType.FLOAT32) {
            return t;
        }
        Tensor c = t.to(dtype);
        t.close();
        return c;
    }

    /** AP per query from the histograms (c = n_k, cp = n⁺_k, [N, nq]) and positive counts [N]. */
    protected Tensor apFromHistogram(Tensor c, Tensor cp, Tensor positives) {
        Tensor prec = Ops.div(Ops.cumsum(cp, 1), Ops.affine(Ops.cumsum(c, 1), 1, 1e-16));
        // normalised by Σ_k n⁺_k as the reference (equal to the positive count, but its gradient
        // is not zero at the bins' kinks); `positives` only guards queries with none
        Tensor mass = Ops.sum(cp, new int[] {1}, true);
        Tensor none = Ops.equal(mass, Tensor.zeros(mass.dtype(), mass.device()));
        Tensor rec = Ops.div(cp, Ops.add(mass, none));
        return Ops.sum(Ops.mul(prec, rec), new int[] {1}, false);
    }

    private Tensor labelsWithoutDiagonal(Tensor labels) {
        int n = labels.shape(0);
        int m = labels.shape(1);
        if (n > m) {
            throw new IllegalArgumentException("AP loss: excludeSelf needs N ≤ M, got " + Shape.str(labels.shape()));
        }
        double[] mask = new double[n * m];
        java.util.Arrays.fill(mask, 1);
        for (int i = 0; i < n; i++) {
            mask[i * m + i] = 0;
        }
        Tensor mk = Tensor.ofDoubles(mask, n, m);
        Tensor mt = (labels.dtype() == DType.FLOAT64 ? mk : mk.to(labels.dtype())).to(labels.device());
        return Ops.mul(labels, mt);
    }

    private static void checkFinite(Tensor scores) {
        // NaN and ±∞ survive a sum (accumulated in double, so finite scores cannot overflow it)
        double sum;
        try (var ng = dir4j.engine.autograd.Autograd.noGrad(); Tensor s = Ops.sum(scores, null, false)) {
            sum = s.item();
        }
        if (!Double.isFinite(sum)) {
            throw new IllegalArgumentException("AP loss: scores contain NaN or infinite values; check the descriptors "
                    + "(an all-zero row normalises to NaN)");
        }
    }
}
