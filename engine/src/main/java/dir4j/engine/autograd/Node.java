package dir4j.engine.autograd;

import dir4j.engine.Tensor;

/**
 * One recorded op in the graph: its name, its inputs, and its local backward rule, which maps
 * the gradient of the op's output to the gradients of its inputs (null for an input that needs
 * none).
 */
public final class Node {
    private final String op;
    private final Tensor[] inputs;
    private final BackwardRule rule;

    /** The local vector-Jacobian product of an op. */
    @FunctionalInterface
    public interface BackwardRule {
        /** Gradients of the inputs given the gradient of the output, aligned with the inputs. */
        Tensor[] apply(Tensor gradOutput);
    }

    Node(String op, Tensor[] inputs, BackwardRule rule) {
        this.op = op;
        this.inputs = inputs;
        this.rule = rule;
    }

    public String op() {
        return op;
    }

    public Tensor[] inputs() {
        return inputs;
    }

    BackwardRule rule() {
        return rule;
    }
}
