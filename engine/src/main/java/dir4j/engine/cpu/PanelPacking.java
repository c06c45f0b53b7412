package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * The moves every {@link GemmOperand} packs with: copying runs from native memory into panels,
 * transposing staged lanes into panel rows, zeroing the lanes past a block's edge. Panels are
 * heap arrays (the micro-kernel reads heap arrays several times faster than segments, see
 * DESIGN.md); sources are segments (native or heap) whose extents the public entry points have
 * checked. Heap sources are for tests and API callers: in the backend's own paths every source is
 * native, because one heap segment reaching these routines makes their compiled segment accesses
 * polymorphic for every later call (a training step ran 7 % slower for it, bench/RESULTS.md,
 * session 7); scratch copies that feed a GEMM go in {@link NativeMemory}.
 */
final class PanelPacking {
    private PanelPacking() {}

    /**
     * The packing primitive: {@code dst[dOff + d*dStride + q] = seg[base + q*laneStride + d*depthStride]}
     * for q < lanes, d < depth. The two fast paths are the common layouts: lanes contiguous in
     * memory (B row-major, Aᵀ) copy vector runs; depth contiguous (A row-major, Bᵀ) bulk-copy the
     * lanes into a heap block and transpose it with vector gathers ({@link #transpose}).
     */
    static void gather(float[] dst, int dOff, int dStride, MemorySegment seg, long base, long laneStride,
            long depthStride, int lanes, int depth) {
        if (laneStride == 1) {
            for (int d = 0; d < depth; d++) {
                copyRun(seg, base + d * depthStride, dst, dOff + d * dStride, lanes);
            }
        } else if (depthStride == 1) {
            float[] block = staging(lanes * depth);
            for (int q = 0; q < lanes; q++) {
                MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, (base + q * laneStride) * Float.BYTES,
                        block, q * depth, depth);
            }
            transpose(block, depth, lanes, depth, dst, dOff, dStride);
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

    /**
     * {@code dst[dOff + d*dStride + q] = src[q*srcStride + d]} for q < lanes, d < depth: turns
     * lanes staged one after another into panel rows. Each panel row is one vector gather down the
     * staged lanes (about 3x faster here than moving element by element); a last, partial group of
     * lanes gathers from clamped, valid indices and stores under a mask.
     */
    static void transpose(float[] src, int srcStride, int lanes, int depth, float[] dst, int dOff, int dStride) {
        transpose(src, 0, srcStride, lanes, depth, dst, dOff, dStride);
    }

    /** {@link #transpose} reading {@code src[srcOff + q*srcStride + d]}. */
    static void transpose(float[] src, int srcOff, int srcStride, int lanes, int depth, float[] dst, int dOff,
            int dStride) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        int[] map = new int[vl];
        for (int q0 = 0; q0 < lanes; q0 += vl) {
            int groupLanes = Math.min(vl, lanes - q0);
            for (int i = 0; i < vl; i++) {
                map[i] = (q0 + Math.min(i, groupLanes - 1)) * srcStride;
            }
            if (groupLanes == vl) {
                for (int d = 0, at = dOff + q0; d < depth; d++, at += dStride) {
                    FloatVector.fromArray(s, src, srcOff + d, map, 0).intoArray(dst, at);
                }
            } else {
                VectorMask<Float> mask = s.indexInRange(0, groupLanes);
                for (int d = 0, at = dOff + q0; d < depth; d++, at += dStride) {
                    FloatVector.fromArray(s, src, srcOff + d, map, 0).intoArray(dst, at, mask);
                }
            }
        }
    }

    /**
     * Column panels of a block whose rows are contiguous (row-major B):
     * {@code dst[dOff + t*w*rows + r*w + q] = seg[base + r*rowStride + t*w + q]}, zero past cols.
     * Rows are the outer loop so memory is read in order, one row across all the panels, rather
     * than hopping a row stride for every 128 bytes.
     */
    static void rowsToColumnPanels(float[] dst, int dOff, MemorySegment seg, long base, long rowStride, int rows,
            int cols, int w) {
        int panels = (cols + w - 1) / w;
        for (int r = 0; r < rows; r++) {
            long src = base + r * rowStride;
            for (int t = 0; t < panels; t++) {
                copyRun(seg, src + (long) t * w, dst, dOff + t * w * rows + r * w, Math.min(w, cols - t * w));
            }
        }
        int last = (panels - 1) * w;
        zeroLanes(dst, dOff + last * rows, w, cols - last, rows);
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
     * read; a run shorter than a vector is one masked copy.
     */
    static void copyRun(MemorySegment seg, long src, float[] dst, int at, int len) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        ByteOrder order = ByteOrder.nativeOrder();
        if (len < vl) {
            if (len > 0) {
                VectorMask<Float> m = s.indexInRange(0, len);
                FloatVector.fromMemorySegment(s, seg, src * Float.BYTES, order, m).intoArray(dst, at, m);
            }
            return;
        }
        int q = 0;
        for (; q <= len - vl; q += vl) {
            FloatVector.fromMemorySegment(s, seg, (src + q) * Float.BYTES, order).intoArray(dst, at + q);
        }
        if (q < len) {
            q = len - vl;
            FloatVector.fromMemorySegment(s, seg, (src + q) * Float.BYTES, order).intoArray(dst, at + q);
        }
    }

    /**
     * dst[at + l] = seg[src + 2l] for l < len (a stride-2 convolution's im2col run): each vector
     * of lanes is the even half of two contiguous loads ({@link FloatKernels#evenLanes}), for
     * every vector whose 2·VL-float window ends at or before the last element read; the rest
     * element by element, so nothing past seg[src + 2(len − 1)] is read.
     */
    static void copyRunStride2(MemorySegment seg, long src, float[] dst, int at, int len) {
        VectorSpecies<Float> s = Sgemm.SPECIES;
        int vl = s.length();
        ByteOrder order = ByteOrder.nativeOrder();
        int q = 0;
        for (; q + vl < len; q += vl) {
            long b = (src + 2L * q) * Float.BYTES;
            FloatVector lo = FloatVector.fromMemorySegment(s, seg, b, order);
            FloatVector hi = FloatVector.fromMemorySegment(s, seg, b + (long) vl * Float.BYTES, order);
            FloatKernels.evenLanes(lo, hi).intoArray(dst, at + q);
        }
        for (; q < len; q++) {
            dst[at + q] = seg.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, src + 2L * q);
        }
    }

    /** A per-thread heap array of at least {@code len} floats, for staging lanes before {@link #transpose}. */
    static float[] staging(int len) {
        float[] row = STAGING.get();
        if (row.length < len) {
            row = new float[Math.max(len, 2 * row.length)];
            STAGING.set(row);
        }
        return row;
    }

    /**
     * The calling thread's array in {@code cache}, replaced by a new one when shorter than
     * {@code floats} (contents not kept): scratch reused from call to call, since a new array of
     * several MiB each call is GC work.
     */
    static float[] scratch(ThreadLocal<float[]> cache, int floats) {
        float[] a = cache.get();
        if (a.length < floats) {
            a = new float[floats];
            cache.set(a);
        }
        return a;
    }

    /** Backing store of {@link #staging}. */
    private static final ThreadLocal<float[]> STAGING = ThreadLocal.withInitial(() -> new float[1024]);
}
