package dir4j.engine.cpu;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The CPU backend's channels-last convolutions (Backend.conv2dNhwc and its two gradients) for
 * training channels-last end to end: contiguous float32 x [N, H, W, Ci], w [Co, kh, kw, Ci],
 * y [N, Ho, Wo, Co], no layout changes.
 * <ul>
 *   <li>forward: the direct kernels of the compiled inference ({@link NhwcConv}) on a padded heap
 *       copy of x (row copies, not a transpose), the bias, residual and ReLU fused into the store;
 *   <li>backward-data, stride 1: the same kernels over dy with the flipped, transposed filter; a
 *       strided 1×1 (a downsample): one GEMM dY·W whose rows land on the pixels it read;
 *   <li>backward-filter: dW = dYᵀ·X_taps, one GEMM whose columns are dW's (kh, kw, ci) and whose
 *       depth is the batch's pixels, packed straight from the tensors (channel runs are contiguous).
 * </ul>
 * {@link #supports} says which geometries run here (square kernels, equal strides and paddings,
 * padding below the kernel, no dilation, at least 16 channels each way, sizes within one Java
 * array; backward-data also stride 1 or a 1×1); the others take the Backend's permuting defaults. {@code -Ddir4j.cpu.directConv=false} sends everything there.
 */
final class NhwcTraining {
    private NhwcTraining() {}

    /** Whether the geometry of x [N, H, W, Ci] and w [Co, k, k, Ci] under p runs here. */
    static boolean supports(Tensor x, Tensor w, ConvParams p, boolean backwardData) {
        int k = w.shape(1);
        if (!Conv2dKernels.directEnabled || x.dtype() != DType.FLOAT32 || w.shape(2) != k
                || p.strideH() != p.strideW() || p.padH() != p.padW() || p.dilationH() != 1 || p.dilationW() != 1
                || p.padH() >= k) {
            return false;
        }
        if (backwardData && p.strideH() != 1 && k != 1) {
            return false;
        }
        // few channels (the stem's 3, padded to 4): the direct kernels' per-tap loops and the taps
        // operand's 4-float copies would be mostly overhead; the NCHW implicit GEMM is not
        if (x.shape(3) < Conv2dKernels.DIRECT_MIN_CHANNELS || w.shape(0) < Conv2dKernels.DIRECT_MIN_CHANNELS) {
            return false;
        }
        long limit = Integer.MAX_VALUE / 2;
        long pad = p.padH() + k;
        long in = (long) x.shape(0) * (x.shape(1) + 2 * pad) * (x.shape(2) + 2 * pad) * x.shape(3);
        long out = (long) x.shape(0) * (x.shape(1) + 2 * pad) * (x.shape(2) + 2 * pad) * w.shape(0);
        return in < limit && out < limit && (long) k * k * x.shape(3) * (w.shape(0) + NhwcConv.NR) < limit;
    }

    /** y = relu?(conv(x, w) [+ bias] [+ z]); false (nothing written) when the heap cannot hold the copies. */
    static boolean forward(Tensor x, Tensor w, Tensor bias, Tensor z, boolean relu, ConvParams p, Tensor y) {
        return runDirect(x, p.padH(), w, p.strideH(), false, bias, z, relu, y);
    }

    /**
     * dx of a strided 1×1 convolution (a ResNet downsample): zero, but at the pixels the
     * convolution read, dx[n, s·i, s·j, :] = dy[n, i, j, :] · W, one GEMM whose rows land there.
     */
    private static void backwardDataPointwiseStrided(Tensor dy, Tensor w, int stride, Tensor dx) {
        int co = w.shape(0);
        int ci = w.shape(3);
        int oh = dy.shape(1);
        int ow = dy.shape(2);
        int h = dx.shape(1);
        int wd = dx.shape(2);
        long pixels = (long) dy.shape(0) * oh * ow;
        MemorySegment dxs = Sgemm.forWorkers(dx.segment());
        long dxOff = dx.offset();
        CpuThreads.parallelRange(dx.numel(), 1 << 18, (s, e) ->
                dxs.asSlice((dxOff + s) * Float.BYTES, (e - s) * Float.BYTES).fill((byte) 0));
        GemmOutput rows = new GemmOutput() {
            @Override
            public void store(float[] tile, int ts, int i0, int count, int j0, int cols, boolean first) {
                for (int r = 0; r < count; r++) {
                    int q = i0 + r;
                    int n = q / (oh * ow);
                    int rem = q - n * oh * ow;
                    long at = dxOff + ((((long) n * h + (long) (rem / ow) * stride) * wd
                            + (long) (rem % ow) * stride) * ci) + j0;
                    GemmOutput.storeRun(tile, r * ts, dxs, at, cols, 1f, 1f, !first);
                }
            }
        };
        Sgemm.gemm((int) pixels, ci, co, GemmOperand.strided(Sgemm.forWorkers(dy.segment()), dy.offset(), co, 1),
                GemmOperand.strided(Sgemm.forWorkers(w.segment()), w.offset(), ci, 1), rows);
    }

    /** dx of a stride-1 or 1×1 convolution; false (nothing written) when the heap cannot hold the copies. */
    static boolean backwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        int k = w.shape(1);
        if (k == 1 && p.strideH() != 1) {
            backwardDataPointwiseStrided(dy, w, p.strideH(), dx);
            return true;
        }
        // the stride-1 correlation of dy, padded by k-1-pad, with the flipped, transposed filter
        return runDirect(dy, k - 1 - p.padH(), w, 1, true, null, null, false, dx);
    }

    /**
     * dst = relu?(conv(src padded by pad, w packed as given) [+ bias] [+ z]) on the direct kernels,
     * over recycled heap copies; false, nothing written, when the heap cannot hold them.
     */
    private static boolean runDirect(Tensor src, int pad, Tensor w, int stride, boolean flipTranspose, Tensor bias,
                                     Tensor z, boolean relu, Tensor dst) {
        float[] inBuf = null;
        float[] resBuf = null;
        float[] outBuf = null;
        try {
            inBuf = HeapBuffers.borrow(NhwcConv.Activation.floats(src.shape(0), src.shape(1), src.shape(2),
                    src.shape(3), pad, false));
            NhwcConv.Activation in = NhwcConv.fromNhwcInto(src.segment(), src.offset(), src.shape(0), src.shape(1),
                    src.shape(2), src.shape(3), pad, inBuf);
            NhwcConv.Weights packed = NhwcConv.Weights.packFrom(w.segment(), w.offset(), w.shape(0), w.shape(3),
                    w.shape(1), stride, pad, flipTranspose, true);
            if (bias != null) {
                MemorySegment.copy(bias.segment(), ValueLayout.JAVA_FLOAT, bias.offset() * Float.BYTES, packed.bias,
                        0, w.shape(0));
            }
            NhwcConv.Activation res = null;
            if (z != null) {
                resBuf = HeapBuffers.borrow(NhwcConv.Activation.floats(z.shape(0), z.shape(1), z.shape(2),
                        z.shape(3), 0, false));
                res = NhwcConv.fromNhwcInto(z.segment(), z.offset(), z.shape(0), z.shape(1), z.shape(2), z.shape(3), 0,
                        resBuf);
            }
            outBuf = HeapBuffers.borrow(NhwcConv.Activation.floats(dst.shape(0), dst.shape(1), dst.shape(2),
                    dst.shape(3), 0, false));
            // every output element is written, so a recycled buffer needs no zeroing
            NhwcConv.Activation out = new NhwcConv.Activation(outBuf, dst.shape(0), dst.shape(1), dst.shape(2),
                    dst.shape(3), 0);
            WinogradConv.forwardPacked(in, packed, out, res, relu);
            NhwcConv.toNhwc(out, dst.segment(), dst.offset());
            return true;
        } catch (OutOfMemoryError e) {
            Conv2dKernels.heapFull("a channels-last convolution's " + Arrays.toString(src.shape()), e,
                    "the Backend's permuting path");
            return false;
        } finally {
            HeapBuffers.giveBack(inBuf);
            HeapBuffers.giveBack(resBuf);
            HeapBuffers.giveBack(outBuf);
        }
    }

    /**
     * dw [Co, k, k, Ci] = Σ over the batch's output pixels q of dy[q, co] · x[pixel q reads through
     * tap (kh, kw), ci]: one GEMM, M = Co, N = k·k·Ci (the columns are dw's own (kh, kw, ci)
     * order, so the product lands in place), depth = the pixels, the batch summed in the
     * accumulators; padding reads as zero.
     */
    static void backwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        int co = dw.shape(0);
        int k = dw.shape(1);
        int ci = dw.shape(3);
        long pixels = (long) dy.shape(0) * dy.shape(1) * dy.shape(2);
        if (pixels > Integer.MAX_VALUE || (long) k * k * ci > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("conv2dNhwcBackwardFilter: " + pixels + " output pixels or "
                    + (long) k * k * ci + " taps exceed the int-indexed GEMM; split the batch");
        }
        MemorySegment dys = Sgemm.forWorkers(dy.segment());
        MemorySegment xs = Sgemm.forWorkers(x.segment());
        MemorySegment dws = Sgemm.forWorkers(dw.segment());
        // dYᵀ [Co × q]: element (c, q) at dy[q·Co + c]
        GemmOperand a = GemmOperand.strided(dys, dy.offset(), 1, co);
        GemmOperand b = k == 1 && p.strideH() == 1
                ? GemmOperand.strided(xs, x.offset(), ci, 1)
                : new TapsOperand(xs, x.offset(), x.shape(1), x.shape(2), ci, dy.shape(1), dy.shape(2), k,
                        p.strideH(), p.padH());
        Sgemm.gemm(co, k * k * ci, (int) pixels, a, b, GemmOutput.strided(dws, dw.offset(), (long) k * k * ci, 1f, 0f));
    }

    /**
     * The matrix X(q, (kh, kw, c)) = x[n, oh·s − pad + kh, ow·s − pad + kw, c] for output pixel
     * q = (n, oh, ow), 0 in the padding: what every tap of the convolution reads, as the B side of
     * backward-filter's GEMM. A column panel's lanes are runs of one tap's channels, each a
     * contiguous slice of x's pixel.
     */
    private record TapsOperand(MemorySegment x, long off, int h, int w, int c, int oh, int ow, int k, int stride,
                               int pad) implements GemmOperand {
        @Override
        public void packColumnPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int wd) {
            for (int t = 0; t * wd < cols; t++) {
                int lanes = Math.min(wd, cols - t * wd);
                int panel = dOff + t * wd * rows;
                int j0 = c0 + t * wd;
                if (lanes < wd) {
                    for (int r = 0; r < rows; r++) {
                        Arrays.fill(dst, panel + r * wd + lanes, panel + r * wd + wd, 0f);
                    }
                }
                // the panel's lanes split at tap boundaries into runs [ja, jb) of one tap's channels
                for (int ja = j0; ja < j0 + lanes; ) {
                    int tap = ja / c;
                    int ch = ja - tap * c;
                    int len = Math.min(j0 + lanes - ja, c - ch);
                    packRun(dst, panel + (ja - j0), wd, r0, rows, tap / k, tap % k, ch, len);
                    ja += len;
                }
            }
        }

        /** Rows r0 … r0+rows of one tap's channels [ch, ch+len) into dst[at + r·wd …]. */
        private void packRun(float[] dst, int at, int wd, int r0, int rows, int kh, int kw, int ch, int len) {
            int n = r0 / (oh * ow);
            int rem = r0 - n * oh * ow;
            int y = rem / ow;
            int xx = rem - y * ow;
            for (int r = 0; r < rows; r++, at += wd) {
                int iy = y * stride - pad + kh;
                int ix = xx * stride - pad + kw;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                    MemorySegment.copy(x, ValueLayout.JAVA_FLOAT,
                            (off + (((long) n * h + iy) * w + ix) * c + ch) * Float.BYTES, dst, at, len);
                } else {
                    Arrays.fill(dst, at, at + len, 0f);
                }
                if (++xx == ow) {
                    xx = 0;
                    if (++y == oh) {
                        y = 0;
                        n++;
                    }
                }
            }
        }

        @Override
        public void packRowPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int wd) {
            throw new IllegalStateException("the taps operand is only backward-filter's B side");
        }
    }
}
