package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;

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
 * All tensors are contiguous float32 (NCHW; weights [Co, Ci, kH, kW]) at the given float offsets.
 */
public final class Conv2dKernels {
    private Conv2dKernels() {}

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
        dx = Sgemm.forWorkers(dx);
        GemmOutput out;
        if (g.isPointwise()) {
            out = new NchwMatrix(dx, dxOff, g.inChannels(), g.height() * g.width());
        } else {
            zero(dx, dxOff, g.inputSize());
            out = new Col2imOutput(g, dx, dxOff);
        }
        // Wᵀ[p × Co]: element (p, co) of w[co, p] sits at co·taps + p.
        Sgemm.gemm(d.taps, d.pixels, g.outChannels(),
                GemmOperand.strided(Sgemm.forWorkers(w), wOff, 1, d.taps),
                new NchwMatrix(Sgemm.forWorkers(dy), dyOff, g.outChannels(), d.outSpatial), out);
    }

    /** dw = Σ over the batch of the correlation of x with dy, the gradient of {@link #forward} with respect to w; dw is overwritten. */
    public static void backwardFilter(Conv2dGeometry g, MemorySegment x, long xOff, MemorySegment dy, long dyOff,
            MemorySegment dw, long dwOff) {
        Dims d = Dims.of(g);
        Sgemm.checkExtent("conv2d backwardFilter x", x, xOff, 1, 0, g.inputSize(), 1);
        Sgemm.checkExtent("conv2d backwardFilter dy", dy, dyOff, 1, 0, g.outputSize(), 1);
        Sgemm.checkExtent("conv2d backwardFilter dw", dw, dwOff, 1, 0, g.weightSize(), 1);
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
