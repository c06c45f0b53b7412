package dir4j.nn.io;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A tensor's elements as the checkpoint writers store them: row-major, little-endian, from any
 * device and strides (a copy to the host or a contiguous copy is made when needed, and freed),
 * handed over in chunks of at most 1 MiB, never as one heap copy of the whole tensor. Float32,
 * float64 and int32 tensors; int32 may be widened to int64 (PyTorch's integer buffers).
 */
final class TensorBytes {
    private TensorBytes() {}

    /** Receives {@code length} bytes of {@code chunk} (reused between calls). */
    interface Sink {
        void accept(byte[] chunk, int length) throws IOException;
    }

    private static final int CHUNK_BYTES = 1 << 20;

    /** Bytes an element of {@code dtype} takes as written. */
    static int width(DType dtype, boolean int32AsInt64) {
        return dtype == DType.INT32 && int32AsInt64 ? 8 : dtype.byteSize();
    }

    static void write(Tensor t, boolean int32AsInt64, Sink sink) throws IOException {
        if (t.dtype() != DType.FLOAT32 && t.dtype() != DType.FLOAT64 && t.dtype() != DType.INT32) {
            throw new IllegalArgumentException("a " + t.dtype() + " tensor; float32, float64 and int32 are written");
        }
        Tensor cpu = t.device().equals(Device.CPU) ? null : t.to(Device.CPU);
        Tensor src = cpu != null ? cpu : t;
        Tensor contiguous = src.isContiguous() ? null : Ops.cloneDetached(src);
        Tensor c = contiguous != null ? contiguous : src;
        try {
            int size = c.dtype().byteSize();
            int out = width(c.dtype(), int32AsInt64);
            MemorySegment seg = c.segment();
            long n = c.numel();
            int chunk = CHUNK_BYTES / out;
            byte[] buf = new byte[(int) Math.min(n, chunk) * out];
            if (out != size) { // int32 widened to int64
                ByteBuffer bb = ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN);
                for (long done = 0; done < n; done += chunk) {
                    int k = (int) Math.min(chunk, n - done);
                    bb.clear();
                    for (int i = 0; i < k; i++) {
                        bb.putLong(seg.getAtIndex(ValueLayout.JAVA_INT, c.offset() + done + i));
                    }
                    sink.accept(buf, k * out);
                }
                return;
            }
            ValueLayout from = switch (c.dtype()) {
                case FLOAT32 -> ValueLayout.JAVA_FLOAT;
                case FLOAT64 -> ValueLayout.JAVA_DOUBLE;
                default -> ValueLayout.JAVA_INT;
            };
            ValueLayout to = switch (c.dtype()) {
                case FLOAT32 -> ValueLayout.JAVA_FLOAT_UNALIGNED;
                case FLOAT64 -> ValueLayout.JAVA_DOUBLE_UNALIGNED;
                default -> ValueLayout.JAVA_INT_UNALIGNED;
            };
            to = to.withOrder(ByteOrder.LITTLE_ENDIAN);
            MemorySegment bufSeg = MemorySegment.ofArray(buf);
            long base = c.offset() * size;
            for (long done = 0; done < n; done += chunk) {
                int k = (int) Math.min(chunk, n - done);
                MemorySegment.copy(seg, from, base + done * size, bufSeg, to, 0, k);
                sink.accept(buf, k * size);
            }
        } finally {
            if (contiguous != null) {
                contiguous.close();
            }
            if (cpu != null) {
                cpu.close();
            }
        }
    }
}
