package dir4j.engine;

import java.util.Arrays;
import java.util.BitSet;

/**
 * Whether two views of one storage address a storage element in common ({@link
 * Tensor#partiallyOverlaps}), exactly and without visiting every element where the layouts allow:
 * two dense views share one as soon as their ranges meet; a dense view and another share one when
 * the other has an element inside the dense one's range (the first found ends the search); two
 * views whose outermost dimensions have the same stride S, each with everything inside a row
 * spanning less than S (column slices of one matrix, x[:, ::2] and x[:, 1::2]), can only meet
 * between rows a fixed distance apart (at most two distances), so the rows' insides are compared
 * once per distance instead of row by row; what is left is compared element by element over the
 * intersection of the ranges (a bit per storage element; a range of 2^31 elements or more counts as
 * overlapping).
 */
final class Overlap {

    private Overlap() {
    }

    /** A view's element set: dimensions longer than 1 with a non-zero stride, strides positive, by decreasing stride. */
    private record Geometry(int[] shape, long[] strides, long offset) {

        static Geometry of(int[] shape, long[] strides, long offset) {
            int n = 0;
            long[][] dims = new long[shape.length][];
            for (int i = 0; i < shape.length; i++) {
                if (shape[i] > 1 && strides[i] != 0) {
                    if (strides[i] < 0) {
                        offset += strides[i] * (shape[i] - 1); // the same elements, walked from the other end
                    }
                    dims[n++] = new long[] {Math.abs(strides[i]), shape[i]};
                }
            }
            Arrays.sort(dims, 0, n, (x, y) -> Long.compare(y[0], x[0]));
            int[] s = new int[n];
            long[] st = new long[n];
            for (int i = 0; i < n; i++) {
                st[i] = dims[i][0];
                s[i] = (int) dims[i][1];
            }
            return new Geometry(s, st, offset);
        }

        long highest() {
            return offset + span(0);
        }

        /** The distance from the first to the last element over the dimensions from {@code from} on. */
        long span(int from) {
            long at = 0;
            for (int i = from; i < shape.length; i++) {
                at += strides[i] * (shape[i] - 1);
            }
            return at;
        }

        boolean dense() {
            return Shape.isDense(shape, strides);
        }

        /** The view inside one row of the outermost dimension, starting at {@code start}. */
        Geometry inner(long start) {
            return new Geometry(Arrays.copyOfRange(shape, 1, shape.length), Arrays.copyOfRange(strides, 1,
                    strides.length), start);
        }
    }

    /** Whether views (shape, strides, offset) a and b of one storage, neither empty, share an element. */
    static boolean shareElement(int[] aShape, long[] aStrides, long aOffset, int[] bShape, long[] bStrides,
                                long bOffset) {
        return share(Geometry.of(aShape, aStrides, aOffset), Geometry.of(bShape, bStrides, bOffset));
    }

    private static boolean share(Geometry a, Geometry b) {
        long lo = Math.max(a.offset, b.offset);
        long hi = Math.min(a.highest(), b.highest());
        if (lo > hi) {
            return false;
        }
        boolean aDense = a.dense();
        boolean bDense = b.dense();
        if (aDense || bDense) {
            // a dense view holds every element of its range, and [lo, hi] lies within it
            return aDense && bDense || anyElementIn(aDense ? b : a, lo, hi, null);
        }
        if (a.shape.length > 0 && b.shape.length > 0 && a.strides[0] == b.strides[0]) {
            long rowStride = a.strides[0];
            if (a.span(1) < rowStride && b.span(1) < rowStride) {
                // a's row i holds a.offset + i·S + u, b's row j b.offset + j·S + v, with u, v in [0, S):
                // equal only when diff + (j − i)·S = u − v lies in (−S, S), for at most two j − i
                long diff = b.offset - a.offset;
                long first = Math.floorDiv(-diff, rowStride);
                for (long k = first; k <= first + 1; k++) {
                    long shift = diff + k * rowStride;
                    boolean rowsMeet = Math.max(0, -k) < Math.min(a.shape[0], b.shape[0] - k);
                    if (Math.abs(shift) < rowStride && rowsMeet && share(a.inner(0), b.inner(shift))) {
                        return true;
                    }
                }
                return false;
            }
        }
        if (hi - lo >= Integer.MAX_VALUE) {
            return true;
        }
        BitSet marked = new BitSet((int) (hi - lo + 1));
        anyElementIn(a, lo, hi, marked);
        return anyElementIn(b, lo, hi, null, marked);
    }

    /** With {@code mark}: marks each element of g in [lo, hi] (bit at − lo) and returns false; without: whether g has one there. */
    private static boolean anyElementIn(Geometry g, long lo, long hi, BitSet mark) {
        return anyElementIn(g, lo, hi, mark, null);
    }

    /**
     * Walks g's elements in [lo, hi]: marks them in {@code mark} when given, else returns true at
     * the first one (that is set in {@code marked}, when given).
     */
    private static boolean anyElementIn(Geometry g, long lo, long hi, BitSet mark, BitSet marked) {
        int r = g.shape.length;
        if (r == 0) {
            boolean in = g.offset >= lo && g.offset <= hi;
            if (in && mark != null) {
                mark.set((int) (g.offset - lo));
                return false;
            }
            return in && (marked == null || marked.get((int) (g.offset - lo)));
        }
        int[] idx = new int[r];
        long base = g.offset;
        int inner = g.shape[r - 1];
        long step = g.strides[r - 1];
        while (true) {
            // the inner run's indices inside [lo, hi]
            long from = base >= lo ? 0 : (lo - base + step - 1) / step;
            long to = base > hi ? -1 : Math.min(inner - 1, (hi - base) / step);
            for (long i = from; i <= to; i++) {
                int bit = (int) (base + i * step - lo);
                if (mark != null) {
                    mark.set(bit);
                } else if (marked == null || marked.get(bit)) {
                    return true;
                }
            }
            int d = r - 2;
            while (d >= 0 && ++idx[d] == g.shape[d]) {
                base -= g.strides[d] * (g.shape[d] - 1);
                idx[d] = 0;
                d--;
            }
            if (d < 0) {
                return false;
            }
            base += g.strides[d];
        }
    }
}
