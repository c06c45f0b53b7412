package dir4j.engine.cpu;

import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Max and average pooling over contiguous NCHW tensors, parallel over (n, c) planes. */
final class PoolKernels {
    private PoolKernels() {}

    static void maxPool(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        int planes = x.shape(0) * x.shape(1);
        int h = x.shape(2);
        int w = x.shape(3);
        int ho = y.shape(2);
        int wo = y.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        MemorySegment is = indices.segment();
        DType t = x.dtype();
        CpuThreads.parallelFor(planes, pl -> {
            long xb = x.offset() + (long) pl * h * w;
            long yb = y.offset() + (long) pl * ho * wo;
            long ib = indices.offset() + (long) pl * ho * wo;
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
                    is.setAtIndex(ValueLayout.JAVA_INT, ib + (long) i * wo + j, arg);
                }
            }
        });
    }

    static void maxPoolBackward(Tensor dy, Tensor indices, Tensor dx) {
        int planes = dy.shape(0) * dy.shape(1);
        int hw = dx.shape(2) * dx.shape(3);
        int howo = dy.shape(2) * dy.shape(3);
        MemorySegment dys = dy.segment();
        MemorySegment dxs = dx.segment();
        MemorySegment is = indices.segment();
        DType t = dy.dtype();
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
}
