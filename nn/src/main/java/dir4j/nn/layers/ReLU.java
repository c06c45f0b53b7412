package dir4j.nn.layers;

import dir4j.engine.Tensor;
import dir4j.nn.Module;

/** max(x, 0). */
public final class ReLU extends Module {
    @Override
    public Tensor forward(Tensor x) {
        return x.relu();
    }
}
