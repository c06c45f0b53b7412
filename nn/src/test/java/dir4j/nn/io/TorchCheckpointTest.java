package dir4j.nn.io;

import static dir4j.nn.io.CheckpointFixtures.assertSameTensor;
import static dir4j.nn.io.CheckpointFixtures.expected;
import static dir4j.nn.io.CheckpointFixtures.path;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TorchCheckpointTest {
    /** The state dict's keys in the order torch.save wrote them. */
    private static final List<String> STATE_KEYS = List.of(
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
            "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
            "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked", "fc.weight", "fc.bias",
            "views.base", "views.slice", "views.transposed", "dtypes.float64", "dtypes.int64", "dtypes.float16",
            "dtypes.bfloat16", "dtypes.bool", "dtypes.uint8", "dtypes.empty", "extra.parameter");

    @TempDir
    Path tmp;

    // ---------------------------------------------------------------- values

    @ParameterizedTest
    @ValueSource(strings = {"state_zip.pt", "state_legacy.pt"})
    void everyTensorEqualsPyTorchsValues(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file));
        try {
            Map<String, Tensor> sd = TorchCheckpoint.stateDict(root);
            assertEquals(STATE_KEYS, new ArrayList<>(sd.keySet()));
            for (String key : STATE_KEYS) {
                try (Tensor want = expected("state", key)) {
                    assertSameTensor(file + " " + key, want, sd.get(key));
                }
            }
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"state_zip.pt", "state_legacy.pt"})
    void viewsSharingAStorageKeepTheirOffsetAndStrides(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file));
        try {
            Map<String, Tensor> sd = TorchCheckpoint.stateDict(root);
            float[] base = sd.get("views.base").toFloatArray(); // 4×6, row-major
            Tensor slice = sd.get("views.slice");               // base[1:3, 2:5]: storage offset 8
            assertArrayEquals(new int[] {2, 3}, slice.shape());
            assertTrue(slice.isContiguous());
            assertArrayEquals(new float[] {base[8], base[9], base[10], base[14], base[15], base[16]}, slice.toFloatArray());
            Tensor transposed = sd.get("views.transposed");     // base.t(): strides (1, 6)
            assertArrayEquals(new int[] {6, 4}, transposed.shape());
            assertEquals(base[1 * 6 + 2], transposed.toFloatArray()[2 * 4 + 1]);
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @Test
    void halfBfloat16IntAndBoolTensorsGetDir4jDtypes() throws IOException {
        Object root = TorchCheckpoint.read(path("state_zip.pt"));
        try {
            Map<String, Tensor> sd = TorchCheckpoint.stateDict(root);
            assertEquals(DType.FLOAT32, sd.get("dtypes.float16").dtype());
            assertEquals(65504f, sd.get("dtypes.float16").toFloatArray()[3]);
            assertEquals(DType.FLOAT32, sd.get("dtypes.bfloat16").dtype());
            assertEquals(DType.FLOAT64, sd.get("dtypes.float64").dtype());
            assertEquals(DType.INT32, sd.get("dtypes.int64").dtype());
            assertArrayEquals(new int[] {0, -1, 7, Integer.MAX_VALUE, Integer.MIN_VALUE, 42}, sd.get("dtypes.int64").toIntArray());
            assertArrayEquals(new int[] {1, 0, 0, 1}, sd.get("dtypes.bool").toIntArray());
            assertArrayEquals(new int[] {0, 128, 255}, sd.get("dtypes.uint8").toIntArray());
            assertEquals(0, sd.get("bn1.num_batches_tracked").rank());
            assertEquals(1234, sd.get("bn1.num_batches_tracked").item());
            assertArrayEquals(new int[] {0, 3}, sd.get("dtypes.empty").shape());
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @Test
    void float64NarrowsToFloat32WhenAsked() throws IOException {
        Object root = TorchCheckpoint.read(path("state_legacy.pt"), Unpickler.Options.strict().withFloat64ToFloat32(true));
        try (Tensor want = expected("state", "dtypes.float64")) {
            Tensor t = TorchCheckpoint.stateDict(root).get("dtypes.float64");
            assertEquals(DType.FLOAT32, t.dtype());
            assertArrayEquals(want.toFloatArray(), t.toFloatArray());
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    // ---------------------------------------------------------------- the reference's retrieval checkpoints

    @ParameterizedTest
    @ValueSource(strings = {"retrieval_zip.pt", "retrieval_legacy.pt"})
    void retrievalCheckpointStateDictLosesItsModulePrefix(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file), Unpickler.Options.inertObjects());
        try {
            Map<String, Tensor> sd = TorchCheckpoint.stateDict(root);
            assertEquals(14, sd.size());
            for (Map.Entry<String, Tensor> e : sd.entrySet()) {
                assertFalse(e.getKey().startsWith("module."), e.getKey());
                try (Tensor want = expected("retrieval", e.getKey())) {
                    assertSameTensor(file + " " + e.getKey(), want, e.getValue());
                }
            }
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"retrieval_zip.pt", "retrieval_legacy.pt"})
    void modelOptionsAreReadable(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file), Unpickler.Options.inertObjects());
        try {
            Map<String, Object> opts = TorchCheckpoint.modelOptions(root);
            assertEquals("resnet101_rmac", opts.get("arch"));
            assertEquals(2048L, opts.get("out_dim"));
            assertEquals("gem", opts.get("pooling"));
            assertEquals(3L, opts.get("gemp"));
            assertEquals(0.5, opts.get("dropout_p"));
            assertEquals(false, opts.get("without_fc"));
            assertTrue(opts.containsKey("pretrained"));
            assertNull(opts.get("pretrained"));
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"retrieval_zip.pt", "retrieval_legacy.pt"})
    void pcaArraysAreReadableFromTheInertObject(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file), Unpickler.Options.inertObjects());
        try {
            Map<String, PickledObject> pca = TorchCheckpoint.pca(root);
            assertEquals(List.of("Landmarks_clean"), new ArrayList<>(pca.keySet()));
            PickledObject p = pca.get("Landmarks_clean");
            assertEquals("sklearn.decomposition.pca.PCA", p.className());
            for (String attr : List.of("components_", "mean_", "explained_variance_", "explained_variance_ratio_",
                    "singular_values_")) {
                try (Tensor want = expected("pca", attr)) {
                    assertSameTensor(file + " pca." + attr, want, assertInstanceOf(Tensor.class, p.attribute(attr)));
                }
            }
            assertEquals(DType.FLOAT64, ((Tensor) p.attribute("components_")).dtype());
            assertEquals(DType.FLOAT32, ((Tensor) p.attribute("mean_")).dtype());
            assertEquals(0.0123, p.attribute("noise_variance_"));
            assertEquals(4L, p.attribute("n_components_"));
            assertEquals(true, p.attribute("whiten"));
            assertEquals("full", p.attribute("svd_solver"));
            assertEquals("0.20.2", p.attribute("_sklearn_version"));
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    @Test
    void strictReadingRefusesTheSklearnClassByName() {
        UnsafePickleException e = assertThrows(UnsafePickleException.class,
                () -> TorchCheckpoint.read(path("retrieval_zip.pt")));
        assertEquals("sklearn.decomposition.pca.PCA", e.reference());
        assertTrue(e.getMessage().contains("retrieval_zip.pt"), e.getMessage());
    }

    @Test
    void closeTensorsReleasesEveryTensorOfTheTree() throws IOException {
        Object root = TorchCheckpoint.read(path("retrieval_legacy.pt"), Unpickler.Options.inertObjects());
        List<Tensor> all = new ArrayList<>(TorchCheckpoint.stateDict(root).values());
        all.add((Tensor) TorchCheckpoint.pca(root).get("Landmarks_clean").attribute("components_"));
        TorchCheckpoint.closeTensors(root);
        for (Tensor t : all) {
            assertTrue(t.isClosed());
        }
    }

    @Test
    void stateDictRefusesAKeyCollisionAfterStrippingModule() throws IOException {
        try (Tensor a = Tensor.of(new float[] {1}, 1); Tensor b = Tensor.of(new float[] {2}, 1)) {
            Map<String, Object> root = Map.of("state_dict", new java.util.LinkedHashMap<>(Map.of("module.w", a, "w", b)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TorchCheckpoint.stateDict(root));
            assertTrue(e.getMessage().contains("'w'"), e.getMessage());
        }
    }

    /**
     * Layouts and containers the state dicts lack (a slice with a step, a stride-0 expansion,
     * channels_last, short views of one long storage, int8/16/32, a dict of lists of tuples), saved
     * at pickle protocols 5 (zip) and 4 (legacy): every tensor equals PyTorch's, found by its path,
     * and the plain values beside them (a torch.dtype among them) read without leaving strict mode.
     */
    @ParameterizedTest
    @ValueSource(strings = {"layouts_zip_p5.pt", "layouts_legacy_p4.pt"})
    void layoutsAndNestedContainersEqualPyTorchsValues(String file) throws IOException {
        Object root = TorchCheckpoint.read(path(file));
        try {
            Map<String, Tensor> found = new java.util.TreeMap<>();
            flatten("", root, found);
            List<String> want;
            try (Stream<Path> files = Files.list(path("expected/layouts"))) {
                want = files.map(f -> f.getFileName().toString().replaceFirst("\\.npy$", "")).sorted().toList();
            }
            assertEquals(want, new ArrayList<>(found.keySet()));
            for (String key : want) {
                try (Tensor expected = expected("layouts", key)) {
                    assertSameTensor(file + " " + key, expected, found.get(key));
                }
            }
            Map<?, ?> nested = (Map<?, ?>) ((Map<?, ?>) root).get("nested");
            List<?> first = (List<?>) ((List<?>) nested.get("pairs")).get(0);
            assertEquals(List.of(3L, "x"), first.subList(1, 3));
            assertEquals(List.of(1.5, List.of(2L, "y")), nested.get("plain"));
            assertEquals(new PickleGlobal("torch", "float16"), nested.get("dtype")); // a name, read strictly
            assertEquals(List.of(2L, 3L), nested.get("size"));
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    /** Every tensor under {@code o}, by its keys and indices joined with '.' (the fixture's names). */
    private static void flatten(String path, Object o, Map<String, Tensor> out) {
        String prefix = path.isEmpty() ? "" : path + ".";
        switch (o) {
            case Tensor t -> out.put(path, t);
            case Map<?, ?> m -> m.forEach((k, v) -> flatten(prefix + k, v, out));
            case List<?> l -> {
                for (int i = 0; i < l.size(); i++) {
                    flatten(prefix + i, l.get(i), out);
                }
            }
            case null, default -> { }
        }
    }

    /**
     * Tensors and NumPy arrays dir4j cannot hold (complex, quantized, sparse; int64 beyond int32;
     * strings) are refused in either mode with their place in the checkpoint and their kind, never
     * with a hint that another class should be allowed.
     */
    @ParameterizedTest
    @ValueSource(strings = {
        "unsupported_complex_zip.pt|tensor ['cplx']|a complex64 tensor of shape [2]",
        "unsupported_complex_legacy.pt|tensor ['cplx']|a complex64 tensor of shape [2]",
        "unsupported_sparse_zip.pt|tensor ['sp']|a sparse tensor|t.to_dense()",
        "unsupported_quantized_zip.pt|tensor ['q']|a quantized tensor|t.dequantize()",
        "int64_overflow_zip.pt|tensor ['state_dict']['idx']|I64 value 1099511627776 at element 1 does not fit dir4j's int32",
        "unsupported_numpy_strings_zip.pt|array ['meta']['names']|numpy dtype 'U2' is not supported"})
    void unreadableTensorsAreRefusedNamingTheirKeyAndKind(String spec) {
        String[] parts = spec.split("\\|");
        for (Unpickler.Options o : List.of(Unpickler.Options.strict(), Unpickler.Options.inertObjects())) {
            IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(path(parts[0]), o));
            assertFalse(e instanceof UnsafePickleException, e.getMessage());
            assertTrue(e.getMessage().contains(parts[0]), e.getMessage());
            assertTrue(e.getMessage().contains(": " + parts[1] + ": "), e.getMessage());
            for (int i = 2; i < parts.length; i++) {
                assertTrue(e.getMessage().contains(parts[i]), e.getMessage());
            }
        }
    }

    /**
     * torch.save(model) pickles the module's class (and, in the legacy format, its source): strict
     * reading refuses the class by name; inert reading, and the state dict asked of it, say that it
     * is a whole module and what to save instead. Nothing of it is run.
     */
    @Test
    void aWholePickledModuleIsRefusedNamingItsClass() throws IOException {
        for (String file : List.of("whole_module_zip.pt", "whole_module_legacy.pt", "whole_module_nested_zip.pt")) {
            UnsafePickleException strict = assertThrows(UnsafePickleException.class,
                    () -> TorchCheckpoint.read(path(file)));
            assertEquals("__main__.Tiny", strict.reference());
        }
        String whole = "a whole pickled nn.Module (class __main__.Tiny, saved by torch.save(model)), not a state dict";
        IOException legacy = assertThrows(IOException.class,
                () -> TorchCheckpoint.read(path("whole_module_legacy.pt"), Unpickler.Options.inertObjects()));
        assertTrue(legacy.getMessage().contains("whole_module_legacy.pt") && legacy.getMessage().contains(whole),
                legacy.getMessage());
        for (String file : List.of("whole_module_zip.pt", "whole_module_nested_zip.pt")) {
            Object root = TorchCheckpoint.read(path(file), Unpickler.Options.inertObjects());
            try {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> TorchCheckpoint.stateDict(root));
                assertTrue(e.getMessage().contains(whole) && e.getMessage().contains("model.state_dict()"),
                        e.getMessage());
                if (file.contains("nested")) {
                    assertTrue(e.getMessage().contains("its entry 'model'"), e.getMessage());
                }
            } finally {
                TorchCheckpoint.closeTensors(root);
            }
        }
    }

    // ---------------------------------------------------------------- bad files

    @ParameterizedTest
    @ValueSource(strings = {"malicious_zip.pt", "malicious_legacy.pt"})
    void maliciousCheckpointsAreRefusedAndNothingRuns(String file) throws IOException {
        Files.deleteIfExists(UnpicklerTest.PWNED);
        for (Unpickler.Options o : List.of(Unpickler.Options.strict(), Unpickler.Options.inertObjects())) {
            UnsafePickleException e = assertThrows(UnsafePickleException.class, () -> TorchCheckpoint.read(path(file), o));
            assertTrue(e.getMessage().contains("refusing to load checkpoint: it references")
                    && e.getMessage().contains("system, which could run code"), e.getMessage());
            assertTrue(e.getMessage().contains(file), e.getMessage());
        }
        assertFalse(Files.exists(UnpicklerTest.PWNED));
    }

    @Test
    void randomCorruptionOfCheckpointsIsAlwaysAnIOExceptionNeverACrash() throws IOException {
        java.util.Random rng = new java.util.Random(3);
        Path bad = tmp.resolve("bad.pt");
        int detected = 0;
        for (String f : List.of("state_legacy.pt", "retrieval_legacy.pt", "state_zip.pt", "retrieval_zip.pt")) {
            byte[] all = Files.readAllBytes(path(f));
            for (int trial = 0; trial < 150; trial++) {
                byte[] b = all.clone();
                for (int k = 1 + rng.nextInt(3); k > 0; k--) {
                    b[rng.nextInt(b.length)] = (byte) rng.nextInt(256);
                }
                Files.write(bad, b);
                try {
                    TorchCheckpoint.closeTensors(TorchCheckpoint.read(bad, Unpickler.Options.inertObjects()));
                } catch (IOException expected) {
                    detected++;
                }
            }
        }
        assertTrue(detected > 100, "most corruptions are detected (" + detected + " of 600)");
    }

    @Test
    void truncatedZipIsAnErrorNamingTheArchive() {
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(path("truncated_zip.pt")));
        assertTrue(e.getMessage().contains("truncated_zip.pt") && e.getMessage().contains("zip"), e.getMessage());
    }

    @Test
    void corruptedPickleInsideTheArchiveNamesTheEntryAndByte() {
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(path("corrupted_pickle.pt")));
        assertTrue(e.getMessage().contains("corrupted_pickle/data.pkl"), e.getMessage());
        assertTrue(e.getMessage().contains("truncated at byte"), e.getMessage());
    }

    @Test
    void truncatedLegacyStorageIsAnErrorNamingTheStorage() {
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(path("truncated_legacy.pt")));
        assertTrue(e.getMessage().contains("truncated legacy checkpoint: storage '"), e.getMessage());
        assertTrue(e.getMessage().contains("remain"), e.getMessage());
    }

    @Test
    void filesThatAreNoCheckpointAreNamedSo() throws IOException {
        Path text = tmp.resolve("notes.pt");
        Files.writeString(text, "hello");
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(text));
        assertTrue(e.getMessage().contains("not a PyTorch checkpoint"), e.getMessage());
        Path empty = tmp.resolve("empty.pt");
        Files.write(empty, new byte[0]);
        IOException e2 = assertThrows(IOException.class, () -> TorchCheckpoint.read(empty));
        assertTrue(e2.getMessage().contains("empty"), e2.getMessage());
        // a pickle, but not one of PyTorch's
        Path pickle = tmp.resolve("plain.pt");
        Files.copy(path("pickle_protocol2.pkl"), pickle);
        IOException e3 = assertThrows(IOException.class, () -> TorchCheckpoint.read(pickle));
        assertTrue(e3.getMessage().contains("magic number"), e3.getMessage());
    }

    @Test
    void aTensorReachingPastItsStorageIsRefused() throws IOException {
        byte[] pickle = floatTensorPickle(2, 3); // 3 floats from offset 2 of a storage of 4
        Path file = zip("archive", Map.of("data.pkl", pickle, "data/0", new byte[16]));
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(e.getMessage().contains("reaches element 4 but its storage holds 4 elements"), e.getMessage());
        // the same tensor at offset 1 fits, under any archive folder name
        byte[] ok = pickle.clone();
        int at = indexOf(ok, new byte[] {'J', 2, 0, 0, 0});
        ok[at + 1] = 1;
        Path good = zip("my_model_v2", Map.of("data.pkl", ok, "data/0", new byte[16]));
        Object t = TorchCheckpoint.read(good);
        try {
            assertArrayEquals(new int[] {3}, assertInstanceOf(Tensor.class, t).shape());
        } finally {
            TorchCheckpoint.closeTensors(t);
        }
    }

    /**
     * A zip checkpoint's data.pkl holding one tensor: {@code _rebuild_tensor_v2(('storage', FloatStorage, '0',
     * 'cpu', 4), offset, (size,), (1,))}.
     */
    private static byte[] floatTensorPickle(int offset, int size) {
        return PickleBytes.proto(2).global("torch._utils", "_rebuild_tensor_v2").mark()
                .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(4).tuple().op('Q')
                .integer(offset).mark().integer(size).tuple().mark().integer(1).tuple().op(0x89)
                .global("collections", "OrderedDict").op(')').reduce().tuple().reduce().stop().bytes();
    }

    /**
     * PyTorch 2.x writes {@code <folder>/byteorder}: "little" and "big" storages give the same values
     * (a big-endian file's bytes are swapped on reading), anything else is refused by name.
     */
    @Test
    void theArchivesByteorderEntryIsHonoured() throws IOException {
        byte[] pickle = floatTensorPickle(0, 4);
        float[] values = {1.5f, -2f, 3.25f, 1e-3f};
        for (java.nio.ByteOrder order : new java.nio.ByteOrder[] {java.nio.ByteOrder.LITTLE_ENDIAN,
            java.nio.ByteOrder.BIG_ENDIAN}) {
            java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(16).order(order);
            for (float v : values) {
                data.putFloat(v);
            }
            String name = order == java.nio.ByteOrder.BIG_ENDIAN ? "big" : "little";
            Path file = zip(name, Map.of("data.pkl", pickle, "data/0", data.array(), "byteorder",
                    (name + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
            Object t = TorchCheckpoint.read(file);
            try {
                assertArrayEquals(values, assertInstanceOf(Tensor.class, t).toFloatArray(), 0f, name);
            } finally {
                TorchCheckpoint.closeTensors(t);
            }
        }
        Path odd = zip("middle", Map.of("data.pkl", pickle, "data/0", new byte[16], "byteorder",
                "middle".getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(odd));
        assertTrue(e.getMessage().contains("middle/byteorder says 'middle', not little or big"), e.getMessage());
    }

    @Test
    void aMissingStorageEntryIsNamed() throws IOException {
        byte[] pickle = PickleBytes.proto(2).global("torch._utils", "_rebuild_tensor_v2").mark()
                .mark().str("storage").global("torch", "FloatStorage").str("7").str("cpu").integer(1).tuple().op('Q')
                .integer(0).mark().integer(1).tuple().mark().integer(1).tuple().op(0x89).op('N').tuple().reduce()
                .stop().bytes();
        Path file = zip("archive", Map.of("data.pkl", pickle));
        IOException e = assertThrows(IOException.class, () -> TorchCheckpoint.read(file));
        assertTrue(e.getMessage().contains("storage '7'") && e.getMessage().contains("missing"), e.getMessage());
    }

    private Path zip(String folder, Map<String, byte[]> entries) throws IOException {
        Path file = tmp.resolve(folder + ".pt");
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream z = new ZipOutputStream(os)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                z.putNextEntry(new ZipEntry(folder + "/" + e.getKey()));
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return file;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        return Stream.iterate(0, i -> i + 1).limit(hay.length - needle.length + 1)
                .filter(i -> java.util.Arrays.equals(hay, i, i + needle.length, needle, 0, needle.length))
                .findFirst().orElseThrow();
    }
}
