package dir4j.nn.optim;

import dir4j.engine.Backend;
import dir4j.engine.Tensor;
import java.util.List;
import java.util.Map;

/**
 * Stochastic gradient descent as torch.optim.SGD: g ← ∇ + wd·p; with momentum μ,
 * b ← μ·b + (1 − dampening)·g (b = g on the first step) and g ← g + μ·b (Nesterov) or b;
 * p ← p − lr·g. Each step is one fused pass over the parameters ({@link Backend#sgdSteps}: on
 * CUDA one launch for all float32 parameters of a device).
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
        boolean[] first = new boolean[1];
        Tensor buf = momentumBuffer(p, st, first);
        // one fused pass per tensor (Backend#sgdStep states the per-element formula)
        p.backend().sgdStep(p, laidOutLike(grad, p), buf, first[0], hyperParameters());
    }

    /**
     * Every parameter in one {@link Backend#sgdSteps} call; parameters on several backends go one
     * by one ({@link #update}).
     */
    @Override
    protected boolean updateAll(List<Tensor> withGrad, long t) {
        if (withGrad.isEmpty()) {
            return true;
        }
        Backend be = withGrad.get(0).backend();
        for (Tensor p : withGrad) {
            if (p.backend() != be) {
                return false;
            }
        }
        List<Tensor> grads = new java.util.ArrayList<>(withGrad.size());
        List<Tensor> buffers = new java.util.ArrayList<>(withGrad.size());
        boolean[] first = new boolean[withGrad.size()];
        boolean[] isNew = new boolean[1];
        for (int i = 0; i < withGrad.size(); i++) {
            Tensor p = withGrad.get(i);
            grads.add(laidOutLike(p.grad(), p));
            buffers.add(momentumBuffer(p, stateOf(p), isNew));
            first[i] = isNew[0];
        }
        be.sgdSteps(withGrad, grads, buffers, first, hyperParameters());
        return true;
    }

    /** The momentum buffer (null without momentum), made on the first step (then isNew[0] is set). */
    private Tensor momentumBuffer(Tensor p, Map<String, Tensor> st, boolean[] isNew) {
        isNew[0] = false;
        if (momentum == 0) {
            return null;
        }
        Tensor buf = st.get("momentum_buffer");
        if (buf == null) {
            buf = newState(st, "momentum_buffer", p);
            isNew[0] = true;
        }
        return buf;
    }

    private Backend.SgdStep hyperParameters() {
        return new Backend.SgdStep(lr, momentum, dampening, weightDecay, nesterov);
    }
}
