package dir4j.nn.optim;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * An optimiser over a fixed list of parameters. {@link #step()} updates each parameter that has
 * a gradient, in place (the tensors the module holds stay the same objects); its state (momentum,
 * moments) lives outside any MemoryScope until {@link #close()}.
 */
public abstract class Optimizer implements AutoCloseable {
    protected final List<Tensor> params;
    private final Map<Tensor, Map<String, Tensor>> state = new IdentityHashMap<>();
    protected double lr;
    private long steps;

    protected Optimizer(List<Tensor> params, double lr) {
        if (!(lr >= 0)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": learning rate must be ≥ 0, got " + lr);
        }
        this.params = new ArrayList<>(params);
        this.lr = lr;
    }

    public double lr() {
        return lr;
    }

    /** Sets the learning rate (schedules call this before each step). */
    public void setLr(double lr) {
        this.lr = lr;
    }

    /** Steps taken. */
    public long steps() {
        return steps;
    }

    /** Applies one update from the accumulated gradients. */
    public final void step() {
        for (int i = 0; i < params.size(); i++) {
            if (params.get(i).isClosed()) {
                // a freed parameter has no gradient: skipping it would train nothing, silently. Checked
                // before the count moves, so that a caller who recovers does not shift Adam's bias correction
                throw new IllegalStateException(getClass().getSimpleName() + ": parameter " + i + " "
                        + Shape.str(params.get(i).shape()) + " has been freed, as Module.to and a change of "
                        + "channels-last mode replace a module's parameters: create the optimiser after those");
            }
        }
        steps++;
        try (Autograd.NoGrad ng = Autograd.noGrad()) {
            List<Tensor> withGrad = new ArrayList<>();
            for (Tensor p : params) {
                if (p.grad() != null) {
                    withGrad.add(p);
                }
            }
            try (MemoryScope scope = MemoryScope.open()) {
                if (updateAll(withGrad, steps)) {
                    return;
                }
            }
            for (Tensor p : withGrad) {
                try (MemoryScope scope = MemoryScope.open()) {
                    update(p, p.grad(), stateOf(p), steps);
                }
            }
        }
    }

    /** Frees every parameter's gradient. */
    public final void zeroGrad() {
        params.forEach(Tensor::zeroGrad);
    }

    /** One parameter's update; {@code t} counts steps from 1. New state tensors go in {@code st}. */
    protected abstract void update(Tensor p, Tensor g, Map<String, Tensor> st, long t);

    /**
     * All these parameters' updates at once (every one has a gradient), when the optimiser can
     * (a multi-tensor step); returns false to have {@link #update} called per parameter (the
     * default). The same values either way.
     */
    protected boolean updateAll(List<Tensor> withGrad, long t) {
        return false;
    }

    /** A parameter's state map (created empty), for {@link #updateAll}. */
    protected final Map<String, Tensor> stateOf(Tensor p) {
        return state.computeIfAbsent(p, k -> new java.util.LinkedHashMap<>());
    }

    /** A state tensor created outside the step's scope (zeros like p, in p's layout). */
    protected static Tensor newState(Map<String, Tensor> st, String name, Tensor like) {
        Tensor t = MemoryScope.detached(() -> Tensor.emptyLayoutLike(like, like.dtype(), like.device()));
        st.put(name, t);
        return t;
    }

    /**
     * The gradient as the fused steps take it, laid out as its parameter: itself when it is
     * (contiguous, or the parameter's own dense strides), else a copy in that layout (in the
     * step's scope).
     */
    protected static Tensor laidOutLike(Tensor grad, Tensor param) {
        return grad.laidOutAs(param) ? grad : Ops.cloneLayoutLike(grad, param);
    }

    /** Sets the step count (when resuming from a checkpoint). */
    public void setSteps(long steps) {
        this.steps = steps;
    }

    /** Restores one named state tensor of a parameter (a copy is kept). */
    public void restoreState(Tensor p, String name, Tensor value) {
        if (!params.contains(p)) {
            throw new IllegalArgumentException("restoreState: tensor is not one of this optimiser's parameters");
        }
        Map<String, Tensor> st = state.computeIfAbsent(p, k -> new java.util.LinkedHashMap<>());
        // laid out as the parameter (the fused steps run over parameter and state as flat spans)
        Tensor old = st.put(name, MemoryScope.detached(() -> java.util.Arrays.equals(value.shape(), p.shape())
                ? Ops.cloneLayoutLike(value, p) : Ops.cloneDetached(value)));
        if (old != null) {
            old.close();
        }
    }

    /** Named state of a parameter (for checkpoints and tests). */
    public Map<String, Tensor> state(Tensor p) {
        return state.getOrDefault(p, Map.of());
    }

    @Override
    public void close() {
        state.values().forEach(m -> m.values().forEach(Tensor::close));
        state.clear();
    }
}
