package dir4j.engine.cpu;

/**
 * The index arithmetic shared by the implicit im2col ({@link Im2colOperand}) and its adjoint
 * ({@link Col2imOutput}): the im2col matrix has rows p = (ci, kh, kw) (the taps) and columns
 * q = (n, oh, ow) (the output pixels); tap p at pixel q reads input
 * {@code x[n, ci, oh·sH − pH + kh·dH, ow·sW − pW + kw·dW]}, or padding.
 *
 * <p>Pixels are walked in runs that share one output row (n, oh): along a run the input column
 * advances by the stride, so with stride 1 a run is one contiguous slice of an input row whose
 * ends only are clipped by the padding.
 */
final class ConvIndex {
    final Conv2dGeometry g;
    private final int outH;
    private final int outW;

    ConvIndex(Conv2dGeometry g) {
        this.g = g;
        this.outH = g.outHeight();
        this.outW = g.outWidth();
    }

    /**
     * Splits the output pixels [q, q+count) into runs within one output row. Run u is
     * {@code runs[4u..4u+3]} = (position from q, image n, output row oh, first output column ow),
     * and {@code runs[4·nRuns]} = count, so run u's length is runs[4(u+1)] − runs[4u]. Needs
     * runs.length ≥ 4·(count+1) in the worst case (outWidth 1). Returns nRuns.
     */
    int outputRowRuns(int q, int count, int[] runs) {
        int n = q / (outH * outW);
        int rem = q - n * outH * outW;
        int oh = rem / outW;
        int ow = rem - oh * outW;
        int u = 0;
        for (int pos = 0; pos < count; u++) {
            runs[4 * u] = pos;
            runs[4 * u + 1] = n;
            runs[4 * u + 2] = oh;
            runs[4 * u + 3] = ow;
            pos += Math.min(outW - ow, count - pos);
            ow = 0;
            if (++oh == outH) {
                oh = 0;
                n++;
            }
        }
        runs[4 * u] = count;
        return u;
    }

    /** A per-thread array big enough for {@link #outputRowRuns} over {@code count} pixels (col2im asks once per tile). */
    static int[] runBuffer(int count) {
        int[] runs = RUNS.get();
        if (runs.length < 4 * (count + 1)) {
            runs = new int[4 * (count + 1)];
            RUNS.set(runs);
        }
        return runs;
    }

    private static final ThreadLocal<int[]> RUNS = ThreadLocal.withInitial(() -> new int[4 * 65]);

    /** The input row that tap reads for output row oh; outside [0, height) means padding. */
    int inputRow(Tap tap, int oh) {
        return oh * g.strideH() - g.padH() + tap.kh * g.dilationH();
    }

    /** The input column that tap reads for output column ow (may lie in the padding). */
    int inputColumn(Tap tap, int ow) {
        return ow * g.strideW() - g.padW() + tap.kw * g.dilationW();
    }

    /** Float index of x[n, ci, ih, iw] in a contiguous NCHW input starting at off. */
    long inputIndex(long off, int n, int ci, int ih, int iw) {
        return off + (((long) n * g.inChannels() + ci) * g.height() + ih) * g.width() + iw;
    }

    /** First l in [0, len) whose input column iw0 + l·strideW is ≥ 0 (len if none). */
    int validFrom(int iw0, int len) {
        return iw0 >= 0 ? 0 : Math.min(len, (-iw0 + g.strideW() - 1) / g.strideW());
    }

    /** One past the last l in [0, len) whose input column iw0 + l·strideW is < width (0 if none). */
    int validTo(int iw0, int len) {
        return iw0 >= g.width() ? 0 : Math.min(len, (g.width() - 1 - iw0) / g.strideW() + 1);
    }

    /** Rows of a plane padded by the padding on both sides (the gathers' and scatters' copies). */
    int paddedHeight() {
        return g.height() + 2 * g.padH();
    }

    /** Columns of a padded plane. */
    int paddedWidth() {
        return g.width() + 2 * g.padW();
    }

    /**
     * Where output pixel q's window starts in a padded NCHW copy (planes of {@link #paddedHeight}
     * × {@link #paddedWidth}); tap (ci, kh, kw) reads {@link #paddedTap} further on. Int
     * arithmetic: callers keep the copy under 2³¹ floats.
     */
    int paddedPixel(int q) {
        int spatial = outH * outW;
        int n = q / spatial;
        int oh = (q - n * spatial) / outW;
        int ow = q - n * spatial - oh * outW;
        return (n * g.inChannels() * paddedHeight() + oh * g.strideH()) * paddedWidth() + ow * g.strideW();
    }

    /** The offset tap adds to {@link #paddedPixel}. */
    int paddedTap(Tap tap) {
        return (tap.ci * paddedHeight() + tap.kh * g.dilationH()) * paddedWidth() + tap.kw * g.dilationW();
    }

    /** A tap p decoded as (ci, kh, kw), stepped along p without divisions. */
    Tap tap(int p) {
        return new Tap(p);
    }

    /** A row p of the im2col matrix, decoded as (ci, kh, kw). */
    final class Tap {
        int ci;
        int kh;
        int kw;

        private Tap(int p) {
            int kk = g.kernelH() * g.kernelW();
            ci = p / kk;
            kh = (p - ci * kk) / g.kernelW();
            kw = p - ci * kk - kh * g.kernelW();
        }

        /** Moves to tap p + 1. */
        void next() {
            if (++kw == g.kernelW()) {
                kw = 0;
                if (++kh == g.kernelH()) {
                    kh = 0;
                    ci++;
                }
            }
        }
    }
}
