package dir4j.nn.io;

import static dir4j.nn.io.CheckpointFixtures.assertSameTensor;
import static dir4j.nn.io.CheckpointFixtures.expected;
import static dir4j.nn.io.CheckpointFixtures.path;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path tmp;

    @Test
    void roundTripKeepsValuesDtypesShapesAndMetadata() throws IOException {
        try (Tensor w = Tensor.of(new float[] {1, -2, 3.5f, 4, 5, 6}, 2, 3);
             Tensor wt = w.t();
             Tensor d = Tensor.ofDoubles(new double[] {Math.PI, -1e-300}, 2);
             Tensor i = Tensor.ofInts(new int[] {7, Integer.MIN_VALUE, Integer.MAX_VALUE}, 3);
             Tensor s = Tensor.scalar(0.25);
             Tensor empty = Tensor.zeros(0, 4)) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("w", w);
            in.put("w_transposed", wt);
            in.put("d", d);
            in.put("ids", i);
            in.put("scalar", s);
            in.put("empty", empty);
            Map<String, String> meta = Map.of("model_options", "{\"arch\":\"resnet101\",\"out_dim\":2048}", "format", "pt");
            Path file = tmp.resolve("model.safetensors");
            Safetensors.write(file, in, meta);
            try (Safetensors.Contents back = Safetensors.read(file)) {
                assertEquals(in.keySet(), back.tensors().keySet());
                for (Map.Entry<String, Tensor> e : in.entrySet()) {
                    try (Tensor want = e.getValue().contiguous()) {
                        assertSameTensor(e.getKey(), want, back.tensors().get(e.getKey()));
                    }
                }
                assertEquals(meta, back.metadata());
                assertEquals(Map.of("arch", "resnet101", "out_dim", 2048L), Json.parse(back.metadata().get("model_options")));
            }
            try (Safetensors.Contents narrowed = Safetensors.read(file, true)) {
                assertEquals(DType.FLOAT32, narrowed.tensors().get("d").dtype());
            }
            try (Stream<Path> left = Files.list(tmp)) {
                assertEquals(List.of(file), left.toList(), "no temporary file is left behind");
            }
        }
    }

    @Test
    void writtenLayoutIsContiguousAlignedAndEightByteTypesFirst() throws IOException {
        try (Tensor f = Tensor.of(new float[] {1, 2, 3}, 3); Tensor d = Tensor.ofDoubles(new double[] {4}, 1)) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("f", f);
            in.put("d", d);
            Path file = tmp.resolve("x.safetensors");
            Safetensors.write(file, in, Map.of());
            byte[] all = Files.readAllBytes(file);
            long n = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            assertEquals(0, n % 8);
            Map<?, ?> header = (Map<?, ?>) Json.parse(new String(all, 8, (int) n, StandardCharsets.UTF_8));
            assertEquals(List.of(0L, 8L), ((Map<?, ?>) header.get("d")).get("data_offsets"));
            assertEquals(List.of(8L, 20L), ((Map<?, ?>) header.get("f")).get("data_offsets"));
            assertEquals(8 + n + 20, all.length);
        }
    }

    @Test
    void readsAFileWrittenByPython() throws IOException {
        try (Safetensors.Contents c = Safetensors.read(path("python_written.safetensors"))) {
            assertEquals(List.of("b_f64", "idx_i64", "idx_i32", "w_f32", "h_bf16", "h_f16"), new ArrayList<>(c.tensors().keySet()));
            for (String name : c.tensors().keySet()) {
                try (Tensor want = expected("safetensors", name)) {
                    assertSameTensor(name, want, c.tensors().get(name));
                }
            }
            assertEquals(DType.FLOAT32, c.tensors().get("h_bf16").dtype());
            assertEquals("pt", c.metadata().get("format"));
            assertEquals(2048L, ((Map<?, ?>) Json.parse(c.metadata().get("model_options"))).get("out_dim"));
        }
    }

    // ---------------------------------------------------------------- bad files

    @Test
    void offsetsOutsideTheDataAreRefused() throws IOException {
        Path f = file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]);
        assertError(f, "data_offsets [0, 16] lie outside the 8 bytes of data");
    }

    @Test
    void overlappingTensorsAreRefused() throws IOException {
        Path f = file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[16]);
        assertError(f, "overlap");
    }

    @Test
    void aByteCountThatDoesNotMatchTheShapeIsRefused() throws IOException {
        Path f = file("{\"a\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,16]}}", new byte[16]);
        assertError(f, "needs 24 bytes but data_offsets give 16");
    }

    @Test
    void aHugeHeaderLengthIsRefusedBeforeReadingIt() throws IOException {
        Path f = tmp.resolve("huge.safetensors");
        Files.write(f, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
        assertError(f, "exceeds the limit of 100000000 bytes");
        Path g = tmp.resolve("past.safetensors");
        Files.write(g, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).array());
        assertError(g, "runs past the end");
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, new byte[3]);
        assertError(tiny, "not a safetensors file");
    }

    @Test
    void malformedHeadersAreRefused() throws IOException {
        assertError(file("{\"a\":", new byte[0]), "not valid JSON");
        assertError(file("[1,2]", new byte[0]), "not a JSON object");
        assertError(file("{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]), "C64 is not supported");
        assertError(file("{\"__metadata__\":{\"x\":1}}", new byte[0]), "is not a string");
        assertError(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]), "bad dimension");
        assertError(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]), "duplicate key");
    }

    @Test
    void writingRefusesTheReservedMetadataName() {
        try (Tensor t = Tensor.zeros(1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Safetensors.write(tmp.resolve("x.safetensors"), Map.of("__metadata__", t), Map.of()));
            assertTrue(e.getMessage().contains("reserved"), e.getMessage());
        }
    }

    private Path file(String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Path f = Files.createTempFile(tmp, "bad", ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static void assertError(Path f, String fragment) {
        IOException e = assertThrows(IOException.class, () -> Safetensors.read(f).close());
        assertTrue(e.getMessage().contains(fragment), e.getMessage());
        assertTrue(e.getMessage().contains(f.getFileName().toString()), e.getMessage());
    }

    @Test
    void int64ValuesOutsideInt32AreRefusedByName() throws IOException {
        byte[] data = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array();
        Path f = file("{\"big\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data);
        IOException e = assertThrows(IOException.class, () -> Safetensors.read(f).close());
        assertTrue(e.getMessage().contains("tensor 'big'") && e.getMessage().contains("does not fit"), e.getMessage());
    }
}
