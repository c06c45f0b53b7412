package dir4j.nn.optim;

import dir4j.engine.Backend;
import dir4j.engine.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Adam and AdamW as torch.optim: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
 * p ← p − lr·(m/(1−β1^t)) / (√(v/(1−β2^t)) + ε). Weight decay is L2 (added to g) for Adam and
 * decoupled (p ← p·(1 − lr·wd) first) for AdamW. Each step is one fused pass per parameter
 * ({@link Backend#adamStep}); amsgrad is not offered.
 */
public final class Adam extends Optimizer {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final boolean decoupled;

    /** Adam with PyTorch's defaults (β = 0.9, 0.999; ε = 1e−8). */
    public static Adam adam(List<Tensor> params, double lr, double weightDecay) {
        return new Adam(params, lr, 0.9, 0.999, 1e-8, weightDecay, false);
    }

    /** AdamW with PyTorch's defaults (weight decay 0.01 there; given here). */
    public static Adam adamW(List<Tensor> params, double lr, double weightDecay) {
        return new Adam(params, lr, 0.9, 0.999, 1e-8, weightDecay, true);
    }

    public Adam(List<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay,
                boolean decoupled) {
        super(params, lr);
        if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) {
            throw new IllegalArgumentException("Adam: betas must be in [0, 1), got " + beta1 + ", " + beta2);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.decoupled = decoupled;
    }

    @Override
    protected void update(Tensor p, Tensor grad, Map<String, Tensor> st, long t) {
        Tensor m = st.containsKey("exp_avg") ? st.get("exp_avg") : newState(st, "exp_avg", p);
        Tensor v = st.containsKey("exp_avg_sq") ? st.get("exp_avg_sq") : newState(st, "exp_avg_sq", p);
        // one fused pass per tensor (Backend#adamStep states the per-element formula)
        p.backend().adamStep(p, laidOutLike(grad, p), m, v,
                new Backend.AdamStep(lr, beta1, beta2, eps, weightDecay, decoupled, t));
    }
}
