package dir4j.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link TorchSave}: what it writes reads back through {@link TorchCheckpoint} (the reader that
 * follows torch.save's format, tested against PyTorch's own files) with every value and type it
 * was given; the archive's layout is PyTorch's (entries, 64-byte aligned data); the pickle holds
 * the opcodes named in its documentation; a failed write leaves an existing file as it was.
 * (That torch.load reads these files is checked with PyTorch by bench/dirtorch_side_by_side.py.)
 */
class TorchSaveTest {
    @TempDir
    Path dir;

    @Test
    void everyKindOfValueReadsBackAsWritten() throws IOException {
        Path file = dir.resolve("c.pt");
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> sd = new LinkedHashMap<>();
            sd.put("conv.weight", Tensor.of(new float[] {1, -2, 3.5f, 4, 5, 6}, 2, 1, 3));
            sd.put("pca.mean", Tensor.ofDoubles(new double[] {0.1, -1e300}, 2));
            sd.put("bn.num_batches_tracked", Tensor.ofInts(new int[] {7}));
            sd.put("ints", Tensor.ofInts(new int[] {-1, Integer.MAX_VALUE, Integer.MIN_VALUE}, 3));
            // a transposed view: written in its row-major order
            sd.put("view", Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2).transpose(0, 1));
            sd.put("empty", Tensor.of(new float[0], 0, 4));
            Tensor shared = Tensor.of(new float[] {9, 8}, 2);
            sd.put("a", shared);
            Map<String, Object> options = new LinkedHashMap<>();
            options.put("arch", "resnet101_rmac");
            options.put("unicode", "é—✓");
            options.put("flag", true);
            options.put("off", false);
            options.put("none", null);
            options.put("small", 255L);
            options.put("two", 256);
            options.put("short", 65535L);
            options.put("wide", 65536L);
            options.put("neg", -1L);
            options.put("int_max", (long) Integer.MAX_VALUE);
            options.put("int_min", (long) Integer.MIN_VALUE);
            options.put("long", Long.MAX_VALUE);
            options.put("long_min", Long.MIN_VALUE);
            options.put("huge", new BigInteger("-123456789012345678901234567890"));
            options.put("half", 0.5);
            options.put("negzero", -0.0);
            options.put("float", 2.5f);
            options.put("list", List.of(1L, "two", List.of(), Map.of()));
            Map<Object, Object> intKeys = new LinkedHashMap<>();
            intKeys.put(3L, "three");
            Map<String, Object> root = new LinkedHashMap<>();
            root.put("state_dict", new TorchSave.StateDict(sd));
            root.put("model_options", options);
            root.put("by_int", intKeys);
            root.put("again", shared);
            TorchSave.write(file, root);
        }

        Object back = TorchCheckpoint.read(file, Unpickler.Options.strict());
        try {
            Map<?, ?> top = assertInstanceOf(Map.class, back);
            assertEquals(List.of("state_dict", "model_options", "by_int", "again"), new ArrayList<>(top.keySet()));
            Map<?, ?> sd = assertInstanceOf(Map.class, top.get("state_dict"));
            assertEquals(List.of("conv.weight", "pca.mean", "bn.num_batches_tracked", "ints", "view", "empty", "a"),
                    new ArrayList<>(sd.keySet()));
            Tensor w = (Tensor) sd.get("conv.weight");
            assertEquals(DType.FLOAT32, w.dtype());
            assertArrayEquals(new int[] {2, 1, 3}, w.shape());
            assertArrayEquals(new float[] {1, -2, 3.5f, 4, 5, 6}, w.toFloatArray());
            Tensor m = (Tensor) sd.get("pca.mean");
            assertEquals(DType.FLOAT64, m.dtype());
            assertArrayEquals(new double[] {0.1, -1e300}, m.toDoubleArray(), 0);
            // int32 goes out as int64 and comes back (range-checked) as int32
            Tensor n = (Tensor) sd.get("bn.num_batches_tracked");
            assertEquals(DType.INT32, n.dtype());
            assertArrayEquals(new int[0], n.shape());
            assertArrayEquals(new double[] {7}, n.toDoubleArray(), 0);
            assertArrayEquals(new double[] {-1, Integer.MAX_VALUE, Integer.MIN_VALUE},
                    ((Tensor) sd.get("ints")).toDoubleArray(), 0);
            Tensor v = (Tensor) sd.get("view");
            assertArrayEquals(new int[] {2, 3}, v.shape());
            assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, v.toFloatArray());
            assertArrayEquals(new int[] {0, 4}, ((Tensor) sd.get("empty")).shape());
            assertArrayEquals(new float[] {9, 8}, ((Tensor) top.get("again")).toFloatArray());

            Map<?, ?> o = assertInstanceOf(Map.class, top.get("model_options"));
            assertEquals("resnet101_rmac", o.get("arch"));
            assertEquals("é—✓", o.get("unicode"));
            assertEquals(true, o.get("flag"));
            assertEquals(false, o.get("off"));
            assertTrue(o.containsKey("none") && o.get("none") == null);
            assertEquals(255L, o.get("small"));
            assertEquals(256L, o.get("two"));
            assertEquals(65535L, o.get("short"));
            assertEquals(65536L, o.get("wide"));
            assertEquals(-1L, o.get("neg"));
            assertEquals((long) Integer.MAX_VALUE, o.get("int_max"));
            assertEquals((long) Integer.MIN_VALUE, o.get("int_min"));
            assertEquals(Long.MAX_VALUE, ((Number) o.get("long")).longValue());
            assertEquals(BigInteger.valueOf(Long.MIN_VALUE), new BigInteger(o.get("long_min").toString()));
            assertEquals(new BigInteger("-123456789012345678901234567890"), o.get("huge"));
            assertEquals(0.5, o.get("half"));
            assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits((Double) o.get("negzero")));
            assertEquals(2.5, o.get("float"));
            assertEquals(List.of(1L, "two", List.of(), Map.of()), o.get("list"));
            assertEquals(Map.of(3L, "three"), top.get("by_int"));
        } finally {
            TorchCheckpoint.closeTensors(back);
        }
    }

    /**
     * PyTorch's layout: archive/data.pkl, byteorder, one data/<key> per storage (a tensor given twice
     * is one storage), version; every entry stored, its data at a multiple of 64 bytes in the file.
     */
    @Test
    void theArchiveHasPyTorchsEntriesWithAlignedData() throws IOException {
        Path file = dir.resolve("a.pt");
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor t = Tensor.of(new float[] {1, 2, 3}, 3);
            Map<String, Object> root = new LinkedHashMap<>();
            root.put("x", t);
            root.put("y", t);
            root.put("z", Tensor.ofDoubles(new double[] {4}, 1));
            // names of several lengths move the following entries' offsets
            root.put("a-rather-long-key-to-shift-things", "text");
            TorchSave.write(file, root);
        }
        byte[] b = Files.readAllBytes(file);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        List<String> names = new ArrayList<>();
        int at = 0;
        while (bb.getInt(at) == 0x04034b50) { // local file header
            assertEquals(0, bb.getShort(at + 8), "stored, not deflated");
            int size = bb.getInt(at + 18);
            int nameLen = bb.getShort(at + 26) & 0xffff;
            int extraLen = bb.getShort(at + 28) & 0xffff;
            String name = new String(b, at + 30, nameLen, java.nio.charset.StandardCharsets.UTF_8);
            int data = at + 30 + nameLen + extraLen;
            assertEquals(0, data % 64, name + "'s data at " + data);
            names.add(name);
            at = data + size;
        }
        assertEquals(List.of("archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1",
                "archive/version"), names);
        try (java.util.zip.ZipFile z = new java.util.zip.ZipFile(file.toFile())) {
            assertEquals("little", new String(z.getInputStream(z.getEntry("archive/byteorder")).readAllBytes()));
            assertEquals("3\n", new String(z.getInputStream(z.getEntry("archive/version")).readAllBytes()));
            assertEquals(12, z.getEntry("archive/data/0").getSize());
        }
    }

    /** The tensor's pickle: _rebuild_tensor_v2 over a persistent storage id, as torch.save writes it. */
    @Test
    void aTensorPicklesAsTorchSavesDoes() {
        try (MemoryScope scope = MemoryScope.open()) {
            List<Tensor> storages = new ArrayList<>();
            byte[] p = TorchSave.pickle(Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3), storages);
            assertEquals(1, storages.size());
            String text = new String(p, java.nio.charset.StandardCharsets.ISO_8859_1);
            assertEquals(0x80, p[0] & 0xff);
            assertEquals(2, p[1]);
            assertEquals('.', p[p.length - 1]);
            assertEquals("\u0080\u0002ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\0\0\0storage"
                    + "ctorch\nFloatStorage\nX\u0001\0\0\0" + "0X\u0003\0\0\0cpuK\u0006tQ"
                    + "K\0(K\u0002K\u0003t(K\u0003K\u0001t"
                    + "\u0089ccollections\nOrderedDict\n)RtR.", text, Arrays.toString(p));
        }
    }

    /** Unsupported values fail before anything is written: an existing file is kept, no temporary is left. */
    @Test
    void aValueItCannotWriteLeavesTheOldFile() throws IOException {
        Path file = dir.resolve("keep.pt");
        Files.writeString(file, "old");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TorchSave.write(file, Map.of("x", new Object())));
        assertTrue(e.getMessage().contains("cannot write a java.lang.Object"), e.getMessage());
        IllegalArgumentException key = assertThrows(IllegalArgumentException.class,
                () -> TorchSave.write(file, Map.of(1.5, "float key")));
        assertTrue(key.getMessage().contains("neither a string nor an integer"), key.getMessage());
        assertEquals("old", Files.readString(file));
        try (var files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
        List<Object> deep = new ArrayList<>();
        List<Object> cur = deep;
        for (int i = 0; i < 70; i++) {
            List<Object> next = new ArrayList<>();
            cur.add(next);
            cur = next;
        }
        assertThrows(IllegalArgumentException.class, () -> TorchSave.write(file, deep));
        assertFalse(Files.readString(file).isEmpty());
    }

    /**
     * Views that start inside their storage (a slice, a selected row) are written from their first
     * element; integers past 63 bits and small
     * BigIntegers keep their values; the copies made for the writing are freed.
     */
    @Test
    void viewsAndBigIntegersReadBack() throws IOException {
        Path file = dir.resolve("v.pt");
        long live;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor base = Tensor.of(new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 4);
            Map<String, Object> root = new LinkedHashMap<>();
            root.put("slice", base.slice(0, 1, 3).slice(1, 1, 3)); // rows 1-2, columns 1-2: not contiguous
            root.put("row", base.select(0, 2));
            root.put("small", BigInteger.valueOf(-5));
            root.put("two63", BigInteger.ONE.shiftLeft(63));
            root.put("minus_two63", BigInteger.ONE.shiftLeft(63).negate());
            live = dir4j.engine.cpu.NativeMemory.liveBytes();
            TorchSave.write(file, root);
            assertEquals(live, dir4j.engine.cpu.NativeMemory.liveBytes(), "the contiguous copies are freed");
        }
        Object back = TorchCheckpoint.read(file, Unpickler.Options.strict());
        try {
            Map<?, ?> top = (Map<?, ?>) back;
            Tensor slice = (Tensor) top.get("slice");
            assertArrayEquals(new int[] {2, 2}, slice.shape());
            assertArrayEquals(new float[] {5, 6, 9, 10}, slice.toFloatArray());
            assertArrayEquals(new float[] {8, 9, 10, 11}, ((Tensor) top.get("row")).toFloatArray());
            assertEquals(-5L, ((Number) top.get("small")).longValue());
            assertEquals(BigInteger.ONE.shiftLeft(63), new BigInteger(top.get("two63").toString()));
            assertEquals(BigInteger.ONE.shiftLeft(63).negate(), new BigInteger(top.get("minus_two63").toString()));
        } finally {
            TorchCheckpoint.closeTensors(back);
        }
    }

    /**
     * The same content gives the same bytes, aligned, in any time zone (a zip entry's time is local:
     * west of UTC an instant on 1980-01-01 falls in 1979 and the JDK adds a timestamp field), and a
     * closed tensor is an error.
     */
    @Test
    void theSameContentGivesTheSameBytesInAnyTimeZoneAndAClosedTensorIsRefused() throws IOException {
        Path a = dir.resolve("a.pt");
        java.util.TimeZone zone = java.util.TimeZone.getDefault();
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Object> root = Map.of("w", Tensor.of(new float[] {1, 2}, 2));
            java.util.TimeZone.setDefault(java.util.TimeZone.getTimeZone("UTC"));
            TorchSave.write(a, root);
            for (String id : List.of("America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago")) {
                java.util.TimeZone.setDefault(java.util.TimeZone.getTimeZone(id));
                Path b = dir.resolve(id.replace('/', '-') + ".pt");
                TorchSave.write(b, root);
                assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b), id);
            }
        } finally {
            java.util.TimeZone.setDefault(zone);
        }
        Tensor closed = Tensor.of(new float[] {1}, 1);
        closed.close();
        assertThrows(IllegalStateException.class, () -> TorchSave.write(dir.resolve("c.pt"), Map.of("x", closed)));
        assertFalse(Files.exists(dir.resolve("c.pt")));
    }

    /** Whatever the entries before it hold, each entry's data starts at a multiple of 64 bytes. */
    @Test
    void everyDataEntryIsAlignedWhateverPrecedesIt() throws IOException {
        for (int k = 0; k < 64; k++) {
            Path file = dir.resolve("s" + k + ".pt");
            try (MemoryScope scope = MemoryScope.open()) {
                Map<String, Object> root = new LinkedHashMap<>();
                root.put("k".repeat(k), Tensor.of(new float[k + 1], k + 1));
                root.put("t", Tensor.of(new float[] {1}, 1));
                TorchSave.write(file, root);
            }
            byte[] bytes = Files.readAllBytes(file);
            ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            for (int at = 0; bb.getInt(at) == 0x04034b50; ) {
                int nameLen = bb.getShort(at + 26) & 0xffff;
                int data = at + 30 + nameLen + (bb.getShort(at + 28) & 0xffff);
                assertEquals(0, data % 64, "name length " + k);
                at = data + bb.getInt(at + 18);
            }
            Object back = TorchCheckpoint.read(file, Unpickler.Options.strict());
            try {
                assertEquals(k + 1, ((Tensor) ((Map<?, ?>) back).get("k".repeat(k))).numel());
            } finally {
                TorchCheckpoint.closeTensors(back);
            }
        }
    }

    /** Nesting is bounded in dicts as in lists. */
    @Test
    void deepDictsAreRefused() {
        Map<String, Object> deep = new LinkedHashMap<>();
        Map<String, Object> cur = deep;
        for (int i = 0; i < 70; i++) {
            Map<String, Object> next = new LinkedHashMap<>();
            cur.put("d", next);
            cur = next;
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TorchSave.write(dir.resolve("deep.pt"), deep));
        assertTrue(e.getMessage().contains("deeper than 64"), e.getMessage());
        Map<String, Object> ok = new LinkedHashMap<>();
        cur = ok;
        for (int i = 0; i < 60; i++) {
            Map<String, Object> next = new LinkedHashMap<>();
            cur.put("d", next);
            cur = next;
        }
        Map<String, Object> fine = ok;
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(() -> TorchSave.write(dir.resolve("ok.pt"), fine));
    }

    /**
     * The content of fixtures/checkpoints/dir4j_written.pt (tests/fixtures/check_dir4j_written.py reads it
     * with torch.load).
     */
    static Map<String, Object> knownContent() {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        sd.put("conv.weight", Tensor.of(new float[] {1, -2, 3.5f, 4, 5, 6}, 2, 1, 1, 3));
        sd.put("bn.running_var", Tensor.ofDoubles(new double[] {0.25, 1e-300}, 2));
        sd.put("bn.num_batches_tracked", Tensor.ofInts(new int[] {7}));
        sd.put("view", Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2).transpose(0, 1));
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("arch", "resnet101_rmac");
        options.put("out_dim", 2048L);
        options.put("gemp", 3.0);
        options.put("without_fc", false);
        options.put("dropout_p", null);
        options.put("scales", List.of(1L, 0.5, "x"));
        options.put("big", -(1L << 40));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("state_dict", new TorchSave.StateDict(sd));
        root.put("model_options", options);
        return root;
    }

    /**
     * TorchSave writes, byte for byte, the file that tests/fixtures/check_dir4j_written.py checked
     * with torch.load (PyTorch 1.13: every value as written). Should the writer change, write the
     * file again with {@code -Ddir4j.writeTorchSaveFixture=true} (from the nn module) and run that
     * script before committing it.
     */
    @Test
    void theBytesAreThoseTorchLoadWasCheckedOn() throws IOException {
        Path file = dir.resolve("known.pt");
        try (MemoryScope scope = MemoryScope.open()) {
            TorchSave.write(file, knownContent());
        }
        if (Boolean.getBoolean("dir4j.writeTorchSaveFixture")) {
            Files.copy(file, Path.of("src/test/resources/fixtures/checkpoints/dir4j_written.pt"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        assertArrayEquals(Files.readAllBytes(CheckpointFixtures.path("dir4j_written.pt")), Files.readAllBytes(file),
                "TorchSave's output changed: check it with torch.load (see this test's doc)");
    }

    /** Tensors longer than the 1 MiB chunks the elements are copied in: every element in its place. */
    @Test
    void tensorsLongerThanAChunkReadBack() throws IOException {
        Path file = dir.resolve("long.pt");
        int n = 300_001; // int32 widened: 2.4 MB, three chunks and a part; float32: 1.2 MB, two
        int[] ints = new int[n];
        float[] floats = new float[n];
        for (int i = 0; i < n; i++) {
            ints[i] = i * 7919 - 1_000_000;
            floats[i] = i * 0.5f - 3;
        }
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Object> root = new LinkedHashMap<>();
            root.put("ints", Tensor.ofInts(ints, n));
            root.put("floats", Tensor.of(floats, n));
            TorchSave.write(file, root);
        }
        Object back = TorchCheckpoint.read(file, Unpickler.Options.strict());
        try {
            Map<?, ?> top = (Map<?, ?>) back;
            double[] gotInts = ((Tensor) top.get("ints")).toDoubleArray();
            for (int i = 0; i < n; i++) {
                assertEquals(ints[i], gotInts[i], 0, "ints[" + i + "]");
            }
            assertArrayEquals(floats, ((Tensor) top.get("floats")).toFloatArray());
        } finally {
            TorchCheckpoint.closeTensors(back);
        }
    }
}
