package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * One input of a GEMM, seen as a rows×cols float matrix that {@link Sgemm}'s driver packs into the
 * micro-panels its micro-kernel reads. The driver never reads an operand any other way, so an
 * operand need not exist as a matrix at all: the convolutions pack straight from the image
 * (implicit im2col, {@link Im2colOperand}), which is why this is an interface.
 *
 * <p>Both packings write whole panels of {@code w} lanes; lanes past the end of the block are
 * zero, so the micro-kernel always computes a full tile and edges cost nothing but the store.
 * Implementations may assume the driver's arguments are in range: the public entry points check
 * each operand's extent against its segment once, up front.
 */
interface GemmOperand {

    /**
     * Packs the block rows [r0, r0+rows) × cols [c0, c0+cols) as row panels (the A side): panel t
     * holds, for each col c in order, the w values of rows r0+t·w … r0+t·w+w−1, i.e.
     * {@code dst[dOff + t*w*cols + c*w + q] = X(r0 + t*w + q, c0 + c)}, zero where that row is
     * past r0+rows. Writes ceil(rows/w)·w·cols floats.
     */
    void packRowPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w);

    /**
     * Packs the block rows [r0, r0+rows) × cols [c0, c0+cols) as column panels (the B side):
     * {@code dst[dOff + t*w*rows + r*w + q] = X(r0 + r, c0 + t*w + q)}, zero where that col is
     * past c0+cols. Writes ceil(cols/w)·w·rows floats.
     */
    void packColumnPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w);

    /** Xᵀ: its row panels are X's column panels and the other way round. */
    default GemmOperand transposed() {
        GemmOperand x = this;
        return new GemmOperand() {
            @Override
            public void packRowPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
                x.packColumnPanels(dst, dOff, c0, cols, r0, rows, w);
            }

            @Override
            public void packColumnPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
                x.packRowPanels(dst, dOff, c0, cols, r0, rows, w);
            }

            @Override
            public GemmOperand transposed() {
                return x;
            }
        };
    }

    /** The matrix X(r, c) = seg[off + r·rowStride + c·colStride] (strides in floats, any sign). */
    static GemmOperand strided(MemorySegment seg, long off, long rowStride, long colStride) {
        return new Strided(seg, off, rowStride, colStride);
    }

    /** Depth steps per block of {@link Strided#packShortContiguousLanes}: source and destination stay in L1. */
    int SHORT_LANES_DEPTH = 16;

    /** A plain strided matrix in memory; a transposed matrix is the same with its strides swapped. */
    record Strided(MemorySegment seg, long off, long rowStride, long colStride) implements GemmOperand {
        @Override
        public void packRowPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
            long base = off + r0 * rowStride + c0 * colStride;
            if (rowStride == 1 && w < Sgemm.SPECIES.length()) {
                packShortContiguousLanes(dst, dOff, base, rows, cols, w);
                return;
            }
            for (int t = 0; t * w < rows; t++) {
                int lanes = Math.min(w, rows - t * w);
                int at = dOff + t * w * cols;
                PanelPacking.gather(dst, at, w, seg, base + t * w * rowStride, rowStride, colStride, lanes, cols);
                PanelPacking.zeroLanes(dst, at, w, lanes, cols);
            }
        }

        @Override
        public void packColumnPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
            long base = off + r0 * rowStride + c0 * colStride;
            if (colStride == 1) {
                PanelPacking.rowsToColumnPanels(dst, dOff, seg, base, rowStride, rows, cols, w);
                return;
            }
            for (int t = 0; t * w < cols; t++) {
                int lanes = Math.min(w, cols - t * w);
                int at = dOff + t * w * rows;
                PanelPacking.gather(dst, at, w, seg, base + t * w * colStride, colStride, rowStride, lanes, rows);
                PanelPacking.zeroLanes(dst, at, w, lanes, rows);
            }
        }

        /**
         * Row panels narrower than a vector whose lanes are contiguous (a transposed weight, the
         * data gradient's A: 12 taps of a row of w[co, taps]): one masked copy per panel and
         * depth step, in blocks of {@link #SHORT_LANES_DEPTH} depth steps that go across all
         * panels. Panel by panel over the whole depth, the source rows (4,608 floats apart for
         * layer4's 3×3, an odd multiple of 2 KiB) fell into two L1 sets, and row by row the 16
         * destination panels (multiples of 4 KiB apart) into one: packing took 23-29 % of that
         * convolution's backward-data.
         */
        private void packShortContiguousLanes(float[] dst, int dOff, long base, int rows, int cols, int w) {
            VectorSpecies<Float> s = Sgemm.SPECIES;
            ByteOrder order = ByteOrder.nativeOrder();
            int panels = Sgemm.ceilDiv(rows, w);
            int last = rows - (panels - 1) * w;
            VectorMask<Float> full = s.indexInRange(0, w);
            VectorMask<Float> tail = s.indexInRange(0, last);
            for (int d0 = 0; d0 < cols; d0 += SHORT_LANES_DEPTH) {
                int d1 = Math.min(cols, d0 + SHORT_LANES_DEPTH);
                for (int t = 0; t < panels; t++) {
                    VectorMask<Float> m = t == panels - 1 ? tail : full;
                    long src = base + (long) t * w;
                    for (int d = d0, at = dOff + t * w * cols + d0 * w; d < d1; d++, at += w) {
                        FloatVector.fromMemorySegment(s, seg, (src + d * colStride) * Float.BYTES, order, m)
                                .intoArray(dst, at, m);
                    }
                }
            }
            PanelPacking.zeroLanes(dst, dOff + (panels - 1) * w * cols, w, last, cols);
        }

        @Override
        public GemmOperand transposed() {
            return new Strided(seg, off, colStride, rowStride);
        }
    }
}
