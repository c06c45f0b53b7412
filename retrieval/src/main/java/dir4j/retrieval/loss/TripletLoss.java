package dir4j.retrieval.loss;

import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;

/**
 * The triplet losses of the reference, for the older (pre-AP) training method, on descriptor
 * rows picked by index triplets (anchor, positive, negative):
 * <ul>
 * <li>{@link Kind#MARGIN}: mean max(0, d(a, p) − d(a, n) + margin) (PyTorch's TripletMarginLoss, p = 2);</li>
 * <li>{@link Kind#LOG_EXP}: mean log(1 + exp(d(a, p) − d(a, n))) (the reference's TripletLogExpLoss).</li>
 * </ul>
 * d(x, y) = ‖x − y + ε‖₂ with ε = 1e−6, as torch.nn.functional.pairwise_distance.
 */
public final class TripletLoss {
    /** The two forms. */
    public enum Kind { MARGIN, LOG_EXP }

    private static final double EPS = 1e-6;
    private final Kind kind;
    private final double margin;

    /** @param margin used by {@link Kind#MARGIN} (PyTorch's default is 1) */
    public TripletLoss(Kind kind, double margin) {
        this.kind = kind;
        this.margin = margin;
    }

    /** The loss over triplets of rows of descriptors [N, D]. */
    public Tensor forward(Tensor descriptors, TripletSampler.Triplets t) {
        if (descriptors.rank() != 2) {
            throw new IllegalArgumentException("triplet loss: descriptors must be N×D, got "
                    + Shape.str(descriptors.shape()));
        }
        if (t.size() == 0) {
            throw new IllegalArgumentException("triplet loss: no triplets (each class needs two images and there must"
                    + " be at least two classes)");
        }
        Tensor a = Ops.indexSelect(descriptors, 0, Tensor.ofInts(t.anchors(), t.size()));
        Tensor p = Ops.indexSelect(descriptors, 0, Tensor.ofInts(t.positives(), t.size()));
        Tensor n = Ops.indexSelect(descriptors, 0, Tensor.ofInts(t.negatives(), t.size()));
        Tensor diff = Ops.sub(distance(a, p), distance(a, n));
        Tensor per = kind == Kind.MARGIN ? Ops.relu(Ops.affine(diff, 1, margin))
                : Ops.log(Ops.affine(Ops.exp(diff), 1, 1));
        return Ops.mean(per, null, false);
    }

    /** ‖x − y + ε‖₂ per row. */
    static Tensor distance(Tensor x, Tensor y) {
        Tensor d = Ops.affine(Ops.sub(x, y), 1, EPS);
        return Ops.sqrt(Ops.sum(Ops.mul(d, d), new int[] {1}, false));
    }
}
