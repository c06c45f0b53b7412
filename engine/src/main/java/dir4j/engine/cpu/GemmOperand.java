package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
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

    /** A plain strided matrix in memory; a transposed matrix is the same with its strides swapped. */
    record Strided(MemorySegment seg, long off, long rowStride, long colStride) implements GemmOperand {
        @Override
        public void packRowPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
            long base = off + r0 * rowStride + c0 * colStride;
            for (int t = 0; t * w < rows; t++) {
                int lanes = Math.min(w, rows - t * w);
                int at = dOff + t * w * cols;
                gather(dst, at, w, seg, base + t * w * rowStride, rowStride, colStride, lanes, cols);
                zeroLanes(dst, at, w, lanes, cols);
            }
        }

        @Override
        public void packColumnPanels(float[] dst, int dOff, int r0, int rows, int c0, int cols, int w) {
            long base = off + r0 * rowStride + c0 * colStride;
            for (int t = 0; t * w < cols; t++) {
                int lanes = Math.min(w, cols - t * w);
                int at = dOff + t * w * rows;
                gather(dst, at, w, seg, base + t * w * colStride, colStride, rowStride, lanes, rows);
                zeroLanes(dst, at, w, lanes, rows);
            }
        }

        @Override
        public GemmOperand transposed() {
            return new Strided(seg, off, colStride, rowStride);
        }
    }

    /**
     * The packing primitive: {@code dst[dOff + d*dStride + q] = seg[base + q*laneStride + d*depthStride]}
     * for q < lanes, d < depth. The two fast paths are the common layouts: lanes contiguous in
     * memory (B row-major, Aᵀ) copy vector runs; depth contiguous (A row-major, Bᵀ) bulk-copy each
     * lane's run into a heap row and scatter it down the panel, because per-element segment reads
     * cost several times more than the heap loop.
     */
    static void gather(float[] dst, int dOff, int dStride, MemorySegment seg, long base, long laneStride,
            long depthStride, int lanes, int depth) {
        if (laneStride == 1) {
            for (int d = 0; d < depth; d++) {
                copyRun(seg, base + d * depthStride, dst, dOff + d * dStride, lanes);
            }
        } else if (depthStride == 1) {
            float[] row = stagingRow(depth);
            for (int q = 0; q < lanes; q++) {
                MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, (base + q * laneStride) * Float.BYTES,
                        row, 0, depth);
                scatterRow(row, 0, depth, dst, dOff + q, dStride);
            }
        } else {
            for (int d = 0; d < depth; d++) {
                long src = base + d * depthStride;
                int at = dOff + d * dStride;
                for (int q = 0; q < lanes; q++) {
                    dst[at + q] = seg.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, src + q * laneStride);
                }
            }
        }
    }

    /** dst[at + d·stride] = row[from + d] for d < len: one lane of a panel, written down its depth. */
    static void scatterRow(float[] row, int from, int len, float[] dst, int at, int stride) {
        for (int d = 0; d < len; d++, at += stride) {
            dst[at] = row[from + d];
        }
    }

    /** Zeroes lanes [lanes, w) of each of {@code depth} panel rows (row stride w) from dOff. */
    static void zeroLanes(float[] dst, int dOff, int w, int lanes, int depth) {
        if (lanes < w) {
            for (int d = 0, at = dOff; d < depth; d++, at += w) {
                Arrays.fill(dst, at + lanes, at + w, 0f);
            }
        }
    }

    /**
     * dst[at … at+len) = seg[src … src+len) (float indices): whole vectors, then one last vector
     * ending exactly at len (overlapping what is already copied) so no element outside the run is
     * read; runs shorter than a vector go element by element.
     */
    static void copyRun(MemorySegment seg, long src, float[] dst, int at, int len) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        if (len < vl) {
            for (int q = 0; q < len; q++) {
                dst[at + q] = seg.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, src + q);
            }
            return;
        }
        ByteOrder order = ByteOrder.nativeOrder();
        int q = 0;
        for (; q <= len - vl; q += vl) {
            FloatVector.fromMemorySegment(s, seg, (src + q) * Float.BYTES, order).intoArray(dst, at + q);
        }
        if (q < len) {
            q = len - vl;
            FloatVector.fromMemorySegment(s, seg, (src + q) * Float.BYTES, order).intoArray(dst, at + q);
        }
    }

    /** A per-thread heap row of at least {@code len} floats, for staging one lane before scattering it. */
    static float[] stagingRow(int len) {
        float[] row = STAGING.get();
        if (row.length < len) {
            row = new float[Math.max(len, 2 * row.length)];
            STAGING.set(row);
        }
        return row;
    }

    /** Backing store of {@link #stagingRow}. */
    ThreadLocal<float[]> STAGING = ThreadLocal.withInitial(() -> new float[1024]);
}
