package dir4j.engine.autograd;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reverse-mode automatic differentiation over the graph that ops record: a topological sort
 * from the root, then one loop in reverse order applying each node's rule and accumulating
 * gradients; leaves receive theirs in {@link Tensor#grad()}.
 */
public final class Autograd {
    private static final ThreadLocal<int[]> NO_GRAD_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private Autograd() {}

    /** True when ops should record the graph on this thread. */
    public static boolean isGradEnabled() {
        return NO_GRAD_DEPTH.get()[0] == 0;
    }

    /** A scope in which ops record nothing: {@code try (var ng = Autograd.noGrad()) { ... }}. */
    public static NoGrad noGrad() {
        NO_GRAD_DEPTH.get()[0]++;
        return new NoGrad();
    }

    /** Closes a no-grad scope. */
    public static final class NoGrad implements AutoCloseable {
        private boolean closed;

        private NoGrad() {}

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                NO_GRAD_DEPTH.get()[0]--;
            }
        }
    }

    /**
     * Records {@code out = op(inputs)} with its backward rule if grad mode is on and any input
     * requires grad; otherwise only names the producer. Returns out.
     */
    public static Tensor record(String op, Tensor out, Tensor[] inputs, Node.BackwardRule rule) {
        boolean needs = false;
        if (isGradEnabled()) {
            for (Tensor t : inputs) {
                if (t != null && t.requiresGrad()) {
                    needs = true;
                    break;
                }
            }
        }
        out.attachGraph(needs ? new Node(op, inputs, rule) : null, op);
        return out;
    }

    /** Marks out as produced by a non-differentiable op (comparison, argmax, cast to int). */
    public static Tensor nonDifferentiable(String op, Tensor out) {
        out.setProducer(op + " (not differentiable)");
        return out;
    }

    /**
     * Back-propagates from {@code root}. With {@code upstream} null the root must hold one
     * element and its gradient is 1; otherwise upstream is dL/droot, of root's shape.
     */
    public static void backward(Tensor root, Tensor upstream) {
        root.checkAlive("backward");
        if (!root.requiresGrad()) {
            throw new IllegalStateException("backward: tensor " + Shape.str(root.shape()) + " made by "
                    + root.producer() + " does not require grad: no input on its path requires grad, or the path "
                    + "went through a non-differentiable op or a no-grad scope");
        }
        if (upstream == null && root.numel() != 1) {
            throw new IllegalArgumentException("backward: root has shape " + Shape.str(root.shape())
                    + "; pass an upstream gradient of that shape or reduce it to a scalar first");
        }
        if (upstream != null && !Arrays.equals(upstream.shape(), root.shape())) {
            throw new IllegalArgumentException("backward: upstream gradient shape " + Shape.str(upstream.shape())
                    + " differs from root shape " + Shape.str(root.shape()));
        }
        if (upstream != null && upstream.dtype() != root.dtype()) {
            throw new IllegalArgumentException("backward: upstream gradient is " + upstream.dtype() + ", root is "
                    + root.dtype() + "; convert it with .to(DType)");
        }
        List<Tensor> order = topologicalOrder(root);
        Map<Tensor, Tensor> grads = new IdentityHashMap<>();
        Map<Tensor, Integer> uses = new IdentityHashMap<>();
        try (MemoryScope scope = MemoryScope.open(); NoGrad ng = noGrad()) {
            Tensor seed = upstream != null ? upstream : Ops.onesLike(root);
            put(grads, uses, root, seed);
            uses.merge(seed, 1, Integer::sum); // never freed by us: the caller's, or the scope's
            for (int i = order.size() - 1; i >= 0; i--) {
                Tensor t = order.get(i);
                Tensor g = grads.remove(t);
                if (g == null) {
                    continue;
                }
                Node node = t.gradFn();
                if (node == null) {
                    accumulateLeaf(t, g, uses.getOrDefault(g, 0) == 1);
                } else {
                    Tensor[] in = node.inputs();
                    Tensor[] gin = node.rule().apply(g);
                    for (int k = 0; k < in.length; k++) {
                        Tensor x = in[k];
                        if (x == null || !x.requiresGrad() || gin[k] == null) {
                            continue;
                        }
                        if (!Arrays.equals(gin[k].shape(), x.shape())) {
                            throw new IllegalStateException("backward of " + node.op() + ": gradient of input " + k
                                    + " has shape " + Shape.str(gin[k].shape()) + ", input has " + Shape.str(x.shape()));
                        }
                        put(grads, uses, x, gin[k]);
                    }
                }
                release(uses, g);
            }
        }
    }

    /**
     * Stores g as key's gradient, or adds it to the one already there. Every gradient held by
     * the map counts one use; a tensor is freed when its uses drop to zero (rules may return
     * their incoming gradient itself, for several inputs).
     */
    private static void put(Map<Tensor, Tensor> grads, Map<Tensor, Integer> uses, Tensor key, Tensor g) {
        Tensor prev = grads.get(key);
        Tensor stored = prev == null ? g : Ops.add(prev, g);
        grads.put(key, stored);
        uses.merge(stored, 1, Integer::sum);
        if (prev != null) {
            release(uses, prev);
        }
    }

    /** Drops one use of a gradient tensor; frees it early when nothing else holds it. */
    private static void release(Map<Tensor, Integer> uses, Tensor g) {
        Integer n = uses.get(g);
        if (n == null) {
            return;
        }
        if (n <= 1) {
            uses.remove(g);
            g.close();
        } else {
            uses.put(g, n - 1);
        }
    }

    /**
     * Adds g to a leaf's gradient. The first gradient of a leaf takes over g's memory when
     * nothing else can see it (this pass holds its only use and no other view shares its
     * storage), saving a copy of every parameter-sized gradient; otherwise it is copied.
     */
    private static void accumulateLeaf(Tensor leaf, Tensor g, boolean exclusive) {
        Tensor old = leaf.grad();
        if (old != null) {
            Ops.addInPlace(old, g);
            return;
        }
        // the gradient is stored in the leaf's layout (contiguous, or the leaf's own dense strides:
        // a channels-last weight's), so that optimisers step parameter and gradient as flat spans
        boolean steal = exclusive && g.laidOutAs(leaf) && g.offset() == 0 && g.storage().refCount() == 1
                && g.dtype() == leaf.dtype() && Arrays.equals(g.shape(), leaf.shape());
        leaf.setGrad(MemoryScope.detached(() -> steal ? g.viewOf(g.shape(), g.strides(), 0)
                : Ops.cloneLayoutLike(g, leaf)));
    }

    /** Tensors reachable from root through recorded nodes, inputs before outputs. */
    private static List<Tensor> topologicalOrder(Tensor root) {
        List<Tensor> order = new ArrayList<>();
        Map<Tensor, Boolean> visited = new IdentityHashMap<>();
        Deque<Object[]> stack = new ArrayDeque<>();
        stack.push(new Object[] {root, 0});
        visited.put(root, Boolean.TRUE);
        while (!stack.isEmpty()) {
            Object[] frame = stack.peek();
            Tensor t = (Tensor) frame[0];
            int next = (Integer) frame[1];
            Node node = t.gradFn();
            Tensor[] in = node == null ? new Tensor[0] : node.inputs();
            if (next < in.length) {
                frame[1] = next + 1;
                Tensor x = in[next];
                if (x != null && x.requiresGrad() && visited.put(x, Boolean.TRUE) == null) {
                    x.checkAlive("backward through " + node.op());
                    stack.push(new Object[] {x, 0});
                }
            } else {
                stack.pop();
                order.add(t);
            }
        }
        return order;
    }
}
