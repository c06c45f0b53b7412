package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;

/**
 * A contiguous NCHW tensor seen as the matrix M(c, q) with rows the C channels and columns the
 * N·S pixels q = (n, s), S = H·W: {@code M(c, q) = seg[off + n·C·S + c·S + s]}. It is how the
 * convolutions see x (1×1 forward), y (the forward's output) and dY (both gradients). Within one
 * image a row is contiguous, so every access splits at image boundaries and runs as a plain
 * strided block.
 */
record NchwMatrix(MemorySegment seg, long off, int channels, int spatial) implements GemmOperand, GemmOutput {

    /** Row panels: lanes are channels, depth the pixels. */
    @Override
    public void packRowPanels(float[] dst, int dOff, int c0, int rows, int q0, int cols, int w) {
        for (int t = 0; t * w < rows; t++) {
            int lanes = Math.min(w, rows - t * w);
            int panel = dOff + t * w * cols;
            int c = c0 + t * w;
            for (int pos = 0, q = q0; pos < cols; ) {
                int n = q / spatial;
                int s = q - n * spatial;
                int len = Math.min(spatial - s, cols - pos);
                PanelPacking.gather(dst, panel + pos * w, w, seg, at(n, c, s), spatial, 1, lanes, len);
                pos += len;
                q += len;
            }
            PanelPacking.zeroLanes(dst, panel, w, lanes, cols);
        }
    }

    /** Column panels: lanes are pixels, depth the channels. */
    @Override
    public void packColumnPanels(float[] dst, int dOff, int c0, int rows, int q0, int cols, int w) {
        for (int t = 0; t * w < cols; t++) {
            int lanes = Math.min(w, cols - t * w);
            int panel = dOff + t * w * rows;
            for (int lane = 0, q = q0 + t * w; lane < lanes; ) {
                int n = q / spatial;
                int s = q - n * spatial;
                int len = Math.min(spatial - s, lanes - lane);
                PanelPacking.gather(dst, panel + lane, w, seg, at(n, c0, s), 1, spatial, len, rows);
                lane += len;
                q += len;
            }
            PanelPacking.zeroLanes(dst, panel, w, lanes, rows);
        }
    }

    /** As an output: M = P on the first depth block, M += P after (the convolution overwrites). */
    @Override
    public void store(float[] tile, int ts, int c0, int rows, int q0, int cols, boolean first) {
        for (int pos = 0, q = q0; pos < cols; ) {
            int n = q / spatial;
            int s = q - n * spatial;
            int len = Math.min(spatial - s, cols - pos);
            for (int r = 0; r < rows; r++) {
                GemmOutput.storeRun(tile, r * ts + pos, seg, at(n, c0 + r, s), len, 1f, 1f, !first);
            }
            pos += len;
            q += len;
        }
    }

    private long at(int n, int c, int s) {
        return off + ((long) n * channels + c) * spatial + s;
    }
}
