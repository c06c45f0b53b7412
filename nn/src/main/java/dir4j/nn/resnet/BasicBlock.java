package dir4j.nn.resnet;

import dir4j.engine.Tensor;
import dir4j.nn.Module;
import dir4j.nn.Sequential;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.layers.Conv2d;
import java.util.Random;

/** torchvision's BasicBlock: two 3×3 convolutions (stride on the first), expansion 1. */
public final class BasicBlock extends Module implements ChannelsLastBlock {
    static final int EXPANSION = 1;
    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Conv2d conv2;
    private final BatchNorm2d bn2;
    private final Sequential downsample;

    BasicBlock(Random rng, int in, int planes, int stride, Sequential downsample) {
        conv1 = child("conv1", ResNet.conv(rng, in, planes, 3, stride, 1));
        bn1 = child("bn1", new BatchNorm2d(planes));
        conv2 = child("conv2", ResNet.conv(rng, planes, planes, 3, 1, 1));
        bn2 = child("bn2", new BatchNorm2d(planes));
        this.downsample = downsample == null ? null : child("downsample", downsample);
    }

    /**
     * relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), each batch norm fused with the add and ReLU
     * after it and run over its convolution's output in place; without a graph (no-grad mode) each
     * intermediate is freed as soon as the next op has read it.
     */
    @Override
    public Tensor forward(Tensor x) {
        Tensor out = bn1.forward(conv1.forward(x), null, true, true);
        Tensor next = conv2.forward(out);
        ResNet.freeIfNoGrad(out);
        Tensor identity = downsample == null ? x : ResNet.shortcut(downsample, x);
        out = bn2.forward(next, identity, true, true);
        if (identity != x) {
            ResNet.freeIfNoGrad(identity);
        }
        return out;
    }

    /** {@link #forward} on a channels-last x [N, H, W, C] (ResNet's channels-last mode). */
    @Override
    public Tensor forwardChannelsLast(Tensor x) {
        Tensor c1 = conv1.forwardChannelsLast(x);
        Tensor out = bn1.forwardChannelsLast(c1, null, true);
        ResNet.freeIfNoGrad(c1);
        Tensor next = conv2.forwardChannelsLast(out);
        ResNet.freeIfNoGrad(out);
        Tensor identity = downsample == null ? x : ResNet.shortcutChannelsLast(downsample, x);
        out = bn2.forwardChannelsLast(next, identity, true);
        ResNet.freeIfNoGrad(next);
        if (identity != x) {
            ResNet.freeIfNoGrad(identity);
        }
        return out;
    }
}
