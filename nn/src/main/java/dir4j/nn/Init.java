package dir4j.nn;

import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.util.Random;

/**
 * Weight initialisations as torch.nn.init defines them, drawn from a caller's seeded Random. A
 * null Random gives zeros instead: for a network whose every parameter is about to be loaded from
 * a checkpoint, where drawing 42.5 million Gaussians (ResNet-101) would cost seconds for nothing.
 */
public final class Init {
    private Init() {}

    /** fan_in and fan_out of a weight of shape [out, in, k…] (PyTorch's rule). */
    static long[] fans(int[] shape) {
        long receptive = 1;
        for (int i = 2; i < shape.length; i++) {
            receptive *= shape[i];
        }
        return new long[] {shape[1] * receptive, shape[0] * receptive};
    }

    /** kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2/fan_out), as torchvision's ResNet. */
    public static Tensor kaimingNormalFanOut(Random rng, int... shape) {
        if (rng == null) {
            return Tensor.zeros(shape);
        }
        double std = Math.sqrt(2.0 / fans(shape)[1]);
        float[] v = new float[(int) Shape.numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rng.nextGaussian() * std);
        }
        return Tensor.of(v, shape);
    }

    /** U(−bound, bound). */
    public static Tensor uniform(Random rng, double bound, int... shape) {
        if (rng == null) {
            return Tensor.zeros(shape);
        }
        return Tensor.uniform(rng, -bound, bound, shape);
    }

    /** PyTorch's default Linear/Conv weight init, kaiming_uniform_(a=√5): U(±1/√fan_in). */
    public static Tensor defaultWeight(Random rng, int... shape) {
        return uniform(rng, 1 / Math.sqrt(fans(shape)[0]), shape);
    }
}
