package dir4j.engine.cuda;

/**
 * How a row-major matrix view enters a column-major cuBLAS call. cuBLAS computes
 * C' = op(A')·op(B') on column-major matrices; dir4j's C = A·B (row-major, C contiguous) is
 * passed as Cᵀ = Bᵀ·Aᵀ, so each operand X [rows, cols] must be handed over as Xᵀ:
 * <ul>
 * <li>X with unit column stride (row-major, leading dimension = row stride) already reads as
 *     Xᵀ in column-major: op N;</li>
 * <li>X with unit row stride (a transposed view: column-major, leading dimension = column
 *     stride) reads as X: op T;</li>
 * <li>anything else is copied to a contiguous matrix first.</li>
 * </ul>
 *
 * @param op cuBLAS operation (Cublas.OP_N or OP_T)
 * @param ld leading dimension in elements
 */
record GemmLayout(int op, int ld) {
    /** The layout of X [rows, cols] with these strides, or null when X must be copied first. */
    static GemmLayout of(int rows, int cols, long rowStride, long colStride) {
        // op N: column-major view Xᵀ [cols × rows]; its leading dimension must be ≥ cols
        if (cols == 1 || colStride == 1) {
            long ld = rows == 1 ? Math.max(1, cols) : rowStride;
            if (ld >= Math.max(1, cols) && ld <= Integer.MAX_VALUE) {
                return new GemmLayout(Cublas.OP_N, (int) ld);
            }
        }
        // op T: column-major view X [rows × cols]; its leading dimension must be ≥ rows
        if (rows == 1 || rowStride == 1) {
            long ld = cols == 1 ? Math.max(1, rows) : colStride;
            if (ld >= Math.max(1, rows) && ld <= Integer.MAX_VALUE) {
                return new GemmLayout(Cublas.OP_T, (int) ld);
            }
        }
        return null;
    }
}
