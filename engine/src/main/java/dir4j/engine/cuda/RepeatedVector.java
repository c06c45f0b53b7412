package dir4j.engine.cuda;

/**
 * Recognises a broadcast operand that is one contiguous vector repeated over a contiguous
 * output: element i (row-major) of the output reads the vector's element (i / inner) % period.
 * That is a view whose non-size-1 dimensions have strides 0…0, then row-major compact strides
 * ending in 1, then 0…0 (reading outermost to innermost): a per-channel [1,C,1,1] against
 * [N,C,H,W] (inner H·W, period C), a row vector [1,D] against [N,D] (inner 1, period D), a column
 * [N,1] (inner D, period N), a scalar (period 1). The binary_repeat4_f32 kernel runs those at
 * the plain float4 kernel's bandwidth, where the strided kernel pays an index division per
 * dimension and element.
 */
final class RepeatedVector {
    private RepeatedVector() {}

    /** {inner, period} for a view with these strides over {@code shape}, or null when it is not such a vector. */
    static long[] of(int[] shape, long[] strides) {
        long inner = 1;
        long period = 1;
        long expect = 1;
        int phase = 0; // 0: trailing broadcast dimensions, 1: the vector's dimensions, 2: leading broadcast ones
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] == 1) {
                continue;
            }
            long st = strides[d];
            if (phase == 0 && st == 0) {
                inner *= shape[d];
                continue;
            }
            if (phase <= 1 && st != 0) {
                if (st != expect) {
                    return null;
                }
                phase = 1;
                expect *= shape[d];
                period *= shape[d];
                continue;
            }
            if (st != 0) {
                return null;
            }
            phase = 2;
        }
        return new long[] {inner, period};
    }
}
