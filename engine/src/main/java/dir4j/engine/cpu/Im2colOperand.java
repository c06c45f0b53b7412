package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The im2col matrix of a convolution's input, packed straight from the image and never built:
 * X(p, q) with rows the taps p = (ci, kh, kw) and columns the output pixels q = (n, oh, ow) is the
 * input value tap p reads at pixel q, or 0 in the padding ({@link ConvIndex}). The forward
 * convolution is W·X, the filter gradient dY·Xᵀ. Pixels are packed in output-row runs, so with
 * stride 1 each run is a vector copy of one input row slice.
 */
final class Im2colOperand implements GemmOperand {
    /** Output width below which {@link #usesGather} packs by gathers: a panel then spans several short runs. */
    static final int GATHER_BELOW_WIDTH = 16;
    /** Largest padded copy (floats) for the gathers; bigger inputs take the run copies. */
    static final long GATHER_MAX_FLOATS = 1L << 24;

    private final ConvIndex index;
    private final MemorySegment x;
    private final long xOff;
    /**
     * For the gathers: the input with its padding ring, plane by plane (n, ci) as {@link ConvIndex#paddedPixel} lays it out, or null
     * when the panels are packed by run copies.
     */
    private final float[] padded;

    Im2colOperand(Conv2dGeometry g, MemorySegment x, long xOff) {
        this(g, x, xOff, usesGather(g));
    }

    /** With the packing chosen: by gathers from a padded copy, or by run copies (tests compare the two). */
    Im2colOperand(Conv2dGeometry g, MemorySegment x, long xOff, boolean gather) {
        this.index = new ConvIndex(g);
        this.x = x;
        this.xOff = xOff;
        this.padded = gather ? paddedCopy(g, x, xOff, index.paddedHeight(), index.paddedWidth()) : null;
    }

    /**
     * Whether the panels are packed by vector gathers from a padded copy of the input instead of
     * run by run: for strided convolutions and output rows narrower than
     * {@link #GATHER_BELOW_WIDTH} (ResNet's 3×3s on 7×7 maps: a 32-pixel panel row was five
     * clipped copies of at most seven floats, and packing took a third of the convolution's time),
     * when the copy stays under {@link #GATHER_MAX_FLOATS}.
     */
    static boolean usesGather(Conv2dGeometry g) {
        long floats = (long) g.batch() * g.inChannels() * (g.height() + 2L * g.padH()) * (g.width() + 2L * g.padW());
        return (g.strideW() > 1 || g.outWidth() < GATHER_BELOW_WIDTH) && floats <= GATHER_MAX_FLOATS;
    }

    /** x (NCHW at xOff) copied into the calling thread's scratch array with a zero ring of the padding. */
    private static float[] paddedCopy(Conv2dGeometry g, MemorySegment x, long xOff, int hp, int wp) {
        int planes = g.batch() * g.inChannels();
        int h = g.height();
        int wd = g.width();
        int ph = g.padH();
        int pw = g.padW();
        float[] out = PanelPacking.scratch(PADDED, planes * hp * wp);
        CpuThreads.parallelRange(planes, Math.max(1, (1 << 14) / (hp * wp)), (s, e) -> {
            for (int pl = (int) s; pl < e; pl++) {
                int at = pl * hp * wp;
                Arrays.fill(out, at, at + ph * wp, 0f);
                Arrays.fill(out, at + (ph + h) * wp, at + hp * wp, 0f);
                for (int r = 0; r < h; r++) {
                    int row = at + (ph + r) * wp;
                    Arrays.fill(out, row, row + pw, 0f);
                    MemorySegment.copy(x, ValueLayout.JAVA_FLOAT_UNALIGNED,
                            (xOff + ((long) pl * h + r) * wd) * Float.BYTES, out, row + pw, wd);
                    Arrays.fill(out, row + pw + wd, row + wp, 0f);
                }
            }
        });
        return out;
    }

    /** Per calling thread: the padded copy ({@link PanelPacking#scratch}). */
    private static final ThreadLocal<float[]> PADDED = ThreadLocal.withInitial(() -> new float[0]);
    /** Per packing thread: the lane offsets of one panel. */
    private static final ThreadLocal<int[]> LANES = ThreadLocal.withInitial(() -> new int[Sgemm.NR]);

    /** A per-thread int array of length ≥ w for a panel's lane offsets. */
    static int[] laneBuffer(int w) {
        int[] l = LANES.get();
        if (l.length < w) {
            l = new int[w];
            LANES.set(l);
        }
        return l;
    }

    /** Column panels (the forward's B): lanes are output pixels, depth the taps. */
    @Override
    public void packColumnPanels(float[] dst, int dOff, int p0, int taps, int q0, int pixels, int w) {
        if (padded != null && w % Sgemm.SPECIES.length() == 0) {
            gatherColumnPanels(dst, dOff, p0, taps, q0, pixels, w);
            return;
        }
        int[] runs = ConvIndex.runBuffer(w);
        for (int t = 0; t * w < pixels; t++) {
            int lanes = Math.min(w, pixels - t * w);
            int panel = dOff + t * w * taps;
            int nRuns = index.outputRowRuns(q0 + t * w, lanes, runs);
            ConvIndex.Tap tap = index.tap(p0);
            for (int r = 0; r < taps; r++, tap.next()) {
                int rowAt = panel + r * w;
                for (int u = 0; u < nRuns; u++) {
                    int lane = runs[4 * u];
                    copyTapRun(tap, runs[4 * u + 1], runs[4 * u + 2], runs[4 * u + 3], runs[4 * u + 4] - lane,
                            dst, rowAt + lane);
                }
            }
            PanelPacking.zeroLanes(dst, panel, w, lanes, taps);
        }
    }

    /**
     * Row panels (the filter gradient's Bᵀ): lanes are taps, depth the output pixels. Each tap's
     * pixels are contiguous in the input, so the panel's taps are staged one after another and
     * transposed into place.
     */
    @Override
    public void packRowPanels(float[] dst, int dOff, int p0, int taps, int q0, int pixels, int w) {
        if (padded != null && w % Sgemm.SPECIES.length() == 0) {
            gatherRowPanels(dst, dOff, p0, taps, q0, pixels, w);
            return;
        }
        int[] runs = ConvIndex.runBuffer(pixels);
        int nRuns = index.outputRowRuns(q0, pixels, runs);
        float[] block = PanelPacking.staging(w * pixels);
        for (int t = 0; t * w < taps; t++) {
            int lanes = Math.min(w, taps - t * w);
            int panel = dOff + t * w * pixels;
            ConvIndex.Tap tap = index.tap(p0 + t * w);
            for (int l = 0; l < lanes; l++, tap.next()) {
                for (int u = 0; u < nRuns; u++) {
                    int pos = runs[4 * u];
                    copyTapRun(tap, runs[4 * u + 1], runs[4 * u + 2], runs[4 * u + 3], runs[4 * u + 4] - pos,
                            block, l * pixels + pos);
                }
            }
            PanelPacking.transpose(block, pixels, lanes, pixels, dst, panel, w);
            PanelPacking.zeroLanes(dst, panel, w, lanes, pixels);
        }
    }

    /** {@link #packColumnPanels} by gathers: each panel row is w/vl gathers at the tap's offset. */
    private void gatherColumnPanels(float[] dst, int dOff, int p0, int taps, int q0, int pixels, int w) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        int[] lane = laneBuffer(w);
        for (int t = 0; t * w < pixels; t++) {
            int lanes = Math.min(w, pixels - t * w);
            int panel = dOff + t * w * taps;
            for (int l = 0; l < w; l++) {
                lane[l] = l < lanes ? index.paddedPixel(q0 + t * w + l) : 0;
            }
            ConvIndex.Tap tap = index.tap(p0);
            for (int r = 0, at = panel; r < taps; r++, tap.next(), at += w) {
                int off = index.paddedTap(tap);
                for (int v = 0; v < w; v += vl) {
                    FloatVector.fromArray(s, padded, off, lane, v).intoArray(dst, at + v);
                }
            }
            PanelPacking.zeroLanes(dst, panel, w, lanes, taps);
        }
    }

    /** {@link #packRowPanels} by gathers: each panel row (one pixel) is w/vl gathers over the taps' offsets. */
    private void gatherRowPanels(float[] dst, int dOff, int p0, int taps, int q0, int pixels, int w) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        int[] lane = laneBuffer(w);
        int[] pixel = ConvIndex.runBuffer(pixels); // any per-thread int scratch of ≥ pixels will do
        for (int d = 0; d < pixels; d++) {
            pixel[d] = index.paddedPixel(q0 + d);
        }
        for (int t = 0; t * w < taps; t++) {
            int lanes = Math.min(w, taps - t * w);
            int panel = dOff + t * w * pixels;
            ConvIndex.Tap tap = index.tap(p0 + t * w);
            for (int l = 0; l < w; l++) {
                lane[l] = l < lanes ? index.paddedTap(tap) : 0;
                if (l < lanes - 1) {
                    tap.next();
                }
            }
            for (int d = 0, at = panel; d < pixels; d++, at += w) {
                int off = pixel[d];
                for (int v = 0; v < w; v += vl) {
                    FloatVector.fromArray(s, padded, off, lane, v).intoArray(dst, at + v);
                }
            }
            PanelPacking.zeroLanes(dst, panel, w, lanes, pixels);
        }
    }

    /** dst[at … at+len) = what tap reads along the run of len output pixels from (n, oh, ow0). */
    private void copyTapRun(ConvIndex.Tap tap, int n, int oh, int ow0, int len, float[] dst, int at) {
        Conv2dGeometry g = index.g;
        int ih = index.inputRow(tap, oh);
        int iw0 = index.inputColumn(tap, ow0);
        int lo = index.validFrom(iw0, len);
        int hi = index.validTo(iw0, len);
        if (ih < 0 || ih >= g.height() || hi <= lo) {
            Arrays.fill(dst, at, at + len, 0f);
            return;
        }
        Arrays.fill(dst, at, at + lo, 0f);
        Arrays.fill(dst, at + hi, at + len, 0f);
        long src = index.inputIndex(xOff, n, tap.ci, ih, iw0);
        int sw = g.strideW();
        if (sw == 1) {
            PanelPacking.copyRun(x, src + lo, dst, at + lo, hi - lo);
        } else if (sw == 2) {
            PanelPacking.copyRunStride2(x, src + 2L * lo, dst, at + lo, hi - lo);
        } else {
            for (int l = lo; l < hi; l++) {
                dst[at + l] = x.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, src + (long) l * sw);
            }
        }
    }
}
