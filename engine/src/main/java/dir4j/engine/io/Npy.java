package dir4j.engine.io;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy's .npy format (versions 1–3): little- or big-endian float32, float64, float16 (widened to
 * float32), integers of every width and bool (read as int32, range-checked), C or Fortran order.
 * Object, string, date, complex and structured arrays are refused with their dtype named; an
 * object array is never unpickled. Files are validated against their header
 * before any allocation, so a truncated or hostile file is a clear error, never a crash.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    // the header is a Python dict literal: NumPy writes single quotes, other writers may use double
    private static final Pattern DESCR = Pattern.compile("(['\"])descr\\1\\s*:\\s*(['\"])([^'\"]*)\\2");
    private static final Pattern STRUCTURED = Pattern.compile("(['\"])descr\\1\\s*:\\s*\\[");
    private static final Pattern SIMPLE = Pattern.compile("([<>|=]?)([a-z])(\\d+)");
    private static final Pattern FORTRAN = Pattern.compile("(['\"])fortran_order\\1\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("(['\"])shape\\1\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    /** Longest header accepted: numpy writes tens of bytes; a longer one is a corrupt or hostile file. */
    static final long MAX_HEADER_BYTES = 1 << 20;

    /**
     * Reads a .npy file into a CPU tensor (caller owns it). The file is mapped, not read into a
     * byte array, so arrays of any size load (a Java array stops at 2 GiB: 262,143 descriptors of
     * 2048 floats) and the data is copied once, straight into the tensor.
     */
    public static Tensor read(Path file) throws IOException {
        return mapped(file, Npy::parse);
    }

    /** Maps {@code file} for the reader; a directory, an unmappable file or a parse error names the file. */
    private static <T> T mapped(Path file, java.util.function.Function<MemorySegment, T> reader) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException(file + ": a directory, not a .npy file");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment all;
            try {
                all = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            } catch (IOException e) {
                throw new IOException(file + ": cannot be mapped for reading: " + e.getMessage(), e);
            }
            return reader.apply(all);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * An array as stored: numpy's name of its type ({@code "int64"}, {@code "uint8"},
     * {@code "bool"}, {@code "float32"}, ...), its shape, and for integer and bool arrays every value
     * as a 64-bit integer in C order ({@code null} for floats). A uint64 beyond {@code Long.MAX_VALUE}
     * wraps (read it with {@link Long#toUnsignedString}).
     */
    public record Integers(String type, int[] shape, long[] values) {
        /** Whether the values are integers (else the array holds floats and values is null). */
        public boolean integers() {
            return values != null;
        }
    }

    /**
     * Reads a .npy array's integers without narrowing them to int32 as {@link #read} does: ids
     * (class labels) are names, not numbers to compute with, and may use all 64 bits. Float arrays
     * come back with their type and shape and no values; other errors are {@link #read}'s.
     */
    public static Integers readIntegers(Path file) throws IOException {
        return mapped(file, Npy::integers);
    }

    private static Integers integers(MemorySegment all) {
        Header h = Header.parse(all);
        String type = h.kind.equals("b") ? "bool" : (h.kind.equals("f") ? "float" : h.kind.equals("u") ? "uint"
                : "int") + h.size * 8;
        if (h.kind.equals("f")) {
            return new Integers(type, h.shape, null);
        }
        long n = Shape.numel(h.shape);
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("shape " + Shape.str(h.shape) + " holds more integers than one "
                    + "Java array");
        }
        boolean unsigned = !h.kind.equals("i");
        long[] values = new long[(int) n];
        for (int i = 0; i < values.length; i++) {
            long at = h.dataStart + (long) i * h.size;
            values[i] = switch (h.size) {
                case 1 -> unsigned ? all.get(ValueLayout.JAVA_BYTE, at) & 0xffL : all.get(ValueLayout.JAVA_BYTE, at);
                case 2 -> {
                    short v = all.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(h.order), at);
                    yield unsigned ? v & 0xffffL : v;
                }
                case 4 -> {
                    int v = all.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(h.order), at);
                    yield unsigned ? v & 0xffffffffL : v;
                }
                default -> all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(h.order), at);
            };
        }
        if (h.fortran && h.shape.length > 1) {
            values = fortranToC(values, h.shape);
        }
        return new Integers(type, h.shape, values);
    }

    /** Column-major values of {@code shape} in row-major order. */
    private static long[] fortranToC(long[] f, int[] shape) {
        long[] c = new long[f.length];
        int[] idx = new int[shape.length];
        for (int i = 0; i < f.length; i++) {
            // idx is the C-order index of element i; its Fortran-order position
            long at = 0;
            for (int d = shape.length - 1; d >= 0; d--) {
                at = at * shape[d] + idx[d];
            }
            c[i] = f[(int) at];
            for (int d = shape.length - 1; d >= 0 && ++idx[d] == shape[d]; d--) {
                idx[d] = 0;
            }
        }
        return c;
    }

    /** Parses .npy bytes. */
    public static Tensor parse(byte[] all) {
        return parse(MemorySegment.ofArray(all));
    }

    /** Parses a .npy file's bytes (the tensor is a copy: the segment may go away afterwards). */
    static Tensor parse(MemorySegment all) {
        Header h = Header.parse(all);
        int[] memShape = h.shape;
        if (h.fortran) {
            memShape = new int[h.shape.length];
            for (int i = 0; i < h.shape.length; i++) {
                memShape[i] = h.shape[h.shape.length - 1 - i];
            }
        }
        Tensor t = Tensor.empty(h.dtype, Device.CPU, memShape);
        try {
            copyData(all, h.dataStart, h.order, h.kind, h.size, Shape.numel(h.shape), h.dtype, t.segment());
        } catch (RuntimeException e) {
            t.close(); // an integer out of int32's range: the array is refused, and its tensor freed
            throw e;
        }
        if (!h.fortran || h.shape.length < 2) {
            return t;
        }
        int[] rev = new int[h.shape.length];
        for (int i = 0; i < rev.length; i++) {
            rev[i] = rev.length - 1 - i;
        }
        Tensor view = t.permute(rev);
        Tensor c = view.contiguous();
        if (c != view) {
            view.close();
        }
        t.close();
        return c;
    }

    /**
     * A parsed and validated .npy header: the stored element type ({@code kind} and {@code size}
     * as in numpy's descr), byte order, order and shape, where the data start, and the dtype the
     * array is read as. The data are checked to be all there.
     */
    private record Header(ByteOrder order, String kind, int size, boolean fortran, int[] shape, long dataStart,
            DType dtype) {
        static Header parse(MemorySegment all) {
            return parse(all, all.byteSize());
        }

        /**
         * Parses from the file's first bytes ({@code head}: all of it, or at least the header)
         * and checks the data against the file's {@code length}.
         */
        static Header parse(MemorySegment head, long length) {
            MemorySegment all = head;
            if (length < 10) {
                throw new IllegalArgumentException("not a .npy file: only " + length + " bytes");
            }
            for (int i = 0; i < MAGIC.length; i++) {
                if (all.get(ValueLayout.JAVA_BYTE, i) != MAGIC[i]) {
                    throw new IllegalArgumentException("not a .npy file (bad magic)");
                }
            }
            int major = all.get(ValueLayout.JAVA_BYTE, 6) & 0xff;
            long headerLen;
            int start;
            if (major == 1) {
                headerLen = all.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8) & 0xffff;
                start = 10;
            } else if (major == 2 || major == 3) {
                if (length < 12) {
                    throw new IllegalArgumentException("truncated .npy header");
                }
                headerLen = all.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8) & 0xffffffffL;
                start = 12;
            } else {
                throw new IllegalArgumentException("unsupported .npy version " + major);
            }
            if (start + headerLen > length) {
                throw new IllegalArgumentException("truncated .npy header (" + headerLen + " bytes announced, "
                        + (length - start) + " present)");
            }
            if (headerLen > MAX_HEADER_BYTES) {
                throw new IllegalArgumentException("malformed .npy header: " + headerLen + " bytes announced");
            }
            if (start + headerLen > all.byteSize()) {
                throw new IllegalStateException("the header's " + headerLen + " bytes were not all read");
            }
            String header = new String(all.asSlice(start, headerLen).toArray(ValueLayout.JAVA_BYTE),
                    major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            if (STRUCTURED.matcher(header).find()) {
                throw new IllegalArgumentException("unsupported .npy dtype: a structured array (a record dtype with "
                        + "named fields), which dir4j does not read: save each field as its own numeric array");
            }
            Matcher d = DESCR.matcher(header);
            Matcher f = FORTRAN.matcher(header);
            Matcher s = SHAPE.matcher(header);
            if (!d.find() || !f.find() || !s.find()) {
                throw new IllegalArgumentException("malformed .npy header: " + header.strip());
            }
            Matcher simple = SIMPLE.matcher(d.group(3));
            if (!simple.matches()) {
                throw new IllegalArgumentException(unsupported(d.group(3)));
            }
            ByteOrder order = simple.group(1).equals(">") ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
            String kind = simple.group(2);
            int size = Integer.parseInt(simple.group(3));
            boolean fortran = f.group(2).equals("True");
            int[] shape = parseShape(s.group(2));
            long n = Shape.numel(shape);
            DType dtype;
            if (kind.equals("f") && (size == 4 || size == 2)) {
                dtype = DType.FLOAT32; // float16 widened
            } else if (kind.equals("f") && size == 8) {
                dtype = DType.FLOAT64;
            } else if ((kind.equals("i") || kind.equals("u")) && (size == 4 || size == 8 || size == 1 || size == 2)) {
                dtype = DType.INT32;
            } else if (kind.equals("b") && size == 1) {
                dtype = DType.INT32;
            } else {
                throw new IllegalArgumentException(unsupported(d.group(3)));
            }
            long dataStart = start + headerLen;
            long need = n * size;
            if (length - dataStart < need) {
                throw new IllegalArgumentException("truncated .npy data: shape " + Shape.str(shape) + " needs " + need
                        + " bytes, " + (length - dataStart) + " present");
            }
            return new Header(order, kind, size, fortran, shape, dataStart, dtype);
        }
    }

    /** Why an array of NumPy dtype {@code descr} ('|O', '<U5', '<c8') is not read. */
    private static String unsupported(String descr) {
        String code = descr.replaceFirst("^[<>|=]", "");
        String what = code.startsWith("O") ? "an object array: its elements are pickled Python objects, which dir4j "
                + "never unpickles"
                : code.startsWith("U") || code.startsWith("S") || code.startsWith("a") ? "an array of strings"
                : code.startsWith("M") || code.startsWith("m") ? "an array of dates or times"
                : code.startsWith("c") ? "a complex array"
                : code.startsWith("V") ? "an array of raw bytes (void)"
                : "an array of an element type dir4j does not read";
        return "unsupported .npy dtype '" + descr + "': " + what + "; dir4j reads float16, float32, float64, "
                + "integer and bool arrays: save it as one of those (numpy.asarray(a, dtype=numpy.float32))";
    }

    /**
     * Rows of a 2-D float .npy file read a block at a time, for arrays larger than memory (the
     * million distractor descriptors of the revisited benchmarks take 8 GiB at 2048-d). The header
     * is validated like {@link #read}'s, the data's length against it; each
     * {@link #read(long, int) read} reads just its rows from the file, straight into a float32
     * tensor (float64, float16 and big-endian files through a buffer), so memory holds one block and the
     * file is not mapped. Fortran-order files are refused: their rows are not contiguous.
     */
    public static final class RowReader implements AutoCloseable {
        private static final int BUFFER_BYTES = 1 << 20;

        private final Path file;
        private final FileChannel channel;
        private final Header header;

        private RowReader(Path file, FileChannel channel, Header header) {
            this.file = file;
            this.channel = channel;
            this.header = header;
        }

        /** Opens {@code file}, which must hold a C-order N x D float32 or float64 array. */
        public static RowReader open(Path file) throws IOException {
            if (Files.isDirectory(file)) {
                throw new IOException(file + ": a directory, not a .npy file");
            }
            FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
            try {
                long length = ch.size();
                ByteBuffer head = ByteBuffer.allocate((int) Math.min(length, 12 + MAX_HEADER_BYTES));
                while (head.hasRemaining() && ch.read(head, head.position()) >= 0) {
                    // positional reads until the buffer is full or the file ends
                }
                Header h = Header.parse(MemorySegment.ofArray(head.array()).asSlice(0, head.position()), length);
                if (h.shape.length != 2 || !h.dtype.isFloating()) {
                    throw new IllegalArgumentException("expected an N x D float array, found " + h.dtype + " of shape "
                            + Shape.str(h.shape));
                }
                if (h.fortran && h.shape[0] > 1 && h.shape[1] > 1) {
                    throw new IllegalArgumentException("stored in Fortran order (column by column); rows cannot be "
                            + "read a block at a time: save it in C order (numpy.ascontiguousarray)");
                }
                return new RowReader(file, ch, h);
            } catch (IllegalArgumentException e) {
                ch.close();
                throw new IOException(file + ": " + e.getMessage(), e);
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }

        /** The file read. */
        public Path file() {
            return file;
        }

        /** Number of rows. */
        public long rows() {
            return header.shape[0];
        }

        /** Elements per row. */
        public int columns() {
            return header.shape[1];
        }

        /** The element type rows are read from: float64, or float32 (float16 files included, widened). */
        public DType storedType() {
            return header.dtype;
        }

        /** Rows {@code [from, from + count)} as a new count x D float32 CPU tensor (the caller owns it). */
        public Tensor read(long from, int count) throws IOException {
            if (from < 0 || count < 0 || from + count > rows()) {
                throw new IndexOutOfBoundsException("rows " + from + "+" + count + " of " + rows() + " in " + file);
            }
            long n = (long) count * columns();
            long at = header.dataStart + from * columns() * header.size;
            Tensor t = Tensor.empty(DType.FLOAT32, Device.CPU, count, columns());
            try {
                MemorySegment dst = t.segment();
                if (header.size == Float.BYTES && header.order == ByteOrder.nativeOrder()) {
                    long bytes = n * Float.BYTES;
                    for (long done = 0; done < bytes; done += 1 << 30) { // a ByteBuffer stops below 2 GiB
                        readFully(dst.asSlice(done, Math.min(1 << 30, bytes - done)).asByteBuffer(), at + done);
                    }
                    return t;
                }
                ByteBuffer buffer = ByteBuffer.allocate(BUFFER_BYTES - BUFFER_BYTES % header.size).order(header.order);
                for (long done = 0; done < n; ) {
                    int k = (int) Math.min(buffer.capacity() / header.size, n - done);
                    buffer.clear().limit(k * header.size);
                    readFully(buffer, at + done * header.size);
                    buffer.flip();
                    for (int i = 0; i < k; i++) {
                        float v = switch (header.size) {
                            case Float.BYTES -> buffer.getFloat();
                            case 2 -> Float.float16ToFloat(buffer.getShort());
                            default -> (float) buffer.getDouble();
                        };
                        dst.setAtIndex(ValueLayout.JAVA_FLOAT, done + i, v);
                    }
                    done += k;
                }
                return t;
            } catch (IOException | RuntimeException e) {
                t.close();
                throw e;
            }
        }

        private void readFully(ByteBuffer b, long position) throws IOException {
            while (b.hasRemaining()) {
                int got = channel.read(b, position);
                if (got < 0) {
                    throw new IOException(file + ": ended while reading rows (the file shrank after it was opened)");
                }
                position += got;
            }
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** The n stored values from byte {@code at}, into dst as dtype: floats in one bulk copy, integers range-checked. */
    private static void copyData(MemorySegment all, long at, ByteOrder order, String kind, int size, long n, DType dtype,
            MemorySegment dst) {
        switch (dtype) {
            case FLOAT32 -> {
                if (size == 2) { // float16, widened
                    ValueLayout.OfShort half = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order);
                    for (long i = 0; i < n; i++) {
                        dst.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.float16ToFloat(all.get(half, at + i * 2)));
                    }
                } else {
                    MemorySegment.copy(all, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(order), at, dst,
                            ValueLayout.JAVA_FLOAT, 0, n);
                }
            }
            case FLOAT64 -> MemorySegment.copy(all, ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(order), at, dst,
                    ValueLayout.JAVA_DOUBLE, 0, n);
            default -> {
                boolean unsigned = kind.equals("u");
                // the stored width's layout once, not one per element
                ValueLayout layout = switch (size) {
                    case 1 -> ValueLayout.JAVA_BYTE;
                    case 2 -> ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order);
                    case 4 -> ValueLayout.JAVA_INT_UNALIGNED.withOrder(order);
                    default -> ValueLayout.JAVA_LONG_UNALIGNED.withOrder(order);
                };
                for (long i = 0; i < n; i++) {
                    dst.setAtIndex(ValueLayout.JAVA_INT, i, readInt(all, at + i * size, layout, unsigned));
                }
            }
        }
    }

    private static int readInt(MemorySegment b, long at, ValueLayout layout, boolean unsigned) {
        long v = switch (layout) {
            case ValueLayout.OfByte l -> unsigned ? b.get(l, at) & 0xff : b.get(l, at);
            case ValueLayout.OfShort l -> unsigned ? b.get(l, at) & 0xffff : b.get(l, at);
            case ValueLayout.OfInt l -> unsigned ? b.get(l, at) & 0xffffffffL : b.get(l, at);
            case ValueLayout.OfLong l -> b.get(l, at);
            default -> throw new IllegalStateException("integer layout " + layout);
        };
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("integer " + v + " does not fit int32");
        }
        return (int) v;
    }

    private static int[] parseShape(String s) {
        List<Integer> dims = new ArrayList<>();
        for (String part : s.split(",")) {
            String p = part.strip();
            if (p.endsWith("L")) {
                p = p.substring(0, p.length() - 1);
            }
            if (!p.isEmpty()) {
                long v;
                try {
                    v = Long.parseLong(p);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("bad .npy shape (" + s + ")");
                }
                if (v < 0 || v > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("bad .npy dimension " + v);
                }
                dims.add((int) v);
            }
        }
        return dims.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * Writes a tensor as .npy (little-endian, C order, any strides or device), atomically: the
     * file appears whole under its name or not at all ({@link Writer}).
     */
    public static void write(Path file, Tensor t) throws IOException {
        try (Writer w = Writer.create(file, t.dtype(), t.shape())) {
            w.write(t);
            w.finish();
        }
    }

    /**
     * The .npy version 1.0 header of a C-order array: magic, version, length, and the dict padded
     * with spaces and a newline so that the data starts on a 64-byte boundary, as NumPy writes it.
     */
    static byte[] header(DType dtype, int[] shape) {
        String descr = switch (dtype) {
            case FLOAT32 -> "<f4";
            case FLOAT64 -> "<f8";
            case INT32 -> "<i4";
            default -> throw new IllegalArgumentException(".npy: dtype " + dtype
                    + " cannot be written (float32, float64 and int32 can)");
        };
        StringBuilder sh = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException(".npy: negative dimension in shape " + Shape.str(shape));
            }
            sh.append(shape[i]).append(shape.length == 1 ? "," : (i + 1 < shape.length ? ", " : ""));
        }
        sh.append(')');
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
        int total = 10 + dict.length() + 1;
        String padded = dict + " ".repeat((64 - total % 64) % 64) + "\n";
        if (padded.length() > 0xffff) {
            throw new IllegalArgumentException(".npy: header of shape " + Shape.str(shape) + " is too long for version 1.0");
        }
        ByteBuffer b = ByteBuffer.allocate(10 + padded.length()).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) padded.length());
        b.put(padded.getBytes(StandardCharsets.ISO_8859_1));
        return b.array();
    }

    /**
     * A .npy file written as a stream: the header for a shape known up front, then the elements
     * in row-major order, in as many calls as convenient, so an array far larger than memory
     * (or than one Java array) can be written row block by row block.
     *
     * <p>The data go to a temporary file beside the target; {@link #finish()} checks that exactly
     * the announced number of elements came, forces them to disk and renames the file into place
     * (atomically where the file system can), so readers never see a partial file. Closing a
     * writer that was not finished deletes the temporary file and leaves any earlier file of that
     * name untouched.
     *
     * <pre>{@code
     * try (Npy.Writer w = Npy.Writer.create(out, DType.FLOAT32, rows, dim)) {
     *     for (float[] block : blocks) w.write(block, 0, block.length);
     *     w.finish();
     * }
     * }</pre>
     */
    public static final class Writer implements AutoCloseable {
        private static final int BUFFER_BYTES = 1 << 20;
        private static final ValueLayout.OfFloat LE_FLOAT =
                ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfDouble LE_DOUBLE =
                ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

        private final Path file;
        private final Path tmp;
        private final DType dtype;
        private final int[] shape;
        private final long expected;
        private final FileChannel channel;
        private final byte[] buffer = new byte[BUFFER_BYTES];
        private final MemorySegment bufferSegment = MemorySegment.ofArray(buffer);
        private long written;
        private boolean finished;
        private boolean closed;

        private Writer(Path file, Path tmp, DType dtype, int[] shape, FileChannel channel) {
            this.file = file;
            this.tmp = tmp;
            this.dtype = dtype;
            this.shape = shape.clone();
            this.expected = Shape.numel(shape);
            this.channel = channel;
        }

        /**
         * Starts {@code file} (its folder is created if needed) for an array of the given dtype
         * (float32, float64 or int32) and shape; nothing appears under the name before
         * {@link #finish()}.
         */
        public static Writer create(Path file, DType dtype, int... shape) throws IOException {
            byte[] head = header(dtype, shape);
            Path tmp = AtomicFiles.temporaryBeside(file);
            FileChannel ch = null;
            try {
                ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
                Writer w = new Writer(file, tmp, dtype, shape, ch);
                w.writeFully(ByteBuffer.wrap(head));
                return w;
            } catch (IOException | RuntimeException e) {
                if (ch != null) {
                    ch.close();
                }
                Files.deleteIfExists(tmp);
                throw e;
            }
        }

        /** The file this writer will create. */
        public Path file() {
            return file;
        }

        /** The announced shape. */
        public int[] shape() {
            return shape.clone();
        }

        /** Elements written so far. */
        public long written() {
            return written;
        }

        /** Appends {@code count} float32 values of {@code values} from {@code offset}. */
        public void write(float[] values, int offset, int count) throws IOException {
            requireDtype(DType.FLOAT32);
            java.util.Objects.checkFromIndexSize(offset, count, values.length);
            reserve(count);
            int per = BUFFER_BYTES / Float.BYTES;
            for (int done = 0; done < count; ) {
                int n = Math.min(per, count - done);
                MemorySegment.copy(values, offset + done, bufferSegment, LE_FLOAT, 0, n);
                flush(n * Float.BYTES);
                done += n;
            }
        }

        /** Appends every float32 value of {@code values}. */
        public void write(float[] values) throws IOException {
            write(values, 0, values.length);
        }

        /**
         * Appends a tensor's elements in row-major order (any strides, any device); its dtype
         * must be the writer's. Typically a block of rows of the announced array.
         */
        public void write(Tensor t) throws IOException {
            requireDtype(t.dtype());
            t.checkAlive("Npy.Writer.write");
            long n = t.numel();
            reserve(n);
            if (n == 0) {
                return;
            }
            try (MemoryScope scope = MemoryScope.open(); Autograd.NoGrad noGrad = Autograd.noGrad()) {
                Tensor c = t.device().equals(Device.CPU) ? t : t.to(Device.CPU);
                if (!c.isContiguous()) {
                    c = c.contiguous();
                }
                MemorySegment seg = c.segment();
                int size = dtype.byteSize();
                long at = c.offset() * size;
                long per = BUFFER_BYTES / size;
                for (long done = 0; done < n; ) {
                    int k = (int) Math.min(per, n - done);
                    switch (dtype) {
                        case FLOAT32 -> MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT_UNALIGNED, at + done * size,
                                bufferSegment, LE_FLOAT, 0, k);
                        case FLOAT64 -> MemorySegment.copy(seg, ValueLayout.JAVA_DOUBLE_UNALIGNED, at + done * size,
                                bufferSegment, LE_DOUBLE, 0, k);
                        default -> MemorySegment.copy(seg, ValueLayout.JAVA_INT_UNALIGNED, at + done * size,
                                bufferSegment, LE_INT, 0, k);
                    }
                    flush(k * size);
                    done += k;
                }
            }
        }

        /**
         * Completes the file: checks that every announced element was written, forces the data to
         * disk and renames the temporary file into place.
         *
         * @throws IOException when fewer elements came than the shape announced (the target is
         *     then left untouched)
         */
        public void finish() throws IOException {
            if (closed) {
                throw new IllegalStateException("Npy.Writer for " + file + " is closed");
            }
            if (written != expected) {
                throw new IOException(file + ": " + written + " of the " + expected + " elements of shape "
                        + Shape.str(shape) + " were written; the file was not created");
            }
            channel.force(true);
            channel.close();
            closed = true;
            try {
                AtomicFiles.replace(tmp, file);
            } finally {
                Files.deleteIfExists(tmp);
            }
            finished = true;
        }

        /** Abandons an unfinished file (deleting the temporary file); after {@link #finish()}, nothing. */
        @Override
        public void close() throws IOException {
            if (!closed) {
                closed = true;
                channel.close();
            }
            if (!finished) {
                Files.deleteIfExists(tmp);
            }
        }

        private void requireDtype(DType given) {
            if (closed) {
                throw new IllegalStateException("Npy.Writer for " + file + " is closed");
            }
            if (given != dtype) {
                throw new IllegalArgumentException("Npy.Writer for " + file + " writes " + dtype + ", given " + given);
            }
        }

        private void reserve(long count) {
            if (count > expected - written) {
                throw new IllegalArgumentException(file + ": writing " + count + " more elements would exceed shape "
                        + Shape.str(shape) + " (" + written + " of " + expected + " written)");
            }
            written += count;
        }

        private void flush(int bytes) throws IOException {
            writeFully(ByteBuffer.wrap(buffer, 0, bytes));
        }

        private void writeFully(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }
    }
}
