package dir4j.engine.cuda;

import java.util.Arrays;

/**
 * Up to three strided operands over one shape, with dimensions merged wherever every operand is
 * contiguous across them and size-1 dimensions dropped, packed for the kernels' {@code Geometry}
 * struct (kernels/src/main/cuda/common.cuh: rank, numel, shape[6], stride[3][6], as int64).
 */
final class StridedGeometry {
    /** The kernels' maximum rank (DIR4J_MAX_RANK). */
    static final int MAX_RANK = 6;
    /** The kernels' operand slots (DIR4J_MAX_OPERANDS). */
    static final int MAX_OPERANDS = 3;
    /** int64 words of the packed struct. */
    static final int WORDS = 2 + MAX_RANK + MAX_OPERANDS * MAX_RANK;

    final int rank;
    final long numel;
    final long[] shape;
    final long[][] strides;

    private StridedGeometry(long[] shape, long[][] strides, long numel) {
        this.rank = shape.length;
        this.shape = shape;
        this.strides = strides;
        this.numel = numel;
    }

    /** The geometry of operands with these strides (in elements, non-negative) over {@code shape}. */
    static StridedGeometry of(String op, int[] shape, long[]... strides) {
        long[] s = new long[shape.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = shape[i];
        }
        return of(op, s, strides);
    }

    /** As {@link #of(String, int[], long[][])} with a long shape. */
    static StridedGeometry of(String op, long[] shape, long[]... strides) {
        if (strides.length < 1 || strides.length > MAX_OPERANDS) {
            throw new IllegalArgumentException(op + ": " + strides.length + " operands; kernels take 1 to " + MAX_OPERANDS);
        }
        long numel = 1;
        for (int d = 0; d < shape.length; d++) {
            numel *= shape[d];
            for (long[] st : strides) {
                if (st.length != shape.length) {
                    throw new IllegalArgumentException(op + ": strides " + Arrays.toString(st) + " for shape "
                            + Arrays.toString(shape));
                }
                if (st[d] < 0) {
                    throw new IllegalArgumentException(op + ": negative stride in " + Arrays.toString(st)
                            + "; CUDA kernels take non-negative strides");
                }
            }
        }
        int ops = strides.length;
        long[] ms = new long[shape.length];
        long[][] mst = new long[ops][shape.length];
        int r = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) {
                continue;
            }
            boolean merge = r > 0;
            for (int k = 0; k < ops && merge; k++) {
                merge = mst[k][r - 1] == strides[k][d] * shape[d];
            }
            if (merge) {
                ms[r - 1] *= shape[d];
                for (int k = 0; k < ops; k++) {
                    mst[k][r - 1] = strides[k][d];
                }
            } else {
                ms[r] = shape[d];
                for (int k = 0; k < ops; k++) {
                    mst[k][r] = strides[k][d];
                }
                r++;
            }
        }
        if (r == 0) { // a single element (or every dimension of size 1)
            long[][] one = new long[ops][1];
            return new StridedGeometry(new long[] {shape.length == 0 ? 1 : numel}, one, numel);
        }
        if (r > MAX_RANK) {
            throw new UnsupportedOperationException(op + " on CUDA: views of shape " + Arrays.toString(shape)
                    + " keep rank " + r + " after merging dimensions; the kernels take at most " + MAX_RANK);
        }
        long[][] outStrides = new long[ops][];
        for (int k = 0; k < ops; k++) {
            outStrides[k] = Arrays.copyOf(mst[k], r);
        }
        return new StridedGeometry(Arrays.copyOf(ms, r), outStrides, numel);
    }

    /** True when the element count and every operand's largest offset stay below 2^31 (32-bit kernels). */
    boolean fitsInt32() {
        if (numel >= (1L << 31)) {
            return false;
        }
        for (long[] st : strides) {
            long max = 0;
            for (int d = 0; d < rank; d++) {
                max += (shape[d] - 1) * st[d];
                if (max >= (1L << 31) || max < 0) {
                    return false;
                }
            }
        }
        return true;
    }

    /** True when operand k walks its elements contiguously in order (stride 1 after merging). */
    boolean contiguous(int k) {
        return rank == 1 && (strides[k][0] == 1 || shape[0] == 1);
    }

    /** The struct's words: rank, numel, shape[6], then each operand's stride[6] (unused slots 0). */
    long[] pack() {
        long[] w = new long[WORDS];
        w[0] = rank;
        w[1] = numel;
        for (int d = 0; d < rank; d++) {
            w[2 + d] = shape[d];
            for (int k = 0; k < strides.length; k++) {
                w[2 + MAX_RANK + k * MAX_RANK + d] = strides[k][d];
            }
        }
        return w;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("shape ").append(Arrays.toString(shape));
        for (long[] st : strides) {
            sb.append(" strides ").append(Arrays.toString(st));
        }
        return sb.toString();
    }
}
