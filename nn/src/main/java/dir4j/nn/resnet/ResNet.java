package dir4j.nn.resnet;

import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.Init;
import dir4j.nn.Module;
import dir4j.nn.Sequential;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.layers.Conv2d;
import dir4j.nn.layers.Linear;
import dir4j.nn.layers.MaxPool2d;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The ResNet family with torchvision's topology, parameter names and initialisation (Kaiming
 * normal, fan_out, for convolutions; batch norm 1/0): conv1 7×7/2, bn1, relu, maxpool 3×3/2,
 * layer1…layer4, then either the classifier (global average pool + fc) or, with
 * {@code numClasses == 0}, nothing: {@link #features} gives the last feature map [N, C, H/32, W/32]
 * that retrieval pools. {@code baseWidth} (64 in torchvision) shrinks every stage for tests.
 */
public final class ResNet extends Module {
    /** The depths torchvision defines. */
    public enum Depth {
        RESNET18(false, 2, 2, 2, 2), RESNET34(false, 3, 4, 6, 3), RESNET50(true, 3, 4, 6, 3),
        RESNET101(true, 3, 4, 23, 3), RESNET152(true, 3, 8, 36, 3);

        final boolean bottleneck;
        final int[] blocks;

        Depth(boolean bottleneck, int... blocks) {
            this.bottleneck = bottleneck;
            this.blocks = blocks;
        }

        /** "resnet101" → RESNET101. */
        public static Depth parse(String name) {
            try {
                return valueOf(name.trim().toUpperCase(java.util.Locale.ROOT).replace("-", ""));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("unknown ResNet '" + name
                        + "': use resnet18, resnet34, resnet50, resnet101 or resnet152");
            }
        }
    }

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final MaxPool2d maxpool;
    private final Sequential[] layers = new Sequential[4];
    private final Linear fc;
    private final int featureChannels;
    private boolean channelsLast;
    /** Channels-last mode pads the input's channels to a multiple of this (zeros). */
    static final int STEM_CHANNEL_ALIGN = 4;

    /** torchvision's ResNet of that depth without the classifier. */
    public static ResNet of(Depth depth, Random rng) {
        return new ResNet(depth, 64, 0, rng);
    }

    /**
     * A ResNet of that depth, width (torchvision's is 64) and classifier size (0: none), initialised
     * from {@code rng} as torchvision initialises it; a null {@code rng} leaves the weights zero,
     * for a network whose parameters are all loaded next (see {@link dir4j.nn.Init}).
     */
    public ResNet(Depth depth, int baseWidth, int numClasses, Random rng) {
        conv1 = child("conv1", conv(rng, 3, baseWidth, 7, 2, 3));
        bn1 = child("bn1", new BatchNorm2d(baseWidth));
        child("relu", new dir4j.nn.layers.ReLU());
        maxpool = child("maxpool", new MaxPool2d(3, 2, 1));
        int expansion = depth.bottleneck ? Bottleneck.EXPANSION : BasicBlock.EXPANSION;
        int in = baseWidth;
        for (int s = 0; s < 4; s++) {
            int planes = baseWidth << s;
            int stride = s == 0 ? 1 : 2;
            List<Module> blocks = new ArrayList<>();
            for (int b = 0; b < depth.blocks[s]; b++) {
                int st = b == 0 ? stride : 1;
                Sequential down = null;
                if (b == 0 && (st != 1 || in != planes * expansion)) {
                    down = new Sequential(conv(rng, in, planes * expansion, 1, st, 0),
                            new BatchNorm2d(planes * expansion));
                }
                blocks.add(depth.bottleneck ? new Bottleneck(rng, in, planes, st, down)
                        : new BasicBlock(rng, in, planes, st, down));
                in = planes * expansion;
            }
            layers[s] = child("layer" + (s + 1), new Sequential(blocks.toArray(Module[]::new)));
        }
        featureChannels = in;
        fc = numClasses > 0 ? child("fc", new Linear(rng, in, numClasses, true)) : null;
        if (fc == null) {
            return;
        }
        child("avgpool", new dir4j.nn.layers.AdaptiveAvgPool2d(1, 1));
    }

    /** A convolution without bias, initialised as torchvision's ResNet does (zeros for a null rng: see Init). */
    static Conv2d conv(Random rng, int in, int out, int k, int stride, int pad) {
        Conv2d c = new Conv2d(rng, in, out, k, stride, pad, 1, false);
        if (rng == null) {
            return c;
        }
        try (Tensor w = Init.kaimingNormalFanOut(rng, out, in, k, k)) {
            c.weight().backend().copy(w, c.weight());
        }
        return c;
    }

    /** Channels of the last feature map (2048 for ResNet-50/101/152 at base width 64). */
    public int featureChannels() {
        return featureChannels;
    }

    /**
     * Channels-last mode (default off): {@link #features} turns its NCHW input into a channels-last
     * [N, H, W, C] tensor once, runs the stem and every block on it with the channels-last
     * convolution, batch norm and max pooling ({@link Conv2d#forwardChannelsLast} and the like:
     * the same parameters, buffers, training/eval/frozen modes and gradients), and turns the last
     * map back to NCHW. The results are the NCHW module's up to float rounding; on CUDA cuDNN's
     * tensor-core kernels are much faster on this layout.
     *
     * <p>The k×k weights past the stem are stored channels-last while the mode is on
     * ({@link Conv2d#channelsLastWeight}, as PyTorch's {@code model.to(memory_format=channels_last)}):
     * no weight or gradient copies in a training step. Switching replaces those parameter
     * tensors (same names, shapes and values), so make optimisers after it, as after {@link #to}.
     */
    public ResNet channelsLast(boolean on) {
        channelsLast = on;
        for (Module m : modules()) {
            if (m instanceof Conv2d c && c != conv1) {
                c.channelsLastWeight(on);
            }
        }
        return this;
    }

    /** Whether {@link #features} runs channels-last. */
    public boolean channelsLast() {
        return channelsLast;
    }

    /**
     * The last feature map [N, C, H/32, W/32]. Without a graph (no-grad mode) each block's input is
     * freed once the next block has it, so inference holds a few activations at a time, not all.
     */
    public Tensor features(Tensor x) {
        if (channelsLast) {
            return featuresChannelsLast(x);
        }
        Tensor stem = bn1.forward(conv1.forward(x), null, true, true);
        Tensor y = maxpool.forward(stem);
        freeIfNoGrad(stem);
        for (Sequential l : layers) {
            for (int b = 0; b < l.size(); b++) {
                Tensor next = l.get(b).forward(y);
                freeIfNoGrad(y);
                y = next;
            }
        }
        return y;
    }

    /** {@link #features} in channels-last mode: one layout change in, one out. */
    private Tensor featuresChannelsLast(Tensor x) {
        if (x.rank() != 4) {
            throw new IllegalArgumentException("ResNet.features: expected x [N, C, H, W], got "
                    + java.util.Arrays.toString(x.shape()));
        }
        Tensor permuted = Ops.permute(x, 0, 2, 3, 1);
        Tensor in;
        int c = x.shape(1);
        if (c % STEM_CHANNEL_ALIGN != 0) {
            // 3 input channels padded with zeros to 4: cuDNN's channels-last tensor-core kernels
            // want a multiple of 4 (as the compiled inference's stem, ResNetDeviceInference)
            Tensor zeros = Tensor.zeros(x.dtype(), x.device(), x.shape(0), x.shape(2), x.shape(3),
                    STEM_CHANNEL_ALIGN - c % STEM_CHANNEL_ALIGN);
            in = Ops.concat(3, permuted, zeros);
            freeIfNoGrad(zeros);
        } else {
            in = Ops.contiguous(permuted);
        }
        freeIfNoGrad(permuted);
        Tensor c1 = conv1.forwardChannelsLast(in);
        freeIfNoGrad(in);
        Tensor stem = bn1.forwardChannelsLast(c1, null, true);
        freeIfNoGrad(c1);
        Tensor y = maxpool.forwardChannelsLast(stem);
        freeIfNoGrad(stem);
        for (Sequential l : layers) {
            for (int b = 0; b < l.size(); b++) {
                Tensor next = ((ChannelsLastBlock) l.get(b)).forwardChannelsLast(y);
                freeIfNoGrad(y);
                y = next;
            }
        }
        Tensor back = Ops.permute(y, 0, 3, 1, 2);
        Tensor out = Ops.contiguous(back);
        freeIfNoGrad(back);
        freeIfNoGrad(y);
        return out;
    }

    /** A block's channels-last shortcut, conv then batch norm. */
    static Tensor shortcutChannelsLast(Sequential downsample, Tensor x) {
        Tensor c = ((Conv2d) downsample.get(0)).forwardChannelsLast(x);
        Tensor y = ((BatchNorm2d) downsample.get(1)).forwardChannelsLast(c, null, false);
        freeIfNoGrad(c);
        return y;
    }

    /** A block's shortcut, conv then batch norm, the latter in place over the former's output. */
    static Tensor shortcut(Sequential downsample, Tensor x) {
        return ((BatchNorm2d) downsample.get(1)).forward(downsample.get(0).forward(x), null, false, true);
    }

    /**
     * Frees an intermediate activation that the forward no longer reads, when no graph is being
     * recorded (in grad mode the graph may hold it for the backward; the scope frees it then).
     */
    static void freeIfNoGrad(Tensor t) {
        if (!Autograd.isGradEnabled()) {
            t.close();
        }
    }

    /** Logits when built with a classifier, otherwise the feature map. */
    @Override
    public Tensor forward(Tensor x) {
        Tensor f = features(x);
        if (fc == null) {
            return f;
        }
        return fc.forward(Ops.mean(f, new int[] {2, 3}, false));
    }
}
