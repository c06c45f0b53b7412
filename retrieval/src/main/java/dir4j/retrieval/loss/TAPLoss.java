package dir4j.retrieval.loss;

import dir4j.engine.Ops;
import dir4j.engine.Tensor;

/**
 * The tie-aware AP loss of the reference (TAPLoss), full or simplified: with C_k, C⁺_k the
 * cumulative bin counts and C_{k−1} their predecessors (0 before the first bin), per bin
 * simplified: n⁺_k·(C⁺_{k−1} + C⁺_k + 1) / (C_{k−1} + C_k + 1) / N⁺,
 * full: n⁺_k·(n_k·ρ + (C⁺_{k−1} + 1 − ρ·(C_{k−1} + 1))·ln((C_k + 1)/(C_{k−1} + 1))) / (n_k + ε) / N⁺
 * with ρ = max(n⁺_k − 1, 0) / (max(n_k − 1, 0) + ε), ε = 1e−8; AP is their sum over bins.
 */
public final class TAPLoss extends APLoss {
    private final boolean simplified;

    /** The reference's TAPLoss(nq, min, max, simplified). */
    public TAPLoss(int nq, double min, double max, boolean simplified) {
        this(nq, min, max, simplified, false, false);
    }

    /** With the distance variant and self-match exclusion of {@link APLoss}. */
    public TAPLoss(int nq, double min, double max, boolean simplified, boolean distance, boolean excludeSelf) {
        super(nq, min, max, distance, excludeSelf);
        this.simplified = simplified;
    }

    @Override
    protected Tensor apFromHistogram(Tensor c, Tensor cp, Tensor positives) {
        Tensor cc = Ops.cumsum(c, 1);
        Tensor ccp = Ops.cumsum(cp, 1);
        Tensor cPrev = shiftRight(cc);
        Tensor cpPrev = shiftRight(ccp);
        Tensor np = Ops.unsqueeze(positives, 1);
        Tensor aps;
        if (simplified) {
            aps = Ops.div(Ops.div(Ops.mul(cp, Ops.affine(Ops.add(cpPrev, ccp), 1, 1)),
                    Ops.affine(Ops.add(cPrev, cc), 1, 1)), np);
        } else {
            double eps = 1e-8;
            Tensor ratio = Ops.div(Ops.clamp(Ops.affine(cp, 1, -1), 0, Double.NaN),
                    Ops.affine(Ops.clamp(Ops.affine(c, 1, -1), 0, Double.NaN), 1, eps));
            Tensor logTerm = Ops.log(Ops.div(Ops.affine(cc, 1, 1), Ops.affine(cPrev, 1, 1)));
            Tensor inner = Ops.add(Ops.mul(c, ratio),
                    Ops.mul(Ops.sub(Ops.affine(cpPrev, 1, 1), Ops.mul(ratio, Ops.affine(cPrev, 1, 1))), logTerm));
            aps = Ops.div(Ops.div(Ops.mul(cp, inner), Ops.affine(c, 1, eps)), np);
        }
        return Ops.sum(aps, new int[] {1}, false);
    }

    /** [0, x_0, …, x_{nq−2}] per row: the cumulative count before each bin. */
    private static Tensor shiftRight(Tensor x) {
        int n = x.shape(0);
        int nq = x.shape(1);
        Tensor zeros = Tensor.zeros(x.dtype(), x.device(), n, 1);
        return Ops.concat(1, zeros, Ops.slice(x, 1, 0, nq - 1));
    }
}
