package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/**
 * GeM pooling [N, C, H, W] → [N, C]: (mean_hw max(x, ε)^p)^(1/p), p a learnable parameter `p`
 * (initialised to 3 as in the reference's GeneralizedMeanPoolingP) or fixed.
 */
public final class GeneralizedMeanPooling extends Module {
    private final double eps;

    /** Learnable p. */
    public GeneralizedMeanPooling(double p, double eps) {
        this(p, eps, true);
    }

    public GeneralizedMeanPooling(double p, double eps, boolean learnable) {
        Tensor t = Tensor.of(new float[] {(float) p}, 1);
        if (learnable) {
            parameter("p", t);
        } else {
            buffer("p", t);
        }
        this.eps = eps;
    }

    public Tensor p() {
        return member("p");
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.gem(x, p(), eps);
    }
}
