package dir4j.engine;

/**
 * Element types. FLOAT32 is the compute type of every backend; FLOAT64 is a CPU reference path
 * used by finite-difference gradient checks; INT32 holds indices and labels. BFLOAT16 and FLOAT16
 * are reserved for half-precision storage on CUDA and are refused by ops until a backend
 * implements them.
 */
public enum DType {
    FLOAT32(4),
    FLOAT64(8),
    INT32(4),
    BFLOAT16(2),
    FLOAT16(2);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** True for the floating-point types that ops compute in. */
    public boolean isFloating() {
        return this == FLOAT32 || this == FLOAT64;
    }

    /** Lower-case name as PyTorch spells it ("float32"). */
    @Override
    public String toString() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
