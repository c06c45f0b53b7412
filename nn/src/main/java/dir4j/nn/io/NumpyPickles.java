package dir4j.nn.io;

import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * NumPy objects as pickles spell them, rebuilt without NumPy: {@code numpy.dtype(code, …)} and
 * its BUILD state, arrays from {@code _reconstruct(ndarray, (0,), b'b')} plus BUILD
 * {@code (version, shape, dtype, fortran, rawdata)} or from {@code _frombuffer(buf, dtype, shape,
 * order)}, and scalars from {@code scalar(dtype, rawbytes)}. Arrays become dir4j tensors through
 * {@link StoredType#read}; object arrays stay Python lists.
 */
final class NumpyPickles {
    private NumpyPickles() {}

    /** A {@code numpy.dtype} under construction: type code from its call, byte order from BUILD. */
    static final class DTypeSpec {
        final String code;
        char byteOrder = '=';
        boolean structured;

        DTypeSpec(String code) {
            this.code = code;
        }

        ByteOrder order() {
            return byteOrder == '>' ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        }

        char kind() {
            String c = stripOrder();
            return c.isEmpty() ? '?' : c.charAt(0);
        }

        int itemSize() {
            String c = stripOrder();
            try {
                return Integer.parseInt(c.substring(1));
            } catch (RuntimeException e) {
                return -1;
            }
        }

        private String stripOrder() {
            if (!code.isEmpty() && "<>|=".indexOf(code.charAt(0)) >= 0) {
                return code.substring(1);
            }
            return code;
        }

        /** The stored element type, or an error naming the unsupported dtype. */
        StoredType stored(String where) throws IOException {
            StoredType t = structured ? null : StoredType.ofNumpy(kind(), itemSize());
            if (t == null) {
                throw new IOException(where + ": numpy dtype '" + code + "'" + (structured ? " (structured)" : "")
                        + " is not supported (float, int, uint and bool arrays are)");
            }
            return t;
        }

        @Override
        public String toString() {
            return "numpy.dtype('" + code + "')";
        }
    }

    /** An array made by {@code _reconstruct}, waiting for the BUILD that gives its contents. */
    static final class PendingArray {
        @Override
        public String toString() {
            return "numpy.ndarray (never given its contents)";
        }
    }

    static DTypeSpec dtype(List<Object> args, String where) throws IOException {
        if (args.isEmpty() || !(args.get(0) instanceof String code)) {
            throw new IOException(where + ": numpy.dtype expects a type code string as its first argument");
        }
        return new DTypeSpec(code);
    }

    /** Applies a dtype's BUILD state {@code (version, byteorder, subarray, names, fields, …)}. */
    static void buildDtype(DTypeSpec d, Object state) {
        if (state instanceof List<?> s && s.size() >= 2 && s.get(1) instanceof String bo && !bo.isEmpty()) {
            d.byteOrder = bo.charAt(0);
            if (s.size() >= 5 && (s.get(3) != null || s.get(4) != null)) {
                d.structured = true;
            }
        }
    }

    /**
     * The array a {@code _reconstruct} placeholder becomes once BUILD gives its state: a tensor,
     * or a list for object arrays.
     */
    static Object buildArray(Object state, boolean float64ToFloat32, boolean scanOnly, String where) throws IOException {
        if (!(state instanceof List<?> s) || (s.size() != 5 && s.size() != 4)) {
            throw new IOException(where + ": numpy array state must be (version, shape, dtype, fortran, data)");
        }
        int k = s.size() == 5 ? 1 : 0;
        int[] shape = shapeOf(s.get(k), where);
        if (!(s.get(k + 1) instanceof DTypeSpec dtype)) {
            throw new IOException(where + ": numpy array state has no dtype");
        }
        boolean fortran = Boolean.TRUE.equals(s.get(k + 2));
        Object raw = s.get(k + 3);
        if (raw instanceof List<?> objects) {
            return objects; // an object array: its elements as the pickle gave them
        }
        return toTensor(bytesOf(raw, where), dtype, shape, fortran, float64ToFloat32, scanOnly, where);
    }

    /** {@code _frombuffer(buffer, dtype, shape, order)}: protocol 5's in-band arrays. */
    static Object fromBuffer(List<Object> args, boolean float64ToFloat32, boolean scanOnly, String where) throws IOException {
        if (args.size() != 4 || !(args.get(1) instanceof DTypeSpec dtype)) {
            throw new IOException(where + ": numpy _frombuffer expects (buffer, dtype, shape, order)");
        }
        return toTensor(bytesOf(args.get(0), where), dtype, shapeOf(args.get(2), where), "F".equals(args.get(3)),
                float64ToFloat32, scanOnly, where);
    }

    private static Object toTensor(byte[] data, DTypeSpec dtype, int[] shape, boolean fortran, boolean float64ToFloat32,
            boolean scanOnly, String where) throws IOException {
        StoredType type = dtype.stored(where);
        long need;
        try {
            need = Math.multiplyExact(Shape.numel(shape) == 0 ? 0 : exactNumel(shape), type.size);
        } catch (ArithmeticException e) {
            need = -1;
        }
        if (need != data.length) {
            throw new IOException(where + ": numpy array of shape " + Shape.str(shape) + " and dtype '" + dtype.code
                    + "' needs " + (need < 0 ? "more than 2^63" : need) + " bytes of data but has " + data.length);
        }
        if (scanOnly) {
            return new PendingArray();
        }
        long[] strides = new long[shape.length];
        long acc = 1;
        for (int i = 0; i < shape.length; i++) {
            int d = fortran ? i : shape.length - 1 - i;
            strides[d] = acc;
            acc *= Math.max(1, shape[d]);
        }
        Tensor t = type.read(MemorySegment.ofArray(data), 0, dtype.order(), shape, strides, float64ToFloat32,
                where + ": numpy array");
        return t;
    }

    private static long exactNumel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** {@code scalar(dtype, rawbytes)}: a NumPy scalar as a Java Double, Long, BigInteger or Boolean. */
    static Object scalar(List<Object> args, String where) throws IOException {
        if (args.size() != 2 || !(args.get(0) instanceof DTypeSpec dtype)) {
            throw new IOException(where + ": numpy scalar expects (dtype, bytes)");
        }
        byte[] b = bytesOf(args.get(1), where);
        StoredType type = dtype.stored(where);
        if (b.length != type.size) {
            throw new IOException(where + ": numpy " + dtype.code + " scalar has " + b.length + " bytes, not " + type.size);
        }
        ByteBuffer bb = ByteBuffer.wrap(b).order(dtype.order());
        return switch (type) {
            case F16 -> (double) Float.float16ToFloat(bb.getShort());
            case BF16 -> (double) Float.intBitsToFloat((bb.getShort() & 0xffff) << 16);
            case F32 -> (double) bb.getFloat();
            case F64 -> bb.getDouble();
            case I8 -> (long) bb.get();
            case U8 -> (long) (bb.get() & 0xff);
            case I16 -> (long) bb.getShort();
            case U16 -> (long) (bb.getShort() & 0xffff);
            case I32 -> (long) bb.getInt();
            case U32 -> bb.getInt() & 0xffffffffL;
            case I64 -> bb.getLong();
            case U64 -> {
                long v = bb.getLong();
                yield v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
            }
            case BOOL -> bb.get() != 0;
            default -> throw new IllegalStateException(type + " is never a numpy dtype");
        };
    }

    static int[] shapeOf(Object o, String where) throws IOException {
        if (!(o instanceof List<?> dims)) {
            throw new IOException(where + ": numpy shape must be a tuple of ints");
        }
        int[] shape = new int[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            if (!(dims.get(i) instanceof Long v) || v < 0 || v > Integer.MAX_VALUE) {
                throw new IOException(where + ": bad numpy dimension " + Unpickler.describe(dims.get(i)));
            }
            shape[i] = (int) (long) v;
        }
        return shape;
    }

    /** Raw bytes from a bytes object, or from a str holding them as Latin-1 (Python 2 pickles). */
    static byte[] bytesOf(Object o, String where) throws IOException {
        if (o instanceof byte[] b) {
            return b;
        }
        if (o instanceof String s) {
            return latin1(s, where);
        }
        throw new IOException(where + ": expected bytes, found " + Unpickler.describe(o));
    }

    static byte[] latin1(String s, String where) throws IOException {
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) > 0xff) {
                throw new IOException(where + ": string holds character U+" + Integer.toHexString(s.charAt(i))
                        + ", which is not Latin-1");
            }
        }
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }
}
