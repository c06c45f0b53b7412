package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The data gradient's output: the product Wᵀ·dY is the im2col matrix of dX (rows the taps
 * p = (ci, kh, kw), columns the output pixels q = (n, oh, ow), see {@link ConvIndex}), and each
 * tile of it is scatter-added into dX where that tap read the input, skipping padding. No column
 * matrix is materialised. dX must be zero before the product starts.
 *
 * <p>The kH·kW taps of one channel add into the same pixels, and so do neighbouring columns, so
 * tasks get whole channels ({@link #rowGroup}) and never split columns: each task then owns its
 * channels' pixels of dX in every image, and no two threads ever write the same float.
 */
final class Col2imOutput implements GemmOutput {
    private final ConvIndex index;
    private final MemorySegment dx;
    private final long dxOff;

    Col2imOutput(Conv2dGeometry g, MemorySegment dx, long dxOff) {
        this.index = new ConvIndex(g);
        this.dx = dx;
        this.dxOff = dxOff;
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
