package dir4j.engine;

import java.util.Arrays;

/** Static helpers over shapes (int[]) and strides (long[], in elements). */
public final class Shape {
    private Shape() {}

    /** Number of elements of a shape (1 for a scalar). */
    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** Row-major strides of a contiguous tensor of this shape. */
    public static long[] contiguousStrides(int[] shape) {
        long[] s = new long[shape.length];
        long acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= Math.max(shape[i], 1);
        }
        return s;
    }

    /**
     * True when a tensor of this shape and these strides fills numel consecutive elements without
     * gaps or overlaps (some permutation of a contiguous layout); dimensions of size 1 do not
     * count, and an empty tensor is dense.
     */
    public static boolean isDense(int[] shape, long[] strides) {
        long[][] dims = byStride(shape, strides, false);
        if (dims == null) {
            return true;
        }
        long expect = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i][0] != expect) {
                return false;
            }
            expect *= dims[i][1];
        }
        return true;
    }

    /**
     * True when no two indices of a tensor of this shape and these strides address the same
     * element. Usually decided by increasing stride: when each dimension longer than 1 steps over
     * the whole span of the ones before it (dense layouts, slices with gaps) the answer is yes, and
     * an expanded view (stride 0 on a dimension longer than 1) is no. Interleaved strides that do
     * not nest, as as_strided makes them ((2, 3) over 3x2 addresses 0, 3, 2, 5, 4, 7, each once;
     * (1, 1) over 2x3, a sliding window, addresses 1 and 2 twice), are compared element by element
     * (a bit per element of the span); a span of 2^28 elements or more counts as overlapping.
     */
    public static boolean isNonOverlapping(int[] shape, long[] strides) {
        long[][] dims = byStride(shape, strides, true);
        if (dims == null) {
            return true;
        }
        long span = 0; // the largest distance between two elements over the dimensions so far
        boolean nested = true;
        long numel = 1;
        for (int i = 0; i < dims.length; i++) {
            nested &= dims[i][0] > span;
            span += dims[i][0] * (dims[i][1] - 1);
            numel *= dims[i][1];
        }
        if (nested) {
            return true;
        }
        if (dims[0][0] == 0 || numel > span + 1 || span >= 1 << 28) {
            return false; // expanded, more elements than places, or too wide to compare
        }
        // with strides' magnitudes: reversing an axis with a negative stride keeps the set of places
        java.util.BitSet seen = new java.util.BitSet((int) span + 1);
        int[] idx = new int[dims.length];
        long at = 0;
        while (true) {
            if (seen.get((int) at)) {
                return false;
            }
            seen.set((int) at);
            int d = dims.length - 1;
            while (d >= 0 && ++idx[d] == dims[d][1]) {
                at -= dims[d][0] * (dims[d][1] - 1);
                idx[d] = 0;
                d--;
            }
            if (d < 0) {
                return true;
            }
            at += dims[d][0];
        }
    }

    /**
     * The dimensions longer than 1 as {stride (its magnitude when {@code abs}), size}, by
     * increasing stride; null for an empty tensor.
     */
    private static long[][] byStride(int[] shape, long[] strides, boolean abs) {
        int n = 0;
        long[][] dims = new long[shape.length][];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 0) {
                return null;
            }
            if (shape[i] != 1) {
                dims[n++] = new long[] {abs ? Math.abs(strides[i]) : strides[i], shape[i]};
            }
        }
        Arrays.sort(dims, 0, n, (x, y) -> Long.compare(x[0], y[0]));
        return Arrays.copyOf(dims, n);
    }

    /** Whether two stride vectors of one shape agree on every dimension longer than 1. */
    public static boolean sameStrides(int[] shape, long[] a, long[] b) {
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] > 1 && a[i] != b[i]) {
                return false;
            }
        }
        return true;
    }

    /** Validates a shape: every dimension non-negative. */
    public static int[] check(String op, int[] shape) {
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(op + ": negative dimension in shape " + str(shape));
            }
        }
        return shape.clone();
    }

    /** The broadcast shape of a and b (NumPy rules), or an error naming the op and both shapes. */
    public static int[] broadcast(String op, int[] a, int[] b) {
        int n = Math.max(a.length, b.length);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int da = i < n - a.length ? 1 : a[i - (n - a.length)];
            int db = i < n - b.length ? 1 : b[i - (n - b.length)];
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(op + ": shapes " + str(a) + " and " + str(b)
                        + " cannot be broadcast (dimension " + i + ": " + da + " vs " + db + ")");
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }

    /** Normalises a possibly negative axis against a rank. */
    public static int axis(String op, int axis, int rank) {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.max(rank, 1)) {
            throw new IllegalArgumentException(op + ": axis " + axis + " out of range for rank " + rank);
        }
        return a;
    }

    /** "[2, 3, 4]". */
    public static String str(int[] shape) {
        return Arrays.toString(shape);
    }
}
