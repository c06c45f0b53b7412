package dir4j.nn.layers;

import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/** MAC: global max pooling [N, C, H, W] → [N, C]. */
public final class MaxPooling extends Module {
    @Override
    public Tensor forward(Tensor x) {
        return Ops.max(x, new int[] {2, 3}, false);
    }
}
