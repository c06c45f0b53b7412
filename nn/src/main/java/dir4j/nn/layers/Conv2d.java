package dir4j.nn.layers;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Init;
import dir4j.nn.Module;
import java.util.Random;

/** 2-D convolution (groups = 1), parameters `weight` [out, in, k, k] and optional `bias` [out]. */
public final class Conv2d extends Module {
    private final Tensor weight;
    private final Tensor bias;
    private final ConvParams geometry;

    /** PyTorch's default initialisation (uniform ±1/√fan_in). */
    public Conv2d(Random rng, int in, int out, int kernel, int stride, int padding, int dilation, boolean bias) {
        this.weight = parameter("weight", Init.defaultWeight(rng, out, in, kernel, kernel));
        this.bias = bias ? parameter("bias", Init.uniform(rng, 1 / Math.sqrt((double) in * kernel * kernel), out))
                : null;
        this.geometry = new ConvParams(stride, stride, padding, padding, dilation, dilation);
    }

    public Tensor weight() {
        return weight;
    }

    public Tensor bias() {
        return bias;
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.conv2d(x, weight, bias, geometry);
    }
}
