package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/** Max pooling with a square window. */
public final class MaxPool2d extends Module {
    private final int kernel;
    private final int stride;
    private final int padding;

    public MaxPool2d(int kernel, int stride, int padding) {
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.maxPool2d(x, kernel, stride, padding);
    }

    /** The same pooling of a channels-last x [N, H, W, C]. */
    public Tensor forwardChannelsLast(Tensor x) {
        return NnOps.maxPool2dNhwc(x, kernel, stride, padding);
    }
}
