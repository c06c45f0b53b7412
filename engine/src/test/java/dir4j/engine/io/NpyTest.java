package dir4j.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NumPy .npy files: round trips, files written by NumPy, and clear errors for broken files. */
class NpyTest {
    @TempDir
    Path dir;

    private Tensor roundTrip(Tensor t, String name) throws IOException {
        Path f = dir.resolve(name);
        Npy.write(f, t);
        byte[] bytes = Files.readAllBytes(f);
        int headerLen = (bytes[8] & 0xff) | (bytes[9] & 0xff) << 8;
        assertEquals(0, (10 + headerLen) % 64, "data starts on a 64-byte boundary, as NumPy aligns it");
        return Npy.read(f);
    }

    @Test
    void roundTripKeepsDtypeShapeAndValues() throws IOException {
        try (var scope = MemoryScope.open()) {
            float[] f = new float[24];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) Math.sin(i) * 1e3f;
            }
            Tensor a = roundTrip(Tensor.of(f, 2, 3, 4), "a.npy");
            assertEquals(DType.FLOAT32, a.dtype());
            assertArrayEquals(new int[] {2, 3, 4}, a.shape());
            assertArrayEquals(f, a.toFloatArray());

            double[] d = {Math.PI, -Math.E, 1e-300, Double.MAX_VALUE, -0.0};
            Tensor b = roundTrip(Tensor.ofDoubles(d, 5), "b.npy");
            assertEquals(DType.FLOAT64, b.dtype());
            assertArrayEquals(d, b.toDoubleArray());

            int[] n = {Integer.MIN_VALUE, -1, 0, 7, Integer.MAX_VALUE, 42};
            Tensor c = roundTrip(Tensor.ofInts(n, 3, 2), "c.npy");
            assertEquals(DType.INT32, c.dtype());
            assertArrayEquals(n, c.toIntArray());

            Tensor s = roundTrip(Tensor.scalar(2.5), "scalar.npy");
            assertEquals(0, s.rank());
            assertEquals(2.5, s.item());

            Tensor empty = roundTrip(Tensor.zeros(0, 3), "empty.npy");
            assertArrayEquals(new int[] {0, 3}, empty.shape());
        }
    }

    @Test
    void aNonContiguousViewIsWrittenInLogicalOrder() throws IOException {
        try (var scope = MemoryScope.open()) {
            Tensor t = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 2, 3).t();
            Tensor back = roundTrip(t, "t.npy");
            assertArrayEquals(new int[] {3, 2}, back.shape());
            assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, back.toFloatArray());
        }
    }

    @Test
    void readsAFileWrittenByNumPy() throws IOException {
        // written by tests/fixtures/make_engine_fixtures.py with np.save
        try (var scope = MemoryScope.open();
             InputStream in = NpyTest.class.getResourceAsStream(
                     "/fixtures/engine/index_select_rows_repeated/indices.npy")) {
            Tensor t = Npy.parse(in.readAllBytes());
            assertEquals(DType.INT32, t.dtype());
            assertArrayEquals(new int[] {4, 0, 2, 0, 4, 4}, t.toIntArray());
        }
    }

    /** Integers read at full width: int64 ids past int32, uint64 past int64, bool, big-endian, Fortran order. */
    @Test
    void integersAreReadWithoutNarrowing(@TempDir Path dir) throws IOException {
        ByteBuffer longs = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        longs.putLong(5_000_000_000L).putLong(-3).putLong(Long.MIN_VALUE);
        Path i64 = Files.write(dir.resolve("i64.npy"), npy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                longs.array()));
        Npy.Integers a = Npy.readIntegers(i64);
        assertEquals("int64", a.type());
        assertArrayEquals(new int[] {3}, a.shape());
        assertArrayEquals(new long[] {5_000_000_000L, -3, Long.MIN_VALUE}, a.values());
        assertThrows(IOException.class, () -> Npy.read(i64), "read() narrows to int32 and refuses 5e9");

        Path u64 = Files.write(dir.resolve("u64.npy"), npy("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }",
                new byte[] {-1, -1, -1, -1, -1, -1, -1, -1}));
        assertEquals("18446744073709551615", Long.toUnsignedString(Npy.readIntegers(u64).values()[0]));
        assertEquals("uint64", Npy.readIntegers(u64).type());

        // each width, signed and unsigned, with a value whose top bit is set
        String[][] widths = {{"|i1", "int8", "-5"}, {"|u1", "uint8", "251"}, {"<i4", "int32", "-7"},
            {"<u4", "uint32", "4294967289"}, {"<i2", "int16", "-3"}, {"<u2", "uint16", "65533"}};
        byte[][] data = {{-5}, {-5}, {-7, -1, -1, -1}, {-7, -1, -1, -1}, {-3, -1}, {-3, -1}};
        for (int w = 0; w < widths.length; w++) {
            Path p = Files.write(dir.resolve("w" + w + ".npy"), npy("{'descr': '" + widths[w][0]
                    + "', 'fortran_order': False, 'shape': (1,), }", data[w]));
            Npy.Integers got = Npy.readIntegers(p);
            assertEquals(widths[w][1], got.type());
            assertEquals(Long.parseLong(widths[w][2]), got.values()[0], widths[w][1]);
        }

        Path bool = Files.write(dir.resolve("b.npy"), npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                new byte[] {1, 0}));
        assertEquals("bool", Npy.readIntegers(bool).type());
        assertArrayEquals(new long[] {1, 0}, Npy.readIntegers(bool).values());

        // big-endian uint16 in Fortran order, shape [2, 3]: memory holds the columns (1,4) (2,5) (3,6)
        ByteBuffer be = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN);
        for (int v : new int[] {1, 4, 2, 5, 3, 65535}) {
            be.putShort((short) v);
        }
        Path f = Files.write(dir.resolve("f.npy"), npy("{'descr': '>u2', 'fortran_order': True, 'shape': (2, 3), }",
                be.array()));
        Npy.Integers m = Npy.readIntegers(f);
        assertEquals("uint16", m.type());
        assertArrayEquals(new int[] {2, 3}, m.shape());
        assertArrayEquals(new long[] {1, 2, 3, 4, 5, 65535}, m.values());

        Path fl = Files.write(dir.resolve("fl.npy"), npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                floats(ByteOrder.LITTLE_ENDIAN, 1, 2)));
        Npy.Integers x = Npy.readIntegers(fl);
        assertEquals("float32", x.type());
        assertFalse(x.integers());
        Path cut = Files.write(dir.resolve("cut.npy"), npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
                new byte[8]));
        IOException e = assertThrows(IOException.class, () -> Npy.readIntegers(cut));
        assertTrue(e.getMessage().startsWith(cut + ": truncated .npy data"), e.getMessage());
    }

    /** A version-1 .npy file with this header dictionary and raw data. */
    private static byte[] npy(String dict, byte[] data) {
        String header = dict + " ".repeat((64 - (10 + dict.length() + 1) % 64) % 64) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.US_ASCII)).put(data);
        return b.array();
    }

    private static byte[] floats(ByteOrder order, float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(order);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    @Test
    void readsFortranOrderBigEndianAndInt64() {
        try (var scope = MemoryScope.open()) {
            // column-major [2, 3]: memory holds column after column
            Tensor f = Npy.parse(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                    floats(ByteOrder.LITTLE_ENDIAN, 0, 3, 1, 4, 2, 5)));
            assertArrayEquals(new int[] {2, 3}, f.shape());
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5}, f.toFloatArray());

            Tensor be = Npy.parse(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
                    floats(ByteOrder.BIG_ENDIAN, 1.5f, -2, 1e-3f)));
            assertArrayEquals(new float[] {1.5f, -2, 1e-3f}, be.toFloatArray());

            ByteBuffer longs = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-5).putLong(1L << 30);
            Tensor i = Npy.parse(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", longs.array()));
            assertEquals(DType.INT32, i.dtype());
            assertArrayEquals(new int[] {-5, 1 << 30}, i.toIntArray());
        }
    }

    /** Every integer width and signedness numpy writes, both byte orders, and big-endian float64, by hand. */
    @Test
    void readsEveryIntegerWidthAndByteOrder() {
        try (var scope = MemoryScope.open()) {
            ByteBuffer be32 = ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putInt(-7).putInt(1 << 20);
            assertArrayEquals(new int[] {-7, 1 << 20}, Npy.parse(npy(
                    "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", be32.array())).toIntArray());
            ByteBuffer u16 = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 65535).putShort((short) 3);
            assertArrayEquals(new int[] {65535, 3}, Npy.parse(npy(
                    "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", u16.array())).toIntArray());
            ByteBuffer i16 = ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putShort((short) -2).putShort((short) 300);
            assertArrayEquals(new int[] {-2, 300}, Npy.parse(npy(
                    "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", i16.array())).toIntArray());
            assertArrayEquals(new int[] {255, 0, 1}, Npy.parse(npy(
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", new byte[] {-1, 0, 1})).toIntArray());
            assertArrayEquals(new int[] {-1, 0, 127}, Npy.parse(npy(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", new byte[] {-1, 0, 127})).toIntArray());
            assertArrayEquals(new int[] {1, 0}, Npy.parse(npy(
                    "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", new byte[] {1, 0})).toIntArray());
            ByteBuffer u32 = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(5).putInt(0x7fffffff);
            assertArrayEquals(new int[] {5, Integer.MAX_VALUE}, Npy.parse(npy(
                    "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", u32.array())).toIntArray());
            ByteBuffer f64 = ByteBuffer.allocate(16).order(ByteOrder.BIG_ENDIAN).putDouble(Math.PI).putDouble(-1e300);
            Tensor d = Npy.parse(npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f64.array()));
            assertEquals(DType.FLOAT64, d.dtype());
            assertArrayEquals(new double[] {Math.PI, -1e300}, d.toDoubleArray(), 0);
        }
        ByteBuffer tooBig = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(-1); // 2^32 - 1 as uint32
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Npy.parse(npy(
                "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", tooBig.array())));
        assertTrue(e.getMessage().contains("4294967295 does not fit int32"), e.getMessage());
    }

    /**
     * float16 widens to float32 as PyTorch's and safetensors' float16 do (NpzTest reads NumPy's own
     * float16 file); hand-made bit patterns 0x3800 = 0.5, 0xbd00 = -1.25, 0x7bff =
     * 65504 (the largest), 0x8000 = -0.0, 0x0001 = 2^-24 (the smallest subnormal), 0x7c00 = +inf;
     * either byte order, C or Fortran order, by whole array or by rows.
     */
    @Test
    void float16IsWidenedToFloat32() throws IOException {
        short[] bits = {0x3800, (short) 0xbd00, 0x7bff, (short) 0x8000, 0x0001, 0x7c00};
        float[] values = {0.5f, -1.25f, 65504f, -0f, 0x1p-24f, Float.POSITIVE_INFINITY};
        for (ByteOrder order : List.of(ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN)) {
            ByteBuffer b = ByteBuffer.allocate(12).order(order);
            for (short x : bits) {
                b.putShort(x);
            }
            String descr = order == ByteOrder.LITTLE_ENDIAN ? "<f2" : ">f2";
            try (var scope = MemoryScope.open()) {
                Tensor t = Npy.parse(npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (6,), }",
                        b.array()));
                assertEquals(DType.FLOAT32, t.dtype());
                assertArrayEquals(values, t.toFloatArray(), descr);
                // column-major [2, 3]: memory holds column after column
                Tensor f = Npy.parse(npy("{'descr': '" + descr + "', 'fortran_order': True, 'shape': (2, 3), }",
                        b.array()));
                assertArrayEquals(new float[] {values[0], values[2], values[4], values[1], values[3], values[5]},
                        f.toFloatArray(), descr);
                Path rows = Files.write(dir.resolve("half" + descr.charAt(0) + ".npy"),
                        npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3, 2), }", b.array()));
                try (Npy.RowReader r = Npy.RowReader.open(rows)) {
                    assertArrayEquals(Arrays.copyOfRange(values, 2, 6), r.read(1, 2).toFloatArray(), descr);
                }
            }
        }
    }

    /** The header is a Python dict literal: double quotes, as some non-NumPy writers use, read the same. */
    @Test
    void aHeaderWithDoubleQuotesIsRead() {
        try (var scope = MemoryScope.open()) {
            Tensor t = Npy.parse(npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}",
                    floats(ByteOrder.LITTLE_ENDIAN, 1.5f, -2)));
            assertArrayEquals(new float[] {1.5f, -2}, t.toFloatArray());
        }
    }

    /**
     * Arrays of objects (pickled Python objects: never unpickled), strings, dates and records are
     * refused with their dtype and what they are, not as a "malformed header".
     */
    @Test
    void nonNumericArraysAreRefusedNamingTheirDtype() throws IOException {
        assertMentions(readError(npy("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", new byte[24]),
                "objects.npy"), "unsupported .npy dtype '|O'", "object array", "never unpickles");
        assertMentions(readError(npy("{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }", new byte[16]),
                "strings.npy"), "unsupported .npy dtype '<U2'", "strings");
        assertMentions(readError(npy("{'descr': '|S2', 'fortran_order': False, 'shape': (1,), }", new byte[2]),
                "bytes.npy"), "unsupported .npy dtype '|S2'", "strings");
        assertMentions(readError(npy("{'descr': '<M8[D]', 'fortran_order': False, 'shape': (1,), }", new byte[8]),
                "dates.npy"), "unsupported .npy dtype '<M8[D]'", "dates or times");
        assertMentions(readError(npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, "
                + "'shape': (2,), }", new byte[16]), "records.npy"), "unsupported .npy dtype", "structured array");
        assertMentions(readError(npy("{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", new byte[16]),
                "longdouble.npy"), "unsupported .npy dtype '<f16'");
    }

    @Test
    void aDirectoryIsRefusedByName() throws IOException {
        Path d = Files.createDirectory(dir.resolve("descriptors.npy"));
        String m = assertThrows(IOException.class, () -> Npy.read(d)).getMessage();
        assertTrue(m.contains("descriptors.npy") && m.contains("a directory"), m);
    }

    @Test
    void aHeaderLongerThanAnyNumpyWritesIsRefused() throws IOException {
        int announced = (int) Npy.MAX_HEADER_BYTES + 1;
        ByteBuffer b = ByteBuffer.allocate(12 + announced).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0}).putInt(announced);
        assertMentions(readError(b.array(), "long-header.npy"), "malformed .npy header", announced + " bytes");
    }

    private String readError(byte[] bytes, String name) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, bytes);
        String m = assertThrows(IOException.class, () -> Npy.read(f)).getMessage();
        assertTrue(m.contains(name), "the error names the file: " + m);
        return m;
    }

    private static void assertMentions(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "message \"" + message + "\" should mention \"" + p + "\"");
        }
    }

    @Test
    void aTruncatedFileIsAnIOExceptionSayingWhatIsMissing() throws IOException {
        byte[] good;
        try (var scope = MemoryScope.open()) {
            Path f = dir.resolve("good.npy");
            Npy.write(f, Tensor.of(new float[12], 3, 4));
            good = Files.readAllBytes(f);
        }
        assertMentions(readError(Arrays.copyOf(good, good.length - 5), "short-data.npy"),
                "truncated .npy data", "[3, 4]", "48 bytes", "43 present");
        assertMentions(readError(Arrays.copyOf(good, 40), "short-header.npy"), "truncated .npy header");
        assertMentions(readError(Arrays.copyOf(good, 4), "stub.npy"), "not a .npy file", "4 bytes");
    }

    @Test
    void garbageAndUnsupportedContentAreIOExceptionsNamingTheProblem() throws IOException {
        byte[] junk = "this is a text file, not an array\n".repeat(4).getBytes(StandardCharsets.US_ASCII);
        assertMentions(readError(junk, "junk.npy"), "not a .npy file", "magic");
        assertMentions(readError(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new byte[8]),
                "complex.npy"), "unsupported .npy dtype", "c8");
        assertMentions(readError(npy("{'descr': '<f4', 'fortran_order': False, }", new byte[4]), "no-shape.npy"),
                "malformed .npy header");
        assertMentions(readError(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", new byte[8]),
                "bad-shape.npy"), "bad .npy shape");
        byte[] v9 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new byte[4]);
        v9[6] = 9;
        assertMentions(readError(v9, "v9.npy"), "unsupported .npy version 9");
        ByteBuffer big = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        assertMentions(readError(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", big.array()),
                "int64.npy"), "does not fit int32");
    }

    @Test
    void streamingWriterWritesTheSameBytesAsWriteAndAppearsOnlyWhenFinished() throws IOException {
        int rows = 300;
        int cols = 1000; // 1.2 MB of data: crosses the writer's 1 MiB buffer
        float[] all = new float[rows * cols];
        for (int i = 0; i < all.length; i++) {
            all[i] = (float) Math.sin(i * 0.37) * 100;
        }
        Path whole = dir.resolve("whole.npy");
        Path streamed = dir.resolve("streamed.npy");
        try (var scope = MemoryScope.open()) {
            Npy.write(whole, Tensor.of(all, rows, cols));
            try (Npy.Writer w = Npy.Writer.create(streamed, DType.FLOAT32, rows, cols)) {
                w.write(all, 0, 7 * cols);                                   // from an array
                w.write(Tensor.of(Arrays.copyOfRange(all, 7 * cols, 200 * cols), 193, cols)); // a tensor block
                float[] columnMajor = new float[100 * cols];
                for (int i = 0; i < 100; i++) {
                    for (int j = 0; j < cols; j++) {
                        columnMajor[j * 100 + i] = all[(200 + i) * cols + j];
                    }
                }
                w.write(Tensor.of(columnMajor, cols, 100).t());              // a strided view, row-major order
                assertThrows(IllegalArgumentException.class, () -> w.write(new float[1], 0, 1),
                        "nothing beyond the announced shape");
                assertFalse(Files.exists(streamed), "no file under the name before finish()");
                assertEquals((long) rows * cols, w.written());
                w.finish();
            }
        }
        assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(streamed));
        try (var scope = MemoryScope.open()) {
            assertArrayEquals(all, Npy.read(streamed).toFloatArray());
        }
        try (var s = Files.list(dir)) {
            assertEquals(List.of("streamed.npy", "whole.npy"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no temporary file left");
        }
    }

    /**
     * float64 and int32 streams too: blocks that cross the 1 MiB buffer, a view starting past its
     * storage's first element and a strided view give the bytes Npy.write gives.
     */
    @Test
    void streamingWriterWritesFloat64AndInt32LikeWrite() throws IOException {
        int rows = 300;
        int cols = 500; // float64: 1.2 MB
        double[] d = new double[rows * cols];
        int[] ints = new int[rows * cols];
        for (int i = 0; i < d.length; i++) {
            d[i] = Math.cos(i * 0.11) * 1e5;
            ints[i] = (i * 7919) ^ (i << 9);
        }
        try (var scope = MemoryScope.open()) {
            Tensor dt = Tensor.ofDoubles(d, rows, cols);
            Tensor it = Tensor.ofInts(ints, rows, cols);
            for (Tensor t : List.of(dt, it)) {
                Path whole = dir.resolve("whole-" + t.dtype() + ".npy");
                Path streamed = dir.resolve("streamed-" + t.dtype() + ".npy");
                Npy.write(whole, t);
                try (Npy.Writer w = Npy.Writer.create(streamed, t.dtype(), rows, cols)) {
                    w.write(t.slice(0, 0, 120));
                    w.write(t.slice(0, 120, 200)); // a view at a storage offset
                    w.write(Ops.contiguous(t.slice(0, 200, rows).t()).t()); // a transposed (strided) view
                    w.finish();
                }
                assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(streamed), t.dtype().toString());
            }
        }
    }

    @Test
    void anUnfinishedOrShortStreamLeavesTheOldFileAndNoTemporaryFile() throws IOException {
        Path f = dir.resolve("kept.npy");
        try (var scope = MemoryScope.open()) {
            Npy.write(f, Tensor.of(new float[] {1, 2}, 2));
            byte[] before = Files.readAllBytes(f);
            try (Npy.Writer w = Npy.Writer.create(f, DType.FLOAT32, 4, 2)) {
                w.write(new float[6], 0, 6);
                IOException e = assertThrows(IOException.class, w::finish);
                assertMentions(e.getMessage(), "6 of the 8 elements", "[4, 2]", "not created");
            }
            try (Npy.Writer w = Npy.Writer.create(f, DType.FLOAT32, 3)) {
                w.write(new float[2], 0, 2);
                // closed without finish(): abandoned, as when an exception unwinds a writer
            }
            assertArrayEquals(before, Files.readAllBytes(f));
            IllegalArgumentException wrongType = assertThrows(IllegalArgumentException.class, () -> {
                try (Npy.Writer w = Npy.Writer.create(dir.resolve("i.npy"), DType.INT32, 2)) {
                    w.write(new float[2], 0, 2);
                }
            });
            assertMentions(wrongType.getMessage(), "writes int32", "given float32");
        }
        try (var s = Files.list(dir)) {
            assertEquals(List.of("kept.npy"), s.map(p -> p.getFileName().toString()).toList());
        }
    }

    /** Blocks of rows read from the file equal the rows of the whole array, in any block size and byte order. */
    @Test
    void aRowReaderGivesBlocksOfRowsEqualToTheWholeArray() throws IOException {
        float[] v = new float[7 * 3];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Math.cos(i * 0.7) * (i + 1);
        }
        Path le = Files.write(dir.resolve("le.npy"), npy("{'descr': '<f4', 'fortran_order': False, 'shape': (7, 3), }",
                floats(ByteOrder.LITTLE_ENDIAN, v)));
        Path be = Files.write(dir.resolve("be.npy"), npy("{'descr': '>f4', 'fortran_order': False, 'shape': (7, 3), }",
                floats(ByteOrder.BIG_ENDIAN, v)));
        ByteBuffer d = ByteBuffer.allocate(8 * v.length).order(ByteOrder.BIG_ENDIAN);
        for (float x : v) {
            d.putDouble(x + 1e-12); // narrowed to float on reading: back to x
        }
        Path f8 = Files.write(dir.resolve("f8.npy"), npy("{'descr': '>f8', 'fortran_order': False, 'shape': (7, 3), }",
                d.array()));
        for (Path f : List.of(le, be, f8)) {
            try (var scope = MemoryScope.open(); Npy.RowReader r = Npy.RowReader.open(f)) {
                assertEquals(7, r.rows());
                assertEquals(3, r.columns());
                assertEquals(f == f8 ? DType.FLOAT64 : DType.FLOAT32, r.storedType());
                for (int block : new int[] {1, 3, 7}) {
                    for (int from = 0; from < 7; from += block) {
                        int n = Math.min(block, 7 - from);
                        Tensor t = r.read(from, n);
                        assertEquals(DType.FLOAT32, t.dtype());
                        assertArrayEquals(new int[] {n, 3}, t.shape());
                        assertArrayEquals(Arrays.copyOfRange(v, from * 3, (from + n) * 3), t.toFloatArray(), f + " " + from);
                    }
                }
                assertArrayEquals(new int[] {0, 3}, r.read(7, 0).shape());
                assertThrows(IndexOutOfBoundsException.class, () -> r.read(5, 3));
                assertThrows(IndexOutOfBoundsException.class, () -> r.read(-1, 1));
            }
        }
    }

    /** What cannot be read by rows is refused when opened, with the file's name and the reason. */
    @Test
    void aRowReaderRefusesWhatHasNoRowsToRead() throws IOException {
        record Case(String name, byte[] bytes, String... says) {}
        List<Case> cases = List.of(
                new Case("vector.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new byte[12]),
                        "expected an N x D float array", "[3]"),
                new Case("ints.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", new byte[16]),
                        "expected an N x D float array", "int32"),
                new Case("fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                        new byte[24]), "Fortran order"),
                new Case("short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                        new byte[20]), "truncated .npy data"),
                new Case("junk.npy", "not numpy at all".getBytes(StandardCharsets.US_ASCII), "not a .npy file"));
        for (Case c : cases) {
            Path f = Files.write(dir.resolve(c.name()), c.bytes());
            IOException e = assertThrows(IOException.class, () -> Npy.RowReader.open(f).close(), c.name());
            assertMentions(e.getMessage(), c.says());
            assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        }
        // a column (or a single row) stored in Fortran order has contiguous rows all the same
        Path column = Files.write(dir.resolve("column.npy"), npy("{'descr': '<f4', 'fortran_order': True, "
                + "'shape': (3, 1), }", floats(ByteOrder.LITTLE_ENDIAN, 1, 2, 3)));
        try (var scope = MemoryScope.open(); Npy.RowReader r = Npy.RowReader.open(column)) {
            assertArrayEquals(new float[] {2, 3}, r.read(1, 2).toFloatArray());
        }
        IOException dirError = assertThrows(IOException.class, () -> Npy.RowReader.open(dir));
        assertMentions(dirError.getMessage(), "a directory");

        // a file cut short while open: the rows no longer there are an IOException, not garbage
        Path cut = Files.write(dir.resolve("cut.npy"), npy("{'descr': '<f4', 'fortran_order': False, "
                + "'shape': (4, 2), }", floats(ByteOrder.LITTLE_ENDIAN, 1, 2, 3, 4, 5, 6, 7, 8)));
        try (var scope = MemoryScope.open(); Npy.RowReader r = Npy.RowReader.open(cut)) {
            try (var ch = java.nio.channels.FileChannel.open(cut, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(Files.size(cut) - 12);
            }
            assertArrayEquals(new float[] {1, 2, 3, 4}, r.read(0, 2).toFloatArray());
            IOException shrank = assertThrows(IOException.class, () -> r.read(2, 2));
            assertMentions(shrank.getMessage(), "cut.npy", "ended while reading rows");
        }
    }
}
