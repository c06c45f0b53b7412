package dir4j.retrieval.net;

import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.nn.Module;
import dir4j.nn.layers.AveragePooling;
import dir4j.nn.layers.GeneralizedMeanPooling;
import dir4j.nn.layers.Linear;
import dir4j.nn.layers.MaxPooling;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetDeviceInference;
import dir4j.nn.resnet.ResNetInference;
import java.util.Random;

/**
 * The AP-GeM retrieval network (the reference's ResNet_RMAC without ROI pooling): a ResNet
 * backbone, global pooling (GeM with learnable p, or max, or average), optional L2
 * normalisation of the pooled features, a fully connected projection, and L2 normalisation: an
 * image becomes a unit descriptor compared by dot product. Parameter names equal the
 * reference's (`conv1.weight`, `layer3.22.bn2.running_var`, `adpool.p`, `fc.weight`), so its
 * checkpoints load unchanged.
 */
public final class RetrievalNet extends Module {
    /** ImageNet normalisation the backbones were trained with (RGB). */
    public static final float[] RGB_MEANS = {0.485f, 0.456f, 0.406f};
    public static final float[] RGB_STDS = {0.229f, 0.224f, 0.225f};

    /**
     * The reference's model options.
     *
     * @param arch         resnet18 … resnet152
     * @param outDim       descriptor size (the FC's output)
     * @param pooling      gem, max or avg
     * @param gemp         GeM's initial p
     * @param withoutFc    skip the projection (descriptor = pooled features)
     * @param normFeatures L2-normalise the pooled features before the projection
     * @param baseWidth    backbone width (64 as torchvision; smaller for tests and demos)
     * @param centerBias   the reference's {@code center_bias}: before pooling, the feature map is
     *                     multiplied by 1 + centerBias on its central part (the 4×4 map
     *                     {@code [[0,0,0,0],[0,b,b,0],[0,b,b,0],[0,0,0,0]]} plus one, resized bilinearly
     *                     with aligned corners to the feature map); 0 (the default) leaves it as it is
     */
    public record Options(String arch, int outDim, String pooling, double gemp, boolean withoutFc,
                          boolean normFeatures, int baseWidth, double centerBias) {
        public Options {
            if (!(centerBias >= 0) || Double.isInfinite(centerBias)) {
                throw new IllegalArgumentException("center_bias must be a finite number >= 0, got " + centerBias);
            }
            if (!java.util.List.of("gem", "max", "avg").contains(pooling)) {
                throw new IllegalArgumentException("pooling must be gem, max or avg, got " + pooling);
            }
            if (pooling.equals("gem") && !(gemp > 0 && Double.isFinite(gemp))) {
                throw new IllegalArgumentException("GeM's p must be a finite number > 0, got " + gemp);
            }
        }

        /** Options without a center bias. */
        public Options(String arch, int outDim, String pooling, double gemp, boolean withoutFc, boolean normFeatures,
                       int baseWidth) {
            this(arch, outDim, pooling, gemp, withoutFc, normFeatures, baseWidth, 0);
        }

        /** Resnet-101-AP-GeM as published: 2048-d, GeM p = 3. */
        public static Options apGem(String arch) {
            return new Options(arch, 2048, "gem", 3, false, false, 64);
        }
    }

    /**
     * The system property that sets {@link #channelsLast(boolean)} for every network built
     * (default false).
     */
    public static final String CHANNELS_LAST_PROPERTY = "dir4j.channelsLast";

    private final Options options;
    private final ResNet backbone;
    private final Module pool;
    private final Linear fc;
    private volatile boolean closed;
    /** Held shared by every forward and describe, exclusively by {@link #close}: a close waits for them. */
    private final java.util.concurrent.locks.ReentrantReadWriteLock use =
            new java.util.concurrent.locks.ReentrantReadWriteLock();

    /**
     * The network of these options, initialised from {@code rng} (torchvision's rules for the
     * backbone, PyTorch's default for the projection); a null {@code rng} leaves the weights zero,
     * for a network whose every parameter is then loaded, as {@link NetworkCheckpoint#load} does.
     */
    public RetrievalNet(Options options, Random rng) {
        this.options = options;
        this.backbone = new ResNet(ResNet.Depth.parse(options.arch()), options.baseWidth(), 0, rng);
        backbone.channelsLast(Boolean.getBoolean(CHANNELS_LAST_PROPERTY));
        adopt(backbone);
        int c = backbone.featureChannels();
        pool = child("adpool", switch (options.pooling()) {
            case "gem" -> new GeneralizedMeanPooling(options.gemp(), 1e-6);
            case "max" -> new MaxPooling();
            case "avg" -> new AveragePooling();
            default -> throw new IllegalArgumentException("pooling must be gem, max or avg, got " + options.pooling());
        });
        fc = child("fc", new Linear(rng, c, options.outDim(), true));
    }

    public Options options() {
        return options;
    }

    /** The descriptor size. */
    public int dimension() {
        return options.withoutFc() ? backbone.featureChannels() : options.outDim();
    }

    /**
     * Runs the backbone's differentiable forward channels-last ({@link ResNet#channelsLast}):
     * the same parameters, results and gradients to float rounding; on CUDA cuDNN's tensor-core
     * kernels are much faster on that layout. Default: {@code -Ddir4j.channelsLast}, else off.
     * The compiled inference ({@link #inference()}) is channels-last either way.
     */
    public RetrievalNet channelsLast(boolean on) {
        backbone.channelsLast(on);
        return this;
    }

    /** Whether the backbone's forward runs channels-last. */
    public boolean channelsLast() {
        return backbone.channelsLast();
    }

    /** The backbone's last feature map for a normalised image batch [N, 3, H, W]. */
    public Tensor features(Tensor images) {
        use.readLock().lock();
        try {
            requireOpen();
            return backbone.features(images);
        } finally {
            use.readLock().unlock();
        }
    }

    /** Unit descriptors [N, dimension()] of a normalised image batch [N, 3, H, W]. */
    @Override
    public Tensor forward(Tensor images) {
        use.readLock().lock();
        try {
            return head(features(images));
        } finally {
            use.readLock().unlock();
        }
    }

    /**
     * What inference should run: the forward with the backbone compiled for inference, its batch
     * norms folded into the convolutions (the same descriptors to float rounding). On the CPU,
     * {@link ResNetInference} (channels-last direct convolutions, 1.4-1.7x faster than the module
     * at batch 1, bench/RESULTS.md); on a GPU, {@link ResNetDeviceInference} (cuDNN channels-last
     * convolutions with the bias, residual and ReLU fused; bench/gpu/steps/30-resnet.sh times it).
     * The compiled backbone is a snapshot of the weights as they are now: take a new one after
     * changing them, and close it (it holds device memory on a GPU). With a batch norm normalising
     * by batch statistics (training mode, not frozen), or with
     * {@code -Ddir4j.compiledInference=false}, it is this module's forward. Eval mode compiles, and
     * so does training mode with frozen batch norms (the default recipe): nothing else in the
     * network depends on the mode.
     */
    public Inference inference() {
        use.readLock().lock();
        try {
            return compile();
        } finally {
            use.readLock().unlock();
        }
    }

    private Inference compile() {
        requireOpen();
        boolean compile = runningStatistics() && !"false".equals(System.getProperty("dir4j.compiledInference"))
                && ResNetInference.unsupported(backbone).isEmpty();
        if (!compile) {
            return new Inference(this, null, null);
        }
        if (device().equals(dir4j.engine.Device.CPU)) {
            return new Inference(this, ResNetInference.of(backbone), null);
        }
        ResNetDeviceInference plan;
        try {
            plan = ResNetDeviceInference.of(backbone);
        } catch (RuntimeException e) {
            Inference.fallBack("could not be compiled", e);
            return new Inference(this, null, null);
        }
        return new Inference(this, null, plan);
    }

    /**
     * Frees the weights; the network cannot be used afterwards. Forwards and describes in progress
     * on other threads (a service closing the network it serves with) finish first, with their
     * results; calls made after the close are refused. Idempotent. Calling it from inside a forward
     * of this network (on its thread) is an error, since it would wait for itself.
     */
    @Override
    public void close() {
        if (use.getReadHoldCount() > 0) {
            throw new IllegalStateException("close() called inside a forward of this network on the same thread");
        }
        use.writeLock().lock();
        try {
            closed = true;
            super.close();
        } finally {
            use.writeLock().unlock();
        }
    }

    /** Threads in a forward or describe now (for tests of {@link #close}). */
    int inUse() {
        return use.getReadLockCount();
    }

    /**
     * Named here, since a freed weight would otherwise surface as an unrelated scope error
     * ("keep it with MemoryScope.keep").
     */
    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the network was closed: its weights are freed; load or create it "
                    + "again to describe images");
        }
    }

    /** True when every batch norm normalises by its running statistics (eval mode, or frozen). */
    private boolean runningStatistics() {
        for (Module m : modules()) {
            if (m instanceof dir4j.nn.layers.BatchNorm2d bn && bn.usesBatchStatistics()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Descriptors for inference; see {@link RetrievalNet#inference()}. Close it when done: a GPU
     * plan holds the folded weights and its activation buffers in device memory.
     */
    public static final class Inference implements AutoCloseable {
        private final RetrievalNet net;
        private final ResNetInference cpu;
        /** The GPU plan; null once it failed (then kept in {@link #failed} until {@link #close}). */
        private volatile ResNetDeviceInference device;
        private ResNetDeviceInference failed;

        private Inference(RetrievalNet net, ResNetInference cpu, ResNetDeviceInference device) {
            this.net = net;
            this.cpu = cpu;
            this.device = device;
        }

        /** True when the backbone runs compiled. */
        public boolean compiled() {
            return cpu != null || device != null;
        }

        /**
         * Turns on or off the GPU plan's replay of recorded forwards (CUDA graphs, see
         * {@link ResNetDeviceInference#graphs}; default {@code -Ddir4j.cuda.graphs}); nothing on the
         * CPU. Returns this.
         */
        public Inference graphs(boolean on) {
            ResNetDeviceInference plan = device;
            if (plan != null) {
                plan.graphs(on);
            }
            return this;
        }

        /** Whether the last batch replayed a recorded forward. */
        public boolean replaying() {
            ResNetDeviceInference plan = device;
            return plan != null && plan.replaying();
        }

        /**
         * Unit descriptors [N, dimension()] of a normalised image batch [N, 3, H, W] on the net's
         * device. Should the GPU plan fail in the GPU libraries (a cuDNN configuration it refuses,
         * say), this inference says so once on stderr and runs the module from then on
         * ({@link #compiled()} turns false); bad input is an error either way.
         */
        public Tensor describe(Tensor images) {
            net.use.readLock().lock();
            try {
                return describeOpen(images);
            } finally {
                net.use.readLock().unlock();
            }
        }

        private Tensor describeOpen(Tensor images) {
            net.requireOpen();
            ResNetDeviceInference plan = device; // once: another thread's failure may retire it
            if (cpu == null && plan == null) {
                return net.forward(images);
            }
            Tensor f;
            if (cpu != null) {
                f = cpu.features(images);
            } else {
                try {
                    f = plan.features(images);
                } catch (IllegalArgumentException e) {
                    throw e;
                } catch (RuntimeException e) {
                    retire(plan, e);
                    return net.forward(images);
                }
            }
            Tensor d = net.head(f);
            if (!dir4j.engine.autograd.Autograd.isGradEnabled()) {
                f.close();
            }
            return d;
        }

        /**
         * The plan failed: later describes run the module. It is freed by {@link #close}, not here,
         * since describes on other threads may still be in it.
         */
        private synchronized void retire(ResNetDeviceInference plan, RuntimeException e) {
            if (device == plan) {
                fallBack("failed", e);
                failed = plan;
                device = null;
            }
        }

        /**
         * Frees a GPU plan's device memory (nothing to free otherwise), once the describes in
         * progress on other threads are done. Idempotent.
         */
        @Override
        public void close() {
            if (net.use.getReadHoldCount() > 0) {
                throw new IllegalStateException("Inference.close() called inside a describe on the same thread");
            }
            net.use.writeLock().lock();
            try {
                synchronized (this) {
                    for (ResNetDeviceInference plan : new ResNetDeviceInference[] {device, failed}) {
                        if (plan != null) {
                            plan.close();
                        }
                    }
                    device = null;
                    failed = null;
                }
            } finally {
                net.use.writeLock().unlock();
            }
        }

        private static void fallBack(String what, RuntimeException e) {
            System.err.println("dir4j: the compiled GPU backbone " + what + " (" + e + "); running the plain module "
                    + "instead (-Ddir4j.compiledInference=false skips the attempt)");
        }
    }

    /** Pooling, projection and normalisation of a feature map. */
    private Tensor head(Tensor featureMap) {
        if (options.centerBias() > 0) {
            int[] shape = featureMap.shape();
            Tensor bias = Tensor.of(centerBiasMap(options.centerBias(), shape[2], shape[3]), 1, 1, shape[2], shape[3])
                    .to(featureMap.dtype()).to(featureMap.device());
            featureMap = featureMap.mul(bias);
        }
        Tensor x = pool.forward(featureMap);
        if (options.normFeatures()) {
            x = NnOps.l2Normalize(x, 1, 1e-12);
        }
        if (!options.withoutFc()) {
            x = fc.forward(x);
        }
        return NnOps.l2Normalize(x, 1, 1e-12);
    }

    /**
     * The reference's center-bias map for an h×w feature map, row-major: 1 + b·c(y)·c(x), where c is
     * the 4-point profile [0, 1, 1, 0] resized to the map's side by linear interpolation with aligned
     * corners (point i of n at 3i/(n−1); a side of 1 takes point 0). That is the reference's
     * {@code 1 + [[0,0,0,0],[0,b,b,0],[0,b,b,0],[0,0,0,0]]} resized by
     * {@code F.interpolate(mode='bilinear', align_corners=True)}, which is separable and keeps the 1.
     */
    static float[] centerBiasMap(double b, int h, int w) {
        double[] cy = centerProfile(h);
        double[] cx = centerProfile(w);
        float[] out = new float[h * w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                out[y * w + x] = (float) (1 + b * cy[y] * cx[x]);
            }
        }
        return out;
    }

    private static double[] centerProfile(int n) {
        double[] c = {0, 1, 1, 0};
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double src = n == 1 ? 0 : 3.0 * i / (n - 1);
            int i0 = Math.min((int) src, 2);
            double f = src - i0;
            out[i] = c[i0] * (1 - f) + c[i0 + 1] * f;
        }
        return out;
    }
}
