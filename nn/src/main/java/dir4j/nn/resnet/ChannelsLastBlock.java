package dir4j.nn.resnet;

import dir4j.engine.Tensor;

/** A residual block that also runs on channels-last activations (ResNet's channels-last mode). */
interface ChannelsLastBlock {
    /** The block's forward on x [N, H, W, C], giving [N, H', W', C'] channels-last. */
    Tensor forwardChannelsLast(Tensor x);
}
