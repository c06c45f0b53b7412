package dir4j.engine.cpu;

import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Max and average pooling over contiguous NCHW tensors, parallel over (n, c) planes. */
final class PoolKernels {
    private PoolKernels() {}

    /** Elements per task below which a pass over planes is not split further. */
    private static final int MIN_CHUNK = 1 << 15;

    static void maxPool(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        if (x.dtype() == DType.FLOAT32) {
            if (indices == null) {
                maxPoolValues(x, p, y);
            } else {
                maxPoolArgmax(x, p, y, indices);
            }
            return;
        }
        int planes = x.shape(0) * x.shape(1);
        int h = x.shape(2);
        int w = x.shape(3);
        int ho = y.shape(2);
        int wo = y.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        MemorySegment is = indices == null ? null : indices.segment();
        DType t = x.dtype();
        CpuThreads.parallelFor(planes, pl -> {
            long xb = x.offset() + (long) pl * h * w;
            long yb = y.offset() + (long) pl * ho * wo;
            long ib = indices == null ? 0 : indices.offset() + (long) pl * ho * wo;
            for (int i = 0; i < ho; i++) {
                int h0 = i * p.strideH() - p.padH();
                int h1 = Math.min(h0 + p.kernelH(), h);
                h0 = Math.max(h0, 0);
                for (int j = 0; j < wo; j++) {
                    int w0 = j * p.strideW() - p.padW();
                    int w1 = Math.min(w0 + p.kernelW(), w);
                    w0 = Math.max(w0, 0);
                    double best = Double.NEGATIVE_INFINITY;
                    int arg = h0 * w + w0;
                    for (int a = h0; a < h1; a++) {
                        for (int b = w0; b < w1; b++) {
                            double v = CpuBackend.load(xs, t, xb + (long) a * w + b);
                            if (v > best || Double.isNaN(v)) {
                                best = v;
                                arg = a * w + b;
                                if (Double.isNaN(v)) {
                                    a = h1;
                                    break;
                                }
                            }
                        }
                    }
                    CpuBackend.store(ys, t, yb + (long) i * wo + j, best);
                    if (is != null) {
                        is.setAtIndex(ValueLayout.JAVA_INT, ib + (long) i * wo + j, arg);
                    }
                }
            }
        });
    }

    /** The first output column whose window lies wholly inside the input row (from it to {@link #interiorTo}). */
    private static int interiorFrom(int wo, PoolParams p) {
        return Math.min(wo, (p.padW() + p.strideW() - 1) / p.strideW());
    }

    /** The end of the output columns whose window lies wholly inside the row; the few others are clipped. */
    private static int interiorTo(int w, int wo, PoolParams p) {
        int span = w - p.kernelW() + p.padW();
        return Math.max(interiorFrom(wo, p), Math.min(wo, span >= 0 ? span / p.strideW() + 1 : 0));
    }

    /**
     * float32 max pooling without the argmax (inference): per output row, the window's input rows
     * are reduced elementwise with the Vector API into a row of column maxima, then each output
     * takes the maximum of its window's columns. NaN-propagating, as the scan with indices is.
     */
    private static void maxPoolValues(Tensor x, PoolParams p, Tensor y) {
        int planes = x.shape(0) * x.shape(1);
        int h = x.shape(2);
        int w = x.shape(3);
        int ho = y.shape(2);
        int wo = y.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        int sw = p.strideW();
        int kw = p.kernelW();
        int pw = p.padW();
        int jLo = interiorFrom(wo, p);
        int jHi = interiorTo(w, wo, p);
        int[] strideMap = FloatKernels.strideMap(sw);
        CpuThreads.parallelRange(planes, Math.max(1, MIN_CHUNK / ((long) h * w)), (start, end) -> {
            // a vector longer than the row: windowMax's stride-2 taps read one element past it
            float[] cols = new float[w + CpuVectors.FLOAT.length()];
            float[] row = new float[wo];
            for (long pl = start; pl < end; pl++) {
                long xb = x.offset() + pl * h * w;
                long yb = y.offset() + pl * ho * wo;
                for (int i = 0; i < ho; i++) {
                    int h0 = Math.max(i * p.strideH() - p.padH(), 0);
                    int h1 = Math.min(i * p.strideH() - p.padH() + p.kernelH(), h);
                    MemorySegment.copy(xs, ValueLayout.JAVA_FLOAT, (xb + (long) h0 * w) * Float.BYTES, cols, 0, w);
                    for (int a = h0 + 1; a < h1; a++) {
                        FloatKernels.maxInto(cols, xs, xb + (long) a * w, w);
                    }
                    for (int j = 0; j < jLo; j++) {
                        row[j] = clippedWindowMax(cols, w, j * sw - pw, kw);
                    }
                    FloatKernels.windowMax(cols, kw, sw, -pw, strideMap, row, jLo, jHi);
                    for (int j = jHi; j < wo; j++) {
                        row[j] = clippedWindowMax(cols, w, j * sw - pw, kw);
                    }
                    MemorySegment.copy(row, 0, ys, ValueLayout.JAVA_FLOAT, (yb + (long) i * wo) * Float.BYTES, wo);
                }
            }
        });
    }

    /**
     * float32 max pooling with the argmax (training), the same values and indices as the scan
     * above: the result of a window is the element with the largest value, NaN above every
     * number, and of those the first in row-major order (the smallest flat index h·W + w), its
     * own bits (so of −0 and +0 the first). That choice splits into columns, then rows: per output
     * row, the window's input rows reduce elementwise to each column's first maximum and its
     * index ({@link FloatKernels#argmaxDown}), then each output picks, among its window's columns,
     * the largest value with the smallest index ({@link FloatKernels#windowArgmax}).
     */
    private static void maxPoolArgmax(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        int planes = x.shape(0) * x.shape(1);
        int h = x.shape(2);
        int w = x.shape(3);
        int ho = y.shape(2);
        int wo = y.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        MemorySegment is = indices.segment();
        int sw = p.strideW();
        int kw = p.kernelW();
        int pw = p.padW();
        int jLo = interiorFrom(wo, p);
        int jHi = interiorTo(w, wo, p);
        int[] strideMap = FloatKernels.strideMap(sw);
        CpuThreads.parallelRange(planes, Math.max(1, MIN_CHUNK / ((long) h * w)), (start, end) -> {
            // a vector longer than the row: windowArgmax's stride-2 taps read one element past it
            float[] cols = new float[w + CpuVectors.FLOAT.length()];
            int[] colArg = new int[cols.length];
            float[] row = new float[wo];
            int[] rowArg = new int[wo];
            for (long pl = start; pl < end; pl++) {
                long xb = x.offset() + pl * h * w;
                long yb = y.offset() + pl * ho * wo;
                long ib = indices.offset() + pl * ho * wo;
                for (int i = 0; i < ho; i++) {
                    int h0 = Math.max(i * p.strideH() - p.padH(), 0);
                    int h1 = Math.min(i * p.strideH() - p.padH() + p.kernelH(), h);
                    FloatKernels.argmaxDown(xs, xb, w, h0, h1, cols, colArg);
                    for (int j = 0; j < jLo; j++) {
                        clippedWindowArgmax(cols, colArg, w, j * sw - pw, kw, row, rowArg, j);
                    }
                    FloatKernels.windowArgmax(cols, colArg, kw, sw, -pw, strideMap, row, rowArg, jLo, jHi);
                    for (int j = jHi; j < wo; j++) {
                        clippedWindowArgmax(cols, colArg, w, j * sw - pw, kw, row, rowArg, j);
                    }
                    MemorySegment.copy(row, 0, ys, ValueLayout.JAVA_FLOAT, (yb + (long) i * wo) * Float.BYTES, wo);
                    MemorySegment.copy(rowArg, 0, is, ValueLayout.JAVA_INT, (ib + (long) i * wo) * Integer.BYTES, wo);
                }
            }
        });
    }

    /** {@link FloatKernels#windowArgmax} of one window clipped to [0, w), into row[j] and rowArg[j]. */
    private static void clippedWindowArgmax(float[] cols, int[] colArg, int w, int start, int k, float[] row,
                                            int[] rowArg, int j) {
        int b0 = Math.max(start, 0);
        int b1 = Math.min(start + k, w);
        float best = cols[b0];
        int arg = colArg[b0];
        for (int b = b0 + 1; b < b1; b++) {
            if (FloatKernels.comesFirst(cols[b], colArg[b], best, arg)) {
                best = cols[b];
                arg = colArg[b];
            }
        }
        row[j] = best;
        rowArg[j] = arg;
    }

    /** max of cols[start, start + k) clipped to [0, w) (a window overhanging the padding). */
    private static float clippedWindowMax(float[] cols, int w, int start, int k) {
        int b1 = Math.min(start + k, w);
        float best = cols[Math.max(start, 0)];
        for (int b = Math.max(start, 0) + 1; b < b1; b++) {
            best = Math.max(best, cols[b]);
        }
        return best;
    }

    static void maxPoolBackward(Tensor dy, Tensor indices, Tensor dx) {
        int planes = dy.shape(0) * dy.shape(1);
        int hw = dx.shape(2) * dx.shape(3);
        int howo = dy.shape(2) * dy.shape(3);
        MemorySegment dys = dy.segment();
        MemorySegment dxs = dx.segment();
        MemorySegment is = indices.segment();
        DType t = dy.dtype();
        if (t == DType.FLOAT32) {
            // float sums are the double sums rounded (53 ≥ 2·24 + 2 bits): the generic loop's values
            CpuThreads.parallelFor(planes, pl -> {
                long xb = dx.offset() + (long) pl * hw;
                long yb = dy.offset() + (long) pl * howo;
                long ib = indices.offset() + (long) pl * howo;
                for (int k = 0; k < howo; k++) {
                    long target = xb + is.getAtIndex(ValueLayout.JAVA_INT, ib + k);
                    dxs.setAtIndex(ValueLayout.JAVA_FLOAT, target, dxs.getAtIndex(ValueLayout.JAVA_FLOAT, target)
                            + dys.getAtIndex(ValueLayout.JAVA_FLOAT, yb + k));
                }
            });
            return;
        }
        CpuThreads.parallelFor(planes, pl -> {
            long xb = dx.offset() + (long) pl * hw;
            long yb = dy.offset() + (long) pl * howo;
            long ib = indices.offset() + (long) pl * howo;
            for (int k = 0; k < howo; k++) {
                long target = xb + is.getAtIndex(ValueLayout.JAVA_INT, ib + k);
                CpuBackend.store(dxs, t, target, CpuBackend.load(dxs, t, target) + CpuBackend.load(dys, t, yb + k));
            }
        });
    }

    /**
     * Average pooling over explicit windows, or (backward) its adjoint: with {@code adjoint}
     * false y = avg(x); with it true, x += scatter of y / divisor.
     */
    static void avgPool(Tensor x, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd, boolean divisorFromWindow,
                        Tensor y, boolean adjoint) {
        int planes = x.shape(0) * x.shape(1);
        int h = x.shape(2);
        int w = x.shape(3);
        int ho = hStart.length;
        int wo = wStart.length;
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        DType t = x.dtype();
        CpuThreads.parallelFor(planes, pl -> {
            long xb = x.offset() + (long) pl * h * w;
            long yb = y.offset() + (long) pl * ho * wo;
            for (int i = 0; i < ho; i++) {
                int h0 = Math.max(hStart[i], 0);
                int h1 = Math.min(hEnd[i], h);
                for (int j = 0; j < wo; j++) {
                    int w0 = Math.max(wStart[j], 0);
                    int w1 = Math.min(wEnd[j], w);
                    double div = divisorFromWindow
                            ? (double) (hEnd[i] - hStart[i]) * (wEnd[j] - wStart[j])
                            : (double) (h1 - h0) * (w1 - w0);
                    long yi = yb + (long) i * wo + j;
                    if (!adjoint) {
                        double s = 0;
                        for (int a = h0; a < h1; a++) {
                            for (int b = w0; b < w1; b++) {
                                s += CpuBackend.load(xs, t, xb + (long) a * w + b);
                            }
                        }
                        CpuBackend.store(ys, t, yi, s / div);
                    } else {
                        double g = CpuBackend.load(ys, t, yi) / div;
                        for (int a = h0; a < h1; a++) {
                            for (int b = w0; b < w1; b++) {
                                long xi = xb + (long) a * w + b;
                                CpuBackend.store(xs, t, xi, CpuBackend.load(xs, t, xi) + g);
                            }
                        }
                    }
                }
            }
        });
    }

    /**
     * Max pooling of a contiguous float32 channels-last x [N, H, W, C] with the argmax, the same
     * semantics and indices as the NCHW {@link #maxPool} (−∞ padding, the first maximum of the
     * window's row-major scan, a NaN wins and ends the scan; the index is h·W + w within the
     * channel's plane), vectorised across channels. Parallel over output rows. Planes of 2^24
     * pixels and more (whose indices a float lane cannot hold exactly) are refused: the caller
     * takes the permuting path for them.
     */
    static void maxPoolNhwc(Tensor x, dir4j.engine.Backend.PoolParams p, Tensor y, Tensor indices) {
        int n = x.shape(0);
        int h = x.shape(1);
        int w = x.shape(2);
        int c = x.shape(3);
        int ho = y.shape(1);
        int wo = y.shape(2);
        MemorySegment xs = Sgemm.forWorkers(x.segment());
        MemorySegment ys = Sgemm.forWorkers(y.segment());
        MemorySegment is = indices == null ? null : Sgemm.forWorkers(indices.segment());
        long xo = x.offset();
        long yo = y.offset();
        long io = indices == null ? 0 : indices.offset();
        CpuThreads.parallelFor(n * ho, u -> {
            int img = u / ho;
            int i = u % ho;
            float[] best = new float[c];
            int[] arg = new int[c];
            float[] argF = new float[c];
            int h0 = i * p.strideH() - p.padH();
            int h1 = Math.min(h0 + p.kernelH(), h);
            h0 = Math.max(h0, 0);
            for (int j = 0; j < wo; j++) {
                int w0 = j * p.strideW() - p.padW();
                int w1 = Math.min(w0 + p.kernelW(), w);
                w0 = Math.max(w0, 0);
                FloatKernels.windowMaxNhwc(xs, xo + (long) img * h * w * c, w, c, h0, h1, w0, w1, best, arg, argF);
                long out = ((long) img * ho + i) * wo + j;
                MemorySegment.copy(best, 0, ys, ValueLayout.JAVA_FLOAT, (yo + out * c) * Float.BYTES, c);
                if (is != null) {
                    MemorySegment.copy(arg, 0, is, ValueLayout.JAVA_INT, (io + out * c) * Integer.BYTES, c);
                }
            }
        });
    }

    /**
     * dx (zeroed by the caller, contiguous [N, H, W, C] float32) += dy routed through the indices of
     * {@link #maxPoolNhwc}; each channel sums its outputs' gradients in row-major output order, as
     * the NCHW {@link #maxPoolBackward} does, so the result has its bits. Parallel over images.
     */
    static void maxPoolNhwcBackward(Tensor dy, Tensor indices, Tensor dx) {
        int n = dx.shape(0);
        int w = dx.shape(2);
        int c = dx.shape(3);
        long hwc = (long) dx.shape(1) * w * c;
        long outs = (long) dy.shape(1) * dy.shape(2);
        MemorySegment dys = Sgemm.forWorkers(dy.segment());
        MemorySegment dxs = Sgemm.forWorkers(dx.segment());
        MemorySegment is = Sgemm.forWorkers(indices.segment());
        CpuThreads.parallelFor(n, img -> {
            long xb = dx.offset() + img * hwc;
            long yb = dy.offset() + img * outs * c;
            long ib = indices.offset() + img * outs * c;
            for (long k = 0; k < outs; k++) {
                for (int ch = 0; ch < c; ch++) {
                    int flat = is.getAtIndex(ValueLayout.JAVA_INT, ib + k * c + ch);
                    long target = xb + (long) flat * c + ch;
                    dxs.setAtIndex(ValueLayout.JAVA_FLOAT, target, dxs.getAtIndex(ValueLayout.JAVA_FLOAT, target)
                            + dys.getAtIndex(ValueLayout.JAVA_FLOAT, yb + k * c + ch));
                }
            }
        });
    }
}
