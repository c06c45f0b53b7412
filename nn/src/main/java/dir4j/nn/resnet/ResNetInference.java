package dir4j.nn.resnet;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.NhwcConv;
import dir4j.engine.cpu.NhwcConv.Activation;
import dir4j.engine.cpu.NhwcConv.Weights;
import dir4j.engine.cpu.WinogradConv;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A ResNet's feature extractor compiled for inference on the CPU: every batch norm folded into its
 * convolution (w·γ/√(σ²+ε), β − μ·γ/√(σ²+ε), with the running statistics; {@link FoldedResNet},
 * shared with the GPU's {@link ResNetDeviceInference}), activations kept
 * channels-last, and each convolution a direct {@link NhwcConv} kernel (the stride-1 3×3s by
 * {@link WinogradConv}'s F(2×2, 3×3) where it pays, an RGB stem by
 * {@link NhwcConv#forwardFewChannels} on the padded image) with the bias, the residual add and the ReLU
 * fused into its store. Nothing is packed or normalised per call: at batch 1 the
 * im2col + SGEMM path of the module spends about as long packing operands as multiplying.
 *
 * <p>A <em>snapshot</em>: the weights and running statistics are copied when the plan is built, so
 * later changes to the module (an optimiser step, loading a state dict) do not reach it; build a
 * new plan after them. It always uses the running statistics, as the module does in eval mode.
 * Outputs match {@link ResNet#features} in eval mode to float rounding (the fold, Winograd's
 * transforms and the summation order differ; ResNetInferenceTest bounds it).
 *
 * <p>Supported: float32 weights and square, undilated convolutions (any ResNet this package builds).
 * Output channels are best a multiple of {@link NhwcConv#NR} (64 with AVX-512; torchvision's widths
 * all are); others are padded to it. {@link #unsupported} says why a network is not supported.
 */
public final class ResNetInference {
    /** Largest patch band of the stem, in floats (16 MiB). */
    private static final long STEM_BAND_FLOATS = 1L << 22;
    /**
     * Most input pixels run together: a batch goes through the network in groups of images whose
     * pixels add up to at most this (four at 224², one from 448² up), so that each convolution's
     * weights serve several images and its tiles fill both cores; the working memory stays what one
     * 448×448 image takes. {@code -Ddir4j.cpu.groupPixels}; 1 runs the images one at a time.
     * Grouping changes no value: every tile's sums are the same.
     */
    public static final int GROUP_PIXELS = Integer.getInteger("dir4j.cpu.groupPixels", 4 * 224 * 224);
    private final Weights stem;
    private final int stemKernel;
    private final int stemStride;
    private final int stemPad;
    private final int stemIn;
    private final List<Block> blocks;
    private final int featureChannels;

    /**
     * One packed convolution: a stride-1 3×3 with enough input channels as {@link WinogradConv}'s
     * transformed weights (where it pays, see {@link WinogradConv#pays}), any other for {@link NhwcConv}.
     */
    private record Conv(Weights direct, WinogradConv.Weights winograd, int kernel, int stride, int pad, int out) {
        static Conv of(FoldedResNet.Conv c) {
            if (c == null) {
                return null;
            }
            if (c.kernel() == 3 && c.stride() == 1 && WinogradConv.pays(c.in())) {
                return new Conv(null, WinogradConv.Weights.pack(c.weight(), c.bias(), c.out(), c.in(), c.pad()), 3, 1,
                        c.pad(), c.out());
            }
            return new Conv(Weights.pack(c.weight(), c.bias(), c.out(), c.in(), c.kernel(), c.stride(), c.pad()), null,
                    c.kernel(), c.stride(), c.pad(), c.out());
        }

        int outSize(int size) {
            return (size + 2 * pad - kernel) / stride + 1;
        }

        int outChannels() {
            return out;
        }

        void forward(Activation x, Activation y, Activation residual, boolean relu) {
            if (winograd != null) {
                WinogradConv.forward(x, winograd, y, residual, relu);
            } else {
                NhwcConv.forward(x, direct, y, residual, relu);
            }
        }
    }

    /** One residual block: conv3 is null for a BasicBlock, down null without a projection shortcut. */
    private record Block(Conv conv1, Conv conv2, Conv conv3, Conv down) {
        /** Padding the block's input must carry: its first convolution's. */
        int inputPad() {
            return conv1.pad();
        }
    }

    private ResNetInference(Weights stem, int stemKernel, int stemStride, int stemPad, int stemIn, List<Block> blocks,
            int featureChannels) {
        this.stem = stem;
        this.stemKernel = stemKernel;
        this.stemStride = stemStride;
        this.stemPad = stemPad;
        this.stemIn = stemIn;
        this.blocks = blocks;
        this.featureChannels = featureChannels;
    }

    /** Why {@link #of} would refuse this network, or empty when it can compile it. */
    public static Optional<String> unsupported(ResNet net) {
        return FoldedResNet.unsupported(net);
    }

    /**
     * Compiles the network as it is now (a snapshot, see the class comment).
     *
     * @throws IllegalArgumentException with {@link #unsupported}'s reason when it cannot
     */
    public static ResNetInference of(ResNet net) {
        FoldedResNet f = FoldedResNet.of(net, "channels-last inference");
        FoldedResNet.Conv c1 = f.stem;
        // A stem on few channels (RGB) runs on the few-channel kernel straight from the padded image
        // (packed as the k x k convolution it is: image() tells the two apart by the kernel); any
        // other, a 1x1 stem included, as a 1x1 convolution over its patches (in * k * k "channels").
        Weights stem = c1.kernel() > 1 && NhwcConv.fewChannels(c1.in(), c1.kernel())
                ? Weights.pack(c1.weight(), c1.bias(), c1.out(), c1.in(), c1.kernel(), c1.stride(), c1.pad())
                : Weights.pack(c1.weight(), c1.bias(), c1.out(), c1.in() * c1.kernel() * c1.kernel(), 1, 1, 0);
        List<Block> blocks = new ArrayList<>();
        for (FoldedResNet.Block b : f.blocks) {
            blocks.add(new Block(Conv.of(b.conv1()), Conv.of(b.conv2()), Conv.of(b.conv3()), Conv.of(b.down())));
        }
        return new ResNetInference(stem, c1.kernel(), c1.stride(), c1.pad(), c1.in(), List.copyOf(blocks),
                f.featureChannels);
    }

    /** Channels of the feature map. */
    public int featureChannels() {
        return featureChannels;
    }

    /**
     * The last feature map [N, C, H/32, W/32] of a float32 CPU batch [N, 3, H, W], as
     * {@link ResNet#features} gives in eval mode. Images run in groups of up to {@link #GROUP_PIXELS}
     * input pixels (all threads on each group), which bounds the working memory. Records no graph.
     */
    public Tensor features(Tensor x) {
        return features(x, GROUP_PIXELS);
    }

    /**
     * {@link #features(Tensor)} with images run in groups of at most {@code groupPixels} input
     * pixels (at least one image a group): the working memory grows with it, and the values do not
     * change (1 runs the images one at a time).
     *
     * @throws IllegalArgumentException if groupPixels is not positive, or as {@link #features(Tensor)}
     */
    public Tensor features(Tensor x, int groupPixels) {
        if (groupPixels <= 0) {
            throw new IllegalArgumentException("groupPixels must be positive, got " + groupPixels);
        }
        if (x.rank() != 4 || x.shape(1) != stemIn) {
            throw new IllegalArgumentException("expected a batch [N, " + stemIn + ", H, W], got "
                    + java.util.Arrays.toString(x.shape()));
        }
        if (x.dtype() != DType.FLOAT32 || x.device() != Device.CPU) {
            throw new IllegalArgumentException("channels-last inference runs float32 on the CPU; got " + x.dtype()
                    + " on " + x.device());
        }
        int n = x.shape(0);
        int h = x.shape(2);
        int w = x.shape(3);
        if (n == 0) {
            return Tensor.empty(DType.FLOAT32, Device.CPU, 0, featureChannels, outputSize(h), outputSize(w));
        }
        synchronized (pool) {
            long size = (long) h << 32 | w;
            if (size != poolSize) {
                pool.clear();
                poolSize = size;
            }
        }
        Tensor xc = x.isContiguous() ? x : x.contiguous();
        try {
            Tensor out = null;
            long imageFloats = (long) stemIn * h * w;
            // groups of near-equal size (5 images at most 4 a group: 3 + 2, not 4 + 1); a stem run
            // over patch bands takes one image at a time
            int most = stem.kernel() > 1 ? (int) Math.max(1, Math.min(n, groupPixels / ((long) h * w))) : 1;
            int groups = (n + most - 1) / most;
            for (int i = 0, g = 0; g < groups; g++) {
                int m = (n - i + (groups - g) - 1) / (groups - g);
                Activation f = image(xc, xc.offset() + i * imageFloats, m, h, w);
                if (out == null) {
                    out = Tensor.empty(DType.FLOAT32, Device.CPU, n, f.channels(), f.height(), f.width());
                }
                NhwcConv.toNchw(f, out.segment(), out.offset() + (long) i * f.channels() * f.height() * f.width());
                give(f);
                i += m;
            }
            return out;
        } finally {
            if (xc != x) {
                xc.close();
            }
        }
    }

    /** A group's activation geometry: the key of the buffer pool. */
    private record Geometry(int batch, int height, int width, int channels, int pad, boolean shared, int phases) {}

    /**
     * Activation buffers of finished forwards, by geometry, softly held (the collector may take
     * them back): a forward at 224x224 allocates ~80 MB of activations, whose zeroing by the
     * allocating thread and whose humongous-object churn cost more than the copies they hold.
     * Reuse is safe per geometry: a producer overwrites every interior value and never writes the
     * zero ring (the next convolution's padding). Only the buffers of the last image size are kept
     * (extraction groups images by size): a dataset of many sizes must not fill the heap with them.
     */
    private final java.util.Map<Geometry, java.util.ArrayDeque<java.lang.ref.SoftReference<float[]>>> pool =
            new java.util.HashMap<>();
    /** Input height and width whose buffers the pool holds. */
    private long poolSize = -1;

    /**
     * Activation buffers the plan holds for its next forwards (a diagnostic: it stays the same from
     * one forward to the next at one input size).
     */
    public int pooledBuffers() {
        synchronized (pool) {
            return pool.values().stream().mapToInt(java.util.ArrayDeque::size).sum();
        }
    }

    private Activation take(int n, int h, int w, int c, int pad) {
        return take(n, h, w, c, pad, false, 1);
    }

    private Activation take(int n, int h, int w, int c, int pad, boolean shared, int phases) {
        Geometry g = new Geometry(n, h, w, c, pad, shared, phases);
        synchronized (pool) {
            java.util.ArrayDeque<java.lang.ref.SoftReference<float[]>> free = pool.get(g);
            while (free != null && !free.isEmpty()) {
                float[] data = free.pop().get();
                if (data != null) {
                    return new Activation(data, n, h, w, c, pad, shared, phases);
                }
            }
        }
        return Activation.allocate(n, h, w, c, pad, shared, phases);
    }

    private void give(Activation a) {
        Geometry g = new Geometry(a.batch(), a.height(), a.width(), a.channels(), a.pad(), a.sharedColumns(),
                a.phaseStride());
        synchronized (pool) {
            pool.computeIfAbsent(g, k -> new java.util.ArrayDeque<>()).push(new java.lang.ref.SoftReference<>(a.data()));
        }
    }

    /**
     * One operation's times from {@link #profile}: block {@code block} (counted from 0 over all
     * layers) and its {@code conv} ("conv1", "conv2", "conv3" or "downsample"), or block -1 and
     * "stem" (the first convolution, with the image's layout change) or "maxpool"; its shape (input
     * channels and size), whether it ran as {@link WinogradConv}, the mean milliseconds of its call
     * inside the forwards, and {@code hotMillis}: the same call repeated at once, so with its weights
     * and activations in cache.
     */
    public record ConvTiming(int block, String conv, int inChannels, int outChannels, int kernel, int stride,
                             int height, int width, boolean winograd, double inNetworkMillis, double hotMillis) {
        /**
         * The shape as {@code cin->cout kKsS HxW}, with " winograd" where it ran so; the max pool as
         * {@code maxpool C kKsS HxW}.
         */
        public String shape() {
            String size = " k" + kernel + "s" + stride + " " + height + "x" + width;
            return conv.equals("maxpool") ? "maxpool " + inChannels + size
                    : inChannels + "->" + outChannels + size + (winograd ? " winograd" : "");
        }
    }

    /** Calls run by one profiled forward: their sums, and whether to repeat each call hot. */
    private static final class Profile {
        final java.util.LinkedHashMap<String, double[]> sums = new java.util.LinkedHashMap<>();
        final java.util.Map<String, ConvTiming> shapes = new java.util.HashMap<>();
        boolean hot;

        /** Runs op, adding its time to what's sums (or, hot, the time of 5 repeats after 2). */
        void time(ConvTiming what, Runnable op) {
            long t0 = System.nanoTime();
            op.run();
            long t = System.nanoTime() - t0;
            String key = what.block() + "." + what.conv();
            double[] sum = sums.computeIfAbsent(key, k -> new double[4]);
            shapes.putIfAbsent(key, what);
            if (hot) {
                // the op writes its output again: with the same values, or, where the output is the
                // residual itself (a block's last convolution), with the sum added once more
                for (int i = 0; i < 2; i++) {
                    op.run();
                }
                t0 = System.nanoTime();
                for (int i = 0; i < 5; i++) {
                    op.run();
                }
                sum[2] += System.nanoTime() - t0;
                sum[3] += 5;
            } else {
                sum[0] += t;
                sum[1]++;
            }
        }
    }

    /** Non-null while {@link #profile} runs. */
    private Profile profile;

    /**
     * Where a forward's time goes, operation by operation (the stem, the max pool and every block
     * convolution; not the final layout change): runs
     * {@code reps} forwards of {@link #features(Tensor)} timing each operation's call, then one
     * more in which each call is repeated at once (2 untimed, 5 timed) for its hot time. The gap
     * between the two is what the convolution loses to fetching its weights and input from beyond
     * the caches. The results are in network order. Warm the JIT first (a few forwards): the first
     * calls run interpreted. Not for concurrent use with other calls on this instance. (A block's
     * last convolution writes over its residual; repeated hot, it adds to it again, so the values of
     * that last forward, which profile throws away, are not the network's.)
     * bench: {@code CompiledConvProfile} puts these beside ONNX Runtime's per-node times.
     *
     * @throws IllegalArgumentException if reps is not positive, or as {@link #features(Tensor)}
     */
    public synchronized List<ConvTiming> profile(Tensor x, int reps) {
        if (reps <= 0) {
            throw new IllegalArgumentException("reps must be positive, got " + reps);
        }
        Profile p = new Profile();
        profile = p;
        try {
            for (int i = 0; i < reps; i++) {
                features(x).close();
            }
            p.hot = true;
            features(x).close();
        } finally {
            profile = null;
        }
        List<ConvTiming> out = new ArrayList<>();
        for (var e : p.sums.entrySet()) {
            double[] v = e.getValue();
            ConvTiming t = p.shapes.get(e.getKey());
            out.add(new ConvTiming(t.block(), t.conv(), t.inChannels(), t.outChannels(), t.kernel(), t.stride(),
                    t.height(), t.width(), t.winograd(), v[0] / 1e6 / v[1], v[2] / 1e6 / v[3]));
        }
        return out;
    }

    /** One convolution of block {@code index}, timed while {@link #profile} runs. */
    private void run(int index, String name, Conv c, Activation x, Activation y, Activation residual, boolean relu) {
        Profile p = profile;
        if (p == null) {
            c.forward(x, y, residual, relu);
            return;
        }
        p.time(new ConvTiming(index, name, x.channels(), c.outChannels(), c.kernel(), c.stride(), x.height(),
                x.width(), c.winograd() != null, 0, 0), () -> c.forward(x, y, residual, relu));
    }

    /** {@code op}, timed as {@code what} while {@link #profile} runs. */
    private void run(ConvTiming what, Runnable op) {
        Profile p = profile;
        if (p == null) {
            op.run();
        } else {
            p.time(what, op);
        }
    }

    /** The feature map's side for an input side of {@code size} pixels. */
    private int outputSize(int size) {
        int s = (size + 2 * stemPad - stemKernel) / stemStride + 1;
        s = (s + 2 - 3) / 2 + 1;
        for (Block b : blocks) {
            s = b.conv1().outSize(s);
            s = b.conv2().outSize(s);
            if (b.conv3() != null) {
                s = b.conv3().outSize(s);
            }
        }
        return s;
    }

    /** The last feature map of n images (n = 1 unless the stem is the few-channel kernel). */
    private Activation image(Tensor x, long offset, int n, int h, int w) {
        int oh = (h + 2 * stemPad - stemKernel) / stemStride + 1;
        int ow = (w + 2 * stemPad - stemKernel) / stemStride + 1;
        Activation stemOut = take(n, oh, ow, stem.outChannels(), 0);
        run(new ConvTiming(-1, "stem", stemIn, stem.outChannels(), stemKernel, stemStride, h, w, false, 0, 0),
                () -> stem(x, offset, n, h, w, oh, ow, stemOut));
        Activation y = take(n, (oh + 2 - 3) / 2 + 1, (ow + 2 - 3) / 2 + 1, stem.outChannels(),
                blocks.get(0).inputPad());
        run(new ConvTiming(-1, "maxpool", stem.outChannels(), stem.outChannels(), 3, 2, oh, ow, false, 0, 0),
                () -> NhwcConv.maxPool(stemOut, 3, 2, 1, y));
        give(stemOut);
        Activation a = y;
        for (int b = 0; b < blocks.size(); b++) {
            int nextPad = b + 1 < blocks.size() ? blocks.get(b + 1).inputPad() : 0;
            Activation next = block(b, a, nextPad);
            if (next.data() != a.data()) {
                give(a);
            }
            a = next;
        }
        return a;
    }

    /** The stem convolution (with its ReLU) of n images at x's offset into stemOut. */
    private void stem(Tensor x, long offset, int n, int h, int w, int oh, int ow, Activation stemOut) {
        if (stem.kernel() > 1) {
            // few input channels: the few-channel kernel on the padded image itself, no patches
            Activation in = take(n, h, w, stemIn, stemPad);
            NhwcConv.fromNchwInto(x.segment(), offset, in);
            NhwcConv.forwardFewChannels(in, stem, stemOut, null, true);
            give(in);
        } else {
            // over bands of output rows: a band's patches take at most STEM_BAND_FLOATS
            int band = (int) Math.max(1, Math.min(oh, STEM_BAND_FLOATS / ((long) ow * stem.inChannels())));
            for (int r0 = 0; r0 < oh; r0 += band) {
                int rows = Math.min(band, oh - r0);
                Activation patches = take(1, rows, ow, stem.inChannels(), 0);
                NhwcConv.patchesFromNchw(x.segment(), offset, 1, stemIn, h, w, stemKernel, stemStride, stemPad, r0,
                        patches);
                if (rows == oh) {
                    // one band: straight into the stem's output
                    NhwcConv.forward(patches, stem, stemOut, null, true);
                } else {
                    Activation part = take(1, rows, ow, stem.outChannels(), 0);
                    NhwcConv.forward(patches, stem, part, null, true);
                    System.arraycopy(part.data(), 0, stemOut.data(), stemOut.index(0, r0, 0),
                            rows * ow * stem.outChannels());
                    give(part);
                }
                give(patches);
            }
        }
    }

    private Activation block(int index, Activation x, int outPad) {
        Block b = blocks.get(index);
        Conv last = b.conv3() == null ? b.conv2() : b.conv3();
        Conv first = b.conv1();
        int h1 = first.outSize(x.height());
        int w1 = first.outSize(x.width());
        int n = x.batch();
        // conv2 alone reads a1: with stride 1 it takes the layout with shared padding columns; with a
        // larger stride, written by a direct convolution, a1 is stored split into conv2's stride
        // phases (the store places each pixel), so that conv2 need not split it (a pass over it)
        int st = b.conv2().stride();
        Activation a1 = take(n, h1, w1, first.outChannels(), b.conv2().pad(), st == 1,
                st > 1 && first.winograd() == null ? st : 1);
        run(index, "conv1", first, x, a1, null, true);
        Activation a2 = a1;
        if (b.conv3() != null) {
            a2 = take(n, b.conv2().outSize(h1), b.conv2().outSize(w1), b.conv2().outChannels(), last.pad());
            run(index, "conv2", b.conv2(), a1, a2, null, true);
        }
        int oh = last.outSize(a2.height());
        int ow = last.outSize(a2.width());
        Activation identity = x;
        if (b.down() != null) {
            identity = take(n, oh, ow, b.down().outChannels(), 0);
            run(index, "downsample", b.down(), x, identity, null, false);
        }
        // The last convolution writes over its residual (which has the output's shape) where the
        // two have one layout: the store reads each residual value and writes its sum to the same
        // float, so the output's lines are not fetched from memory a second time to be written (the
        // block input is not read after).
        Activation out = identity.pad() == outPad && !identity.sharedColumns() && identity.phaseStride() == 1
                ? identity : take(n, oh, ow, last.outChannels(), outPad);
        run(index, b.conv3() == null ? "conv2" : "conv3", last, a2, out, identity, true);
        give(a1);
        if (a2 != a1) {
            give(a2);
        }
        if (identity != x && identity != out) {
            give(identity);
        }
        return out;
    }
}
