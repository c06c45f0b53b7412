package dir4j.nn.layers;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.nn.Init;
import dir4j.nn.Module;
import java.util.Random;

/** 2-D convolution (groups = 1), parameters `weight` [out, in, k, k] and optional `bias` [out]. */
public final class Conv2d extends Module {
    private final ConvParams geometry;

    /** PyTorch's default initialisation (uniform ±1/√fan_in). */
    public Conv2d(Random rng, int in, int out, int kernel, int stride, int padding, int dilation, boolean bias) {
        parameter("weight", Init.defaultWeight(rng, out, in, kernel, kernel));
        if (bias) {
            parameter("bias", Init.uniform(rng, 1 / Math.sqrt((double) in * kernel * kernel), out));
        }
        this.geometry = new ConvParams(stride, stride, padding, padding, dilation, dilation);
    }

    /** Stride, padding and dilation. */
    public ConvParams geometry() {
        return geometry;
    }

    public Tensor weight() {
        return member("weight");
    }

    /**
     * Stores the weight channels-last, [out, in, k, k] with strides (k·k·in, 1, k·in, in) as
     * PyTorch's channels_last memory format does, or back in the row-major layout (same values,
     * same name and shape). Channels-last, {@link #forwardChannelsLast}'s permuted view of it is
     * contiguous: no copy of the weight in the forward, and its gradient lands in the same layout
     * (no copy in the backward or the optimiser's step). A 1×1 weight is the same either way and
     * is left alone. Replaces the parameter tensor: make optimisers after this.
     */
    public Conv2d channelsLastWeight(boolean on) {
        Tensor w = weight();
        int in = w.shape(1);
        int kh = w.shape(2);
        int kw = w.shape(3);
        boolean is = !w.isContiguous();
        if (on == is || kh * kw == 1) {
            return this;
        }
        long[] strides = on ? new long[] {(long) kh * kw * in, 1, (long) kw * in, in} : Shape.contiguousStrides(w.shape());
        Tensor now = dir4j.engine.MemoryScope.detached(() -> {
            Tensor t = Tensor.emptyDense(w.dtype(), w.device(), w.shape(), strides);
            try (Tensor d = w.detach()) {
                w.backend().copy(d, t);
            }
            return t;
        });
        replaceParameter("weight", now);
        return this;
    }

    /** The bias, or null without one. */
    public Tensor bias() {
        return memberOrNull("bias");
    }

    @Override
    public Tensor forward(Tensor x) {
        return NnOps.conv2d(x, weight(), bias(), geometry);
    }

    /**
     * The same convolution on a channels-last x [N, H, W, in], giving [N, Ho, Wo, out]: the weight
     * [out, in, k, k] enters the graph permuted to [out, k, k, in], so its gradient lands on the
     * parameter as in {@link #forward}. An x with more channels than {@code in} is taken as zero
     * padded after the real ones (the filters get zero taps there).
     */
    public Tensor forwardChannelsLast(Tensor x) {
        Tensor w = Ops.permute(weight(), 0, 2, 3, 1);
        int in = w.shape(3);
        if (x.rank() == 4 && x.shape(3) > in) {
            // x carries zero channels after the real ones (ResNet's channels-last stem pads 3 to 4):
            // the filters get zero taps for them, and their gradient stays on the real channels
            Tensor zeros = Tensor.zeros(w.dtype(), w.device(), w.shape(0), w.shape(1), w.shape(2), x.shape(3) - in);
            Tensor padded = Ops.concat(3, w, zeros);
            if (!dir4j.engine.autograd.Autograd.isGradEnabled()) {
                w.close();
                zeros.close();
            }
            w = padded;
        }
        Tensor y = NnOps.conv2dNhwc(x, w, geometry);
        if (!dir4j.engine.autograd.Autograd.isGradEnabled()) {
            w.close();
        }
        Tensor b = bias();
        return b == null ? y : Ops.add(y, b);
    }
}
