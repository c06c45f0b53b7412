package dir4j.nn.resnet;

import dir4j.engine.Tensor;
import dir4j.nn.Module;
import dir4j.nn.Sequential;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.layers.Conv2d;
import java.util.Random;

/** torchvision's Bottleneck (ResNet v1.5): 1×1, 3×3 with the stride, 1×1 ×4, expansion 4. */
public final class Bottleneck extends Module implements ChannelsLastBlock {
    static final int EXPANSION = 4;
    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Conv2d conv2;
    private final BatchNorm2d bn2;
    private final Conv2d conv3;
    private final BatchNorm2d bn3;
    private final Sequential downsample;

    Bottleneck(Random rng, int in, int planes, int stride, Sequential downsample) {
        conv1 = child("conv1", ResNet.conv(rng, in, planes, 1, 1, 0));
        bn1 = child("bn1", new BatchNorm2d(planes));
        conv2 = child("conv2", ResNet.conv(rng, planes, planes, 3, stride, 1));
        bn2 = child("bn2", new BatchNorm2d(planes));
        conv3 = child("conv3", ResNet.conv(rng, planes, planes * EXPANSION, 1, 1, 0));
        bn3 = child("bn3", new BatchNorm2d(planes * EXPANSION));
        this.downsample = downsample == null ? null : child("downsample", downsample);
    }

    /**
     * relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + identity), each batch norm fused
     * with the add and ReLUs after it and run over its convolution's output in place; without a
     * graph (no-grad mode) each intermediate is freed as soon as the next op has read it.
     */
    @Override
    public Tensor forward(Tensor x) {
        Tensor out = bn1.forward(conv1.forward(x), null, true, true);
        Tensor next = bn2.forward(conv2.forward(out), null, true, true);
        ResNet.freeIfNoGrad(out);
        out = conv3.forward(next);
        ResNet.freeIfNoGrad(next);
        Tensor identity = downsample == null ? x : ResNet.shortcut(downsample, x);
        out = bn3.forward(out, identity, true, true);
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
        Tensor c2 = conv2.forwardChannelsLast(out);
        ResNet.freeIfNoGrad(out);
        Tensor next = bn2.forwardChannelsLast(c2, null, true);
        ResNet.freeIfNoGrad(c2);
        Tensor c3 = conv3.forwardChannelsLast(next);
        ResNet.freeIfNoGrad(next);
        Tensor identity = downsample == null ? x : ResNet.shortcutChannelsLast(downsample, x);
        out = bn3.forwardChannelsLast(c3, identity, true);
        ResNet.freeIfNoGrad(c3);
        if (identity != x) {
            ResNet.freeIfNoGrad(identity);
        }
        return out;
    }
}
