package dir4j.nn.optim;

import dir4j.engine.Backend;
import dir4j.engine.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Stochastic gradient descent as torch.optim.SGD: g ← ∇ + wd·p; with momentum μ,
 * b ← μ·b + (1 − dampening)·g (b = g on the first step) and g ← g + μ·b (Nesterov) or b;
 * p ← p − lr·g. Each step is one fused pass per parameter ({@link Backend#sgdStep}).
 */
public final class Sgd extends Optimizer {
    private final double momentum;
    private final double dampening;
    private final double weightDecay;
    private final boolean nesterov;

    public Sgd(List<Tensor> params, double lr, double momentum, double weightDecay, boolean nesterov) {
        this(params, lr, momentum, 0, weightDecay, nesterov);
    }

    public Sgd(List<Tensor> params, double lr, double momentum, double dampening, double weightDecay,
               boolean nesterov) {
        super(params, lr);
        if (nesterov && (momentum <= 0 || dampening != 0)) {
            throw new IllegalArgumentException("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
        }
        this.momentum = momentum;
        this.dampening = dampening;
        this.weightDecay = weightDecay;
        this.nesterov = nesterov;
    }

    @Override
    protected void update(Tensor p, Tensor grad, Map<String, Tensor> st, long t) {
        Tensor buf = null;
        boolean first = false;
        if (momentum != 0) {
            buf = st.get("momentum_buffer");
            if (buf == null) {
                buf = newState(st, "momentum_buffer", p);
                first = true;
            }
        }
        // one fused pass per tensor (Backend#sgdStep states the per-element formula)
        p.backend().sgdStep(p, contiguous(grad), buf, first,
                new Backend.SgdStep(lr, momentum, dampening, weightDecay, nesterov));
    }
}
