package dir4j.nn.resnet;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.nn.Module;
import dir4j.nn.Sequential;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.layers.Conv2d;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A ResNet's feature extractor with every batch norm folded into its convolution, on the host:
 * w·γ/√(σ²+ε) and β + (b − μ)·γ/√(σ²+ε) with the running statistics. The one fold both compiled
 * inference plans start from ({@link ResNetInference} on the CPU, {@link ResNetDeviceInference}
 * through a backend's channels-last ops).
 */
final class FoldedResNet {
    /**
     * One convolution with its batch norm folded in.
     *
     * @param weight [out, in, kernel, kernel] (PyTorch's order)
     * @param bias   [out]
     */
    record Conv(float[] weight, float[] bias, int out, int in, int kernel, int stride, int pad) {
        /** The output side for an input side of {@code size}. */
        int outSize(int size) {
            return (size + 2 * pad - kernel) / stride + 1;
        }

        /** The weights as channels-last filters [out, kernel, kernel, inPadded], channels from in on zero. */
        float[] channelsLast(int inPadded) {
            int kk = kernel * kernel;
            float[] t = new float[out * kk * inPadded];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    for (int r = 0; r < kk; r++) {
                        t[(o * kk + r) * inPadded + i] = weight[(o * in + i) * kk + r];
                    }
                }
            }
            return t;
        }
    }

    /** One residual block: conv3 is null for a BasicBlock, down null without a projection shortcut. */
    record Block(Conv conv1, Conv conv2, Conv conv3, Conv down) {
        /** The block's last convolution (the one the residual joins). */
        Conv last() {
            return conv3 == null ? conv2 : conv3;
        }
    }

    final Conv stem;
    final List<Block> blocks;
    final int featureChannels;

    private FoldedResNet(Conv stem, List<Block> blocks, int featureChannels) {
        this.stem = stem;
        this.blocks = blocks;
        this.featureChannels = featureChannels;
    }

    /** Why {@link #of} would refuse this network, or empty when it can fold it. */
    static Optional<String> unsupported(ResNet net) {
        for (Map.Entry<String, Tensor> e : net.stateDict().entrySet()) {
            if (e.getValue().dtype() != DType.FLOAT32 && !e.getKey().endsWith("num_batches_tracked")) {
                return Optional.of(e.getKey() + " is " + e.getValue().dtype() + ", not float32");
            }
        }
        for (Module m : net.modules()) {
            if (m instanceof Conv2d c) {
                var g = c.geometry();
                if (g.strideH() != g.strideW() || g.padH() != g.padW() || g.dilationH() != 1 || g.dilationW() != 1
                        || c.weight().shape(2) != c.weight().shape(3)) {
                    return Optional.of("a convolution is not square, or dilated");
                }
            }
        }
        return Optional.empty();
    }

    /**
     * Folds the network as it is now (a snapshot: the weights and statistics are copied).
     *
     * @throws IllegalArgumentException with {@link #unsupported}'s reason when it cannot
     */
    static FoldedResNet of(ResNet net, String plan) {
        Optional<String> why = unsupported(net);
        if (why.isPresent()) {
            throw new IllegalArgumentException("cannot compile this ResNet for " + plan + ": " + why.get());
        }
        Map<String, Module> top = net.children();
        Conv stem = fold((Conv2d) top.get("conv1"), (BatchNorm2d) top.get("bn1"));
        List<Block> blocks = new ArrayList<>();
        for (int s = 1; s <= 4; s++) {
            Sequential layer = (Sequential) top.get("layer" + s);
            for (int b = 0; b < layer.size(); b++) {
                Map<String, Module> m = layer.get(b).children();
                Sequential down = (Sequential) m.get("downsample");
                Conv dw = down == null ? null : fold((Conv2d) down.get(0), (BatchNorm2d) down.get(1));
                Conv w1 = fold((Conv2d) m.get("conv1"), (BatchNorm2d) m.get("bn1"));
                Conv w2 = fold((Conv2d) m.get("conv2"), (BatchNorm2d) m.get("bn2"));
                Conv w3 = m.containsKey("conv3") ? fold((Conv2d) m.get("conv3"), (BatchNorm2d) m.get("bn3")) : null;
                blocks.add(new Block(w1, w2, w3, dw));
            }
        }
        return new FoldedResNet(stem, List.copyOf(blocks), net.featureChannels());
    }

    /** conv then batch norm (running statistics) as one convolution with a bias. */
    private static Conv fold(Conv2d conv, BatchNorm2d bn) {
        int[] sh = conv.weight().shape();
        int out = sh[0];
        int per = sh[1] * sh[2] * sh[3];
        float[] w;
        try (Tensor wc = conv.weight().contiguous()) {
            w = wc.toFloatArray();
        }
        float[] gamma = bn.weight().toFloatArray();
        float[] beta = bn.bias().toFloatArray();
        float[] mean = bn.runningMean().toFloatArray();
        float[] var = bn.runningVar().toFloatArray();
        float[] convBias = conv.bias() == null ? null : conv.bias().toFloatArray();
        float[] bias = new float[out];
        for (int o = 0; o < out; o++) {
            double scale = gamma[o] / Math.sqrt((double) var[o] + bn.eps());
            for (int i = 0; i < per; i++) {
                w[o * per + i] = (float) (w[o * per + i] * scale);
            }
            double b0 = convBias == null ? 0 : convBias[o];
            bias[o] = (float) (beta[o] + (b0 - mean[o]) * scale);
        }
        var g = conv.geometry();
        return new Conv(w, bias, out, sh[1], sh[2], g.strideH(), g.padH());
    }
}
