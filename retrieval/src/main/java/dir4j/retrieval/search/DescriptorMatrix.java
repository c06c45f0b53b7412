package dir4j.retrieval.search;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * N descriptors of dimension D as a row-major float32 array on the heap: the form the
 * post-processing code reads rows from. {@link #of(Tensor)} and {@link #toTensor()} move
 * between it and engine tensors.
 *
 * @param data row-major values, {@code rows * cols} of them
 * @param rows number of descriptors (N)
 * @param cols descriptor dimension (D)
 */
public record DescriptorMatrix(float[] data, int rows, int cols) {
    public DescriptorMatrix {
        if (rows < 0 || cols < 0 || (long) rows * cols != data.length) {
            throw new IllegalArgumentException("descriptor matrix " + rows + "x" + cols + " does not match "
                    + data.length + " values");
        }
    }

    /**
     * The values of a rank-2 floating tensor (float64 is narrowed to float32). Contiguous
     * float32 CPU tensors are copied straight from memory, without a double-precision detour.
     */
    public static DescriptorMatrix of(Tensor t) {
        if (t.rank() != 2 || !t.dtype().isFloating()) {
            throw new IllegalArgumentException("descriptors must be a rank-2 float tensor (N x D), got "
                    + Shape.str(t.shape()) + " " + t.dtype());
        }
        int rows = t.shape(0);
        int cols = t.shape(1);
        if ((long) rows * cols > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("descriptors " + Shape.str(t.shape()) + " exceed one Java array ("
                    + Integer.MAX_VALUE + " values); process them in row blocks");
        }
        if (t.dtype() == DType.FLOAT32 && t.device().equals(Device.CPU) && t.isContiguous()) {
            float[] data = new float[rows * cols];
            MemorySegment.copy(t.segment(), ValueLayout.JAVA_FLOAT, t.offset() * Float.BYTES, data, 0, data.length);
            return new DescriptorMatrix(data, rows, cols);
        }
        return new DescriptorMatrix(t.toFloatArray(), rows, cols);
    }

    /** A new float32 CPU tensor holding these values (the caller owns it). */
    public Tensor toTensor() {
        return Tensor.of(data, rows, cols);
    }

    /** Element (row, col). */
    public float get(int row, int col) {
        return data[row * cols + col];
    }
}
