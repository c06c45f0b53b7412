package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * 2-d convolution (no groups, no bias) as implicit GEMM on {@link Sgemm}'s driver and its one
 * micro-kernel: the im2col matrix X (taps p = (ci, kh, kw) × output pixels q = (n, oh, ow), over
 * the whole batch at once) is packed tile by tile straight from the image and never built.
 * <ul>
 *   <li>forward: Y[Co × q] = W[Co × p] · X;
 *   <li>backward-data: Wᵀ · dY gives X-shaped tiles that are scatter-added into dX (col2im);
 *   <li>backward-filter: dW[Co × p] = dY[Co × q] · Xᵀ, the batch summed inside the GEMM's depth.
 * </ul>
 * A 1×1, stride-1, unpadded convolution is a plain product over the NCHW tensors themselves.
 * Larger square kernels at stride 1 with enough channels and output pixels ({@link #direct}) run
 * forward and backward-data on the channels-last direct kernels of the compiled inference
 * ({@link NhwcConv}: copies to and from channels-last in pooled buffers and a weight packing per call,
 * about 2-3x faster than the implicit GEMM on ResNet's 3×3s in {@code NhwcConvBench}; the stride-1
 * 3×3s with 64 or more input channels by {@link WinogradConv}, {@code -Ddir4j.winograd=false} for the
 * direct kernel); their backward-filter, with 64 or more channels each way, by Winograd's F(3×3, 2×2)
 * ({@link WinogradConv#backwardFilter}). Convolutions on few input channels (ResNet's stem on RGB,
 * {@link #fewChannels}) run forward and backward-filter on {@link NhwcConv#forwardFewChannels} and
 * {@link NhwcConv#backwardFilterFewChannels}, straight from a padded copy of the image
 * (no im2col). {@code -Ddir4j.cpu.directConv=false} keeps everything on the GEMM.
 * All tensors are contiguous float32 (NCHW; weights [Co, Ci, kH, kW]) at the given float offsets.
 */
public final class Conv2dKernels {
    private Conv2dKernels() {}

    /** Whether {@link #direct} may choose the channels-last direct kernels (tests switch it). */
    static volatile boolean directEnabled = !"false".equals(System.getProperty("dir4j.cpu.directConv"));
    /** Fewest input and output channels for the direct path (below, the copies dominate). */
    static final int DIRECT_MIN_CHANNELS = 16;
    /**
     * Fewest output pixels (batch × Ho × Wo) for the direct path: each packed weight must serve
     * enough multiply-adds to pay for packing it on every call (weights change every step).
     */
    static final long DIRECT_MIN_PIXELS = 512;

    /**
     * Whether g runs on the direct channels-last kernels: square kernels of 3 or more, stride 1,
     * equal paddings, no dilation, at least {@link #DIRECT_MIN_CHANNELS} channels each way and
     * {@link #DIRECT_MIN_PIXELS} output pixels, activations within one Java array; for
     * backward-data also a padding below the kernel's size.
     */
    static boolean direct(Conv2dGeometry g, boolean backwardData) {
        int k = g.kernelH();
        if (!directEnabled || k < 3 || g.kernelW() != k || g.strideH() != g.strideW() || g.padH() != g.padW()
                || g.dilationH() != 1 || g.dilationW() != 1 || g.inChannels() < DIRECT_MIN_CHANNELS
                || g.outChannels() < DIRECT_MIN_CHANNELS
                || (long) g.batch() * g.outHeight() * g.outWidth() < DIRECT_MIN_PIXELS) {
            return false;
        }
        // Strided forwards run faster on the implicit GEMM, whose panels gather from a padded copy
        // (bench/RESULTS.md, session 13): the direct kernels take stride 1 only.
        if (g.strideH() != 1 || backwardData && g.padH() > k - 1) {
            return false;
        }
        long limit = Integer.MAX_VALUE / 2;
        long in = (long) g.batch() * (g.height() + 2L * k) * (g.width() + 2L * k) * g.inChannels();
        long out = (long) g.batch() * (g.outHeight() + 2L * k) * (g.outWidth() + 2L * k) * g.outChannels();
        return in < limit && out < limit && (long) k * k * g.inChannels() * (g.outChannels() + NhwcConv.NR) < limit;
    }

    /** y[N,Co,Ho,Wo] = conv(x[N,Ci,H,W], w[Co,Ci,kh,kw]) (no bias); y is overwritten. */
    public static void forward(Conv2dGeometry g, MemorySegment x, long xOff, MemorySegment w, long wOff,
            MemorySegment y, long yOff) {
        Dims d = Dims.of(g);
        Sgemm.checkExtent("conv2d forward x", x, xOff, 1, 0, g.inputSize(), 1);
        Sgemm.checkExtent("conv2d forward w", w, wOff, 1, 0, g.weightSize(), 1);
        Sgemm.checkExtent("conv2d forward y", y, yOff, 1, 0, g.outputSize(), 1);
        if (g.batch() == 0) {
            return;
        }
        if (direct(g, false) && directForward(g, x, xOff, w, wOff, y, yOff)) {
            return;
        }
        if (fewChannels(g) && fewChannelsForward(g, x, xOff, w, wOff, y, yOff)) {
            return;
        }
        if (subsampled(g)) {
            onStrideGrid(g, x, xOff, xs -> forward(g.pointwiseOnOutputGrid(), xs, 0, w, wOff, y, yOff));
            return;
        }
        x = Sgemm.forWorkers(x);
        GemmOperand cols = g.isPointwise()
                ? new NchwMatrix(x, xOff, g.inChannels(), g.height() * g.width())
                : new Im2colOperand(g, x, xOff);
        Sgemm.gemm(g.outChannels(), d.pixels, d.taps,
                GemmOperand.strided(Sgemm.forWorkers(w), wOff, d.taps, 1), cols,
                new NchwMatrix(Sgemm.forWorkers(y), yOff, g.outChannels(), d.outSpatial));
    }

    /** dx = conv_transpose(dy, w), the gradient of {@link #forward} with respect to x; dx is overwritten. */
    public static void backwardData(Conv2dGeometry g, MemorySegment dy, long dyOff, MemorySegment w, long wOff,
            MemorySegment dx, long dxOff) {
        Dims d = Dims.of(g);
        Sgemm.checkExtent("conv2d backwardData dy", dy, dyOff, 1, 0, g.outputSize(), 1);
        Sgemm.checkExtent("conv2d backwardData w", w, wOff, 1, 0, g.weightSize(), 1);
        Sgemm.checkExtent("conv2d backwardData dx", dx, dxOff, 1, 0, g.inputSize(), 1);
        if (g.batch() == 0) {
            return;
        }
        if (direct(g, true) && directBackwardData(g, dy, dyOff, w, wOff, dx, dxOff)) {
            return;
        }
        if (subsampled(g)) {
            Conv2dGeometry p = g.pointwiseOnOutputGrid();
            MemorySegment dxs = NativeMemory.allocate(p.inputSize() * Float.BYTES, false);
            try {
                backwardData(p, dy, dyOff, w, wOff, dxs, 0);
                strideGridCopy(g, dx, dxOff, dxs, false);
            } finally {
                NativeMemory.free(dxs);
            }
            return;
        }
        dx = Sgemm.forWorkers(dx);
        GemmOutput out;
        Col2imOutput col2im = null;
        if (g.isPointwise()) {
            out = new NchwMatrix(dx, dxOff, g.inChannels(), g.height() * g.width());
        } else {
            col2im = new Col2imOutput(g, dx, dxOff);
            if (!col2im.scatters()) {
                zero(dx, dxOff, g.inputSize());
            }
            out = col2im;
        }
        // Wᵀ[p × Co]: element (p, co) of w[co, p] sits at co·taps + p.
        Sgemm.gemm(d.taps, d.pixels, g.outChannels(),
                GemmOperand.strided(Sgemm.forWorkers(w), wOff, 1, d.taps),
                new NchwMatrix(Sgemm.forWorkers(dy), dyOff, g.outChannels(), d.outSpatial), out);
        if (col2im != null) {
            col2im.finish();
        }
    }

    /**
     * Whether g's forward and backward-filter run on {@link NhwcConv#forwardFewChannels} and
     * {@link NhwcConv#backwardFilterFewChannels} (its backward-data stays on the GEMM): a square kernel of 3 or more
     * whose filter rows are short runs of a channels-last row (few input channels: ResNet's stem),
     * equal strides and paddings, no dilation, {@link #DIRECT_MIN_CHANNELS} output channels and
     * {@link #DIRECT_MIN_PIXELS} output pixels, activations within one Java array.
     */
    static boolean fewChannels(Conv2dGeometry g) {
        int k = g.kernelH();
        if (!directEnabled || k < 3 || g.kernelW() != k || g.strideH() != g.strideW() || g.padH() != g.padW()
                || g.dilationH() != 1 || g.dilationW() != 1 || !NhwcConv.fewChannels(g.inChannels(), k)
                || g.outChannels() < DIRECT_MIN_CHANNELS
                || (long) g.batch() * g.outHeight() * g.outWidth() < DIRECT_MIN_PIXELS) {
            return false;
        }
        long limit = Integer.MAX_VALUE / 2;
        long in = (long) g.batch() * (g.height() + 2L * k) * (g.width() + 2L * k) * g.inChannels();
        long out = (long) g.batch() * g.outHeight() * g.outWidth() * g.outChannels();
        return in < limit && out < limit;
    }

    /** {@link #forward} by {@link NhwcConv#forwardFewChannels}; false when the Java heap cannot hold the copies. */
    private static boolean fewChannelsForward(Conv2dGeometry g, MemorySegment x, long xOff, MemorySegment w,
            long wOff, MemorySegment y, long yOff) {
        return runDirect(g, x, xOff, g.inChannels(), g.height(), g.width(), g.padH(), w, wOff, false, g.strideH(),
                g.outChannels(), g.outHeight(), g.outWidth(), y, yOff, true);
    }

    /** {@link #forward} on the direct kernels; false when the Java heap cannot hold the copies. */
    private static boolean directForward(Conv2dGeometry g, MemorySegment x, long xOff, MemorySegment w, long wOff,
            MemorySegment y, long yOff) {
        return runDirect(g, x, xOff, g.inChannels(), g.height(), g.width(), g.padH(), w, wOff, false, g.strideH(),
                g.outChannels(), g.outHeight(), g.outWidth(), y, yOff, false);
    }

    /**
     * {@link #backwardData} on the direct kernels: dx is the stride-1 correlation of dy, padded by
     * k-1-pad, with the flipped, transposed filter; false when the Java heap cannot hold the copies.
     */
    private static boolean directBackwardData(Conv2dGeometry g, MemorySegment dy, long dyOff, MemorySegment w,
            long wOff, MemorySegment dx, long dxOff) {
        return runDirect(g, dy, dyOff, g.outChannels(), g.outHeight(), g.outWidth(), g.kernelH() - 1 - g.padH(), w,
                wOff, true, 1, g.inChannels(), g.height(), g.width(), dx, dxOff, false);
    }

    /**
     * dst (NCHW) = the direct convolution of src (NCHW, copied channels-last with padding pad) with
     * w packed as given, on the few-channel kernel or else the direct/Winograd ones; false, nothing
     * written that the GEMM path would not overwrite, when the Java heap cannot hold the copies.
     */
    private static boolean runDirect(Conv2dGeometry g, MemorySegment src, long srcOff, int inC, int inH, int inW,
            int pad, MemorySegment w, long wOff, boolean flipTranspose, int stride, int outC, int outH, int outW,
            MemorySegment dst, long dstOff, boolean fewChannels) {
        NhwcConv.Activation in = null;
        float[] outBuf = null;
        try {
            in = channelsLastCopy(src, srcOff, g.batch(), inC, inH, inW, pad);
            outBuf = HeapBuffers.borrow(NhwcConv.Activation.floats(g.batch(), outH, outW, outC, 0, false));
            // every output element is written, so a recycled buffer needs no zeroing
            NhwcConv.Activation out = new NhwcConv.Activation(outBuf, g.batch(), outH, outW, outC, 0);
            if (!fewChannels && g.kernelH() == 3 && stride == 1 && WinogradConv.pays(inC)) {
                // transformed straight from the NCHW weights, no direct packing first
                WinogradConv.forwardNchw(in, w, wOff, g.outChannels(), g.inChannels(), pad, flipTranspose, out);
            } else {
                NhwcConv.Weights packed = NhwcConv.Weights.packFrom(w, wOff, g.outChannels(), g.inChannels(),
                        g.kernelH(), stride, pad, flipTranspose);
                if (fewChannels) {
                    NhwcConv.forwardFewChannels(in, packed, out, null, false);
                } else {
                    NhwcConv.forward(in, packed, out, null, false);
                }
            }
            NhwcConv.toNchw(out, dst, dstOff);
            return true;
        } catch (OutOfMemoryError e) {
            heapFull(g.toString(), e, "the implicit GEMM (native memory)");
            return false;
        } finally {
            HeapBuffers.giveBack(in == null ? null : in.data());
            HeapBuffers.giveBack(outBuf);
        }
    }

    /**
     * x (NCHW float32 at xOff of seg) as a channels-last copy padded by pad (ring and slack zero),
     * in a buffer borrowed from the calling thread's {@link HeapBuffers}: give it back when done.
     */
    static NhwcConv.Activation channelsLastCopy(MemorySegment seg, long xOff, int batch, int channels, int height,
            int width, int pad) {
        float[] buf = HeapBuffers.borrow(NhwcConv.Activation.floats(batch, height, width, channels, pad, false));
        NhwcConv.Activation in = new NhwcConv.Activation(buf, batch, height, width, channels, pad);
        NhwcConv.zeroPadding(in);
        NhwcConv.fromNchwInto(seg, xOff, in);
        return in;
    }

    private static final AtomicBoolean HEAP_NOTED = new AtomicBoolean();

    /**
     * Says once per run that a convolution fell back from the direct kernels to {@code fallback}
     * because the Java heap could not hold its channels-last copies of {@code what}.
     */
    static void heapFull(String what, OutOfMemoryError e, String fallback) {
        if (HEAP_NOTED.compareAndSet(false, true)) {
            System.getLogger(Conv2dKernels.class.getName()).log(System.Logger.Level.WARNING,
                    "the Java heap cannot hold the channels-last copies of " + what + " (" + e.getMessage()
                            + "): running such convolutions on " + fallback + "; a larger -Xmx brings the direct"
                            + " kernels back");
        }
    }

    /** dw = Σ over the batch of the correlation of x with dy, the gradient of {@link #forward} with respect to w; dw is overwritten. */
    public static void backwardFilter(Conv2dGeometry g, MemorySegment x, long xOff, MemorySegment dy, long dyOff,
            MemorySegment dw, long dwOff) {
        Dims d = Dims.of(g);
        Sgemm.checkExtent("conv2d backwardFilter x", x, xOff, 1, 0, g.inputSize(), 1);
        Sgemm.checkExtent("conv2d backwardFilter dy", dy, dyOff, 1, 0, g.outputSize(), 1);
        Sgemm.checkExtent("conv2d backwardFilter dw", dw, dwOff, 1, 0, g.weightSize(), 1);
        if (subsampled(g) && g.batch() > 0) {
            onStrideGrid(g, x, xOff, xs -> backwardFilter(g.pointwiseOnOutputGrid(), xs, 0, dy, dyOff, dw, dwOff));
            return;
        }
        if (g.batch() > 0 && g.kernelH() == 3 && g.strideH() == 1 && direct(g, false)
                && WinogradConv.pays(g.inChannels()) && WinogradConv.pays(g.outChannels())) {
            try {
                WinogradConv.backwardFilter(g.batch(), g.inChannels(), g.height(), g.width(), g.outChannels(),
                        g.padH(), x, xOff, dy, dyOff, dw, dwOff);
                return;
            } catch (OutOfMemoryError e) {
                heapFull(g.toString(), e, "the implicit GEMM (native memory)");
            }
        }
        if (g.batch() > 0 && fewChannels(g)) {
            try {
                NhwcConv.backwardFilterFewChannels(x, xOff, g.batch(), g.inChannels(), g.height(), g.width(),
                        g.outChannels(), g.kernelH(), g.strideH(), g.padH(), dy, dyOff, dw, dwOff);
                return;
            } catch (OutOfMemoryError e) {
                heapFull(g.toString(), e, "the implicit GEMM (native memory)");
            }
        }
        x = Sgemm.forWorkers(x);
        GemmOperand cols = g.isPointwise()
                ? new NchwMatrix(x, xOff, g.inChannels(), g.height() * g.width())
                : new Im2colOperand(g, x, xOff);
        // The batch is part of the depth q, so the sum over images happens in the accumulators;
        // an empty batch is a depth-0 product, which writes dw = 0.
        Sgemm.gemm(g.outChannels(), d.taps, d.pixels,
                new NchwMatrix(Sgemm.forWorkers(dy), dyOff, g.outChannels(), d.outSpatial), cols.transposed(),
                GemmOutput.strided(Sgemm.forWorkers(dw), dwOff, d.taps, 1f, 0f));
    }

    /**
     * Whether g is a strided 1×1 convolution without padding (ResNet's downsampling shortcut): it
     * reads only the pixels on its stride's grid, so it runs as the plain 1×1 product over those
     * pixels gathered into a compact copy (and, for backward-data, scattered back between zeros),
     * instead of the implicit GEMM's strided runs. A quarter of the input is copied for stride 2.
     */
    static boolean subsampled(Conv2dGeometry g) {
        return g.kernelH() == 1 && g.kernelW() == 1 && g.padH() == 0 && g.padW() == 0
                && (g.strideH() > 1 || g.strideW() > 1);
    }

    /**
     * Runs {@code body} on x[n, c, i·sh, j·sw] for every output pixel (i, j), gathered into a
     * compact NCHW copy in native memory and freed afterwards. Native, not a heap array: the GEMM's
     * packing routines are compiled for native segments, and a heap segment among their callers
     * slowed every convolution of a training step by ~7 %.
     */
    private static void onStrideGrid(Conv2dGeometry g, MemorySegment x, long xOff,
            java.util.function.Consumer<MemorySegment> body) {
        MemorySegment xs = NativeMemory.allocate(
                (long) g.batch() * g.inChannels() * g.outHeight() * g.outWidth() * Float.BYTES, false);
        try {
            strideGridCopy(g, x, xOff, xs, true);
            body.accept(xs);
        } finally {
            NativeMemory.free(xs);
        }
    }

    /**
     * Between an NCHW tensor of g's input size ({@code full}) and a compact one of its output grid:
     * gathering, compact[n, c, i, j] = full[n, c, i·sh, j·sw]; otherwise (backward-data) full = 0
     * but for those pixels, which take the compact values.
     */
    private static void strideGridCopy(Conv2dGeometry g, MemorySegment full, long fullOff, MemorySegment compact,
            boolean gather) {
        int oh = g.outHeight();
        int ow = g.outWidth();
        long plane = (long) g.height() * g.width();
        long rowStep = (long) g.strideH() * g.width();
        int sw = g.strideW();
        MemorySegment f = Sgemm.forWorkers(full);
        MemorySegment c = Sgemm.forWorkers(compact);
        CpuThreads.parallelRange((long) g.batch() * g.inChannels(), Math.max(1, (1 << 16) / plane), (s, e) -> {
            for (long p = s; p < e; p++) {
                long at = fullOff + p * plane;
                long ci = p * oh * ow;
                if (!gather) {
                    f.asSlice(at * Float.BYTES, plane * Float.BYTES).fill((byte) 0);
                }
                for (int i = 0; i < oh; i++, at += rowStep) {
                    for (int j = 0; j < ow; j++, ci++) {
                        if (gather) {
                            c.setAtIndex(ValueLayout.JAVA_FLOAT, ci, f.getAtIndex(ValueLayout.JAVA_FLOAT, at + (long) j * sw));
                        } else {
                            f.setAtIndex(ValueLayout.JAVA_FLOAT, at + (long) j * sw, c.getAtIndex(ValueLayout.JAVA_FLOAT, ci));
                        }
                    }
                }
            }
        });
    }

    /** seg[off … off+count) = 0, in parallel chunks. */
    private static void zero(MemorySegment seg, long off, long count) {
        CpuThreads.parallelRange(count, 1 << 18, (s, e) ->
                seg.asSlice((off + s) * Float.BYTES, (e - s) * Float.BYTES).fill((byte) 0));
    }

    /** The GEMM sizes: taps p = Ci·kH·kW, output pixels q = N·Ho·Wo, both within int range. */
    private record Dims(int taps, int pixels, int outSpatial) {
        static Dims of(Conv2dGeometry g) {
            long taps = (long) g.inChannels() * g.kernelH() * g.kernelW();
            long outSpatial = (long) g.outHeight() * g.outWidth();
            long pixels = g.batch() * outSpatial;
            if (taps > Integer.MAX_VALUE || pixels > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("conv2d: " + taps + " taps x " + pixels
                        + " output pixels exceeds the int-indexed GEMM; split the batch (" + g + ")");
            }
            return new Dims((int) taps, (int) pixels, (int) outSpatial);
        }
    }
}
