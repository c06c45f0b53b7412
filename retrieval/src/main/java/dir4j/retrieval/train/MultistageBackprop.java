package dir4j.retrieval.train;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.Module;
import dir4j.nn.layers.BatchNorm2d;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * Multistage back-propagation (Revaud et al. 2019, §3.3): the gradient of a listwise loss over a
 * batch of thousands of images, with the memory of one sub-batch.
 * <ol>
 * <li>descriptors of every sub-batch, computed without keeping activations;</li>
 * <li>the loss and dL/dD on the N×D descriptor matrix;</li>
 * <li>each sub-batch recomputed with its graph and back-propagated with its slice of dL/dD,
 *     gradients accumulating in the parameters.</li>
 * </ol>
 * The result equals one ordinary backward over the whole batch when the network is the same
 * function in stages 1 and 3: true with frozen batch-norm statistics (the reference's recipe and
 * dir4j's default). With batch statistics, each sub-batch normalises by its own, as in the paper;
 * stage 1 then leaves the running statistics as it found them, so they update once per step.
 */
public final class MultistageBackprop {
    private MultistageBackprop() {}

    /** What a step produced. */
    public record Outcome(double loss, int images) {}

    /**
     * One multistage gradient computation (no optimiser step: the caller steps). {@code subBatch}
     * returns the i-th of {@code count} input batches (called twice per index: once per stage;
     * it must return the same images each time, e.g. from a seeded augmentation); {@code loss}
     * maps the full descriptor matrix [N, D] to a scalar.
     */
    public static Outcome accumulateGradients(Module net, int count, IntFunction<Tensor> subBatch,
                                              Function<Tensor, Tensor> loss) {
        return accumulateGradients(net, count, subBatch, loss, net::forward);
    }

    /**
     * {@link #accumulateGradients(Module, int, IntFunction, Function)} with stage 1 computed by
     * {@code stage1} (run without a graph) instead of {@code net.forward}: the Trainer passes the
     * compiled inference of the network ({@code RetrievalNet.inference()}) when every batch
     * norm uses its running statistics, so that stage 1 is the same function to float rounding.
     */
    public static Outcome accumulateGradients(Module net, int count, IntFunction<Tensor> subBatch,
                                              Function<Tensor, Tensor> loss, Function<Tensor, Tensor> stage1) {
        if (count <= 0) {
            throw new IllegalArgumentException("multistage: no sub-batches");
        }
        List<Tensor> parts = new ArrayList<>();
        int[] sizes = new int[count];
        Map<String, Tensor> saved = snapshotRunningStatistics(net);
        try {
            // stage 1: descriptors without activations
            try (Autograd.NoGrad ng = Autograd.noGrad()) {
                for (int i = 0; i < count; i++) {
                    try (MemoryScope s = MemoryScope.open()) {
                        Tensor d = stage1.apply(subBatch.apply(i));
                        Tensor kept = MemoryScope.detached(() -> Ops.cloneDetached(d));
                        sizes[i] = kept.shape(0);
                        parts.add(kept);
                    }
                }
            }
            restore(net, saved);
            double lossValue;
            Tensor grad;
            // stage 2: the loss and dL/dD on the descriptor matrix
            try (MemoryScope s = MemoryScope.open()) {
                Tensor all = Ops.concat(0, parts.toArray(Tensor[]::new)).detach().requiresGrad(true);
                Tensor l = loss.apply(all);
                if (l == null) {
                    throw new IllegalArgumentException("multistage: the loss returned null instead of a scalar tensor");
                }
                if (l.numel() != 1) {
                    throw new IllegalArgumentException("multistage: the loss must be a scalar, got shape "
                            + java.util.Arrays.toString(l.shape()));
                }
                lossValue = l.item();
                if (!Double.isFinite(lossValue)) {
                    throw new IllegalStateException("multistage: loss is " + lossValue + "; no gradient applied");
                }
                if (l.requiresGrad()) { // a constant, or a loss of detached descriptors alone, has no graph
                    l.backward();
                }
                if (all.grad() == null) {
                    throw new IllegalArgumentException("multistage: the loss does not depend on the descriptors "
                            + "(no gradient reached them: computed from a detached copy, or a constant)");
                }
                grad = MemoryScope.detached(() -> Ops.cloneDetached(all.grad()));
            }
            // stage 3: recompute each sub-batch with its graph, back-propagate its slice
            try (grad) {
                int start = 0;
                for (int i = 0; i < count; i++) {
                    final int from = start;
                    final int n = sizes[i];
                    try (MemoryScope s = MemoryScope.open()) {
                        Tensor d = net.forward(subBatch.apply(i));
                        if (d.shape(0) != n) {
                            throw new IllegalStateException("multistage: sub-batch " + i + " gave " + d.shape(0)
                                    + " descriptors in stage 3 but " + n + " in stage 1 (sub-batches must be "
                                    + "reproducible)");
                        }
                        d.backward(Ops.slice(grad, 0, from, from + n));
                    }
                    start += n;
                }
            }
            return new Outcome(lossValue, java.util.Arrays.stream(sizes).sum());
        } finally {
            parts.forEach(Tensor::close);
            saved.values().forEach(Tensor::close);
        }
    }

    /** Copies of the running statistics of non-frozen batch-norm layers in training mode. */
    private static Map<String, Tensor> snapshotRunningStatistics(Module net) {
        Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        List<Module> all = net.modules();
        for (int i = 0; i < all.size(); i++) {
            if (all.get(i) instanceof BatchNorm2d bn && bn.usesBatchStatistics()) {
                for (var e : bn.namedBuffers().entrySet()) {
                    Tensor v = e.getValue();
                    out.put(i + "/" + e.getKey(), MemoryScope.detached(() -> Ops.cloneDetached(v)));
                }
            }
        }
        return out;
    }

    private static void restore(Module net, Map<String, Tensor> saved) {
        List<Module> all = net.modules();
        for (var e : saved.entrySet()) {
            String[] k = e.getKey().split("/", 2);
            Tensor dst = all.get(Integer.parseInt(k[0])).namedBuffers().get(k[1]);
            dst.backend().copy(e.getValue(), dst);
        }
    }

    /** Sets every batch-norm layer's statistics frozen (or not). */
    public static void freezeBatchNorm(Module net, boolean frozen) {
        for (Module m : net.modules()) {
            if (m instanceof BatchNorm2d bn) {
                bn.freeze(frozen);
            }
        }
    }
}
