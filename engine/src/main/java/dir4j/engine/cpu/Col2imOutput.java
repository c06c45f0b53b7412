package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The data gradient's output: the product Wᵀ·dY is the im2col matrix of dX (rows the taps
 * p = (ci, kh, kw), columns the output pixels q = (n, oh, ow), see {@link ConvIndex}), and each
 * tile of it is scatter-added into dX where that tap read the input, skipping padding. No column
 * matrix is materialised.
 *
 * <p>The kH·kW taps of one channel add into the same pixels, and so do neighbouring columns, so
 * tasks get whole channels ({@link #rowGroup}) and never split columns: each task then owns its
 * channels' pixels of dX in every image, and no two threads ever write the same float.
 */
final class Col2imOutput implements GemmOutput {
    private final ConvIndex index;
    private final MemorySegment dx;
    private final long dxOff;
    /**
     * For the scatters: dX's sums with a padding ring, laid out as {@link ConvIndex#paddedPixel}
     * says, zero at the start; null when tiles are added run by run straight into dX.
     */
    private final float[] padded;

    /**
     * dX at dxOff receives the product; it must be zero before the product starts unless the
     * tiles go through the padded sums ({@link #scatters}), which {@link #finish} copies out.
     */
    Col2imOutput(Conv2dGeometry g, MemorySegment dx, long dxOff) {
        this(g, dx, dxOff, Im2colOperand.usesGather(g));
    }

    /** With the store chosen: by scatters into padded sums, or run by run into dX (tests compare the two). */
    Col2imOutput(Conv2dGeometry g, MemorySegment dx, long dxOff, boolean scatter) {
        this.index = new ConvIndex(g);
        this.dx = dx;
        this.dxOff = dxOff;
        this.padded = scatter ? zeroedSums(g, index.paddedHeight() * index.paddedWidth()) : null;
    }

    /**
     * Whether tiles are scatter-added into padded sums ({@link Im2colOperand#usesGather}'s
     * convolutions: strided ones, whose runs were added element by element, 53 % of the strided
     * 3×3 backward-data's profile, and narrow ones); then dX need not be zeroed first, and
     * {@link #finish} must run after the product.
     */
    boolean scatters() {
        return padded != null;
    }

    private static float[] zeroedSums(Conv2dGeometry g, int plane) {
        int floats = g.batch() * g.inChannels() * plane;
        float[] sums = PanelPacking.scratch(SUMS, floats);
        CpuThreads.parallelRange(floats, 1 << 16, (s, e) -> Arrays.fill(sums, (int) s, (int) e, 0f));
        return sums;
    }

    /** Per calling thread: the padded sums ({@link PanelPacking#scratch}). */
    private static final ThreadLocal<float[]> SUMS = ThreadLocal.withInitial(() -> new float[0]);

    /** After the product, with {@link #scatters}: dX = the interior of the padded sums. */
    void finish() {
        if (padded == null) {
            return;
        }
        Conv2dGeometry g = index.g;
        int hp = index.paddedHeight();
        int wp = index.paddedWidth();
        int h = g.height();
        int w = g.width();
        CpuThreads.parallelRange((long) g.batch() * g.inChannels(), Math.max(1, (1 << 14) / (hp * wp)), (s, e) -> {
            for (long pl = s; pl < e; pl++) {
                for (int r = 0; r < h; r++) {
                    MemorySegment.copy(padded, (int) pl * hp * wp + (r + g.padH()) * wp + g.padW(), dx,
                            ValueLayout.JAVA_FLOAT_UNALIGNED, (dxOff + (pl * h + r) * w) * Float.BYTES, w);
                }
            }
        });
    }

    @Override
    public int rowGroup() {
        return index.g.kernelH() * index.g.kernelW();
    }

    @Override
    public boolean columnsSplittable() {
        return false;
    }

    /** Adds every tile (depth blocks are partial sums, and the scatter is additive anyway). */
    @Override
    public void store(float[] tile, int ts, int p0, int taps, int q0, int pixels, boolean first) {
        if (padded != null) {
            scatter(tile, ts, p0, taps, q0, pixels);
            return;
        }
        int[] runs = ConvIndex.runBuffer(pixels);
        int nRuns = index.outputRowRuns(q0, pixels, runs);
        ConvIndex.Tap tap = index.tap(p0);
        for (int r = 0; r < taps; r++, tap.next()) {
            for (int u = 0; u < nRuns; u++) {
                int pos = runs[4 * u];
                addTapRun(tile, r * ts + pos, tap, runs[4 * u + 1], runs[4 * u + 2], runs[4 * u + 3],
                        runs[4 * u + 4] - pos);
            }
        }
    }

    /**
     * {@link #store} into the padded sums: per tap, a gather, an add and a scatter per vector of
     * pixels. One tap reads distinct input pixels at distinct output pixels, so no vector scatters
     * twice to one float; taps that read the padding add into the ring, which is never copied out.
     */
    private void scatter(float[] tile, int ts, int p0, int taps, int q0, int pixels) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        int w = Sgemm.ceilDiv(pixels, vl) * vl;
        int[] lane = Im2colOperand.laneBuffer(w);
        for (int l = 0; l < w; l++) {
            lane[l] = l < pixels ? index.paddedPixel(q0 + l) : 0;
        }
        ConvIndex.Tap tap = index.tap(p0);
        for (int r = 0; r < taps; r++, tap.next()) {
            int off = index.paddedTap(tap);
            for (int v = 0; v < pixels; v += vl) {
                if (v + vl <= pixels) {
                    FloatVector.fromArray(s, padded, off, lane, v).add(FloatVector.fromArray(s, tile, r * ts + v))
                            .intoArray(padded, off, lane, v);
                } else {
                    VectorMask<Float> m = s.indexInRange(v, pixels);
                    FloatVector.fromArray(s, padded, off, lane, v, m)
                            .add(FloatVector.fromArray(s, tile, r * ts + v, m)).intoArray(padded, off, lane, v, m);
                }
            }
        }
    }

    /** dX[the pixels tap read along the run of len output pixels from (n, oh, ow0)] += tile[t …]. */
    private void addTapRun(float[] tile, int t, ConvIndex.Tap tap, int n, int oh, int ow0, int len) {
        Conv2dGeometry g = index.g;
        int ih = index.inputRow(tap, oh);
        int iw0 = index.inputColumn(tap, ow0);
        int lo = index.validFrom(iw0, len);
        int hi = index.validTo(iw0, len);
        if (ih < 0 || ih >= g.height() || hi <= lo) {
            return;
        }
        long at = index.inputIndex(dxOff, n, tap.ci, ih, iw0);
        int sw = g.strideW();
        if (sw == 1) {
            GemmOutput.storeRun(tile, t + lo, dx, at + lo, hi - lo, 1f, 1f, true);
        } else {
            for (int l = lo; l < hi; l++) {
                long i = at + (long) l * sw;
                dx.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i,
                        dx.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i) + tile[t + l]);
            }
        }
    }
}
