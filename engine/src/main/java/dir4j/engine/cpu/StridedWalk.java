package dir4j.engine.cpu;

/**
 * Iterates over the elements of several same-shaped strided views in row-major order, one
 * innermost row at a time: the hot loop then runs over a row with constant strides. Adjacent
 * dimensions that are contiguous in every operand are merged first, so a contiguous tensor is
 * one long row.
 */
final class StridedWalk {
    final int[] shape;      // merged shape, innermost last
    final long[][] strides; // per operand, merged
    final long rowLength;
    final long total;

    StridedWalk(int[] shape, long[]... operandStrides) {
        int n = operandStrides.length;
        int[] s = new int[Math.max(1, shape.length)];
        long[][] st = new long[n][Math.max(1, shape.length)];
        int r = 0;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 1) {
                continue;
            }
            boolean merge = r > 0;
            for (int k = 0; k < n && merge; k++) {
                merge = st[k][r - 1] == operandStrides[k][d] * shape[d];
            }
            if (merge) {
                s[r - 1] *= shape[d];
                for (int k = 0; k < n; k++) {
                    st[k][r - 1] = operandStrides[k][d];
                }
            } else {
                s[r] = shape[d];
                for (int k = 0; k < n; k++) {
                    st[k][r] = operandStrides[k][d];
                }
                r++;
            }
        }
        if (r == 0) { // a scalar, or all dimensions of size 1
            s[0] = 1;
            r = 1;
            for (int k = 0; k < n; k++) {
                st[k][0] = 1;
            }
        }
        this.shape = java.util.Arrays.copyOf(s, r);
        this.strides = new long[n][];
        for (int k = 0; k < n; k++) {
            strides[k] = java.util.Arrays.copyOf(st[k], r);
        }
        this.rowLength = this.shape[r - 1];
        long t = 1;
        for (int d : this.shape) {
            t *= d;
        }
        this.total = t;
    }

    /** Inner stride of operand k. */
    long innerStride(int k) {
        return strides[k][shape.length - 1];
    }

    /** A row: offsets of its first element per operand, and its length. */
    interface Row {
        void run(long[] offsets, int length);
    }

    /** Visits elements [start, end) in row-major order; {@code bases} are the operands' offsets. */
    void walk(long[] bases, long start, long end, Row row) {
        int rank = shape.length;
        int n = bases.length;
        long[] offs = new long[n];
        long idx = start;
        while (idx < end) {
            long rowIndex = idx / rowLength;
            long col = idx - rowIndex * rowLength;
            int len = (int) Math.min(rowLength - col, end - idx);
            for (int k = 0; k < n; k++) {
                offs[k] = bases[k] + col * strides[k][rank - 1];
            }
            long rem = rowIndex;
            for (int d = rank - 2; d >= 0 && rem > 0; d--) {
                long i = rem % shape[d];
                rem /= shape[d];
                for (int k = 0; k < n; k++) {
                    offs[k] += i * strides[k][d];
                }
            }
            row.run(offs, len);
            idx += len;
        }
    }

    /** Visits all elements, split across the pool when there are enough of them. */
    void walkParallel(long[] bases, Row row) {
        walkParallel(bases, 1 << 15, row);
    }

    /**
     * {@link #walk} over all elements, split across threads in runs of at least {@code grain}
     * elements (fewer when each element stands for more work, as an output of a reduction does).
     */
    void walkParallel(long[] bases, long grain, Row row) {
        CpuThreads.parallelRange(total, grain, (s, e) -> walk(bases, s, e, row));
    }
}
