package dir4j.engine.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * Reference loops for the tests, in double precision, plus guarded native buffers: the kernels
 * run with the Vector API's bounds checks off, so every output is allocated between sentinel
 * zones that a test checks afterwards. Naive loops belong here and nowhere else.
 */
final class NaiveKernels {
    /** Floats of sentinel on each side of a guarded buffer: more than one vector, more than one tile row. */
    static final int GUARD = 80;
    /** A NaN with a recognisable payload, so a stray write of any real value is seen. */
    static final float SENTINEL = Float.intBitsToFloat(0x7fc0dead);

    private NaiveKernels() {}

    /** A native buffer of {@code size} floats between two sentinel zones. */
    record Guarded(MemorySegment whole, MemorySegment body, long size) {
        static Guarded allocate(Arena arena, long size) {
            MemorySegment whole = arena.allocate((size + 2L * GUARD) * Float.BYTES, 64);
            for (long i = 0; i < size + 2L * GUARD; i++) {
                whole.setAtIndex(ValueLayout.JAVA_FLOAT, i, SENTINEL);
            }
            return new Guarded(whole, whole.asSlice((long) GUARD * Float.BYTES, size * Float.BYTES), size);
        }

        float get(long i) {
            return body.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        }

        void set(long i, float v) {
            body.setAtIndex(ValueLayout.JAVA_FLOAT, i, v);
        }

        void fillRandom(SplittableRandom rnd) {
            for (long i = 0; i < size; i++) {
                set(i, (float) (rnd.nextDouble() * 2 - 1));
            }
        }

        void fill(float v) {
            for (long i = 0; i < size; i++) {
                set(i, v);
            }
        }

        /** Null if both sentinel zones are intact, else where the first overwrite is. */
        String guardDamage() {
            for (long i = 0; i < GUARD; i++) {
                if (Float.floatToRawIntBits(whole.getAtIndex(ValueLayout.JAVA_FLOAT, i)) != 0x7fc0dead) {
                    return "written " + (GUARD - i) + " floats before the buffer";
                }
                long j = GUARD + size + i;
                if (Float.floatToRawIntBits(whole.getAtIndex(ValueLayout.JAVA_FLOAT, j)) != 0x7fc0dead) {
                    return "written " + i + " floats past the buffer";
                }
            }
            return null;
        }
    }

    /**
     * C = alpha·A·B + beta·C in double with A(i,p) = a[aOff + i·aRs + p·aCs], B likewise, C(i,j) =
     * c[cOff + i·ldc + j]; also returns per element the bound on float32 rounding error of a
     * k-term dot product, γ·(|alpha|·Σ|a||b| + |beta·c|) with γ = (k + 2)·2⁻²³.
     */
    static double[][] sgemm(int m, int n, int k, float alpha, Guarded a, long aOff, long aRs, long aCs,
            Guarded b, long bOff, long bRs, long bCs, float beta, Guarded c, long cOff, long ldc, double[][] bound) {
        double[][] out = new double[m][n];
        double gamma = (k + 2) * 0x1p-23;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0;
                double abs = 0;
                for (int p = 0; p < k; p++) {
                    double t = (double) a.get(aOff + i * aRs + p * aCs) * b.get(bOff + p * bRs + j * bCs);
                    acc += t;
                    abs += Math.abs(t);
                }
                double old = beta == 0 ? 0 : beta * (double) c.get(cOff + i * ldc + j);
                out[i][j] = alpha * acc + old;
                bound[i][j] = gamma * (Math.abs(alpha) * abs + Math.abs(old)) + 1e-30;
            }
        }
        return out;
    }

    /** y[n,co,oh,ow] = Σ x[n,ci,ih,iw]·w[co,ci,kh,kw], and |terms| summed into absOut. */
    static double[] convForward(Conv2dGeometry g, Guarded x, Guarded w, double[] absOut) {
        int ho = g.outHeight();
        int wo = g.outWidth();
        double[] y = new double[(int) g.outputSize()];
        for (int n = 0; n < g.batch(); n++) {
            for (int co = 0; co < g.outChannels(); co++) {
                for (int oh = 0; oh < ho; oh++) {
                    for (int ow = 0; ow < wo; ow++) {
                        double acc = 0;
                        double abs = 0;
                        for (int ci = 0; ci < g.inChannels(); ci++) {
                            for (int kh = 0; kh < g.kernelH(); kh++) {
                                for (int kw = 0; kw < g.kernelW(); kw++) {
                                    int ih = oh * g.strideH() - g.padH() + kh * g.dilationH();
                                    int iw = ow * g.strideW() - g.padW() + kw * g.dilationW();
                                    if (ih < 0 || ih >= g.height() || iw < 0 || iw >= g.width()) {
                                        continue;
                                    }
                                    double t = (double) x.get(xIndex(g, n, ci, ih, iw))
                                            * w.get(wIndex(g, co, ci, kh, kw));
                                    acc += t;
                                    abs += Math.abs(t);
                                }
                            }
                        }
                        int at = ((n * g.outChannels() + co) * ho + oh) * wo + ow;
                        y[at] = acc;
                        absOut[at] = abs;
                    }
                }
            }
        }
        return y;
    }

    /** dx[n,ci,ih,iw] = Σ over every (co, kh, kw, oh, ow) that read it of dy·w. */
    static double[] convBackwardData(Conv2dGeometry g, Guarded dy, Guarded w, double[] absOut) {
        double[] dx = new double[(int) g.inputSize()];
        forEachTap(g, (n, co, oh, ow, ci, kh, kw, ih, iw) -> {
            double t = (double) dy.get(yIndex(g, n, co, oh, ow)) * w.get(wIndex(g, co, ci, kh, kw));
            int at = (int) xIndex(g, n, ci, ih, iw);
            dx[at] += t;
            absOut[at] += Math.abs(t);
        });
        return dx;
    }

    /** dw[co,ci,kh,kw] = Σ over the batch and output pixels of dy·x. */
    static double[] convBackwardFilter(Conv2dGeometry g, Guarded x, Guarded dy, double[] absOut) {
        double[] dw = new double[(int) g.weightSize()];
        forEachTap(g, (n, co, oh, ow, ci, kh, kw, ih, iw) -> {
            double t = (double) dy.get(yIndex(g, n, co, oh, ow)) * x.get(xIndex(g, n, ci, ih, iw));
            int at = (int) wIndex(g, co, ci, kh, kw);
            dw[at] += t;
            absOut[at] += Math.abs(t);
        });
        return dw;
    }

    interface TapVisitor {
        void visit(int n, int co, int oh, int ow, int ci, int kh, int kw, int ih, int iw);
    }

    /** Every (output element, tap) pair whose input position is inside the image. */
    static void forEachTap(Conv2dGeometry g, TapVisitor v) {
        for (int n = 0; n < g.batch(); n++) {
            for (int co = 0; co < g.outChannels(); co++) {
                for (int oh = 0; oh < g.outHeight(); oh++) {
                    for (int ow = 0; ow < g.outWidth(); ow++) {
                        for (int ci = 0; ci < g.inChannels(); ci++) {
                            for (int kh = 0; kh < g.kernelH(); kh++) {
                                for (int kw = 0; kw < g.kernelW(); kw++) {
                                    int ih = oh * g.strideH() - g.padH() + kh * g.dilationH();
                                    int iw = ow * g.strideW() - g.padW() + kw * g.dilationW();
                                    if (ih >= 0 && ih < g.height() && iw >= 0 && iw < g.width()) {
                                        v.visit(n, co, oh, ow, ci, kh, kw, ih, iw);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static long xIndex(Conv2dGeometry g, int n, int ci, int ih, int iw) {
        return (((long) n * g.inChannels() + ci) * g.height() + ih) * g.width() + iw;
    }

    static long yIndex(Conv2dGeometry g, int n, int co, int oh, int ow) {
        return (((long) n * g.outChannels() + co) * g.outHeight() + oh) * g.outWidth() + ow;
    }

    static long wIndex(Conv2dGeometry g, int co, int ci, int kh, int kw) {
        return (((long) co * g.inChannels() + ci) * g.kernelH() + kh) * g.kernelW() + kw;
    }
}
