package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/** Rows of [N, D] scaled to unit L2 norm (x / max(‖x‖, eps), PyTorch's F.normalize). */
public final class L2Normalization extends Module {
    private final double eps;

    public L2Normalization() {
        this(1e-12);
    }

    public L2Normalization(double eps) {
        this.eps = eps;
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.l2Normalize(x, 1, eps);
    }
}
