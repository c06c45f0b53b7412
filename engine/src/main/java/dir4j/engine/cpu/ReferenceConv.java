package dir4j.engine.cpu;

import dir4j.engine.Tensor;

/**
 * Direct convolution loops for non-float32 tensors: the float64 reference path that gradient
 * checks run on. Never used for float32.
 */
final class ReferenceConv {
    private ReferenceConv() {}

    private static double ld(Tensor t, long i) {
        return CpuBackend.load(t.segment(), t.dtype(), t.offset() + i);
    }

    private static void st(Tensor t, long i, double v) {
        CpuBackend.store(t.segment(), t.dtype(), t.offset() + i, v);
    }

    /** Visits every (output position, input position, weight position) triple. */
    private interface Tap {
        void accept(long xi, long wi, long yi);
    }

    private static void forEachTap(Conv2dGeometry g, int n, int co, Tap tap) {
        int ho = g.outHeight();
        int wo = g.outWidth();
        for (int ci = 0; ci < g.inChannels(); ci++) {
            for (int kh = 0; kh < g.kernelH(); kh++) {
                for (int kw = 0; kw < g.kernelW(); kw++) {
                    long wi = (((long) co * g.inChannels() + ci) * g.kernelH() + kh) * g.kernelW() + kw;
                    for (int oh = 0; oh < ho; oh++) {
                        int ih = oh * g.strideH() - g.padH() + kh * g.dilationH();
                        if (ih < 0 || ih >= g.height()) {
                            continue;
                        }
                        for (int ow = 0; ow < wo; ow++) {
                            int iw = ow * g.strideW() - g.padW() + kw * g.dilationW();
                            if (iw < 0 || iw >= g.width()) {
                                continue;
                            }
                            long xi = (((long) n * g.inChannels() + ci) * g.height() + ih) * g.width() + iw;
                            long yi = (((long) n * g.outChannels() + co) * ho + oh) * wo + ow;
                            tap.accept(xi, wi, yi);
                        }
                    }
                }
            }
        }
    }

    static void forward(Conv2dGeometry g, Tensor x, Tensor w, Tensor y) {
        CpuThreads.parallelFor(g.batch() * g.outChannels(), job -> {
            int n = job / g.outChannels();
            int co = job % g.outChannels();
            long base = ((long) n * g.outChannels() + co) * g.outHeight() * g.outWidth();
            for (long i = 0; i < (long) g.outHeight() * g.outWidth(); i++) {
                st(y, base + i, 0);
            }
            forEachTap(g, n, co, (xi, wi, yi) -> st(y, yi, ld(y, yi) + ld(x, xi) * ld(w, wi)));
        });
    }

    static void backwardData(Conv2dGeometry g, Tensor dy, Tensor w, Tensor dx) {
        for (long i = 0; i < dx.numel(); i++) {
            st(dx, i, 0);
        }
        CpuThreads.parallelFor(g.batch(), n -> {
            for (int co = 0; co < g.outChannels(); co++) {
                forEachTap(g, n, co, (xi, wi, yi) -> st(dx, xi, ld(dx, xi) + ld(dy, yi) * ld(w, wi)));
            }
        });
    }

    static void backwardFilter(Conv2dGeometry g, Tensor x, Tensor dy, Tensor dw) {
        CpuThreads.parallelFor(g.outChannels(), co -> {
            long per = (long) g.inChannels() * g.kernelH() * g.kernelW();
            for (long i = 0; i < per; i++) {
                st(dw, co * per + i, 0);
            }
            for (int n = 0; n < g.batch(); n++) {
                forEachTap(g, n, co, (xi, wi, yi) -> st(dw, wi, ld(dw, wi) + ld(x, xi) * ld(dy, yi)));
            }
        });
    }
}
