package dir4j.nn.io;

import static dir4j.nn.io.CheckpointFixtures.path;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.NativeMemory;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class UnpicklerTest {
    /** The file the malicious fixtures would create if anything ran them. */
    static final Path PWNED = Path.of("/tmp/dir4j-unpickler-executed-code");

    private static Object load(byte[] pickle, Unpickler.Options options) throws IOException {
        return new Unpickler("test.pkl", options).load(pickle);
    }

    // ---------------------------------------------------------------- protocols

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3, 4, 5})
    void everyProtocolReadsTheSameValue(int protocol) throws IOException {
        Object v = Unpickler.load(path("pickle_protocol" + protocol + ".pkl"), Unpickler.Options.strict());
        Map<?, ?> m = assertInstanceOf(Map.class, v);
        assertEquals(7L, m.get("int"));
        assertEquals(-300L, m.get("neg"));
        assertEquals(2147483648L, m.get("int32max_plus1"));
        assertEquals(Long.MIN_VALUE, m.get("int64min"));
        assertEquals(BigInteger.TWO.pow(70), m.get("big"));
        assertEquals(2.5, m.get("float"));
        assertEquals(Double.doubleToLongBits(-0.0), Double.doubleToLongBits((Double) m.get("negzero")));
        assertEquals("h\u00e9llo \u2713", m.get("str"));
        assertTrue(m.containsKey("none"));
        assertNull(m.get("none"));
        assertEquals(List.of(true, false), m.get("bools"));
        assertEquals(List.of(1L, List.of(2L, 3L)), m.get("tuple"));
        assertEquals(List.of(), m.get("empty_tuple"));
        assertArrayEquals(new byte[] {0, (byte) 0xff, 'a', 'b'}, (byte[]) m.get("bytes"));
        assertEquals(Set.of(1L, 2L), m.get("set"));
        assertEquals(Set.of("x"), m.get("frozen"));
        assertEquals(Map.of("k", List.of(1.5, -2L)), m.get("nested"));
        List<?> shared = assertInstanceOf(List.class, m.get("shared"));
        assertEquals(List.of(1L, "two"), shared.get(0));
        assertSame(shared.get(0), shared.get(1), "the memo keeps a value referenced twice one object");
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 5})
    void numpyArraysBecomeTensorsInCOrder(int protocol) throws IOException {
        Object v = Unpickler.load(path("numpy_protocol" + protocol + ".pkl"), Unpickler.Options.strict());
        Map<?, ?> m = assertInstanceOf(Map.class, v);
        try {
            Tensor c = (Tensor) m.get("c_f32");
            assertEquals(DType.FLOAT32, c.dtype());
            assertArrayEquals(new int[] {2, 3}, c.shape());
            assertArrayEquals(new float[] {0, 0.25f, 0.5f, 0.75f, 1, 1.25f}, c.toFloatArray());
            Tensor f = (Tensor) m.get("fortran_f64");
            assertEquals(DType.FLOAT64, f.dtype());
            assertArrayEquals(new double[] {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}, f.toDoubleArray());
            Tensor i = (Tensor) m.get("i64");
            assertEquals(DType.INT32, i.dtype());
            assertArrayEquals(new int[] {-5, 0, Integer.MAX_VALUE}, i.toIntArray());
            assertArrayEquals(new int[] {1, 0, 1}, ((Tensor) m.get("bool")).toIntArray());
            assertEquals(0.125, m.get("scalar_f64"));
            assertEquals(-9L, m.get("scalar_i64"));
        } finally {
            TorchCheckpoint.closeTensors(v);
        }
    }

    @Test
    void float64ArraysNarrowToFloat32WhenAsked() throws IOException {
        Object v = Unpickler.load(path("numpy_protocol2.pkl"), Unpickler.Options.strict().withFloat64ToFloat32(true));
        try {
            Tensor f = (Tensor) ((Map<?, ?>) v).get("fortran_f64");
            assertEquals(DType.FLOAT32, f.dtype());
            assertArrayEquals(new float[] {-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f}, f.toFloatArray());
        } finally {
            TorchCheckpoint.closeTensors(v);
        }
    }

    // ---------------------------------------------------------------- globals

    @Test
    void osSystemIsRefusedByNameAndNothingRuns() throws IOException {
        Files.deleteIfExists(PWNED);
        for (Unpickler.Options o : List.of(Unpickler.Options.strict(), Unpickler.Options.inertObjects())) {
            UnsafePickleException e = assertThrows(UnsafePickleException.class,
                    () -> Unpickler.load(path("malicious_os_system.pkl"), o));
            assertTrue(e.getMessage().contains("refusing to load checkpoint: it references os.system, which could run code"),
                    e.getMessage());
            assertEquals("os.system", e.reference());
            assertTrue(e.couldRunCode());
        }
        assertFalse(Files.exists(PWNED));
    }

    @Test
    void builtinsEvalReachedThroughStackGlobalIsRefused() {
        UnsafePickleException e = assertThrows(UnsafePickleException.class,
                () -> Unpickler.load(path("malicious_eval.pkl"), Unpickler.Options.inertObjects()));
        assertEquals("builtins.eval", e.reference());
        assertTrue(e.getMessage().contains("could run code"), e.getMessage());
        assertFalse(Files.exists(PWNED));
    }

    @ParameterizedTest
    @CsvSource({
        "posix, system", "nt, system", "subprocess, Popen", "subprocess, check_output", "os.path, join",
        "builtins, exec", "builtins, getattr", "builtins, __import__", "__builtin__, eval", "builtins, open",
        "importlib, import_module", "pickle, loads", "_pickle, loads", "runpy, run_path", "shutil, rmtree",
        "socket, socket", "webbrowser, open", "functools, partial", "operator, attrgetter", "sys, modules",
        "torch, load", "torch.hub, load", "torch.jit, load", "numpy, load", "numpy.testing, measure",
        "ctypes, CDLL", "sklearn.base, os.system", "mypkg, Thing.__init__.__globals__", "yaml, load",
    })
    void globalsThatCouldRunCodeAreAlwaysRefused(String module, String name) {
        byte[] pickle = PickleBytes.proto(2).global(module, name).mark().str("x").tuple().reduce().stop().bytes();
        for (Unpickler.Options o : List.of(Unpickler.Options.strict(), Unpickler.Options.inertObjects())) {
            UnsafePickleException e = assertThrows(UnsafePickleException.class, () -> load(pickle, o));
            String full = ("__builtin__".equals(module) ? "builtins" : module) + "." + name;
            assertEquals(full, e.reference());
            assertTrue(e.getMessage().contains("it references " + full), e.getMessage());
            assertTrue(e.getMessage().contains("pickle byte 2"), e.getMessage());
        }
    }

    /**
     * The allow-listed calls a pickle may make, each built by hand: bytes and bytearray from a
     * list of ints (0–255 only) or from nothing, _codecs.encode by encoding (an unknown one
     * refused by name), set and frozenset from a list, torch.Size from a tuple, torch.device from
     * a type and an index.
     */
    @Test
    void allowedCallsBuildTheirValuesAndRefuseBadArguments() throws IOException {
        Unpickler.Options o = Unpickler.Options.strict();
        byte[] fromInts = PickleBytes.proto(2).global("builtins", "bytearray").mark().op(']').mark().integer(1)
                .integer(2).integer(255).op('e').tuple().reduce().stop().bytes();
        assertArrayEquals(new byte[] {1, 2, (byte) 255}, (byte[]) load(fromInts, o));
        byte[] tooBig = PickleBytes.proto(2).global("builtins", "bytes").mark().op(']').mark().integer(256).op('e')
                .tuple().reduce().stop().bytes();
        IOException big = assertThrows(IOException.class, () -> load(tooBig, o));
        assertTrue(big.getMessage().contains("builtins.bytes of a list holding"), big.getMessage());
        byte[] empty = PickleBytes.proto(2).global("builtins", "bytes").op(')').reduce().stop().bytes();
        assertArrayEquals(new byte[0], (byte[]) load(empty, o));
        byte[] utf8 = PickleBytes.proto(2).global("_codecs", "encode").mark().str("é").str("UTF-8").tuple().reduce()
                .stop().bytes();
        assertArrayEquals("é".getBytes(StandardCharsets.UTF_8), (byte[]) load(utf8, o));
        byte[] rot13 = PickleBytes.proto(2).global("_codecs", "encode").mark().str("abc").str("rot13").tuple()
                .reduce().stop().bytes();
        IOException enc = assertThrows(IOException.class, () -> load(rot13, o));
        assertTrue(enc.getMessage().contains("encoding 'rot13' is not supported"), enc.getMessage());
        byte[] notText = PickleBytes.proto(2).global("_codecs", "encode").mark().integer(7).tuple().reduce().stop()
                .bytes();
        assertThrows(IOException.class, () -> load(notText, o));
        for (String kind : List.of("set", "frozenset")) {
            byte[] set = PickleBytes.proto(2).global("builtins", kind).mark().op(']').mark().integer(3).integer(1)
                    .integer(3).op('e').tuple().reduce().stop().bytes();
            assertEquals(Set.of(3L, 1L), load(set, o), kind);
        }
        byte[] size = PickleBytes.proto(2).global("torch", "Size").mark().mark().integer(2).integer(3).tuple()
                .tuple().reduce().stop().bytes();
        assertEquals(List.of(2L, 3L), load(size, o));
        byte[] device = PickleBytes.proto(2).global("torch", "device").mark().str("cuda").integer(1).tuple().reduce()
                .stop().bytes();
        assertEquals("cuda:1", load(device, o));
    }

    /**
     * Opcodes no fixture holds, built by hand: BINBYTES over 255 bytes, BINBYTES8, BYTEARRAY8 and
     * BINUNICODE8; LONG4 beyond the size limit refused before it is read; a text persistent id
     * (PERSID) outside a checkpoint refused.
     */
    @Test
    void longFormsOfBytesAndTextAndTheirLimits() throws IOException {
        Unpickler.Options o = Unpickler.Options.strict();
        byte[] data = new byte[300];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 7);
        }
        assertArrayEquals(data, (byte[]) load(PickleBytes.proto(4).op('B').u32(data.length).raw(data).stop().bytes(), o));
        assertArrayEquals(data, (byte[]) load(PickleBytes.proto(4).op(0x8e).u64(data.length).raw(data).stop().bytes(), o));
        assertArrayEquals(data, (byte[]) load(PickleBytes.proto(5).op(0x96).u64(data.length).raw(data).stop().bytes(), o));
        byte[] text = "µ-text".getBytes(StandardCharsets.UTF_8);
        assertEquals("µ-text", load(PickleBytes.proto(4).op(0x8d).u64(text.length).raw(text).stop().bytes(), o));
        // BINBYTES claiming more bytes than the pickle holds
        assertThrows(IOException.class, () -> load(PickleBytes.proto(4).op('B').u32(1000).raw(data).stop().bytes(), o));
        IOException big = assertThrows(IOException.class,
                () -> load(PickleBytes.proto(2).op(0x8b).u32(1L << 20).stop().bytes(), o));
        assertTrue(big.getMessage().contains("exceeds the limit of 4096"), big.getMessage());
        IOException pid = assertThrows(IOException.class, () -> load(PickleBytes.proto(0).op('P')
                .raw("storage0\n".getBytes(StandardCharsets.US_ASCII)).stop().bytes(), o));
        assertTrue(pid.getMessage().contains("persistent id"), pid.getMessage());
    }

    @Test
    void torchLoadFromBytesIsRefusedWithItsOwnReason() {
        byte[] pickle = PickleBytes.proto(2).global("torch.storage", "_load_from_bytes").mark().str("x").tuple()
                .reduce().stop().bytes();
        UnsafePickleException e = assertThrows(UnsafePickleException.class,
                () -> load(pickle, Unpickler.Options.inertObjects()));
        assertTrue(e.getMessage().contains("torch.storage._load_from_bytes"), e.getMessage());
        assertTrue(e.getMessage().contains("torch.load"), e.getMessage());
    }

    @Test
    void otherClassesAreRefusedInStrictModeAndInertOtherwise() throws IOException {
        // Thing.__new__(Thing) via NEWOBJ, then BUILD {'w': 1.5, 'tags': ['a']}, as protocol 2 pickles objects
        byte[] pickle = PickleBytes.proto(2).global("mypkg.models", "Thing").op(')').op(0x81)
                .op('}').mark().str("w").op('G').raw(new byte[] {0x3f, (byte) 0xf8, 0, 0, 0, 0, 0, 0})
                .str("tags").op(']').str("a").op('a').op('u').op('b').stop().bytes();
        UnsafePickleException e = assertThrows(UnsafePickleException.class, () -> load(pickle, Unpickler.Options.strict()));
        assertEquals("mypkg.models.Thing", e.reference());
        assertTrue(e.getMessage().contains("not on the allow-list"), e.getMessage());
        assertTrue(e.getMessage().contains("inertObjects"), e.getMessage());
        assertFalse(e.couldRunCode());

        PickledObject o = assertInstanceOf(PickledObject.class, load(pickle, Unpickler.Options.inertObjects()));
        assertEquals("mypkg.models.Thing", o.className());
        assertEquals(1.5, o.attribute("w"));
        assertEquals(List.of("a"), o.attribute("tags"));
        assertEquals(List.of(), o.args());
    }

    @Test
    void reduceOfAnInertClassRecordsTheCallWithoutMakingIt() throws IOException {
        byte[] pickle = PickleBytes.proto(2).global("mypkg", "make").mark().integer(3).str("x").tuple().reduce()
                .stop().bytes();
        PickledObject o = assertInstanceOf(PickledObject.class, load(pickle, Unpickler.Options.inertObjects()));
        assertEquals("mypkg.make", o.className());
        assertEquals(List.of(3L, "x"), o.args());
    }

    @Test
    void protocolZeroInstAndObjMakeInertObjects() throws IOException {
        // [Thing('x', 2), Other(1.5)] as Python 2 wrote them: INST reads the class from its line, OBJ from the stack
        byte[] pickle = ("(lp0\n(S'x'\nI2\nimypkg\nThing\np1\n(dp2\nS'a'\nI1\nsba"
                + "(cmypkg\nOther\nF1.5\no(dp3\nba.").getBytes(StandardCharsets.ISO_8859_1);
        List<?> l = assertInstanceOf(List.class, load(pickle, Unpickler.Options.inertObjects()));
        PickledObject thing = assertInstanceOf(PickledObject.class, l.get(0));
        assertEquals("mypkg.Thing", thing.className());
        assertEquals(List.of("x", 2L), thing.args());
        assertEquals(1L, thing.attribute("a"));
        PickledObject other = assertInstanceOf(PickledObject.class, l.get(1));
        assertEquals(List.of(1.5), other.args());
    }

    @Test
    void persistentIdsGoToTheLoaderInBothProtocols() throws IOException {
        Unpickler u = new Unpickler("test.pkl", Unpickler.Options.strict());
        u.persistentLoader = (pid, at) -> "loaded " + pid + " at " + at;
        byte[] text = "(Pkey0\nPkey1\nl.".getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(List.of("loaded key0 at 1", "loaded key1 at 7"), u.load(text));
        byte[] binary = PickleBytes.proto(2).str("k").op('Q').stop().bytes();
        assertEquals("loaded k at 8", u.load(binary));
    }

    // ---------------------------------------------------------------- corrupt and hostile input

    @Test
    void unknownOpcodeIsAnErrorNamingItsByte() {
        IOException e = assertThrows(IOException.class,
                () -> Unpickler.load(path("bad_opcode.pkl"), Unpickler.Options.strict()));
        assertTrue(e.getMessage().contains("pickle byte 11"), e.getMessage());
        assertTrue(e.getMessage().contains("unknown opcode 0xfe"), e.getMessage());
    }

    @Test
    void everyTruncationOfEveryFixturePickleIsAnIOExceptionWithItsOffset() throws IOException {
        for (String f : List.of("pickle_protocol0.pkl", "pickle_protocol2.pkl", "pickle_protocol4.pkl",
                "pickle_protocol5.pkl", "numpy_protocol2.pkl", "numpy_protocol5.pkl")) {
            byte[] all = Files.readAllBytes(path(f));
            for (int n = 0; n < all.length; n++) {
                byte[] cut = Arrays.copyOf(all, n);
                IOException e = assertThrows(IOException.class, () -> load(cut, Unpickler.Options.strict()),
                        f + " cut to " + n + " bytes");
                assertTrue(e.getMessage().contains("byte"), f + " cut to " + n + ": " + e.getMessage());
            }
        }
    }

    /**
     * Protocol 0's STRING (Python 2's str): a quoted repr with backslash escapes, read as Python 3's
     * {@code pickle.loads(b"S" + literal + b"\n.", encoding="latin1")} reads it (the expected
     * values are what that printed, Python 3.12); an unquoted or cut literal is refused.
     */
    @Test
    void protocol0StringLiteralsDecodeTheirEscapesAsPythonDoes() throws IOException {
        String[][] cases = {
            {"'plain'", "plain"},
            {"\"dq\"", "dq"},
            {"'a\\nb\\tc\\rd'", "a\nb\tc\rd"},
            {"'\\x41\\x7e\\xff'", "A~\u00ff"},
            {"'\\101\\7\\0\\1234'", "A\u0007\u0000S4"},
            {"'it\\'s \\\"q\\\" \\\\ back'", "it's \"q\" \\ back"},
            {"'\\a\\b\\f\\v'", "\u0007\b\f\u000b"},
            {"'\\q\\z'", "\\q\\z"},
            {"''", ""},
        };
        for (String[] c : cases) {
            byte[] pickle = ("S" + c[0] + "\n.").getBytes(StandardCharsets.ISO_8859_1);
            assertEquals(c[1], load(pickle, Unpickler.Options.strict()), c[0]);
        }
        for (String bad : new String[] {"'unterminated", "noquotes", "'x\\x4'"}) {
            byte[] pickle = ("S" + bad + "\n.").getBytes(StandardCharsets.ISO_8859_1);
            IOException e = assertThrows(IOException.class, () -> load(pickle, Unpickler.Options.strict()), bad);
            assertTrue(e.getMessage().contains("STRING"), e.getMessage());
        }
    }

    /**
     * Arrays the pickle makes but its result does not hold (here every array of the fixture's dict,
     * popped before a None is returned) are freed by the load: nobody else could close them.
     */
    @Test
    void arraysTheResultDoesNotHoldAreFreed() throws IOException {
        byte[] all = Files.readAllBytes(path("numpy_protocol2.pkl"));
        assertEquals('.', all[all.length - 1]);
        byte[] popped = Arrays.copyOf(all, all.length + 2);
        popped[all.length - 1] = '0'; // POP the dict of arrays
        popped[all.length] = 'N';     // NONE
        popped[all.length + 1] = '.';
        long live = NativeMemory.liveBytes();
        long made = NativeMemory.totalAllocations();
        assertNull(load(popped, Unpickler.Options.strict()));
        assertTrue(NativeMemory.totalAllocations() > made, "the fixture's arrays were made");
        assertEquals(live, NativeMemory.liveBytes(), "and freed");
    }

    @Test
    void randomCorruptionIsAlwaysAnIOExceptionNeverACrash() throws IOException {
        Random rng = new Random(42);
        int failures = 0;
        for (String f : List.of("pickle_protocol2.pkl", "pickle_protocol4.pkl", "numpy_protocol2.pkl",
                "numpy_protocol5.pkl", "pickle_protocol0.pkl")) {
            byte[] all = Files.readAllBytes(path(f));
            for (int trial = 0; trial < 400; trial++) {
                byte[] bad = all.clone();
                for (int k = 1 + rng.nextInt(3); k > 0; k--) {
                    bad[rng.nextInt(bad.length)] = (byte) rng.nextInt(256);
                }
                try {
                    TorchCheckpoint.closeTensors(load(bad, Unpickler.Options.inertObjects()));
                } catch (IOException expected) {
                    failures++;
                }
            }
        }
        assertTrue(failures > 100, "most corruptions are detected (" + failures + ")");
    }

    @Test
    void lengthsBeyondTheInputAreRefusedBeforeAllocating() {
        byte[] pickle = PickleBytes.proto(4).op(0x8d).u64(1L << 40).stop().bytes();
        IOException e = assertThrows(IOException.class, () -> load(pickle, Unpickler.Options.strict()));
        assertTrue(e.getMessage().contains("BINUNICODE8"), e.getMessage());
        assertTrue(e.getMessage().contains("remain"), e.getMessage());
        byte[] hugeLong = PickleBytes.proto(2).op(0x8b).u32(1 << 30).stop().bytes();
        IOException l = assertThrows(IOException.class, () -> load(hugeLong, Unpickler.Options.strict()));
        assertTrue(l.getMessage().contains("exceeds the limit"), l.getMessage());
    }

    @Test
    void stackAndMemoLimitsHold() {
        Unpickler.Options tight = new Unpickler.Options(false, false, new Unpickler.Limits(10, 10, 5, 64, 8));
        PickleBytes many = PickleBytes.proto(2);
        for (int i = 0; i < 20; i++) {
            many.op('N');
        }
        IOException s = assertThrows(IOException.class, () -> load(many.stop().bytes(), tight));
        assertTrue(s.getMessage().contains("stack exceeds 10"), s.getMessage());
        PickleBytes memo = PickleBytes.proto(2).op('N');
        for (int i = 0; i < 20; i++) {
            memo.op('q').op(i);
        }
        IOException m = assertThrows(IOException.class, () -> load(memo.stop().bytes(), tight));
        assertTrue(m.getMessage().contains("memo exceeds 5"), m.getMessage());
        PickleBytes marks = PickleBytes.proto(2);
        for (int i = 0; i < 20; i++) {
            marks.mark();
        }
        IOException k = assertThrows(IOException.class, () -> load(marks.stop().bytes(), tight));
        assertTrue(k.getMessage().contains("nested MARKs"), k.getMessage());
    }

    @Test
    void deeplyNestedAndUnhashableDictKeysAreRefused() {
        PickleBytes deep = PickleBytes.proto(2).op('}').op('N');
        for (int i = 0; i < 200; i++) {
            deep.op(0x85);
        }
        IOException d = assertThrows(IOException.class,
                () -> load(deep.op('N').op('s').stop().bytes(), Unpickler.Options.strict()));
        assertTrue(d.getMessage().contains("deeper than"), d.getMessage());
        byte[] listKey = PickleBytes.proto(2).op('}').op(']').op('N').op('s').stop().bytes();
        IOException u = assertThrows(IOException.class, () -> load(listKey, Unpickler.Options.strict()));
        assertTrue(u.getMessage().contains("unhashable"), u.getMessage());
    }

    @Test
    void memoReferencesThatWereNeverStoredAreErrors() {
        byte[] pickle = PickleBytes.proto(2).op('h').op(7).stop().bytes();
        IOException e = assertThrows(IOException.class, () -> load(pickle, Unpickler.Options.strict()));
        assertTrue(e.getMessage().contains("memo index 7 was never stored"), e.getMessage());
    }

    @Test
    void persistentIdsOutsideACheckpointAreErrors() {
        byte[] pickle = PickleBytes.proto(2).str("storage").op('Q').stop().bytes();
        IOException e = assertThrows(IOException.class, () -> load(pickle, Unpickler.Options.strict()));
        assertTrue(e.getMessage().contains("persistent id"), e.getMessage());
    }

    /**
     * {@code numpy.array(['ab'])} as {@code pickle.dumps(a, protocol=2)} writes it (less its memo
     * ops): an array of dtype 'U2', which the unpickler stands in for with an
     * {@link Unpickler.Unreadable} and reports once the pickle is read.
     */
    private static PickleBytes stringArray(PickleBytes p) {
        return p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray")
                .op('K').op(0).op(0x85) // (0,)
                .global("_codecs", "encode").str("b").str("latin1").op(0x86).reduce().op(0x87).reduce()
                .mark().op('K').op(1).op('K').op(1).op(0x85) // state: version 1, shape (1,),
                .global("numpy", "dtype").str("U2").op(0x89).op(0x88).op(0x87).reduce() // dtype('U2'),
                .mark().op('K').op(3).str("<").op('N').op('N').op('N').op('K').op(8).op('K').op(4).op('K').op(8)
                .tuple().op('b')
                .op(0x89) // C order
                .global("_codecs", "encode").str("a\0\0\0b\0\0\0").str("latin1").op(0x86).reduce()
                .tuple().op('b');
    }

    /** An unreadable array is named by its place: keys, indices, the root. */
    @Test
    void anUnreadableArrayIsNamedByItsPlace() {
        PickleBytes p = PickleBytes.proto(2).op('}').str("meta").op(']').op('N').op('a');
        IOException e = assertThrows(IOException.class,
                () -> load(stringArray(p).op('a').op('s').stop().bytes(), Unpickler.Options.strict()));
        assertTrue(e.getMessage().startsWith("test.pkl: array ['meta'][1]: numpy dtype 'U2' is not supported"),
                e.getMessage());
        IOException root = assertThrows(IOException.class,
                () -> load(stringArray(PickleBytes.proto(2)).stop().bytes(), Unpickler.Options.strict()));
        assertTrue(root.getMessage().startsWith("test.pkl: array at the root: numpy dtype 'U2'"), root.getMessage());
    }

    /**
     * A hostile pickle nesting an unreadable array 300,000 lists deep (2 MB, two memo slots reused):
     * the search for its place is linear (it spelled out every level's path, quadratic: 18 s at
     * 200,000 levels, with a 600,000-character message), and the message shows the path's ends.
     */
    @Test
    void theUnreadablesPlaceInADeepPickleIsFoundFastAndShownByItsEnds() {
        int depth = 300_000;
        PickleBytes p = PickleBytes.proto(2).op(']').op('q').op(1); // the root, memo 1: the innermost list
        for (int i = 0; i < depth; i++) {
            p.op('h').op(1).op(']').op('q').op(1).op('a').op('0'); // a new innermost list inside the last
        }
        byte[] pickle = stringArray(p.op('h').op(1)).op('a').op('0').stop().bytes();
        IOException e = assertThrows(IOException.class, () -> org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                java.time.Duration.ofSeconds(20), () -> load(pickle, Unpickler.Options.strict())));
        int head = Unpickler.PATH_STEPS_SHOWN / 3;
        int tail = Unpickler.PATH_STEPS_SHOWN - head;
        assertTrue(e.getMessage().startsWith("test.pkl: array " + "[0]".repeat(head) + "... ("
                + (depth + 1 - head - tail) + " levels) ..." + "[0]".repeat(tail) + ": numpy dtype 'U2' is not "
                + "supported"), e.getMessage().substring(0, Math.min(300, e.getMessage().length())));
        assertTrue(e.getMessage().length() < 400, "message of " + e.getMessage().length() + " characters");
    }

    @Test
    void pathsUpToTheLimitAreSpelledOutWhole() {
        Object target = new Unpickler.Unreadable("x");
        Object o = target;
        for (int i = 0; i < Unpickler.PATH_STEPS_SHOWN; i++) {
            o = new java.util.ArrayList<>(List.of("other", o));
        }
        assertEquals("[1]".repeat(Unpickler.PATH_STEPS_SHOWN), Unpickler.pathTo(o, target));
        Map<Object, Object> keyed = new java.util.LinkedHashMap<>();
        keyed.put("k".repeat(100), List.of(target));
        keyed.put(7L, target);
        assertEquals("[7]", Unpickler.pathTo(keyed, target), "the shortest path");
        keyed.remove(7L);
        assertEquals("['" + "k".repeat(57) + "...'][0]", Unpickler.pathTo(keyed, target));
        assertNull(Unpickler.pathTo(keyed, new Object()));
        assertEquals("at the root", Unpickler.pathTo(target, target));
        assertNull(Unpickler.pathTo(null, target));
        assertNull(Unpickler.pathTo("a string", target));
        Map<Object, Object> cycle = new java.util.LinkedHashMap<>();
        cycle.put("self", cycle);
        cycle.put("list", new java.util.ArrayList<>(List.of(cycle, List.of(target))));
        assertEquals("['list'][1][0]", Unpickler.pathTo(cycle, target), "through a cycle");
    }
}
