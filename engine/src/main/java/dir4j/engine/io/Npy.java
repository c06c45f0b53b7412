package dir4j.engine.io;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy's .npy format (versions 1–3): little- or big-endian float32, float64, int32 and int64
 * (read as int32, range-checked), C or Fortran order. Files are validated against their header
 * before any allocation, so a truncated or hostile file is a clear error, never a crash.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([<>|=]?)([a-z])(\\d+)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    /** Reads a .npy file into a CPU tensor (caller owns it). */
    public static Tensor read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        try {
            return parse(all);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses .npy bytes. */
    public static Tensor parse(byte[] all) {
        if (all.length < 10) {
            throw new IllegalArgumentException("not a .npy file: only " + all.length + " bytes");
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (all[i] != MAGIC[i]) {
                throw new IllegalArgumentException("not a .npy file (bad magic)");
            }
        }
        int major = all[6] & 0xff;
        ByteBuffer bb = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen;
        int start;
        if (major == 1) {
            headerLen = bb.getShort(8) & 0xffff;
            start = 10;
        } else if (major == 2 || major == 3) {
            if (all.length < 12) {
                throw new IllegalArgumentException("truncated .npy header");
            }
            headerLen = bb.getInt(8) & 0xffffffffL;
            start = 12;
        } else {
            throw new IllegalArgumentException("unsupported .npy version " + major);
        }
        if (start + headerLen > all.length) {
            throw new IllegalArgumentException("truncated .npy header (" + headerLen + " bytes announced, "
                    + (all.length - start) + " present)");
        }
        String header = new String(all, start, (int) headerLen,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(header);
        Matcher f = FORTRAN.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !f.find() || !s.find()) {
            throw new IllegalArgumentException("malformed .npy header: " + header.strip());
        }
        ByteOrder order = d.group(1).equals(">") ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
        String kind = d.group(2);
        int size = Integer.parseInt(d.group(3));
        boolean fortran = f.group(1).equals("True");
        int[] shape = parseShape(s.group(1));
        long n = Shape.numel(shape);
        DType dtype;
        if (kind.equals("f") && size == 4) {
            dtype = DType.FLOAT32;
        } else if (kind.equals("f") && size == 8) {
            dtype = DType.FLOAT64;
        } else if ((kind.equals("i") || kind.equals("u")) && (size == 4 || size == 8 || size == 1 || size == 2)) {
            dtype = DType.INT32;
        } else if (kind.equals("b") && size == 1) {
            dtype = DType.INT32;
        } else {
            throw new IllegalArgumentException("unsupported .npy dtype '" + kind + size
                    + "' (float32, float64 and integers are supported)");
        }
        long dataStart = start + headerLen;
        long need = n * size;
        if (all.length - dataStart < need) {
            throw new IllegalArgumentException("truncated .npy data: shape " + Shape.str(shape) + " needs " + need
                    + " bytes, " + (all.length - dataStart) + " present");
        }
        int[] memShape = shape;
        if (fortran) {
            memShape = new int[shape.length];
            for (int i = 0; i < shape.length; i++) {
                memShape[i] = shape[shape.length - 1 - i];
            }
        }
        Tensor t = Tensor.empty(dtype, Device.CPU, memShape);
        MemorySegment seg = t.segment();
        ByteBuffer data = ByteBuffer.wrap(all, (int) dataStart, (int) need).slice().order(order);
        for (long i = 0; i < n; i++) {
            int bi = (int) (i * size);
            switch (dtype) {
                case FLOAT32 -> seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, data.getFloat(bi));
                case FLOAT64 -> seg.setAtIndex(ValueLayout.JAVA_DOUBLE, i, data.getDouble(bi));
                default -> seg.setAtIndex(ValueLayout.JAVA_INT, i, readInt(data, bi, size, kind.equals("u")));
            }
        }
        if (!fortran || shape.length < 2) {
            return t;
        }
        int[] rev = new int[shape.length];
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

    private static int readInt(ByteBuffer b, int at, int size, boolean unsigned) {
        long v = switch (size) {
            case 1 -> unsigned ? b.get(at) & 0xff : b.get(at);
            case 2 -> unsigned ? b.getShort(at) & 0xffff : b.getShort(at);
            case 4 -> unsigned ? b.getInt(at) & 0xffffffffL : b.getInt(at);
            default -> b.getLong(at);
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

    /** Writes a tensor as .npy (little-endian, C order), atomically (temp file, then rename). */
    public static void write(Path file, Tensor t) throws IOException {
        String descr = switch (t.dtype()) {
            case FLOAT32 -> "<f4";
            case FLOAT64 -> "<f8";
            case INT32 -> "<i4";
            default -> throw new IllegalArgumentException("Npy.write: dtype " + t.dtype() + " not supported");
        };
        int[] shape = t.shape();
        StringBuilder sh = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sh.append(shape[i]).append(shape.length == 1 ? "," : (i + 1 < shape.length ? ", " : ""));
        }
        sh.append(')');
        String header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + sh + ", }";
        int total = 10 + header.length() + 1;
        int pad = (64 - total % 64) % 64;
        header = header + " ".repeat(pad) + "\n";
        int size = t.dtype().byteSize();
        long n = t.numel();
        ByteBuffer out = ByteBuffer.allocate((int) (10 + header.length() + n * size)).order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        out.put(header.getBytes(StandardCharsets.ISO_8859_1));
        double[] v = t.toDoubleArray();
        for (double x : v) {
            switch (t.dtype()) {
                case FLOAT32 -> out.putFloat((float) x);
                case FLOAT64 -> out.putDouble(x);
                default -> out.putInt((int) x);
            }
        }
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            Files.write(tmp, out.array());
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
