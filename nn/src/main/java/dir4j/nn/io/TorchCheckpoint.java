package dir4j.nn.io;

import dir4j.engine.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Reads PyTorch checkpoints ({@code .pt}, {@code .pth}) without Python, through the restricted
 * {@link Unpickler}: nothing in the file is ever run.
 *
 * <p>Two formats, told apart by their first bytes:
 * <ul>
 *   <li>the zip archive {@code torch.save} writes since 1.6: {@code <prefix>/data.pkl} (the
 *       object pickle, whose persistent ids {@code ('storage', torch.FloatStorage, key, location,
 *       numel)} name storages) and {@code <prefix>/data/<key>} (each storage's raw bytes), an
 *       optional {@code <prefix>/byteorder}; any prefix folder name;</li>
 *   <li>the legacy format of earlier releases (the reference's 2019 models): a pickle of the magic
 *       number 0x1950a86a20f9469cfc6c, one of the protocol version (1001), one of the system info,
 *       the object pickle (persistent ids {@code ('storage', type, key, location, numel,
 *       view_metadata)}), a pickle of the sorted storage keys, then each storage as an 8-byte
 *       little-endian element count followed by its data.</li>
 * </ul>
 *
 * <p>Tensors are rebuilt from their storage offset, size and stride as contiguous dir4j CPU
 * tensors: float32 as float32, float64 as float64 (or float32 when
 * {@link Unpickler.Options#float64ToFloat32()}), float16 and bfloat16 widened to float32, int64
 * (range-checked), int32, int16, int8, uint8 and bool as int32. A tensor dir4j has no type for
 * (complex, quantized, sparse; an int64 beyond int32's range) fails the read with its place in
 * the tree ({@code ['state_dict']['fc.weight']}) and its kind; so does a whole pickled
 * {@code nn.Module} ({@code torch.save(model)}), by its class, never run. The result is the object tree
 * of the checkpoint ({@code Map}, {@code List}, {@link Tensor}, numbers, strings,
 * {@link PickledObject}); the caller owns its tensors and releases them with
 * {@link #closeTensors(Object)}.
 */
public final class TorchCheckpoint {
    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long LEGACY_PROTOCOL = 1001;
    private static final String MODULE_PREFIX = "module.";

    private TorchCheckpoint() {}

    /** A storage a persistent id names: its key, element type and (legacy views) element window. */
    private record StorageRef(String key, StoredType type, long numel, long viewOffset, long viewNumel) {}

    /**
     * Reads a checkpoint with only allow-listed globals (containers, tensors, NumPy arrays); a
     * checkpoint pickling objects of other classes (the reference's sklearn PCA) is refused with
     * an error naming the class: read it with {@code read(file, Unpickler.Options.inertObjects())}.
     */
    public static Object read(Path file) throws IOException {
        return read(file, Unpickler.Options.strict());
    }

    /** Reads a checkpoint (zip or legacy format) into its object tree. */
    public static Object read(Path file, Unpickler.Options options) throws IOException {
        byte[] head = new byte[512];
        int n;
        try (InputStream s = Files.newInputStream(file)) {
            n = s.readNBytes(head, 0, head.length);
        }
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) {
            return readZip(file, options);
        }
        if (n >= 2 && (head[0] & 0xff) == 0x80) {
            return readLegacy(file, options);
        }
        if (n >= 262 && new String(head, 257, 5, StandardCharsets.ISO_8859_1).equals("ustar")) {
            throw new IOException(file + ": a tar-format checkpoint (PyTorch before 0.4) is not supported; "
                    + "load and re-save it with a recent PyTorch");
        }
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < Math.min(n, 4); i++) {
            hex.append(String.format("%02x ", head[i] & 0xff));
        }
        throw new IOException(file + ": not a PyTorch checkpoint: it starts with bytes " + hex.toString().strip()
                + " (neither a zip archive nor a pickle)" + (n == 0 ? "; the file is empty" : ""));
    }

    // ================================================================ the zip format

    private static Object readZip(Path file, Unpickler.Options options) throws IOException {
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException | java.io.EOFException e) {
            throw new IOException(file + ": not a readable zip archive (truncated or corrupt?): " + describe(e), e);
        }
        try (zip; Arena arena = Arena.ofConfined()) {
            String prefix = null;
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements();) {
                String name = en.nextElement().getName();
                if (name.endsWith("/data.pkl") && name.indexOf('/') == name.length() - "/data.pkl".length()) {
                    if (prefix != null) {
                        throw new IOException(file + ": archive holds more than one data.pkl (" + prefix
                                + "data.pkl and " + name + ")");
                    }
                    prefix = name.substring(0, name.length() - "data.pkl".length());
                }
            }
            if (prefix == null) {
                throw new IOException(file + ": a zip archive without <folder>/data.pkl, so not a PyTorch checkpoint");
            }
            ByteOrder order = ByteOrder.LITTLE_ENDIAN;
            ZipEntry bo = zip.getEntry(prefix + "byteorder");
            if (bo != null) {
                String s = new String(readEntry(zip, bo, file, 64), StandardCharsets.US_ASCII).strip();
                order = switch (s) {
                    case "little" -> ByteOrder.LITTLE_ENDIAN;
                    case "big" -> ByteOrder.BIG_ENDIAN;
                    default -> throw new IOException(file + ": " + prefix + "byteorder says '" + s + "', not little or big");
                };
            }
            String pklName = prefix + "data.pkl";
            byte[] pickle = readEntry(zip, zip.getEntry(pklName), file, Integer.MAX_VALUE - 16);
            String source = file + ":" + pklName;
            Map<String, MemorySegment> storages = new HashMap<>();
            String dataPrefix = prefix + "data/";
            ByteOrder byteOrder = order;
            Unpickler u = new Unpickler(source, options);
            u.persistentLoader = (pid, at) -> storageRef(pid, source, at);
            u.tensorRebuilder = (storage, offset, size, stride, at) -> {
                StorageRef ref = asStorage(storage, source, at);
                MemorySegment seg = storages.get(ref.key());
                if (seg == null) {
                    ZipEntry e = zip.getEntry(dataPrefix + ref.key());
                    if (e == null) {
                        throw new IOException(source + ": storage '" + ref.key() + "' (pickle byte " + at
                                + ") is missing from the archive (no " + dataPrefix + ref.key() + ")");
                    }
                    seg = readEntry(zip, e, file, arena);
                    storages.put(ref.key(), seg);
                }
                return readOrDefer(ref, seg, offset, byteOrder, size, stride, options, at);
            };
            return u.load(MemorySegment.ofArray(pickle), 0);
        }
    }

    private static byte[] readEntry(ZipFile zip, ZipEntry e, Path file, long limit) throws IOException {
        long size = e.getSize();
        if (size < 0 || size > limit) {
            throw new IOException(file + ": zip entry " + e.getName() + " has size " + size + " (limit " + limit + ")");
        }
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) size);
            if (b.length != size) {
                throw new IOException(file + ": zip entry " + e.getName() + " is truncated: " + b.length + " of "
                        + size + " bytes");
            }
            return b;
        } catch (ZipException | java.io.EOFException ze) {
            throw new IOException(file + ": zip entry " + e.getName() + " is corrupt: " + describe(ze), ze);
        }
    }

    private static MemorySegment readEntry(ZipFile zip, ZipEntry e, Path file, Arena arena) throws IOException {
        long size = e.getSize();
        long fileSize = Files.size(file);
        // stored entries cannot be larger than the file; deflate expands at most ~1032 times
        long bound = e.getMethod() == ZipEntry.STORED ? fileSize : Math.max(1 << 20, e.getCompressedSize() * 1100);
        if (size < 0 || size > bound) {
            throw new IOException(file + ": zip entry " + e.getName() + " claims " + size + " bytes, impossible in a "
                    + fileSize + "-byte file");
        }
        MemorySegment seg = arena.allocate(Math.max(size, 1), 64).asSlice(0, size);
        byte[] buf = new byte[(int) Math.min(size, 1 << 20)];
        long done = 0;
        try (InputStream in = zip.getInputStream(e)) {
            while (done < size) {
                int r = in.read(buf, 0, (int) Math.min(buf.length, size - done));
                if (r < 0) {
                    break;
                }
                MemorySegment.copy(buf, 0, seg, ValueLayout.JAVA_BYTE, done, r);
                done += r;
            }
        } catch (ZipException | java.io.EOFException ze) {
            throw new IOException(file + ": zip entry " + e.getName() + " is corrupt: " + describe(ze), ze);
        }
        if (done != size) {
            throw new IOException(file + ": zip entry " + e.getName() + " is truncated: " + done + " of " + size + " bytes");
        }
        return seg;
    }

    /** An exception's message, or its kind where it has none (an EOFException from the zip reader). */
    static String describe(IOException e) {
        return e.getMessage() != null ? e.getMessage()
                : e instanceof java.io.EOFException ? "its data ends early" : e.getClass().getSimpleName();
    }

    // ================================================================ the legacy format

    private static Object readLegacy(Path file, Unpickler.Options options) throws IOException {
        String source = file.toString();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            Unpickler plain = new Unpickler(source, Unpickler.Options.strict());
            Object magic = plain.load(all, 0);
            if (!LEGACY_MAGIC.equals(magic)) {
                throw new IOException(source + ": not a PyTorch checkpoint: its first pickle holds "
                        + Unpickler.describe(magic) + ", not PyTorch's magic number 0x1950a86a20f9469cfc6c");
            }
            Object protocol = plain.load(all, plain.position());
            if (!Long.valueOf(LEGACY_PROTOCOL).equals(protocol)) {
                throw new IOException(source + ": unsupported legacy checkpoint protocol " + Unpickler.describe(protocol)
                        + " (1001 is supported)");
            }
            Object sysInfo = plain.load(all, plain.position());
            ByteOrder order = sysInfo instanceof Map<?, ?> m && Boolean.FALSE.equals(m.get("little_endian"))
                    ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
            long objectStart = plain.position();

            // pass 1: which storages the object pickle uses, and their element types
            Map<String, StorageRef> roots = new LinkedHashMap<>();
            Unpickler scan = new Unpickler(source, options);
            scan.scanOnly = true;
            scan.persistentLoader = (pid, at) -> {
                StorageRef ref = storageRef(pid, source, at);
                StorageRef known = roots.putIfAbsent(ref.key(), ref);
                if (known != null && known.type() != ref.type()) {
                    throw new IOException(source + ": storage '" + ref.key() + "' is used as both " + known.type()
                            + " and " + ref.type() + " (pickle byte " + at + ")");
                }
                return ref;
            };
            scan.tensorRebuilder = (storage, offset, size, stride, at) -> {
                asStorage(storage, source, at);
                return null;
            };
            scan.load(all, objectStart);
            Object keys = plain.load(all, scan.position());
            if (!(keys instanceof List<?> keyList)) {
                throw new IOException(source + ": the storage key list is " + Unpickler.describe(keys) + ", not a list");
            }

            // the raw storages after the key list
            Map<String, MemorySegment> data = new HashMap<>();
            long at = plain.position();
            for (Object k : keyList) {
                if (!(k instanceof String key) || !roots.containsKey(key)) {
                    throw new IOException(source + ": storage key " + Unpickler.describe(k)
                            + " is listed but the object pickle never uses it, so its element size is unknown");
                }
                StorageRef ref = roots.get(key);
                if (all.byteSize() - at < 8) {
                    throw new IOException(source + ": truncated legacy checkpoint: storage '" + key
                            + "' needs its 8-byte element count at byte " + at + " but only " + (all.byteSize() - at)
                            + " bytes remain");
                }
                long count = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(order), at);
                long bytes;
                try {
                    bytes = Math.multiplyExact(count, ref.type().size);
                } catch (ArithmeticException e) {
                    bytes = -1;
                }
                if (count < 0 || bytes < 0 || bytes > all.byteSize() - at - 8) {
                    throw new IOException(source + ": truncated legacy checkpoint: storage '" + key + "' (" + count
                            + " " + ref.type() + " elements) needs " + (bytes < 0 ? "too many" : bytes)
                            + " bytes from byte " + (at + 8) + " but only " + (all.byteSize() - at - 8) + " remain");
                }
                if (count != ref.numel()) {
                    throw new IOException(source + ": storage '" + key + "' holds " + count
                            + " elements but the pickle says " + ref.numel());
                }
                data.put(key, all.asSlice(at + 8, bytes));
                at += 8 + bytes;
            }
            for (String key : roots.keySet()) {
                if (!data.containsKey(key)) {
                    throw new IOException(source + ": storage '" + key + "' is used but missing from the storage key list");
                }
            }

            // pass 2: the objects, with their tensors
            Unpickler u = new Unpickler(source, options);
            u.persistentLoader = (pid, pidAt) -> storageRef(pid, source, pidAt);
            u.tensorRebuilder = (storage, offset, size, stride, tAt) -> {
                StorageRef ref = asStorage(storage, source, tAt);
                MemorySegment seg = data.get(ref.key());
                long size1 = ref.type().size;
                if (ref.viewNumel() >= 0) {
                    if (ref.viewOffset() < 0 || ref.viewOffset() > seg.byteSize() / size1 - ref.viewNumel()) {
                        throw new IOException(source + ": storage view of '" + ref.key() + "' at " + ref.viewOffset()
                                + " of " + ref.viewNumel() + " elements lies outside it (pickle byte " + tAt + ")");
                    }
                    seg = seg.asSlice(ref.viewOffset() * size1, ref.viewNumel() * size1);
                }
                return readOrDefer(ref, seg, offset, order, size, stride, options, tAt);
            };
            return u.load(all, objectStart);
        }
    }

    /**
     * A storage's tensor, or, when its values cannot be read (a complex or quantized dtype, an
     * int64 beyond int32, a view outside its storage), the reason, which the unpickler reports
     * with where the tensor sits in the checkpoint once the pickle is read.
     */
    private static Object readOrDefer(StorageRef ref, MemorySegment seg, long offset, ByteOrder order, int[] size,
            long[] stride, Unpickler.Options options, long at) {
        try {
            return ref.type().read(seg, byteOffset(offset, ref.type()), order, size, stride, options.float64ToFloat32(),
                    "on storage '" + ref.key() + "' (pickle byte " + at + ")");
        } catch (IOException e) {
            return new Unpickler.Unreadable(e.getMessage());
        }
    }

    // ================================================================ persistent ids

    private static StorageRef storageRef(Object pid, String source, long at) throws IOException {
        if (pid instanceof List<?> m && m.size() >= 2 && "module".equals(m.get(0))) {
            // the legacy format's record of a pickled module's class and source code
            throw new IOException(source + ": " + wholeModule(m.get(1) instanceof PickleGlobal g ? g.qualified()
                    : Unpickler.describe(m.get(1))));
        }
        if (!(pid instanceof List<?> t) || t.size() < 5 || !"storage".equals(t.get(0))) {
            throw new IOException(source + ": persistent id at pickle byte " + at + " is " + Unpickler.describe(pid)
                    + ", not ('storage', type, key, location, numel[, view])");
        }
        if (!(t.get(1) instanceof PickleGlobal g) || !g.module().equals("torch")
                || StoredType.ofTorchStorage(g.name()) == null) {
            throw new IOException(source + ": unsupported storage type " + Unpickler.describe(t.get(1))
                    + " at pickle byte " + at + " (float, double, half, bfloat16, long, int, short, char, byte and "
                    + "bool storages are supported)");
        }
        if (!(t.get(2) instanceof String key) || !(t.get(4) instanceof Long numel) || numel < 0) {
            throw new IOException(source + ": malformed storage id at pickle byte " + at);
        }
        long viewOffset = 0;
        long viewNumel = -1;
        if (t.size() > 5 && t.get(5) != null) {
            if (!(t.get(5) instanceof List<?> view) || view.size() != 3 || !(view.get(1) instanceof Long off)
                    || !(view.get(2) instanceof Long len) || len < 0) {
                throw new IOException(source + ": malformed storage view metadata at pickle byte " + at);
            }
            viewOffset = off;
            viewNumel = len;
        }
        return new StorageRef(key, StoredType.ofTorchStorage(g.name()), numel, viewOffset, viewNumel);
    }

    /** A storage offset in bytes; -1 (reported as out of range) when it overflows. */
    private static long byteOffset(long elementOffset, StoredType type) {
        return elementOffset > Long.MAX_VALUE / type.size ? -1 : elementOffset * type.size;
    }

    private static StorageRef asStorage(Object storage, String source, long at) throws IOException {
        if (storage instanceof StorageRef ref) {
            return ref;
        }
        throw new IOException(source + ": tensor at pickle byte " + at + " is rebuilt from "
                + Unpickler.describe(storage) + ", not a storage");
    }

    // ================================================================ the tree

    /**
     * The state dict of a checkpoint: {@code root['state_dict']} when present, else the root
     * itself (a torchvision checkpoint), with a leading {@code module.} (left by
     * {@code nn.DataParallel}) stripped from every key. Only tensor entries are returned; they are
     * the tree's own tensors (close them with {@link #closeTensors(Object)} on the root).
     *
     * @throws IllegalArgumentException when there is no dict of named tensors, or stripping
     *     {@code module.} makes two keys equal
     */
    public static Map<String, Tensor> stateDict(Object root) {
        Object sd = root;
        if (root instanceof Map<?, ?> m && m.get("state_dict") instanceof Map<?, ?> inner) {
            sd = inner;
        }
        if (isModule(sd)) {
            throw new IllegalArgumentException(wholeModule(((PickledObject) sd).className()));
        }
        if (!(sd instanceof Map<?, ?> dict)) {
            throw new IllegalArgumentException("checkpoint has no state dict: its root is " + Unpickler.describe(root));
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            if (e.getKey() instanceof String key && e.getValue() instanceof Tensor t) {
                String name = key.startsWith(MODULE_PREFIX) ? key.substring(MODULE_PREFIX.length()) : key;
                if (out.put(name, t) != null) {
                    throw new IllegalArgumentException("state dict has both '" + name + "' and '" + MODULE_PREFIX + name + "'");
                }
            }
        }
        if (out.isEmpty() && !dict.isEmpty()) {
            for (Map.Entry<?, ?> e : dict.entrySet()) {
                if (isModule(e.getValue())) {
                    throw new IllegalArgumentException("checkpoint has no state dict: its entry '" + e.getKey()
                            + "' is " + wholeModule(((PickledObject) e.getValue()).className()));
                }
            }
            throw new IllegalArgumentException("checkpoint has no state dict: the dict at its "
                    + (sd == root ? "root" : "'state_dict' entry") + " holds no named tensors");
        }
        return out;
    }

    /**
     * Whether an inert object is a pickled {@code torch.nn.Module} (what {@code torch.save(model)}
     * writes): its state holds the module's {@code _parameters}, or its class is one of
     * {@code torch.nn}'s.
     */
    static boolean isModule(Object o) {
        return o instanceof PickledObject p
                && (p.attributes().containsKey("_parameters") || p.className().startsWith("torch.nn.modules."));
    }

    /** Why a pickled module is refused, and what to save instead. */
    static String wholeModule(String className) {
        return "a whole pickled nn.Module (class " + className + ", saved by torch.save(model)), not a state dict: "
                + "dir4j reads tensors and never runs a pickled module's code; in Python, load it and save "
                + "model.state_dict() instead";
    }

    /**
     * The {@code model_options} dict of a reference retrieval checkpoint ({@code arch},
     * {@code out_dim}, {@code pooling}, {@code gemp}…), keys as strings; empty when absent.
     */
    public static Map<String, Object> modelOptions(Object root) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (root instanceof Map<?, ?> m && m.get("model_options") instanceof Map<?, ?> opts) {
            for (Map.Entry<?, ?> e : opts.entrySet()) {
                out.put(String.valueOf(e.getKey()), e.getValue());
            }
        }
        return out;
    }

    /**
     * The {@code pca} entry of a reference retrieval checkpoint: one fitted sklearn PCA per
     * dataset name, as inert objects (their arrays are tensors: {@code attribute("components_")},
     * {@code "mean_"}, {@code "explained_variance_"}); empty when absent.
     */
    public static Map<String, PickledObject> pca(Object root) {
        Map<String, PickledObject> out = new LinkedHashMap<>();
        if (root instanceof Map<?, ?> m && m.get("pca") instanceof Map<?, ?> p) {
            for (Map.Entry<?, ?> e : p.entrySet()) {
                if (e.getValue() instanceof PickledObject o) {
                    out.put(String.valueOf(e.getKey()), o);
                }
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** Closes every tensor reachable from {@code root} (containers, inert objects); cycles are fine. */
    public static void closeTensors(Object root) {
        forEachTensor(root, Tensor::close);
    }

    /** Calls {@code action} once for each tensor reachable from {@code root} (containers, inert objects). */
    static void forEachTensor(Object root, java.util.function.Consumer<Tensor> action) {
        Set<Object> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<Object> todo = new ArrayDeque<>();
        if (root != null) {
            todo.push(root);
        }
        while (!todo.isEmpty()) {
            Object o = todo.pop();
            if (!seen.add(o)) {
                continue;
            }
            switch (o) {
                case Tensor t -> action.accept(t);
                case Map<?, ?> m -> {
                    pushAll(todo, m.keySet());
                    pushAll(todo, m.values());
                }
                case Collection<?> c -> pushAll(todo, c);
                case PickledObject p -> {
                    pushAll(todo, p.args());
                    pushAll(todo, p.kwargs().values());
                    pushAll(todo, p.attributes().values());
                    pushAll(todo, p.listItems());
                    pushAll(todo, p.dictItems().values());
                    if (p.state() != null) {
                        todo.push(p.state());
                    }
                }
                default -> { }
            }
        }
    }

    private static void pushAll(Deque<Object> todo, Collection<?> items) {
        for (Object o : items) {
            if (o != null) {
                todo.push(o);
            }
        }
    }
}
