package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Init;
import dir4j.nn.Module;
import java.util.Random;

/** y = x·Wᵀ + b with `weight` [out, in] and `bias` [out]; PyTorch's default initialisation. */
public final class Linear extends Module {
    public Linear(Random rng, int in, int out, boolean bias) {
        parameter("weight", Init.defaultWeight(rng, out, in));
        if (bias) {
            parameter("bias", Init.uniform(rng, 1 / Math.sqrt(in), out));
        }
    }

    public Tensor weight() {
        return member("weight");
    }

    /** The bias, or null without one. */
    public Tensor bias() {
        return memberOrNull("bias");
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.linear(x, weight(), bias());
    }
}
