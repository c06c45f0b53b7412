package dir4j.nn.io;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element types as checkpoint files store them (the names are safetensors' dtype names), and the
 * one place where stored bytes become a dir4j tensor: float32 stays float32; float64 stays
 * float64 unless asked to narrow; float16 and bfloat16 widen to float32; every integer and bool
 * type becomes int32, range-checked. PyTorch storages, NumPy arrays inside pickles, safetensors
 * and the legacy format all go through {@link #read}.
 */
enum StoredType {
    F16(2), BF16(2), F32(4), F64(8), I8(1), U8(1), I16(2), U16(2), I32(4), U32(4), I64(8), U64(8), BOOL(1),
    // PyTorch storage types dir4j does not read: known, so that their bytes can be stepped over and
    // a tensor of them refused with its dtype named (read() throws)
    C32(4, "complex32"), C64(8, "complex64"), C128(16, "complex128"), QI8(1, "qint8 (quantized)"),
    QU8(1, "quint8 (quantized)"), QI32(4, "qint32 (quantized)"), QU4X2(1, "quint4x2 (quantized)"),
    QU2X4(1, "quint2x4 (quantized)");

    /** An expanded (stride-0) tensor may hold at most this many times its storage's elements. */
    private static final long EXPANSION_LIMIT = 64;

    final int size;
    /** PyTorch's name of an unsupported type; null for the types dir4j reads. */
    private final String unsupported;

    StoredType(int size) {
        this(size, null);
    }

    StoredType(int size, String unsupported) {
        this.size = size;
        this.unsupported = unsupported;
    }

    /** The dir4j dtype these elements load as. */
    DType target(boolean float64ToFloat32) {
        return switch (this) {
            case F16, BF16, F32 -> DType.FLOAT32;
            case F64 -> float64ToFloat32 ? DType.FLOAT32 : DType.FLOAT64;
            default -> DType.INT32;
        };
    }

    /** The type of a safetensors dtype name, or null. */
    static StoredType ofSafetensors(String name) {
        for (StoredType t : values()) {
            if (t.unsupported == null && t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }

    /**
     * The type of a PyTorch storage class name ("FloatStorage"), or null; complex and quantized
     * storages have a type, which {@link #read} refuses.
     */
    static StoredType ofTorchStorage(String name) {
        return switch (name) {
            case "FloatStorage" -> F32;
            case "DoubleStorage" -> F64;
            case "HalfStorage" -> F16;
            case "BFloat16Storage" -> BF16;
            case "LongStorage" -> I64;
            case "IntStorage" -> I32;
            case "ShortStorage" -> I16;
            case "CharStorage" -> I8;
            case "ByteStorage" -> U8;
            case "BoolStorage" -> BOOL;
            case "ComplexHalfStorage" -> C32;
            case "ComplexFloatStorage" -> C64;
            case "ComplexDoubleStorage" -> C128;
            case "QInt8Storage" -> QI8;
            case "QUInt8Storage" -> QU8;
            case "QInt32Storage" -> QI32;
            case "QUInt4x2Storage" -> QU4X2;
            case "QUInt2x4Storage" -> QU2X4;
            default -> null;
        };
    }

    /** The type of a NumPy kind letter and item size ('f', 8), or null. */
    static StoredType ofNumpy(char kind, int itemSize) {
        return switch (kind) {
            case 'f' -> itemSize == 2 ? F16 : itemSize == 4 ? F32 : itemSize == 8 ? F64 : null;
            case 'i' -> itemSize == 1 ? I8 : itemSize == 2 ? I16 : itemSize == 4 ? I32 : itemSize == 8 ? I64 : null;
            case 'u' -> itemSize == 1 ? U8 : itemSize == 2 ? U16 : itemSize == 4 ? U32 : itemSize == 8 ? U64 : null;
            case 'b' -> itemSize == 1 ? BOOL : null;
            default -> null;
        };
    }

    /**
     * Copies the elements of a strided view of stored bytes into a new contiguous CPU tensor
     * (the caller owns it). {@code strides} are in elements; element {@code (i0, i1, …)} lies at
     * byte {@code byteOffset + size * Σ ik·strides[k]} of {@code src}. Every element read is
     * checked to lie inside {@code src} before anything is allocated.
     *
     * @param what names the tensor in error messages ("tensor 'fc.weight' in model.pt")
     */
    Tensor read(MemorySegment src, long byteOffset, ByteOrder order, int[] shape, long[] strides,
            boolean float64ToFloat32, String what) throws IOException {
        if (unsupported != null) {
            throw new IOException(what + ": a " + unsupported + " tensor of shape " + Shape.str(shape)
                    + ", which dir4j does not read (float32, float64, float16, bfloat16, integer and bool tensors "
                    + "are read): convert it in Python first");
        }
        if (strides.length != shape.length) {
            throw new IOException(what + ": " + shape.length + " dimensions but " + strides.length + " strides");
        }
        long numel = 1;
        long lastElement = 0;
        try {
            for (int d = 0; d < shape.length; d++) {
                if (shape[d] < 0 || strides[d] < 0) {
                    throw new IOException(what + ": negative size or stride (shape " + Shape.str(shape) + ")");
                }
                numel = Math.multiplyExact(numel, shape[d]);
                if (shape[d] > 0) {
                    lastElement = Math.addExact(lastElement, Math.multiplyExact((long) shape[d] - 1, strides[d]));
                }
            }
        } catch (ArithmeticException e) {
            throw new IOException(what + ": shape " + Shape.str(shape) + " overflows a 64-bit element count");
        }
        long available = byteOffset < 0 || byteOffset > src.byteSize() ? -1 : (src.byteSize() - byteOffset) / size;
        if (numel > 0) {
            if (available < 0 || lastElement >= available) {
                throw new IOException(what + ": shape " + Shape.str(shape) + " at storage offset " + byteOffset / size
                        + " with strides " + java.util.Arrays.toString(strides) + " reaches element "
                        + (byteOffset / size + lastElement) + " but its storage holds " + src.byteSize() / size + " elements");
            }
            if (numel > Integer.MAX_VALUE || numel > Math.max(1L << 20, available * EXPANSION_LIMIT)) {
                throw new IOException(what + ": shape " + Shape.str(shape) + " has " + numel
                        + " elements, far more than its storage's " + available + " (refusing to expand it)");
            }
        }
        DType dtype = target(float64ToFloat32);
        Tensor out = Tensor.empty(dtype, Device.CPU, shape);
        try {
            copy(src, byteOffset, order, shape, strides, numel, out.segment(), dtype, what);
        } catch (IOException | RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    private void copy(MemorySegment src, long base, ByteOrder order, int[] shape, long[] strides, long numel,
            MemorySegment dst, DType dtype, String what) throws IOException {
        if (numel == 0) {
            return;
        }
        boolean contiguous = java.util.Arrays.equals(strides, Shape.contiguousStrides(shape));
        ValueLayout bulk = switch (this) {
            case F32 -> dtype == DType.FLOAT32 ? ValueLayout.JAVA_FLOAT_UNALIGNED : null;
            case F64 -> dtype == DType.FLOAT64 ? ValueLayout.JAVA_DOUBLE_UNALIGNED : null;
            case I32 -> ValueLayout.JAVA_INT_UNALIGNED;
            default -> null;
        };
        if (contiguous && bulk != null) {
            ValueLayout to = switch (this) {
                case F32 -> ValueLayout.JAVA_FLOAT;
                case F64 -> ValueLayout.JAVA_DOUBLE;
                default -> ValueLayout.JAVA_INT;
            };
            MemorySegment.copy(src, bulk.withOrder(order), base, dst, to, 0, numel);
            return;
        }
        int rank = shape.length;
        int[] index = new int[rank];
        long element = 0;
        for (long i = 0; i < numel; i++) {
            long at = base + element * size;
            switch (dtype) {
                case FLOAT32 -> dst.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) readDouble(src, at, order));
                case FLOAT64 -> dst.setAtIndex(ValueLayout.JAVA_DOUBLE, i, readDouble(src, at, order));
                default -> dst.setAtIndex(ValueLayout.JAVA_INT, i, readInt(src, at, order, i, what));
            }
            for (int d = rank - 1; d >= 0; d--) {
                element += strides[d];
                if (++index[d] < shape[d]) {
                    break;
                }
                element -= strides[d] * shape[d];
                index[d] = 0;
            }
        }
    }

    private double readDouble(MemorySegment src, long at, ByteOrder order) {
        return switch (this) {
            case F32 -> src.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(order), at);
            case F64 -> src.get(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(order), at);
            case F16 -> Float.float16ToFloat(src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order), at));
            case BF16 -> Float.intBitsToFloat((src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order), at) & 0xffff) << 16);
            default -> throw new IllegalStateException(this + " is not a floating type");
        };
    }

    private int readInt(MemorySegment src, long at, ByteOrder order, long i, String what) throws IOException {
        long v = switch (this) {
            case I8 -> src.get(ValueLayout.JAVA_BYTE, at);
            case U8 -> src.get(ValueLayout.JAVA_BYTE, at) & 0xff;
            case BOOL -> src.get(ValueLayout.JAVA_BYTE, at) != 0 ? 1 : 0;
            case I16 -> src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order), at);
            case U16 -> src.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order), at) & 0xffff;
            case I32 -> src.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(order), at);
            case U32 -> src.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(order), at) & 0xffffffffL;
            case I64 -> src.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(order), at);
            case U64 -> {
                long u = src.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(order), at);
                yield u < 0 ? Long.MAX_VALUE : u;
            }
            default -> throw new IllegalStateException(this + " is not an integer type");
        };
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IOException(what + ": " + this + " value " + (this == U64 && v == Long.MAX_VALUE ? "≥ 2^63" : v)
                    + " at element " + i + " does not fit dir4j's int32");
        }
        return (int) v;
    }
}
