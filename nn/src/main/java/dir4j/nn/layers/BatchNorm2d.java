package dir4j.nn.layers;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;

/**
 * Batch normalisation over (N, H, W): parameters `weight`, `bias`; buffers `running_mean`,
 * `running_var`, `num_batches_tracked` (PyTorch's names). In training mode batch statistics
 * normalise and the running ones update with {@code momentum}; in eval mode, or when
 * {@link #freeze frozen} (the AP-GeM recipe trains with frozen statistics), the running ones
 * normalise and nothing updates.
 */
public final class BatchNorm2d extends Module {
    private final double eps;
    private final double momentum;
    private boolean frozen;

    /** PyTorch's defaults: eps 1e-5, momentum 0.1, weight 1, bias 0. */
    public BatchNorm2d(int channels) {
        this(channels, 1e-5, 0.1);
    }

    public BatchNorm2d(int channels, double eps, double momentum) {
        parameter("weight", Tensor.ones(channels));
        parameter("bias", Tensor.zeros(channels));
        buffer("running_mean", Tensor.zeros(channels));
        buffer("running_var", Tensor.ones(channels));
        hostBuffer("num_batches_tracked", Tensor.zeros(DType.INT32, Device.CPU));
        this.eps = eps;
        this.momentum = momentum;
    }

    /** Frozen statistics: normalise with the running ones even in training mode. */
    public BatchNorm2d freeze(boolean on) {
        frozen = on;
        return this;
    }

    public boolean frozen() {
        return frozen;
    }

    /** True when a forward normalises by the batch's statistics (training mode, not frozen). */
    public boolean usesBatchStatistics() {
        return isTraining() && !frozen;
    }

    /** The ε added to the variance. */
    public double eps() {
        return eps;
    }

    public Tensor weight() {
        return member("weight");
    }

    public Tensor bias() {
        return member("bias");
    }

    public Tensor runningMean() {
        return member("running_mean");
    }

    public Tensor runningVar() {
        return member("running_var");
    }

    @Override
    public Tensor forward(Tensor x) {
        boolean batchStats = usesBatchStatistics();
        if (batchStats) {
            countBatch();
        }
        return NnOps.batchNorm2d(x, weight(), bias(), runningMean(), runningVar(), batchStats, momentum, eps);
    }

    private void countBatch() {
        Tensor batchesTracked = member("num_batches_tracked");
        double n = batchesTracked.item();
        batchesTracked.backend().fill(batchesTracked, n + 1);
    }

    /**
     * This batch norm on a channels-last x [N, H, W, C] (the same parameters, buffers and modes as
     * {@link #forward(Tensor, Tensor, boolean, boolean)}: batch statistics in training, the running
     * ones in eval mode or frozen), then the residual add (when {@code residual} is not null) and
     * the ReLU (when {@code relu}), one graph node ({@link NnOps#batchNorm2dNhwcAct}; on CUDA one
     * fused pass).
     */
    public Tensor forwardChannelsLast(Tensor x, Tensor residual, boolean relu) {
        boolean batchStats = usesBatchStatistics();
        if (batchStats) {
            countBatch();
        }
        return NnOps.batchNorm2dNhwcAct(x, weight(), bias(), runningMean(), runningVar(), batchStats, momentum, eps,
                residual, relu);
    }

    /**
     * This batch norm, then a residual add (when {@code residual} is not null) and a ReLU (when
     * {@code relu}), as a ResNet block runs them. With running statistics (eval mode, or frozen)
     * they are one fused pass ({@link NnOps#batchNorm2dInference}), over x itself when
     * {@code inPlace} and no graph is recorded (x must then be a temporary the caller owns); with
     * batch statistics, {@link NnOps#batchNorm2dAct} (one graph node, the add and ReLU fused into
     * the normalising pass, the same values as the three ops in turn). Use the returned tensor
     * either way.
     */
    public Tensor forward(Tensor x, Tensor residual, boolean relu, boolean inPlace) {
        if (usesBatchStatistics()) {
            countBatch();
            return NnOps.batchNorm2dAct(x, weight(), bias(), runningMean(), runningVar(), true, momentum, eps,
                    residual, relu);
        }
        return NnOps.batchNorm2dInference(x, weight(), bias(), runningMean(), runningVar(), eps, residual, relu, inPlace);
    }
}
