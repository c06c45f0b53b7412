package dir4j.nn.io;

import dir4j.engine.io.AtomicFiles;
import dir4j.engine.DType;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
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
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format, dir4j's own checkpoint format: an 8-byte little-endian header length,
 * a JSON header mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin,
 * end]}} (offsets relative to the data that follows) plus an optional {@code __metadata__} map of
 * strings (dir4j keeps model options there, as JSON text), then the little-endian tensor data.
 *
 * <p>Reading accepts F32, F64, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL (F16/BF16 widen to
 * float32, integers become int32, range-checked) and validates the header before allocating:
 * a header over 100 MB, offsets outside the data, overlapping tensors, or a byte count that does
 * not match the shape are errors naming the tensor. Writing takes float32, float64 and int32
 * tensors, lays them out without gaps (8-byte types first, so every tensor is aligned) as the
 * reference implementation requires, and replaces the file atomically.
 */
public final class Safetensors {
    /** The reference implementation's header limit. */
    static final long MAX_HEADER_BYTES = 100_000_000;
    private static final String METADATA = "__metadata__";

    private Safetensors() {}

    /**
     * Tensors (in header order; the caller owns them) and metadata of a safetensors file.
     * Closing it closes the tensors.
     */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) implements AutoCloseable {
        @Override
        public void close() {
            for (Tensor t : tensors.values()) {
                t.close();
            }
        }
    }

    private record Entry(String name, StoredType type, int[] shape, long begin, long end) {}

    /** Reads every tensor of a file; float64 stays float64. */
    public static Contents read(Path file) throws IOException {
        return read(file, false);
    }

    /** Reads every tensor of a file, narrowing float64 to float32 when asked. */
    public static Contents read(Path file, boolean float64ToFloat32) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = ch.size();
            if (size < 8) {
                throw new IOException(file + ": not a safetensors file: " + size + " bytes, shorter than its 8-byte header length");
            }
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLen = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
                throw new IOException(file + ": safetensors header length " + Long.toUnsignedString(headerLen)
                        + " exceeds the limit of " + MAX_HEADER_BYTES + " bytes (not a safetensors file, or corrupt)");
            }
            if (headerLen > size - 8) {
                throw new IOException(file + ": safetensors header of " + headerLen + " bytes runs past the end of the "
                        + size + "-byte file (truncated?)");
            }
            byte[] hb = new byte[(int) headerLen];
            MemorySegment.copy(all, ValueLayout.JAVA_BYTE, 8, hb, 0, hb.length);
            Object header;
            try {
                header = Json.parse(new String(hb, StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": safetensors header is not valid JSON: " + e.getMessage(), e);
            }
            if (!(header instanceof Map<?, ?> h)) {
                throw new IOException(file + ": safetensors header is not a JSON object");
            }
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            Map<String, String> metadata = new LinkedHashMap<>();
            List<Entry> entries = new ArrayList<>();
            for (Map.Entry<?, ?> e : h.entrySet()) {
                String name = (String) e.getKey();
                if (name.equals(METADATA)) {
                    metadata = metadata(file, e.getValue());
                } else {
                    entries.add(entry(file, name, e.getValue(), dataLen));
                }
            }
            List<Entry> byOffset = new ArrayList<>(entries);
            byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
            Entry reach = null; // the non-empty tensor reaching furthest so far
            for (Entry cur : byOffset) {
                if (cur.end() == cur.begin()) {
                    continue;
                }
                if (reach != null && cur.begin() < reach.end()) {
                    throw new IOException(file + ": tensors '" + reach.name() + "' [" + reach.begin() + ", " + reach.end()
                            + ") and '" + cur.name() + "' [" + cur.begin() + ", " + cur.end() + ") overlap");
                }
                if (reach == null || cur.end() > reach.end()) {
                    reach = cur;
                }
            }
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            try {
                for (Entry e : entries) {
                    tensors.put(e.name(), e.type().read(all, dataStart + e.begin(), ByteOrder.LITTLE_ENDIAN, e.shape(),
                            Shape.contiguousStrides(e.shape()), float64ToFloat32, file + ": tensor '" + e.name() + "'"));
                }
            } catch (IOException | RuntimeException ex) {
                tensors.values().forEach(Tensor::close);
                throw ex;
            }
            return new Contents(Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
        }
    }

    /**
     * The metadata of a file, from its header alone (no tensor is read): what a caller needs to
     * know about a large checkpoint before deciding to load it. Empty when the file has none.
     */
    public static Map<String, String> readMetadata(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining() && ch.read(len) >= 0) {
                // until 8 bytes or the end
            }
            if (len.hasRemaining()) {
                throw new IOException(file + ": not a safetensors file: " + size + " bytes, shorter than its 8-byte header length");
            }
            long headerLen = len.flip().getLong();
            if (headerLen < 0 || headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
                throw new IOException(file + ": safetensors header length " + Long.toUnsignedString(headerLen)
                        + " does not fit the " + size + "-byte file (not a safetensors file, or corrupt)");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            while (hb.hasRemaining() && ch.read(hb) >= 0) {
                // until the whole header
            }
            Object header;
            try {
                header = Json.parse(new String(hb.array(), 0, hb.position(), StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": safetensors header is not valid JSON: " + e.getMessage(), e);
            }
            if (!(header instanceof Map<?, ?> h)) {
                throw new IOException(file + ": safetensors header is not a JSON object");
            }
            return h.containsKey(METADATA) ? Collections.unmodifiableMap(metadata(file, h.get(METADATA))) : Map.of();
        }
    }

    private static Map<String, String> metadata(Path file, Object value) throws IOException {
        if (!(value instanceof Map<?, ?> m)) {
            throw new IOException(file + ": safetensors " + METADATA + " is not a JSON object");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw new IOException(file + ": safetensors " + METADATA + " value of '" + e.getKey()
                        + "' is not a string (the format allows only strings)");
            }
            out.put((String) e.getKey(), s);
        }
        return out;
    }

    private static Entry entry(Path file, String name, Object value, long dataLen) throws IOException {
        String what = file + ": tensor '" + name + "'";
        if (!(value instanceof Map<?, ?> m)) {
            throw new IOException(what + ": header entry is not a JSON object");
        }
        if (!(m.get("dtype") instanceof String dtypeName)) {
            throw new IOException(what + ": no dtype");
        }
        StoredType type = StoredType.ofSafetensors(dtypeName);
        if (type == null) {
            throw new IOException(what + ": dtype " + dtypeName + " is not supported (F32, F64, F16, BF16, I64, I32, "
                    + "I16, I8, U8, U16, U32, U64 and BOOL are)");
        }
        if (!(m.get("shape") instanceof List<?> dims)) {
            throw new IOException(what + ": no shape");
        }
        int[] shape = new int[dims.size()];
        long numel = 1;
        for (int k = 0; k < shape.length; k++) {
            if (!(dims.get(k) instanceof Long d) || d < 0 || d > Integer.MAX_VALUE) {
                throw new IOException(what + ": bad dimension " + dims.get(k));
            }
            shape[k] = (int) (long) d;
            numel = numel > Long.MAX_VALUE / Math.max(1, d) ? Long.MAX_VALUE : numel * d;
        }
        if (!(m.get("data_offsets") instanceof List<?> offs) || offs.size() != 2
                || !(offs.get(0) instanceof Long begin) || !(offs.get(1) instanceof Long end)) {
            throw new IOException(what + ": data_offsets must be [begin, end]");
        }
        if (begin < 0 || end < begin || end > dataLen) {
            throw new IOException(what + ": data_offsets [" + begin + ", " + end + "] lie outside the "
                    + dataLen + " bytes of data");
        }
        long need = numel > Long.MAX_VALUE / type.size ? -1 : numel * type.size;
        if (need != end - begin) {
            throw new IOException(what + ": shape " + Shape.str(shape) + " of " + dtypeName + " needs "
                    + (need < 0 ? "too many" : need) + " bytes but data_offsets give " + (end - begin));
        }
        return new Entry(name, type, shape, begin, end);
    }

    /** Writes tensors (float32, float64 or int32; any device and strides) and string metadata. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        List<Map.Entry<String, Tensor>> order = new ArrayList<>(tensors.entrySet());
        for (Map.Entry<String, Tensor> e : order) {
            if (e.getKey().isEmpty() || e.getKey().equals(METADATA)) {
                throw new IllegalArgumentException("Safetensors.write: tensor name '" + e.getKey() + "' is reserved");
            }
            DType d = e.getValue().dtype();
            if (d != DType.FLOAT32 && d != DType.FLOAT64 && d != DType.INT32) {
                throw new IllegalArgumentException("Safetensors.write: tensor '" + e.getKey() + "' is " + d
                        + "; float32, float64 and int32 are written");
            }
            e.getValue().checkAlive("Safetensors.write");
        }
        // 8-byte elements first: with the header padded to 8, every tensor starts aligned
        order.sort(Comparator.comparingInt((Map.Entry<String, Tensor> e) -> -e.getValue().dtype().byteSize()));
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            header.put(METADATA, new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : order) {
            Tensor t = e.getValue();
            long bytes = t.numel() * t.dtype().byteSize();
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("dtype", switch (t.dtype()) {
                case FLOAT32 -> "F32";
                case FLOAT64 -> "F64";
                default -> "I32";
            });
            List<Object> shape = new ArrayList<>();
            for (int d : t.shape()) {
                shape.add((long) d);
            }
            h.put("shape", shape);
            h.put("data_offsets", List.of(offset, offset + bytes));
            header.put(e.getKey(), h);
            offset += bytes;
        }
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        Path tmp = AtomicFiles.temporaryBeside(file);
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(ch, head);
                for (Map.Entry<String, Tensor> e : order) {
                    writeTensor(ch, e.getValue());
                }
                ch.force(true);
            }
            AtomicFiles.replace(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Streams a tensor's elements, little-endian, in chunks (no whole-tensor heap copy). */
    static void writeTensor(FileChannel ch, Tensor t) throws IOException {
        TensorBytes.write(t, false, (chunk, length) -> writeFully(ch, ByteBuffer.wrap(chunk, 0, length)));
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
