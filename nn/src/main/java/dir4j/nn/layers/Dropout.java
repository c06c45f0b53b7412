package dir4j.nn.layers;

import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.nn.Module;
import java.util.Random;

/** Zeroes each element with probability p in training, scaling the rest by 1/(1−p); identity in eval. */
public final class Dropout extends Module {
    private final double p;
    private final Random rng;

    public Dropout(double p, Random rng) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("Dropout: p must be in [0, 1), got " + p);
        }
        this.p = p;
        this.rng = rng;
    }

    @Override
    public Tensor forward(Tensor x) {
        if (!isTraining() || p == 0) {
            return x;
        }
        float[] mask = new float[(int) Shape.numel(x.shape())];
        float keep = (float) (1 / (1 - p));
        for (int i = 0; i < mask.length; i++) {
            mask[i] = rng.nextDouble() < p ? 0f : keep;
        }
        Tensor m = Tensor.of(mask, x.shape()).to(x.dtype()).to(x.device());
        return x.mul(m);
    }
}
