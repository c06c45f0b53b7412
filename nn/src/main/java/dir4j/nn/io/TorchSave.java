package dir4j.nn.io;

import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import java.io.ByteArrayOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes the zip archive that {@code torch.save} writes (PyTorch 1.6 and later), so that
 * {@code torch.load} reads dir4j's checkpoints: {@code archive/data.pkl} (the object, pickle
 * protocol 2, each tensor as {@code torch._utils._rebuild_tensor_v2} over a persistent storage id
 * {@code ('storage', torch.FloatStorage, key, 'cpu', numel)}), {@code archive/data/<key>} (each
 * tensor's elements, little-endian, starting at a multiple of 64 bytes in the file as PyTorch's
 * own writer aligns them), {@code archive/byteorder} and {@code archive/version}.
 *
 * <p>What can be written: {@link Map} (a Python dict; a {@link StateDict} becomes a
 * {@code collections.OrderedDict}, as PyTorch's state dicts are) with string or integer keys,
 * {@link List} (a list), {@link String}, {@link Long}/{@link Integer}/{@link java.math.BigInteger},
 * {@link Double}/{@link Float}, {@link Boolean}, {@code null} (None) and {@link Tensor}. Float32
 * and float64 tensors keep their type; int32 tensors are written as int64
 * ({@code torch.LongStorage}), PyTorch's type for integer buffers such as batch norm's
 * {@code num_batches_tracked} (dir4j holds PyTorch's int64 as int32); other types are refused.
 * The pickle uses only opcodes of protocol 2 and the globals above, all
 * of which {@link TorchCheckpoint} and {@code torch.load} accept (PyTorch 1.13's {@code weights_only}
 * loader refuses floats outside tensors, as it does in {@code torch.save}'s own output).
 */
public final class TorchSave {
    private TorchSave() {}

    /** A dict written as {@code collections.OrderedDict}: what PyTorch's {@code state_dict()} returns. */
    public record StateDict(Map<String, Tensor> tensors) {}

    /** Pickle opcodes (protocol 2). */
    private static final int PROTO = 0x80;
    private static final int STOP = '.';
    private static final int MARK = '(';
    private static final int NONE = 'N';
    private static final int NEWTRUE = 0x88;
    private static final int NEWFALSE = 0x89;
    private static final int BININT = 'J';
    private static final int BININT1 = 'K';
    private static final int BININT2 = 'M';
    private static final int LONG1 = 0x8a;
    private static final int BINFLOAT = 'G';
    private static final int BINUNICODE = 'X';
    private static final int EMPTY_DICT = '}';
    private static final int EMPTY_LIST = ']';
    private static final int EMPTY_TUPLE = ')';
    private static final int SETITEMS = 'u';
    private static final int APPENDS = 'e';
    private static final int TUPLE = 't';
    private static final int GLOBAL = 'c';
    private static final int REDUCE = 'R';
    private static final int BINPERSID = 'Q';

    private static final String PREFIX = "archive/";
    private static final java.time.LocalDateTime FIXED_TIME = java.time.LocalDateTime.of(1980, 1, 2, 0, 0);
    private static final int ALIGN = 64;

    /**
     * Writes {@code root} as a {@code torch.save} zip archive to {@code file}, atomically (a
     * temporary file beside it, then a rename): an existing file is replaced only by a complete one.
     */
    public static void write(Path file, Object root) throws IOException {
        List<Tensor> storages = new ArrayList<>();
        byte[] pickle = pickle(root, storages);
        Path tmp = AtomicFiles.temporaryBeside(file);
        try {
            try (OutputStream os = Files.newOutputStream(tmp);
                 Counting counting = new Counting(new java.io.BufferedOutputStream(os, 1 << 20));
                 ZipOutputStream zip = new ZipOutputStream(counting)) {
                zip.setLevel(0);
                stored(zip, counting, PREFIX + "data.pkl", pickle);
                stored(zip, counting, PREFIX + "byteorder", "little".getBytes(StandardCharsets.US_ASCII));
                for (int i = 0; i < storages.size(); i++) {
                    stored(zip, counting, PREFIX + "data/" + i, elements(storages.get(i)));
                }
                stored(zip, counting, PREFIX + "version", "3\n".getBytes(StandardCharsets.US_ASCII));
            }
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(tmp,
                    java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            AtomicFiles.replace(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The object pickle alone (for tests); the tensors it refers to are listed in storage-key order. */
    static byte[] pickle(Object root, List<Tensor> storages) {
        Pickler p = new Pickler(storages);
        p.out.write(PROTO);
        p.out.write(2);
        p.value(root, 0);
        p.out.write(STOP);
        return p.out.toByteArray();
    }

    private static final class Pickler {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        final List<Tensor> storages;
        final Map<Tensor, Integer> keys = new IdentityHashMap<>();

        Pickler(List<Tensor> storages) {
            this.storages = storages;
        }

        void value(Object v, int depth) {
            if (depth > 64) {
                throw new IllegalArgumentException("TorchSave: objects nested deeper than 64 levels");
            }
            switch (v) {
                case null -> out.write(NONE);
                case Boolean b -> out.write(b ? NEWTRUE : NEWFALSE);
                case Integer i -> integer(i);
                case Long l -> integer(l);
                case java.math.BigInteger b -> big(b);
                case Float f -> real(f);
                case Double d -> real(d);
                case String s -> string(s);
                case Tensor t -> tensor(t);
                case StateDict sd -> {
                    global("collections", "OrderedDict");
                    out.write(EMPTY_TUPLE);
                    out.write(REDUCE);
                    items(sd.tensors(), depth);
                }
                case Map<?, ?> m -> {
                    out.write(EMPTY_DICT);
                    items(m, depth);
                }
                case List<?> list -> {
                    out.write(EMPTY_LIST);
                    if (!list.isEmpty()) {
                        out.write(MARK);
                        for (Object o : list) {
                            value(o, depth + 1);
                        }
                        out.write(APPENDS);
                    }
                }
                default -> throw new IllegalArgumentException("TorchSave: cannot write a "
                        + v.getClass().getName()
                        + " (dicts, lists, strings, numbers, booleans, None and tensors are written)");
            }
        }

        void items(Map<?, ?> m, int depth) {
            if (m.isEmpty()) {
                return;
            }
            out.write(MARK);
            for (Map.Entry<?, ?> e : m.entrySet()) {
                Object k = e.getKey();
                if (!(k instanceof String || k instanceof Long || k instanceof Integer)) {
                    throw new IllegalArgumentException("TorchSave: dict key " + k
                            + " is neither a string nor an integer");
                }
                value(k, depth + 1);
                value(e.getValue(), depth + 1);
            }
            out.write(SETITEMS);
        }

        void integer(long v) {
            if (v >= 0 && v < 0x100) {
                out.write(BININT1);
                out.write((int) v);
            } else if (v >= 0 && v < 0x10000) {
                out.write(BININT2);
                out.write((int) (v & 0xff));
                out.write((int) (v >>> 8));
            } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                out.write(BININT);
                out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
            } else {
                // LONG1: a little-endian two's-complement of 8 bytes
                out.write(LONG1);
                out.write(8);
                out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            }
        }

        void big(java.math.BigInteger b) {
            if (b.bitLength() < 64) {
                integer(b.longValue());
                return;
            }
            byte[] be = b.toByteArray(); // big-endian two's complement
            if (be.length > 255) {
                throw new IllegalArgumentException("TorchSave: an integer of " + b.bitLength() + " bits");
            }
            out.write(LONG1);
            out.write(be.length);
            for (int i = be.length - 1; i >= 0; i--) {
                out.write(be[i]);
            }
        }

        void real(double v) {
            out.write(BINFLOAT);
            out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putDouble(v).array());
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.write(BINUNICODE);
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
            out.writeBytes(b);
        }

        void global(String module, String name) {
            out.write(GLOBAL);
            out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
        }

        void tensor(Tensor t) {
            t.checkAlive("TorchSave");
            String storageClass = switch (t.dtype()) {
                case FLOAT32 -> "FloatStorage";
                case FLOAT64 -> "DoubleStorage";
                case INT32 -> "LongStorage";
                case BFLOAT16, FLOAT16 -> throw new IllegalArgumentException("TorchSave: a " + t.dtype()
                        + " tensor; float32, float64 and int32 are written (cast it first)");
            };
            // one storage per tensor object (a tensor given twice shares its storage, as in PyTorch)
            Integer key = keys.get(t);
            if (key == null) {
                key = storages.size();
                keys.put(t, key);
                storages.add(t);
            }
            global("torch._utils", "_rebuild_tensor_v2");
            out.write(MARK);
            out.write(MARK);
            string("storage");
            global("torch", storageClass);
            string(Integer.toString(key));
            string("cpu");
            integer(t.numel());
            out.write(TUPLE);
            out.write(BINPERSID);
            integer(0); // storage offset
            int[] shape = t.shape();
            tuple(shape.length, i -> shape[i]);
            // contiguous strides: the elements are written in row-major order
            long[] strides = new long[shape.length];
            long s = 1;
            for (int i = shape.length - 1; i >= 0; i--) {
                strides[i] = s;
                s *= shape[i];
            }
            tuple(shape.length, i -> strides[i]);
            out.write(NEWFALSE); // requires_grad
            global("collections", "OrderedDict"); // backward hooks
            out.write(EMPTY_TUPLE);
            out.write(REDUCE);
            out.write(TUPLE);
            out.write(REDUCE);
        }

        void tuple(int n, java.util.function.IntToLongFunction element) {
            if (n == 0) {
                out.write(EMPTY_TUPLE);
                return;
            }
            out.write(MARK);
            for (int i = 0; i < n; i++) {
                integer(element.applyAsLong(i));
            }
            out.write(TUPLE);
        }
    }

    /** A tensor's elements, row-major, little-endian; int32 widened to int64 (one entry's bytes). */
    static byte[] elements(Tensor t) throws IOException {
        long bytes = t.numel() * TensorBytes.width(t.dtype(), true);
        if (bytes > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("TorchSave: a tensor of " + t.numel() + " elements is over 2 GiB");
        }
        byte[] b = new byte[(int) bytes];
        int[] at = {0};
        TensorBytes.write(t, true, (chunk, length) -> {
            System.arraycopy(chunk, 0, b, at[0], length);
            at[0] += length;
        });
        return b;
    }

    /**
     * One uncompressed entry whose data starts at a multiple of {@link #ALIGN} bytes in the file:
     * the local header's extra field is padded, as PyTorch's writer does (field id "FB").
     */
    private static void stored(ZipOutputStream zip, Counting counting, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        e.setCompressedSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        // a fixed local date, whatever the machine's time zone: the same bytes for the same content,
        // and no extended-timestamp field (which setTime adds for instants before 1980 in local time)
        e.setTimeLocal(FIXED_TIME);
        long headerEnd = counting.count + 30 + name.getBytes(StandardCharsets.UTF_8).length;
        int pad = (int) ((ALIGN - headerEnd % ALIGN) % ALIGN);
        if (pad > 0 && pad < 4) {
            pad += ALIGN; // an extra field needs 4 bytes of its own header
        }
        if (pad > 0) {
            byte[] extra = new byte[pad];
            ByteBuffer.wrap(extra).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 0x4246).putShort((short) (pad - 4));
            java.util.Arrays.fill(extra, 4, pad, (byte) 'Z');
            e.setExtra(extra);
        }
        zip.putNextEntry(e);
        if (counting.count != headerEnd + pad) {
            throw new IllegalStateException("TorchSave: " + name + "'s data would start at " + counting.count
                    + ", not at the aligned " + (headerEnd + pad) + " (an unexpected zip header field)");
        }
        zip.write(data);
        zip.closeEntry();
    }

    /** Counts the bytes that reach the file, for the alignment of the next entry. */
    private static final class Counting extends FilterOutputStream {
        long count;

        Counting(OutputStream out) {
            super(out);
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }
    }
}
