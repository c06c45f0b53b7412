package dir4j.nn.resnet;

import dir4j.engine.Backend;
import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.Backends;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A ResNet's feature extractor compiled for inference on its device through the backend's
 * channels-last ops: every batch norm folded into its convolution ({@link FoldedResNet}), the
 * weights stored once as filters [Co, kh, kw, Ci] on the device, activations [N, H, W, C], and
 * each convolution one {@link Backend#conv2dNhwc} call with the bias, the residual add and the
 * ReLU fused (conv1+BN+ReLU, conv2+BN+ReLU, conv3+BN+residual+ReLU, downsample conv+BN); the max
 * pool is {@link Backend#maxPool2dNhwc}. On CUDA these are cuDNN's channels-last tensor-core
 * kernels (TF32 when the backend's convolution switch allows it, as for the module), the layout
 * PyTorch's channels_last inference runs. On the CPU the backend's reference ops run it (for
 * tests; the CPU's fast plan is {@link ResNetInference}).
 *
 * <p>The stem's 3 input channels are padded to 4 with zeros (input and filters), which lets cuDNN
 * use its vectorised channels-last kernels; the result is the same.
 *
 * <p>A <em>snapshot</em> of the weights and running statistics, as {@link ResNetInference}.
 * Activation buffers are kept between calls with the same input shape (another shape releases
 * them); {@link #close} frees them and the weights. Calls are serialised.
 *
 * <p>With {@link #graphs(boolean) graphs} on (default: {@code -Ddir4j.cuda.graphs}, false), the
 * second call at an input shape records the whole forward once ({@link Backend#record}: a CUDA
 * graph, from a fixed input buffer into a fixed output buffer) and every later call at that shape
 * copies its batch in, replays the graph and copies the features out: one launch instead of
 * about a hundred cuDNN calls and kernels from the host, the same kernels and results. The
 * recording assumes no other thread uses the device while it is made (once per shape). Should
 * recording fail, this says so once on stderr and runs op by op.
 */
public final class ResNetDeviceInference implements AutoCloseable {
    private static final PoolParams STEM_POOL = new PoolParams(3, 3, 2, 2, 1, 1);

    /** A folded convolution on the device: filters [out, k, k, in'] and bias [out]. */
    private record DeviceConv(Tensor weight, Tensor bias, int out, int kernel, ConvParams params) {
        int outSize(int size) {
            return (size + 2 * params.padH() - kernel) / params.strideH() + 1;
        }
    }

    private record DeviceBlock(DeviceConv conv1, DeviceConv conv2, DeviceConv conv3, DeviceConv down) {}

    private final Device device;
    private final Backend backend;
    private final DeviceConv stem;
    private final int stemIn;
    private final int stemInPadded;
    private final List<DeviceBlock> blocks;
    private final int featureChannels;
    /** Free activation buffers by shape, all for the input shape {@link #poolInput}. */
    private final Map<List<Integer>, ArrayDeque<Tensor>> pool = new HashMap<>();
    private List<Integer> poolInput = List.of();
    private boolean closed;
    private boolean graphs = Boolean.getBoolean("dir4j.cuda.graphs");
    /** Calls at {@link #poolInput} so far (the first warms the buffers and the algorithm choices). */
    private int callsAtInput;
    /** The recorded forward at {@link #poolInput}, its input [N, C, H, W] and output buffers (null: none). */
    private Backend.Recording graph;
    private Tensor graphIn;
    private Tensor graphOut;
    /** Set when recording failed: the plan runs op by op from then on. */
    private boolean graphFailed;

    private ResNetDeviceInference(Device device, FoldedResNet f) {
        this.device = device;
        this.backend = Backends.of(device);
        this.stemIn = f.stem.in();
        this.stemInPadded = (stemIn + ResNet.STEM_CHANNEL_ALIGN - 1) / ResNet.STEM_CHANNEL_ALIGN
                * ResNet.STEM_CHANNEL_ALIGN;
        List<Tensor> made = new ArrayList<>();
        try {
            this.stem = upload(f.stem, stemInPadded, made);
            List<DeviceBlock> bs = new ArrayList<>();
            for (FoldedResNet.Block b : f.blocks) {
                bs.add(new DeviceBlock(upload(b.conv1(), made), upload(b.conv2(), made), upload(b.conv3(), made),
                        upload(b.down(), made)));
            }
            this.blocks = List.copyOf(bs);
        } catch (RuntimeException | Error e) {
            made.forEach(Tensor::close);
            throw e;
        }
        this.featureChannels = f.featureChannels;
    }

    /** Why {@link #of} would refuse this network, or empty when it can compile it. */
    public static Optional<String> unsupported(ResNet net) {
        return FoldedResNet.unsupported(net);
    }

    /**
     * Compiles the network as it is now, on the device its parameters are on.
     *
     * @throws IllegalArgumentException with {@link #unsupported}'s reason when it cannot
     */
    public static ResNetDeviceInference of(ResNet net) {
        return new ResNetDeviceInference(net.device(), FoldedResNet.of(net, "channels-last device inference"));
    }

    /** {@link #upload(FoldedResNet.Conv, int, List)} without channel padding; null for null. */
    private DeviceConv upload(FoldedResNet.Conv c, List<Tensor> made) {
        return c == null ? null : upload(c, c.in(), made);
    }

    /** A folded convolution as filters [out, k, k, inPadded] and a bias on the device (added to made). */
    private DeviceConv upload(FoldedResNet.Conv c, int inPadded, List<Tensor> made) {
        Tensor w = onDevice(c.channelsLast(inPadded), c.out(), c.kernel(), c.kernel(), inPadded);
        made.add(w);
        Tensor b = onDevice(c.bias(), c.out());
        made.add(b);
        return new DeviceConv(w, b, c.out(), c.kernel(),
                new ConvParams(c.stride(), c.stride(), c.pad(), c.pad(), 1, 1));
    }

    /** A tensor of these values on the device, owned by this plan (outside any scope). */
    private Tensor onDevice(float[] values, int... shape) {
        return MemoryScope.detached(() -> {
            Tensor host = Tensor.of(values, shape);
            if (device.equals(Device.CPU)) {
                return host;
            }
            try (host) {
                return host.to(device);
            }
        });
    }

    /**
     * Turns the replay of recorded forwards on or off (see the class comment); off releases a
     * recording. Returns this plan.
     */
    public synchronized ResNetDeviceInference graphs(boolean on) {
        graphs = on;
        if (!on) {
            releaseGraph();
        }
        return this;
    }

    /** Whether the last call replayed a recorded forward. */
    public synchronized boolean replaying() {
        return graph != null;
    }

    /** Channels of the feature map. */
    public int featureChannels() {
        return featureChannels;
    }

    /** The device the plan runs on. */
    public Device device() {
        return device;
    }

    /**
     * The last feature map [N, C, H/32, W/32] (NCHW, a new tensor the caller owns) of a float32
     * batch [N, 3, H, W] on the plan's device, as {@link ResNet#features} gives in eval mode.
     * Records no graph.
     */
    public synchronized Tensor features(Tensor x) {
        if (closed) {
            throw new IllegalStateException("this ResNetDeviceInference is closed");
        }
        if (x.rank() != 4 || x.shape(1) != stemIn) {
            throw new IllegalArgumentException("expected a batch [N, " + stemIn + ", H, W], got " + Shape.str(x.shape()));
        }
        if (x.dtype() != DType.FLOAT32 || !x.device().equals(device)) {
            throw new IllegalArgumentException("this inference plan runs float32 on " + device + "; got " + x.dtype()
                    + " on " + x.device());
        }
        int n = x.shape(0);
        int h = x.shape(2);
        int w = x.shape(3);
        if (n == 0) {
            return Tensor.empty(DType.FLOAT32, device, 0, featureChannels, outputSize(h), outputSize(w));
        }
        List<Integer> input = List.of(n, h, w);
        if (!input.equals(poolInput)) {
            releaseGraph();
            releasePool();
            poolInput = input;
            callsAtInput = 0;
        }
        callsAtInput++;
        int[] outShape = {n, featureChannels, outputSize(h), outputSize(w)};
        if (graphs && graph == null && !graphFailed && callsAtInput >= 2) {
            record(x.shape(), outShape);
        }
        Tensor out = Tensor.uninitialized(DType.FLOAT32, device, outShape);
        if (graph != null) {
            backend.copy(x, graphIn);
            graph.replay();
            backend.copy(graphOut, out);
        } else {
            forward(x, out);
        }
        return out;
    }

    /**
     * Records {@link #forward} from graphIn into graphOut; on failure says why once, and runs op by
     * op from then on (as on a backend that cannot record).
     */
    private void record(int[] inShape, int[] outShape) {
        graphIn = MemoryScope.detached(() -> Tensor.uninitialized(DType.FLOAT32, device, inShape));
        graphOut = MemoryScope.detached(() -> Tensor.uninitialized(DType.FLOAT32, device, outShape));
        try {
            graph = backend.record(() -> forward(graphIn, graphOut));
            graphFailed = graph == null; // a backend that cannot record (the CPU): op by op, silently
        } catch (RuntimeException e) {
            graph = null;
            graphFailed = true;
            System.err.println("dir4j: recording the compiled ResNet forward as a CUDA graph failed (" + e
                    + "); it runs op by op");
        }
        if (graph == null) {
            graphIn.close();
            graphOut.close();
            graphIn = null;
            graphOut = null;
        }
    }

    /** The forward of x [N, C, H, W] into out [N, featureChannels, H/32, W/32] through the pooled buffers. */
    private void forward(Tensor x, Tensor out) {
        int n = x.shape(0);
        int h = x.shape(2);
        int w = x.shape(3);
        // NCHW -> NHWC once, into a buffer whose padding channels are zero
        Tensor in = take(n, h, w, stemInPadded);
        try (Tensor dst = in.viewOf(new int[] {n, stemIn, h, w},
                new long[] {(long) h * w * stemInPadded, 1, (long) w * stemInPadded, stemInPadded}, in.offset())) {
            backend.copy(x, dst);
        }
        if (stemInPadded > stemIn) {
            try (Tensor padding = in.viewOf(new int[] {n, h, w, stemInPadded - stemIn},
                    new long[] {(long) h * w * stemInPadded, (long) w * stemInPadded, stemInPadded, 1},
                    in.offset() + stemIn)) {
                backend.fill(padding, 0);
            }
        }
        Tensor s = conv(in, stem, null, true);
        give(in);
        int ph = (s.shape(1) + 2 - 3) / 2 + 1;
        int pw = (s.shape(2) + 2 - 3) / 2 + 1;
        Tensor y = take(n, ph, pw, s.shape(3));
        backend.maxPool2dNhwc(s, STEM_POOL, y, null);
        give(s);
        for (DeviceBlock b : blocks) {
            Tensor next = block(b, y);
            give(y);
            y = next;
        }
        try (Tensor nchw = y.viewOf(out.shape(),
                new long[] {y.stride(0), y.stride(3), y.stride(1), y.stride(2)}, y.offset())) {
            backend.copy(nchw, out);
        }
        give(y);
    }

    /** The feature map's side for an input side of {@code size} pixels. */
    private int outputSize(int size) {
        int s = stem.outSize(size);
        s = (s + 2 - 3) / 2 + 1;
        for (DeviceBlock b : blocks) {
            s = b.conv2().outSize(b.conv1().outSize(s));
            if (b.conv3() != null) {
                s = b.conv3().outSize(s);
            }
        }
        return s;
    }

    private Tensor block(DeviceBlock b, Tensor x) {
        Tensor a1 = conv(x, b.conv1(), null, true);
        Tensor a2 = a1;
        DeviceConv last = b.conv2();
        if (b.conv3() != null) {
            a2 = conv(a1, b.conv2(), null, true);
            last = b.conv3();
        }
        Tensor identity = b.down() == null ? x : conv(x, b.down(), null, false);
        Tensor out = conv(a2, last, identity, true);
        give(a1);
        if (a2 != a1) {
            give(a2);
        }
        if (identity != x) {
            give(identity);
        }
        return out;
    }

    /** relu?(conv(x) + bias [+ z]) into a pooled buffer. */
    private Tensor conv(Tensor x, DeviceConv c, Tensor z, boolean relu) {
        Tensor y = take(x.shape(0), c.outSize(x.shape(1)), c.outSize(x.shape(2)), c.out());
        backend.conv2dNhwc(x, c.weight(), c.bias(), z, relu, c.params(), y);
        return y;
    }

    /**
     * A buffer of this shape: a free one, or a new one. Reuse within and between forwards is safe:
     * the device runs every op in the order queued, so a buffer's next writer runs after its last reader.
     */
    private Tensor take(int... shape) {
        ArrayDeque<Tensor> free = pool.get(key(shape));
        if (free != null && !free.isEmpty()) {
            return free.pop();
        }
        return MemoryScope.detached(() -> Tensor.uninitialized(DType.FLOAT32, device, shape));
    }

    private void give(Tensor t) {
        pool.computeIfAbsent(key(t.shape()), k -> new ArrayDeque<>()).push(t);
    }

    private static List<Integer> key(int[] shape) {
        List<Integer> k = new ArrayList<>(shape.length);
        for (int s : shape) {
            k.add(s);
        }
        return k;
    }

    private void releaseGraph() {
        if (graph != null) {
            graph.close();
            graph = null;
            graphIn.close();
            graphOut.close();
            graphIn = null;
            graphOut = null;
        }
    }

    private void releasePool() {
        pool.values().forEach(q -> q.forEach(Tensor::close));
        pool.clear();
    }

    /** Frees the weights and the activation buffers. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        releaseGraph();
        releasePool();
        stem.weight().close();
        stem.bias().close();
        for (DeviceBlock b : blocks) {
            for (DeviceConv c : new DeviceConv[] {b.conv1(), b.conv2(), b.conv3(), b.down()}) {
                if (c != null) {
                    c.weight().close();
                    c.bias().close();
                }
            }
        }
    }
}
