package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The im2col matrix of a convolution's input, packed straight from the image and never built:
 * X(p, q) with rows the taps p = (ci, kh, kw) and columns the output pixels q = (n, oh, ow) is the
 * input value tap p reads at pixel q, or 0 in the padding ({@link ConvIndex}). The forward
 * convolution is W·X, the filter gradient dY·Xᵀ. Pixels are packed in output-row runs, so with
 * stride 1 each run is a vector copy of one input row slice.
 */
final class Im2colOperand implements GemmOperand {
    private final ConvIndex index;
    private final MemorySegment x;
    private final long xOff;

    Im2colOperand(Conv2dGeometry g, MemorySegment x, long xOff) {
        this.index = new ConvIndex(g);
        this.x = x;
        this.xOff = xOff;
    }

    /** Column panels (the forward's B): lanes are output pixels, depth the taps. */
    @Override
    public void packColumnPanels(float[] dst, int dOff, int p0, int taps, int q0, int pixels, int w) {
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
