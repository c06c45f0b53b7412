package dir4j.nn.io;

import dir4j.engine.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A restricted reader of Python pickles (protocols 0–5), enough for what {@code torch.save} and
 * NumPy write, that never runs anything: every global a pickle names is judged by name
 * ({@link GlobalPolicy}) and either understood here (containers, PyTorch's tensor rebuilders,
 * NumPy arrays, which become dir4j tensors), kept as an inert {@link PickledObject} when the
 * caller allowed that, or refused with an {@link UnsafePickleException} that names it. Globals
 * that could run code ({@code os.system}, {@code builtins.eval}, {@code subprocess.*}…) are refused
 * in every mode.
 *
 * <p>Python values arrive as: {@code None} → null, bool → Boolean, int → Long (BigInteger beyond
 * 64 bits), float → Double, str → String, bytes/bytearray → byte[], list → mutable List, tuple →
 * unmodifiable List, dict → LinkedHashMap, set → Set, NumPy array → {@link Tensor} (the caller
 * owns it), a class or function named as a value → {@link PickleGlobal}. Python 2 byte strings
 * (STRING, BINSTRING) are decoded as Latin-1, so binary data they carry survives.
 *
 * <p>Bounded: {@link Limits} caps the stack, the mark nesting, the memo and integer sizes; every
 * length read from the input is checked against what remains before anything is allocated; a
 * truncated or corrupt pickle is an IOException naming the byte offset and what was expected.
 */
public final class Unpickler {

    /**
     * Resource caps against hostile input.
     *
     * @param maxStack most values on the stack at once
     * @param maxMarkDepth most open MARKs (nesting)
     * @param maxMemo most memo entries
     * @param maxLongBytes most bytes of one arbitrary-precision int (LONG1/LONG4/LONG)
     * @param maxKeyDepth deepest tuple nesting allowed in a dict key or set element
     */
    public record Limits(int maxStack, int maxMarkDepth, int maxMemo, int maxLongBytes, int maxKeyDepth) {
        /** Generous for any real checkpoint (a ResNet-101 state dict uses a few thousand of each). */
        public static Limits defaults() {
            return new Limits(4_000_000, 100_000, 4_000_000, 4096, 64);
        }
    }

    /**
     * How to load.
     *
     * @param allowInertObjects read objects of classes outside the allow-list as inert
     *     {@link PickledObject}s instead of refusing them
     * @param float64ToFloat32 narrow float64 tensors and arrays to float32 (they stay float64 otherwise)
     * @param limits resource caps
     */
    public record Options(boolean allowInertObjects, boolean float64ToFloat32, Limits limits) {
        /** Only allow-listed globals; float64 kept. */
        public static Options strict() {
            return new Options(false, false, Limits.defaults());
        }

        /** Objects of other classes become inert {@link PickledObject}s (nothing is run). */
        public static Options inertObjects() {
            return new Options(true, false, Limits.defaults());
        }

        /** These options with float64 narrowed to float32 or not. */
        public Options withFloat64ToFloat32(boolean on) {
            return new Options(allowInertObjects, on, limits);
        }
    }

    /** Resolves a persistent id (PyTorch's storages) to an object. */
    interface PersistentLoader {
        Object load(Object pid, long at) throws IOException;
    }

    /** Builds a tensor from {@code _rebuild_tensor[_v2](storage, offset, size, stride, …)}. */
    interface TensorRebuilder {
        Object rebuild(Object storage, long storageOffset, int[] size, long[] stride, long at) throws IOException;
    }

    /**
     * What stands in for a tensor or NumPy array that cannot be made (a complex, quantized or
     * sparse tensor, integers beyond int32, an array of strings or objects): loading goes on, and
     * once the pickle is read the load fails with {@code problem} and where in the tree the value
     * sits ({@code tensor ['state_dict']['fc.w']}).
     *
     * @param noun "tensor" or "array", for the message
     */
    record Unreadable(String noun, String problem) {
        Unreadable(String problem) {
            this("tensor", problem);
        }
    }

    private static final Object MARK_SENTINEL = new Object();

    private final String source;
    private final Options options;
    PersistentLoader persistentLoader;
    TensorRebuilder tensorRebuilder;
    /** When set, NumPy arrays are checked but not allocated (the legacy format's first pass). */
    boolean scanOnly;

    private MemorySegment in;
    private long pos;
    private long end;
    private long opAt;
    private int opcode;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final HashMap<Long, Object> memo = new HashMap<>();
    private final IdentityHashMap<Object, List<Long>> pendingMemoKeys = new IdentityHashMap<>();
    private final List<Tensor> created = new ArrayList<>();
    private Unreadable firstUnreadable;

    /**
     * @param source names the input in error messages ("model.pt:archive/data.pkl")
     */
    public Unpickler(String source, Options options) {
        this.source = source;
        this.options = options;
    }

    /** Loads one pickle from a file. */
    public static Object load(Path file, Options options) throws IOException {
        return new Unpickler(file.toString(), options).load(Files.readAllBytes(file));
    }

    /** Loads the pickle at the start of {@code data}. */
    public Object load(byte[] data) throws IOException {
        return load(MemorySegment.ofArray(data), 0);
    }

    /**
     * Loads the pickle starting at byte {@code from} of {@code data}; {@link #position()} is then
     * the byte after its STOP. Tensors made for NumPy arrays belong to the caller (they are closed
     * here if loading fails).
     */
    Object load(MemorySegment data, long from) throws IOException {
        in = data;
        pos = from;
        end = data.byteSize();
        stack.clear();
        marks.clear();
        memo.clear();
        pendingMemoKeys.clear();
        created.clear();
        firstUnreadable = null;
        try {
            Object result = run();
            if (firstUnreadable != null) {
                String path = pathTo(result, firstUnreadable);
                throw new IOException(source + ": " + (path == null ? "a " + firstUnreadable.noun()
                        : firstUnreadable.noun() + " " + path) + ": " + firstUnreadable.problem());
            }
            closeUnreachable(result);
            return result;
        } catch (IOException | RuntimeException | StackOverflowError e) {
            for (Tensor t : created) {
                t.close();
            }
            if (e instanceof StackOverflowError) {
                throw new IOException(where() + "objects nest too deeply", e);
            }
            if (e instanceof IOException io) {
                throw io;
            }
            throw new IOException(where() + e.getMessage(), e);
        } finally {
            stack.clear();
            memo.clear();
            pendingMemoKeys.clear();
            created.clear();
            in = null;
        }
    }

    /**
     * Closes the arrays this load made that its result does not hold (popped, or only in the
     * memo): nobody else could ever close them.
     */
    private void closeUnreachable(Object result) {
        if (created.isEmpty()) {
            return;
        }
        Set<Tensor> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        TorchCheckpoint.forEachTensor(result, kept::add);
        for (Tensor t : created) {
            if (!kept.contains(t)) {
                t.close();
            }
        }
    }

    /**
     * Where {@code target} sits in {@code root}, in Python's subscript notation
     * ({@code ['state_dict']['fc.weight']}, {@code [0]}, {@code .attr} of an object), or null. The
     * search keeps a link to each value's parent and spells out only the target's path, so that it
     * is linear in the size of the tree however deep a hostile pickle nests it; a path of more than
     * {@value #PATH_STEPS_SHOWN} steps is shown by its ends.
     */
    static String pathTo(Object root, Object target) {
        // step: a key or index (subscript), an attribute name, an argument's index, or null (state)
        record At(Object value, At parent, char how, Object step) {}
        if (root == target) {
            return "at the root";
        }
        if (root == null) {
            return null;
        }
        // containers are queued once each (however many references a pickle makes to them), values never
        Set<Object> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        java.util.ArrayDeque<At> todo = new java.util.ArrayDeque<>();
        seen.add(root);
        todo.add(new At(root, null, ' ', null));
        List<At> children = new ArrayList<>();
        while (!todo.isEmpty()) {
            At at = todo.poll();
            children.clear();
            switch (at.value()) {
                case Map<?, ?> m -> m.forEach((k, v) -> children.add(new At(v, at, '[', k)));
                case List<?> l -> {
                    for (int i = 0; i < l.size(); i++) {
                        children.add(new At(l.get(i), at, '[', i));
                    }
                }
                case PickledObject p -> {
                    p.attributes().forEach((k, v) -> children.add(new At(v, at, '.', k)));
                    for (int i = 0; i < p.args().size(); i++) {
                        children.add(new At(p.args().get(i), at, 'a', i));
                    }
                    p.dictItems().forEach((k, v) -> children.add(new At(v, at, '[', k)));
                    for (int i = 0; i < p.listItems().size(); i++) {
                        children.add(new At(p.listItems().get(i), at, '[', i));
                    }
                    if (p.state() != null && !(p.state() instanceof Map<?, ?>)) {
                        children.add(new At(p.state(), at, 's', null));
                    }
                }
                default -> { }
            }
            for (At c : children) {
                if (c.value() == target) {
                    List<String> steps = new ArrayList<>();
                    for (At a = c; a.parent() != null; a = a.parent()) {
                        steps.add(switch (a.how()) {
                            case '[' -> "[" + key(a.step()) + "]";
                            case '.' -> "." + clip(String.valueOf(a.step()));
                            case 'a' -> " (argument " + a.step() + ")";
                            default -> " (state)";
                        });
                    }
                    java.util.Collections.reverse(steps);
                    if (steps.size() <= PATH_STEPS_SHOWN) {
                        return String.join("", steps);
                    }
                    int head = PATH_STEPS_SHOWN / 3;
                    int tail = PATH_STEPS_SHOWN - head;
                    return String.join("", steps.subList(0, head)) + "... (" + (steps.size() - head - tail)
                            + " levels) ..." + String.join("", steps.subList(steps.size() - tail, steps.size()));
                }
                if ((c.value() instanceof Map<?, ?> || c.value() instanceof List<?> || c.value() instanceof PickledObject)
                        && seen.add(c.value())) {
                    todo.add(c);
                }
            }
        }
        return null;
    }

    /** The most steps {@link #pathTo} spells out; a deeper place is shown by its first and last steps. */
    static final int PATH_STEPS_SHOWN = 24;

    private static String key(Object k) {
        return k instanceof String s ? "'" + clip(s) + "'" : clip(String.valueOf(k));
    }

    /** The byte after the last pickle's STOP. */
    long position() {
        return pos;
    }

    private String where() {
        return location() + ": ";
    }

    private String location() {
        return source + ": pickle byte " + opAt + " (" + opName(opcode) + ")";
    }

    private IOException corrupt(String what) {
        return new IOException(where() + what);
    }

    // ================================================================ the machine

    private Object run() throws IOException {
        while (true) {
            opAt = pos;
            if (pos >= end) {
                opcode = -1;
                throw new IOException(source + ": pickle truncated at byte " + pos + ": expected an opcode (or STOP)");
            }
            opcode = in.get(ValueLayout.JAVA_BYTE, pos++) & 0xff;
            switch (opcode) {
                case '(' -> {
                    if (marks.size() >= options.limits().maxMarkDepth()) {
                        throw corrupt("more than " + options.limits().maxMarkDepth() + " nested MARKs");
                    }
                    marks.add(stack.size());
                }
                case '.' -> {
                    return pop();
                }
                case 0x80 -> {
                    int protocol = u8("protocol number");
                    if (protocol > 5) {
                        throw corrupt("unsupported pickle protocol " + protocol + " (0–5 are)");
                    }
                }
                case 0x95 -> {
                    long n = u64("frame length");
                    if (n < 0 || n > end - pos) {
                        throw corrupt("frame of " + Long.toUnsignedString(n) + " bytes but " + (end - pos) + " remain");
                    }
                }
                case 'c' -> {
                    String module = line("GLOBAL module name");
                    String name = line("GLOBAL name");
                    push(global(module, name));
                }
                case 0x93 -> {
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw corrupt("STACK_GLOBAL needs two strings, found " + describe(module) + " and " + describe(name));
                    }
                    push(global(m, n));
                }
                case 'R' -> {
                    List<Object> args = tupleArg(pop(), "REDUCE arguments");
                    push(call(pop(), args));
                }
                case 'b' -> {
                    Object state = pop();
                    build(peek(), state);
                }
                case 0x81 -> {
                    List<Object> args = tupleArg(pop(), "NEWOBJ arguments");
                    push(newObject(pop(), args, Map.of()));
                }
                case 0x92 -> {
                    Object kwargs = pop();
                    List<Object> args = tupleArg(pop(), "NEWOBJ_EX arguments");
                    push(newObject(pop(), args, stringMap(kwargs)));
                }
                case 'i' -> {
                    String module = line("INST module name");
                    String name = line("INST name");
                    List<Object> args = popMark();
                    push(newObject(global(module, name), tuple(args), Map.of()));
                }
                case 'o' -> {
                    List<Object> items = popMark();
                    if (items.isEmpty()) {
                        throw corrupt("OBJ without a class");
                    }
                    push(newObject(items.get(0), tuple(items.subList(1, items.size())), Map.of()));
                }
                case ')' -> push(tuple(List.of()));
                case 't' -> push(tuple(popMark()));
                case 0x85 -> push(tuple(Collections.singletonList(pop())));
                case 0x86 -> {
                    Object b = pop();
                    Object a = pop();
                    push(tuple(Arrays.asList(a, b)));
                }
                case 0x87 -> {
                    Object c = pop();
                    Object b = pop();
                    Object a = pop();
                    push(tuple(Arrays.asList(a, b, c)));
                }
                case ']' -> push(new ArrayList<>());
                case 'l' -> push(new ArrayList<>(popMark()));
                case 'a' -> {
                    Object item = pop();
                    append(peek(), Collections.singletonList(item));
                }
                case 'e' -> {
                    List<Object> items = popMark();
                    append(peek(), items);
                }
                case '}' -> push(new LinkedHashMap<>());
                case 'd' -> {
                    List<Object> items = popMark();
                    Map<Object, Object> m = new LinkedHashMap<>();
                    setItems(m, items);
                    push(m);
                }
                case 's' -> {
                    Object value = pop();
                    Object key = pop();
                    setItems(peek(), Arrays.asList(key, value));
                }
                case 'u' -> {
                    List<Object> items = popMark();
                    setItems(peek(), items);
                }
                case 0x8f -> push(new LinkedHashSet<>());
                case 0x90 -> {
                    List<Object> items = popMark();
                    if (!(peek() instanceof Set<?>)) {
                        throw corrupt("ADDITEMS on " + describe(peek()) + ", not a set");
                    }
                    @SuppressWarnings("unchecked")
                    Set<Object> set = (Set<Object>) peek();
                    for (Object o : items) {
                        set.add(hashable(o, "set element"));
                    }
                }
                case 0x91 -> push(frozenSet(popMark()));
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'I' -> push(parseIntLine(line("INT")));
                case 'J' -> push((long) i32("BININT"));
                case 'K' -> push((long) u8("BININT1"));
                case 'M' -> push((long) u16("BININT2"));
                case 'L' -> push(parseLongLine(line("LONG")));
                case 0x8a -> push(longFromBytes(u8("LONG1 length")));
                case 0x8b -> {
                    long n = u32("LONG4 length");
                    if (n > options.limits().maxLongBytes()) {
                        throw corrupt("integer of " + n + " bytes exceeds the limit of " + options.limits().maxLongBytes());
                    }
                    push(longFromBytes((int) n));
                }
                case 'F' -> push(parseFloatLine(line("FLOAT")));
                case 'G' -> push(Double.longBitsToDouble(
                        in.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), need(8, "BINFLOAT value"))));
                case 'S' -> push(pythonStringLiteral(line("STRING")));
                case 'T' -> push(new String(bytes(u32("BINSTRING length"), "BINSTRING"), StandardCharsets.ISO_8859_1));
                case 'U' -> push(new String(bytes(u8("SHORT_BINSTRING length"), "SHORT_BINSTRING"), StandardCharsets.ISO_8859_1));
                case 'V' -> push(rawUnicodeEscape(line("UNICODE")));
                case 'X' -> push(utf8(bytes(u32("BINUNICODE length"), "BINUNICODE string")));
                case 0x8c -> push(utf8(bytes(u8("SHORT_BINUNICODE length"), "SHORT_BINUNICODE string")));
                case 0x8d -> push(utf8(bytes(u64("BINUNICODE8 length"), "BINUNICODE8 string")));
                case 'B' -> push(bytes(u32("BINBYTES length"), "BINBYTES"));
                case 'C' -> push(bytes(u8("SHORT_BINBYTES length"), "SHORT_BINBYTES"));
                case 0x8e -> push(bytes(u64("BINBYTES8 length"), "BINBYTES8"));
                case 0x96 -> push(bytes(u64("BYTEARRAY8 length"), "BYTEARRAY8"));
                case 'p' -> memoize(parseMemoKey(line("PUT index")), peek());
                case 'q' -> memoize(u8("BINPUT index"), peek());
                case 'r' -> memoize(u32("LONG_BINPUT index"), peek());
                case 0x94 -> memoize(memo.size(), peek());
                case 'g' -> push(memoGet(parseMemoKey(line("GET index"))));
                case 'h' -> push(memoGet(u8("BINGET index")));
                case 'j' -> push(memoGet(u32("LONG_BINGET index")));
                case 'P' -> push(persistent(line("PERSID id")));
                case 'Q' -> push(persistent(pop()));
                case '0' -> pop();
                case '1' -> popMark();
                case '2' -> push(peek());
                case 0x82, 0x83, 0x84 -> throw corrupt("the copyreg extension registry (EXT opcodes) is not supported");
                case 0x97 -> throw corrupt("out-of-band buffers (NEXT_BUFFER) are not supported");
                case 0x98 -> { /* READONLY_BUFFER: a no-op for a reader that copies */ }
                default -> throw corrupt(String.format("unknown opcode 0x%02x: the pickle is corrupt", opcode));
            }
        }
    }

    // ================================================================ stack, marks, memo

    private void push(Object o) throws IOException {
        if (stack.size() >= options.limits().maxStack()) {
            throw corrupt("stack exceeds " + options.limits().maxStack() + " values");
        }
        stack.add(o);
    }

    private Object pop() throws IOException {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) {
            throw corrupt(stack.isEmpty() ? "stack is empty" : "pops across a MARK");
        }
        return stack.removeLast();
    }

    private Object peek() throws IOException {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) {
            throw corrupt(stack.isEmpty() ? "stack is empty" : "reads across a MARK");
        }
        return stack.getLast();
    }

    private List<Object> popMark() throws IOException {
        if (marks.isEmpty()) {
            throw corrupt("no MARK to pop to");
        }
        int at = marks.removeLast();
        List<Object> top = stack.subList(at, stack.size());
        List<Object> items = new ArrayList<>(top);
        top.clear();
        return items;
    }

    private void memoize(long key, Object value) throws IOException {
        if (key < 0) {
            throw corrupt("negative memo index " + key);
        }
        if (!memo.containsKey(key) && memo.size() >= options.limits().maxMemo()) {
            throw corrupt("memo exceeds " + options.limits().maxMemo() + " entries");
        }
        memo.put(key, value);
        if (value instanceof NumpyPickles.PendingArray) {
            pendingMemoKeys.computeIfAbsent(value, k -> new ArrayList<>()).add(key);
        }
    }

    private Object memoGet(long key) throws IOException {
        Object v = memo.get(key);
        if (v == null && !memo.containsKey(key)) {
            throw corrupt("memo index " + key + " was never stored");
        }
        return v;
    }

    /** Replaces a placeholder on the stack top and in the memo by what BUILD made of it. */
    private void replaceTop(Object placeholder, Object value) {
        stack.set(stack.size() - 1, value);
        List<Long> keys = pendingMemoKeys.remove(placeholder);
        if (keys != null) {
            for (Long k : keys) {
                if (memo.get(k) == placeholder) {
                    memo.put(k, value);
                }
            }
        }
    }

    // ================================================================ input

    private long need(long n, String what) throws IOException {
        if (n < 0 || n > end - pos) {
            throw new IOException(source + ": pickle truncated at byte " + pos + " (" + opName(opcode) + " at byte "
                    + opAt + "): " + what + " needs " + (n < 0 ? Long.toUnsignedString(n) : n) + " bytes, "
                    + (end - pos) + " remain");
        }
        long at = pos;
        pos += n;
        return at;
    }

    private int u8(String what) throws IOException {
        return in.get(ValueLayout.JAVA_BYTE, need(1, what)) & 0xff;
    }

    private int u16(String what) throws IOException {
        return in.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), need(2, what)) & 0xffff;
    }

    private int i32(String what) throws IOException {
        return in.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), need(4, what));
    }

    private long u32(String what) throws IOException {
        return i32(what) & 0xffffffffL;
    }

    private long u64(String what) throws IOException {
        return in.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), need(8, what));
    }

    private byte[] bytes(long n, String what) throws IOException {
        if (n < 0 || n > end - pos) {
            need(n, what); // throws: the input is shorter than the announced length
        }
        if (n > Integer.MAX_VALUE - 16) {
            throw corrupt(what + " of " + Long.toUnsignedString(n) + " bytes is larger than this reader takes (2 GiB)");
        }
        long at = need(n, what);
        byte[] b = new byte[(int) n];
        MemorySegment.copy(in, ValueLayout.JAVA_BYTE, at, b, 0, (int) n);
        return b;
    }

    /** A protocol-0 line, without its newline. */
    private String line(String what) throws IOException {
        long start = pos;
        long limit = Math.min(end, start + (1 << 20));
        for (long p = start; p < limit; p++) {
            if (in.get(ValueLayout.JAVA_BYTE, p) == '\n') {
                byte[] b = new byte[(int) (p - start)];
                MemorySegment.copy(in, ValueLayout.JAVA_BYTE, start, b, 0, b.length);
                pos = p + 1;
                return new String(b, StandardCharsets.ISO_8859_1);
            }
        }
        if (limit == end) {
            throw new IOException(source + ": pickle truncated at byte " + end + " (" + opName(opcode) + " at byte "
                    + opAt + "): " + what + " has no terminating newline");
        }
        throw corrupt(what + " is longer than 1 MiB");
    }

    private static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    // ================================================================ numbers and text (protocol 0)

    private Object parseIntLine(String s) throws IOException {
        if (s.equals("01")) {
            return Boolean.TRUE;
        }
        if (s.equals("00")) {
            return Boolean.FALSE;
        }
        return parseLongLine(s);
    }

    private Object parseLongLine(String s) throws IOException {
        String t = s.endsWith("L") ? s.substring(0, s.length() - 1) : s;
        if (t.length() > options.limits().maxLongBytes() * 3L) {
            throw corrupt("integer literal of " + t.length() + " digits exceeds the limit");
        }
        try {
            return narrow(new BigInteger(t.strip()));
        } catch (NumberFormatException e) {
            throw corrupt("bad integer literal '" + clip(s) + "'");
        }
    }

    private Double parseFloatLine(String s) throws IOException {
        try {
            return switch (s.strip()) {
                case "nan" -> Double.NaN;
                case "inf" -> Double.POSITIVE_INFINITY;
                case "-inf" -> Double.NEGATIVE_INFINITY;
                default -> Double.parseDouble(s.strip());
            };
        } catch (NumberFormatException e) {
            throw corrupt("bad float literal '" + clip(s) + "'");
        }
    }

    private long parseMemoKey(String s) throws IOException {
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            throw corrupt("bad memo index '" + clip(s) + "'");
        }
    }

    private Object longFromBytes(int n) throws IOException {
        byte[] le = bytes(n, "LONG value");
        if (n == 0) {
            return 0L;
        }
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) {
            be[i] = le[n - 1 - i];
        }
        return narrow(new BigInteger(be));
    }

    private static Object narrow(BigInteger v) {
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    /** Protocol 0's STRING: a Python repr, quoted, with backslash escapes (bytes as Latin-1). */
    private String pythonStringLiteral(String s) throws IOException {
        if (s.length() < 2 || (s.charAt(0) != '\'' && s.charAt(0) != '"') || s.charAt(s.length() - 1) != s.charAt(0)) {
            throw corrupt("STRING argument is not a quoted literal: " + clip(s));
        }
        String body = s.substring(1, s.length() - 1);
        StringBuilder out = new StringBuilder(body.length());
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c != '\\' || i + 1 == body.length()) {
                out.append(c);
                continue;
            }
            char e = body.charAt(++i);
            switch (e) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'v' -> out.append('\u000b');
                case 'x' -> {
                    out.append((char) hex(body, i + 1, 2));
                    i += 2;
                }
                case '0', '1', '2', '3', '4', '5', '6', '7' -> {
                    int v = 0;
                    int k = 0;
                    while (k < 3 && i + k < body.length() && body.charAt(i + k) >= '0' && body.charAt(i + k) <= '7') {
                        v = v * 8 + body.charAt(i + k) - '0';
                        k++;
                    }
                    out.append((char) (v & 0xff));
                    i += k - 1;
                }
                default -> out.append(e == '\\' || e == '\'' || e == '"' ? String.valueOf(e) : "\\" + e);
            }
        }
        return out.toString();
    }

    /** Protocol 0's UNICODE: raw-unicode-escape (\\uXXXX, \\UXXXXXXXX; other bytes Latin-1). */
    private String rawUnicodeEscape(String s) throws IOException {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length() && (s.charAt(i + 1) == 'u' || s.charAt(i + 1) == 'U')) {
                int n = s.charAt(i + 1) == 'u' ? 4 : 8;
                out.appendCodePoint(hex(s, i + 2, n));
                i += 1 + n;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    private int hex(String s, int from, int n) throws IOException {
        if (from + n > s.length()) {
            throw corrupt("truncated escape in a text string");
        }
        try {
            int v = (int) Long.parseLong(s.substring(from, from + n), 16);
            if (n == 8 && !Character.isValidCodePoint(v)) {
                throw corrupt("escape \\U" + s.substring(from, from + n) + " is not a code point");
            }
            return v;
        } catch (NumberFormatException e) {
            throw corrupt("bad hex escape '" + s.substring(from, from + n) + "'");
        }
    }

    // ================================================================ containers

    private static List<Object> tuple(List<Object> items) {
        return Collections.unmodifiableList(new ArrayList<>(items));
    }

    private List<Object> tupleArg(Object o, String what) throws IOException {
        if (o instanceof List<?> l) {
            @SuppressWarnings("unchecked")
            List<Object> args = (List<Object>) l;
            return args;
        }
        throw corrupt(what + " must be a tuple, found " + describe(o));
    }

    private Set<Object> frozenSet(List<Object> items) throws IOException {
        Set<Object> s = new LinkedHashSet<>();
        for (Object o : items) {
            s.add(hashable(o, "frozenset element"));
        }
        return Collections.unmodifiableSet(s);
    }

    private void append(Object target, List<Object> items) throws IOException {
        if (target instanceof PickledObject po) {
            for (Object o : items) {
                po.append(o);
            }
            return;
        }
        if (!(target instanceof ArrayList<?>)) {
            throw corrupt("APPEND to " + describe(target) + ", not a list");
        }
        @SuppressWarnings("unchecked")
        List<Object> list = (List<Object>) target;
        list.addAll(items);
    }

    private void setItems(Object target, List<Object> kv) throws IOException {
        if (kv.size() % 2 != 0) {
            throw corrupt("odd number of items (" + kv.size() + ") for a dict");
        }
        if (target instanceof PickledObject po) {
            for (int i = 0; i < kv.size(); i += 2) {
                po.setItem(hashable(kv.get(i), "dict key"), kv.get(i + 1));
            }
            return;
        }
        if (!(target instanceof LinkedHashMap<?, ?>)) {
            throw corrupt("SETITEM on " + describe(target) + ", not a dict");
        }
        @SuppressWarnings("unchecked")
        Map<Object, Object> m = (Map<Object, Object>) target;
        for (int i = 0; i < kv.size(); i += 2) {
            m.put(hashable(kv.get(i), "dict key"), kv.get(i + 1));
        }
    }

    /** Python refuses unhashable keys; so do we, which also keeps hashCode from recursing through cycles. */
    private Object hashable(Object key, String what) throws IOException {
        checkHashable(key, what, 0);
        return key;
    }

    private void checkHashable(Object key, String what, int depth) throws IOException {
        if (depth > options.limits().maxKeyDepth()) {
            throw corrupt(what + " nests tuples deeper than " + options.limits().maxKeyDepth());
        }
        if (key instanceof ArrayList<?> || key instanceof Map<?, ?> || key instanceof LinkedHashSet<?>) {
            throw corrupt(what + " is an unhashable " + describe(key));
        }
        if (key instanceof List<?> t) {
            for (Object o : t) {
                checkHashable(o, what, depth + 1);
            }
        } else if (key instanceof Set<?> fs) {
            for (Object o : fs) {
                checkHashable(o, what, depth + 1);
            }
        }
    }

    private Map<String, Object> stringMap(Object o) throws IOException {
        if (!(o instanceof Map<?, ?> m)) {
            throw corrupt("keyword arguments must be a dict, found " + describe(o));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            out.put(String.valueOf(e.getKey()), e.getValue());
        }
        return out;
    }

    // ================================================================ globals, calls, objects

    private Object global(String rawModule, String name) throws IOException {
        String module = GlobalPolicy.normalizeModule(rawModule);
        if (!validName(module) || !validName(name)) {
            throw corrupt("global name '" + clip(rawModule) + "." + clip(name) + "' is not a Python name");
        }
        String full = module + "." + name;
        switch (GlobalPolicy.judge(module, name)) {
            case DANGEROUS -> throw new UnsafePickleException(source + ": refusing to load checkpoint: it references "
                    + full + ", " + GlobalPolicy.reason(module, name) + " (pickle byte " + opAt + "); nothing was run",
                    full, true);
            case OTHER -> {
                if (!options.allowInertObjects()) {
                    throw new UnsafePickleException(source + ": refusing to load checkpoint: it references " + full
                            + ", which is not on the allow-list (pickle byte " + opAt + ")"
                            + UnsafePickleException.API_REMEDY, full, false);
                }
            }
            case ALLOWED -> { }
        }
        return new PickleGlobal(module, name);
    }

    private static boolean validName(String s) {
        if (s.isEmpty() || s.length() > 256) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(Character.isLetterOrDigit(c) || c == '_' || c == '.')) {
                return false;
            }
        }
        return true;
    }

    private Object call(Object callable, List<Object> args) throws IOException {
        if (!(callable instanceof PickleGlobal g)) {
            throw corrupt("REDUCE on " + describe(callable) + ", which is not a global");
        }
        String w = location();
        switch (g.qualified()) {
            case "collections.OrderedDict", "builtins.dict" -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                if (!args.isEmpty() && args.get(0) instanceof List<?> pairs) {
                    for (Object p : pairs) {
                        if (!(p instanceof List<?> kv) || kv.size() != 2) {
                            throw corrupt(g + " expects (key, value) pairs");
                        }
                        m.put(hashable(kv.get(0), "dict key"), kv.get(1));
                    }
                }
                return m;
            }
            case "builtins.set", "builtins.frozenset", "builtins.list", "builtins.tuple" -> {
                List<Object> items = new ArrayList<>();
                if (!args.isEmpty()) {
                    if (!(args.get(0) instanceof java.util.Collection<?> c)) {
                        throw corrupt(g + " of " + describe(args.get(0)));
                    }
                    items.addAll(c);
                }
                return switch (g.name()) {
                    case "set" -> {
                        Set<Object> s = new LinkedHashSet<>();
                        for (Object o : items) {
                            s.add(hashable(o, "set element"));
                        }
                        yield s;
                    }
                    case "frozenset" -> frozenSet(items);
                    case "list" -> items;
                    default -> tuple(items);
                };
            }
            case "builtins.bytes", "builtins.bytearray", "_codecs.encode" -> {
                return encode(g, args);
            }
            case "copyreg._reconstructor" -> {
                if (args.size() != 3) {
                    throw corrupt("copyreg._reconstructor expects (class, base, state)");
                }
                return newObject(args.get(0), tuple(List.of()), Map.of());
            }
            case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2" -> {
                return rebuildTensor(args);
            }
            case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state" -> {
                if (args.isEmpty()) {
                    throw corrupt(g + " without its tensor");
                }
                return args.get(0);
            }
            case "torch._tensor._rebuild_from_type_v2" -> {
                if (args.size() < 3 || !(args.get(2) instanceof List<?>)) {
                    throw corrupt(g + " expects (function, type, args, state)");
                }
                return call(args.get(0), tupleArg(args.get(2), "rebuild arguments"));
            }
            case "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
                    "torch._utils._rebuild_sparse_csr_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
                    "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_nested_tensor",
                    "torch._utils._rebuild_device_tensor_from_numpy" -> {
                if (tensorRebuilder == null) {
                    throw corrupt("a PyTorch tensor outside a checkpoint (read .pt/.pth files with TorchCheckpoint.read)");
                }
                String kind = switch (g.name()) {
                    case "_rebuild_qtensor" -> "a quantized tensor, which dir4j does not read: save t.dequantize() instead";
                    case "_rebuild_sparse_tensor", "_rebuild_sparse_csr_tensor" ->
                            "a sparse tensor, which dir4j does not read: save t.to_dense() instead";
                    case "_rebuild_meta_tensor_no_storage" -> "a tensor on the 'meta' device, which has no values";
                    default -> "a kind of tensor dir4j does not read: save a plain dense tensor instead";
                };
                return track(new Unreadable(kind + " (" + g + ", pickle byte " + opAt + ")"));
            }
            case "torch.serialization._get_layout" -> {
                // a sparse tensor's layout, by name ('torch.sparse_coo'); nothing is looked up
                return args.isEmpty() ? null : args.get(0);
            }
            case "torch.Size" -> {
                return args.isEmpty() ? tuple(List.of()) : tuple(tupleArg(args.get(0), "torch.Size"));
            }
            case "torch.device" -> {
                return args.isEmpty() ? null : args.size() == 1 ? args.get(0) : args.get(0) + ":" + args.get(1);
            }
            case "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct" -> {
                return new NumpyPickles.PendingArray();
            }
            case "numpy.dtype" -> {
                return NumpyPickles.dtype(args, w);
            }
            case "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar" -> {
                return NumpyPickles.scalar(args, w);
            }
            case "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer" -> {
                try {
                    return track(NumpyPickles.fromBuffer(args, options.float64ToFloat32(), scanOnly, w));
                } catch (IOException e) {
                    return track(unreadableArray(e));
                }
            }
            default -> {
                if (GlobalPolicy.ALLOWED.contains(g.qualified()) && !options.allowInertObjects()
                        && !g.qualified().startsWith("builtins.")) {
                    throw corrupt("calling " + g + " is not supported");
                }
                // builtins.slice/complex and any admitted class: the call is recorded, never made
                return new PickledObject(g, args, Map.of());
            }
        }
    }

    private Object newObject(Object cls, List<Object> args, Map<String, Object> kwargs) throws IOException {
        if (!(cls instanceof PickleGlobal g)) {
            throw corrupt("object of " + describe(cls) + ", which is not a class");
        }
        return switch (g.qualified()) {
            case "collections.OrderedDict", "builtins.dict" -> new LinkedHashMap<>();
            case "builtins.set" -> new LinkedHashSet<>();
            case "builtins.list" -> new ArrayList<>();
            case "builtins.object" -> new PickledObject(g, args, kwargs);
            default -> {
                // global() admitted g: an allow-listed name, or any class when inert objects are allowed
                if (GlobalPolicy.ALLOWED.contains(g.qualified()) && !options.allowInertObjects()) {
                    throw corrupt("cannot make an object of " + g);
                }
                yield new PickledObject(g, args, kwargs);
            }
        };
    }

    private void build(Object target, Object state) throws IOException {
        switch (target) {
            case null -> throw corrupt("BUILD on None");
            case PickledObject po -> po.setState(state);
            case NumpyPickles.PendingArray pending -> {
                Object array;
                try {
                    array = NumpyPickles.buildArray(state, options.float64ToFloat32(), scanOnly, location());
                } catch (IOException e) {
                    array = unreadableArray(e); // reported with its place in the tree once the pickle is read
                }
                replaceTop(pending, track(array));
            }
            case NumpyPickles.DTypeSpec d -> NumpyPickles.buildDtype(d, state);
            // a dict subclass's attributes (a state dict's _metadata) and a tensor's Python state
            // have no place in the Java value; they are dropped
            case Map<?, ?> _ -> { }
            case Tensor _ -> { }
            case Unreadable _ -> { }
            default -> throw corrupt("BUILD on " + describe(target) + " is not supported");
        }
    }

    private Object encode(PickleGlobal g, List<Object> args) throws IOException {
        if (args.isEmpty()) {
            return new byte[0];
        }
        Object v = args.get(0);
        if (v instanceof byte[] b) {
            return b;
        }
        if (v instanceof List<?> ints && g.name().startsWith("byte")) {
            byte[] b = new byte[ints.size()];
            for (int i = 0; i < b.length; i++) {
                if (!(ints.get(i) instanceof Long x) || x < 0 || x > 255) {
                    throw corrupt(g + " of a list holding " + describe(ints.get(i)));
                }
                b[i] = (byte) (long) x;
            }
            return b;
        }
        if (!(v instanceof String s)) {
            throw corrupt(g + " of " + describe(v));
        }
        String enc = args.size() > 1 && args.get(1) instanceof String e ? e.toLowerCase(java.util.Locale.ROOT) : "utf-8";
        return switch (enc) {
            case "latin1", "latin-1", "iso-8859-1", "iso8859-1" -> NumpyPickles.latin1(s, where());
            case "utf-8", "utf8" -> s.getBytes(StandardCharsets.UTF_8);
            case "ascii" -> NumpyPickles.latin1(s, where());
            default -> throw corrupt(g + " with encoding '" + clip(enc) + "' is not supported");
        };
    }

    private Object rebuildTensor(List<Object> args) throws IOException {
        if (args.size() < 4) {
            throw corrupt("_rebuild_tensor expects (storage, offset, size, stride, …), found " + args.size() + " arguments");
        }
        if (tensorRebuilder == null) {
            throw corrupt("a PyTorch tensor outside a checkpoint (read .pt/.pth files with TorchCheckpoint.read)");
        }
        long offset = longArg(args.get(1), "storage offset");
        List<Object> sizeList = tupleArg(args.get(2), "tensor size");
        List<Object> strideList = tupleArg(args.get(3), "tensor stride");
        if (sizeList.size() != strideList.size()) {
            throw corrupt("tensor size has " + sizeList.size() + " dimensions but stride has " + strideList.size());
        }
        int[] size = new int[sizeList.size()];
        long[] stride = new long[size.length];
        for (int i = 0; i < size.length; i++) {
            long s = longArg(sizeList.get(i), "tensor size");
            if (s < 0 || s > Integer.MAX_VALUE) {
                throw corrupt("tensor dimension " + s + " out of range");
            }
            size[i] = (int) s;
            stride[i] = longArg(strideList.get(i), "tensor stride");
        }
        if (offset < 0) {
            throw corrupt("negative storage offset " + offset);
        }
        return track(tensorRebuilder.rebuild(args.get(0), offset, size, stride, opAt));
    }

    /** A NumPy array that could not be made, its message without the location prefix NumpyPickles gave it. */
    private Unreadable unreadableArray(IOException e) {
        String m = String.valueOf(e.getMessage());
        String prefix = location() + ": ";
        return new Unreadable("array", (m.startsWith(prefix) ? m.substring(prefix.length()) : m)
                + " (pickle byte " + opAt + ")");
    }

    private long longArg(Object o, String what) throws IOException {
        if (o instanceof Long v) {
            return v;
        }
        throw corrupt(what + " must be an int, found " + describe(o));
    }

    private Object persistent(Object pid) throws IOException {
        if (persistentLoader == null) {
            throw corrupt("the pickle refers to external data (a persistent id) that this reader was not given");
        }
        return persistentLoader.load(pid, opAt);
    }

    private Object track(Object o) {
        if (o instanceof Tensor t) {
            created.add(t);
        } else if (o instanceof Unreadable u && firstUnreadable == null) {
            firstUnreadable = u;
        }
        return o;
    }

    // ================================================================ messages

    /** A short description of a value for error messages (never its full contents). */
    static String describe(Object o) {
        return switch (o) {
            case null -> "None";
            case String s -> "str '" + clip(s) + "'";
            case Long l -> "int " + l;
            case Double d -> "float " + d;
            case Boolean b -> "bool " + b;
            case byte[] b -> "bytes of length " + b.length;
            case Tensor t -> "tensor " + Arrays.toString(t.shape());
            case PickledObject p -> "object of " + p.className();
            case PickleGlobal g -> "global " + g;
            case ArrayList<?> l -> "list of " + l.size();
            case List<?> l -> "tuple of " + l.size();
            case Map<?, ?> m -> "dict of " + m.size();
            case Set<?> s -> "set of " + s.size();
            default -> o.getClass().getSimpleName();
        };
    }

    private static String clip(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    private static String opName(int op) {
        return switch (op) {
            case -1 -> "end of input";
            case '(' -> "MARK";
            case '.' -> "STOP";
            case 0x80 -> "PROTO";
            case 0x95 -> "FRAME";
            case 'c' -> "GLOBAL";
            case 0x93 -> "STACK_GLOBAL";
            case 'R' -> "REDUCE";
            case 'b' -> "BUILD";
            case 0x81 -> "NEWOBJ";
            case 0x92 -> "NEWOBJ_EX";
            case 'i' -> "INST";
            case 'o' -> "OBJ";
            case ')' -> "EMPTY_TUPLE";
            case 't' -> "TUPLE";
            case 0x85 -> "TUPLE1";
            case 0x86 -> "TUPLE2";
            case 0x87 -> "TUPLE3";
            case ']' -> "EMPTY_LIST";
            case 'l' -> "LIST";
            case 'a' -> "APPEND";
            case 'e' -> "APPENDS";
            case '}' -> "EMPTY_DICT";
            case 'd' -> "DICT";
            case 's' -> "SETITEM";
            case 'u' -> "SETITEMS";
            case 0x8f -> "EMPTY_SET";
            case 0x90 -> "ADDITEMS";
            case 0x91 -> "FROZENSET";
            case 'N' -> "NONE";
            case 0x88 -> "NEWTRUE";
            case 0x89 -> "NEWFALSE";
            case 'I' -> "INT";
            case 'J' -> "BININT";
            case 'K' -> "BININT1";
            case 'M' -> "BININT2";
            case 'L' -> "LONG";
            case 0x8a -> "LONG1";
            case 0x8b -> "LONG4";
            case 'F' -> "FLOAT";
            case 'G' -> "BINFLOAT";
            case 'S' -> "STRING";
            case 'T' -> "BINSTRING";
            case 'U' -> "SHORT_BINSTRING";
            case 'V' -> "UNICODE";
            case 'X' -> "BINUNICODE";
            case 0x8c -> "SHORT_BINUNICODE";
            case 0x8d -> "BINUNICODE8";
            case 'B' -> "BINBYTES";
            case 'C' -> "SHORT_BINBYTES";
            case 0x8e -> "BINBYTES8";
            case 0x96 -> "BYTEARRAY8";
            case 'p' -> "PUT";
            case 'q' -> "BINPUT";
            case 'r' -> "LONG_BINPUT";
            case 0x94 -> "MEMOIZE";
            case 'g' -> "GET";
            case 'h' -> "BINGET";
            case 'j' -> "LONG_BINGET";
            case 'P' -> "PERSID";
            case 'Q' -> "BINPERSID";
            case '0' -> "POP";
            case '1' -> "POP_MARK";
            case '2' -> "DUP";
            case 0x82, 0x83, 0x84 -> "EXT";
            case 0x97 -> "NEXT_BUFFER";
            case 0x98 -> "READONLY_BUFFER";
            default -> String.format("opcode 0x%02x", op);
        };
    }
}
