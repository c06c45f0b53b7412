package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Where {@link Sgemm}'s driver puts the product: it hands over one micro-tile at a time, once per
 * depth block (or once, all depth blocks summed, in the schedules that keep their tiles), and the
 * output decides how the tile lands (overwrite with alpha/beta, accumulate, or, for the
 * convolution's data gradient, scatter-add through col2im).
 */
interface GemmOutput {

    /**
     * Takes the tile rows [i0, i0+rows) × cols [j0, j0+cols) of the product, held row-major in
     * {@code tile} with row stride {@code ts}. The first depth block ({@code first}) replaces or
     * scales what was there; later depth blocks add to it. With k = 0 the driver still calls this
     * once per tile, with a zero tile and {@code first}.
     */
    void store(float[] tile, int ts, int i0, int rows, int j0, int cols, boolean first);

    /**
     * Parallel tasks get whole multiples of this many rows, starting at multiples of it; an
     * output whose rows share memory in groups (col2im: the kh·kw taps of one channel) says so.
     */
    default int rowGroup() {
        return 1;
    }

    /** Whether two tasks may store different column ranges of the same rows concurrently. */
    default boolean columnsSplittable() {
        return true;
    }

    /** C(i, j) = seg[off + i·ldc + j] ← alpha·P + beta·C; beta = 0 never reads C (NaN-safe). */
    static GemmOutput strided(MemorySegment seg, long off, long ldc, float alpha, float beta) {
        return new Strided(seg, off, ldc, alpha, beta);
    }

    /** A row-major matrix with unit column stride, as BLAS's C. */
    record Strided(MemorySegment seg, long off, long ldc, float alpha, float beta) implements GemmOutput {
        @Override
        public void store(float[] tile, int ts, int i0, int rows, int j0, int cols, boolean first) {
            if (cols == Sgemm.NR) {
                storeFullWidth(tile, ts, i0, rows, j0, first);
                return;
            }
            for (int r = 0; r < rows; r++) {
                long at = off + (i0 + r) * ldc + j0;
                if (!first) {
                    storeRun(tile, r * ts, seg, at, cols, alpha, 1f, true);
                } else {
                    storeRun(tile, r * ts, seg, at, cols, alpha, beta, beta != 0f);
                }
            }
        }

        /** The common case, a tile NR = two vectors wide, unrolled. */
        private void storeFullWidth(float[] tile, int ts, int i0, int rows, int j0, boolean first) {
            VectorSpecies<Float> s = Sgemm.SPECIES;
            int vl = s.length();
            ByteOrder order = ByteOrder.nativeOrder();
            boolean readOld = !first || beta != 0f;
            FloatVector b = FloatVector.broadcast(s, first ? beta : 1f);
            for (int r = 0; r < rows; r++) {
                long at = (off + (i0 + r) * ldc + j0) * Float.BYTES;
                FloatVector t0 = FloatVector.fromArray(s, tile, r * ts).mul(alpha);
                FloatVector t1 = FloatVector.fromArray(s, tile, r * ts + vl).mul(alpha);
                if (readOld) {
                    t0 = FloatVector.fromMemorySegment(s, seg, at, order).fma(b, t0);
                    t1 = FloatVector.fromMemorySegment(s, seg, at + (long) vl * Float.BYTES, order).fma(b, t1);
                }
                t0.intoMemorySegment(seg, at, order);
                t1.intoMemorySegment(seg, at + (long) vl * Float.BYTES, order);
            }
        }
    }

    /**
     * seg[at … at+len) ← alpha·tile[t … t+len) + beta·seg[…], reading seg only when
     * {@code readOld}. Whole vectors first, then one masked vector for the tail.
     */
    static void storeRun(float[] tile, int t, MemorySegment seg, long at, int len, float alpha,
            float beta, boolean readOld) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        ByteOrder order = ByteOrder.nativeOrder();
        FloatVector va = FloatVector.broadcast(s, alpha);
        FloatVector vb = FloatVector.broadcast(s, beta);
        int q = 0;
        for (; q <= len - vl; q += vl) {
            long b = (at + q) * Float.BYTES;
            FloatVector v = FloatVector.fromArray(s, tile, t + q).mul(va);
            if (readOld) {
                v = FloatVector.fromMemorySegment(s, seg, b, order).fma(vb, v);
            }
            v.intoMemorySegment(seg, b, order);
        }
        if (q < len) {
            // The tail under a mask: edge tiles, and runs clipped by a convolution's padding.
            VectorMask<Float> m = s.indexInRange(0, len - q);
            long b = (at + q) * Float.BYTES;
            FloatVector v = FloatVector.fromArray(s, tile, t + q, m).mul(va);
            if (readOld) {
                v = FloatVector.fromMemorySegment(s, seg, b, order, m).fma(vb, v);
            }
            v.intoMemorySegment(seg, b, order, m);
        }
    }
}
