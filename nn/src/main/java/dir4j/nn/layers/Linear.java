package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Init;
import dir4j.nn.Module;
import java.util.Random;

/** y = x·Wᵀ + b with `weight` [out, in] and `bias` [out]; PyTorch's default initialisation. */
public final class Linear extends Module {
    private final Tensor weight;
    private final Tensor bias;

    public Linear(Random rng, int in, int out, boolean bias) {
        this.weight = parameter("weight", Init.defaultWeight(rng, out, in));
        this.bias = bias ? parameter("bias", Init.uniform(rng, 1 / Math.sqrt(in), out)) : null;
    }

    public Tensor weight() {
        return weight;
    }

    public Tensor bias() {
        return bias;
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.linear(x, weight, bias);
    }
}
