package dir4j.nn.layers;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/** Average pooling to a fixed output size. */
public final class AdaptiveAvgPool2d extends Module {
    private final int outH;
    private final int outW;

    public AdaptiveAvgPool2d(int outH, int outW) {
        this.outH = outH;
        this.outW = outW;
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.adaptiveAvgPool2d(x, outH, outW);
    }
}
