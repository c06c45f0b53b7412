package dir4j.nn.io;

import static dir4j.nn.io.CheckpointFixtures.assertSameTensor;
import static dir4j.nn.io.CheckpointFixtures.path;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class NpzTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void roundTripKeepsNamesOrderValuesAndDtypes(boolean compressed) throws IOException {
        try (Tensor m = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
             Tensor mt = m.t();
             Tensor d = Tensor.ofDoubles(new double[] {1e-310, -7}, 2);
             Tensor i = Tensor.ofInts(new int[] {-1, 0, 9}, 3)) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("pca.components_", mt);
            in.put("doubles", d);
            in.put("ids", i);
            Path file = tmp.resolve("arrays.npz");
            Npz.write(file, in, compressed);
            try (ZipFile z = new ZipFile(file.toFile())) {
                int method = compressed ? ZipEntry.DEFLATED : ZipEntry.STORED;
                z.stream().forEach(e -> assertEquals(method, e.getMethod(), e.getName()));
            }
            Map<String, Tensor> back = Npz.read(file);
            try {
                assertEquals(new ArrayList<>(in.keySet()), new ArrayList<>(back.keySet()));
                for (Map.Entry<String, Tensor> e : in.entrySet()) {
                    try (Tensor want = e.getValue().contiguous()) {
                        assertSameTensor(e.getKey(), want, back.get(e.getKey()));
                    }
                }
            } finally {
                back.values().forEach(Tensor::close);
            }
        }
    }

    @Test
    void readsWhatNumpySavezCompressedWrote() throws IOException {
        Map<String, Tensor> a = Npz.read(path("numpy_savez.npz"));
        try {
            assertEquals(List.of("matrix", "labels"), new ArrayList<>(a.keySet()));
            assertArrayEquals(new int[] {3, 4}, a.get("matrix").shape());
            float[] want = new float[12];
            for (int k = 0; k < 12; k++) {
                want[k] = k / 8f;
            }
            assertArrayEquals(want, a.get("matrix").toFloatArray());
            assertEquals(DType.INT32, a.get("labels").dtype());
            assertArrayEquals(new int[] {3, -1, 4}, a.get("labels").toIntArray());
        } finally {
            a.values().forEach(Tensor::close);
        }
    }

    /**
     * np.savez (stored entries) of float16 (widened to float32), a big-endian Fortran-order matrix,
     * a 0-d array, an empty int64 array and a positional array: the values numpy saved.
     */
    @Test
    void readsNumpySavezOfEveryOrderWidthAndShape() throws IOException {
        Map<String, Tensor> a = Npz.read(path("numpy_savez_mixed.npz"));
        try {
            assertEquals(List.of("half", "be_fortran", "scalar", "empty", "arr_0"), new ArrayList<>(a.keySet()));
            for (String name : a.keySet()) {
                try (Tensor want = CheckpointFixtures.expected("npz_mixed", name)) {
                    assertSameTensor(name, want, a.get(name));
                }
            }
        } finally {
            a.values().forEach(Tensor::close);
        }
    }

    /** An object array is pickled Python objects: refused with the entry and its dtype, never unpickled. */
    @Test
    void anObjectArrayIsRefusedNotUnpickled() {
        IOException e = assertThrows(IOException.class, () -> Npz.read(path("numpy_savez_object.npz")));
        assertTrue(e.getMessage().contains("numpy_savez_object.npz: entry 'o.npy': unsupported .npy dtype '|O': an "
                + "object array"), e.getMessage());
    }

    @Test
    void badArchivesAreErrorsNamingTheEntry() throws IOException {
        Path notNpy = tmp.resolve("other.npz");
        try (OutputStream os = Files.newOutputStream(notNpy); ZipOutputStream z = new ZipOutputStream(os)) {
            z.putNextEntry(new ZipEntry("readme.txt"));
            z.write(new byte[] {1});
            z.closeEntry();
        }
        IOException e = assertThrows(IOException.class, () -> Npz.read(notNpy));
        assertTrue(e.getMessage().contains("'readme.txt' is not a .npy array"), e.getMessage());

        Path badNpy = tmp.resolve("bad.npz");
        try (OutputStream os = Files.newOutputStream(badNpy); ZipOutputStream z = new ZipOutputStream(os)) {
            z.putNextEntry(new ZipEntry("x.npy"));
            z.write("not an array".getBytes());
            z.closeEntry();
        }
        IOException e2 = assertThrows(IOException.class, () -> Npz.read(badNpy));
        assertTrue(e2.getMessage().contains("entry 'x.npy'"), e2.getMessage());

        byte[] good = Files.readAllBytes(path("numpy_savez.npz"));
        Path cut = tmp.resolve("cut.npz");
        Files.write(cut, Arrays.copyOf(good, good.length / 2));
        IOException e3 = assertThrows(IOException.class, () -> Npz.read(cut));
        assertTrue(e3.getMessage().contains("cut.npz"), e3.getMessage());
    }

    /** The archive gets the permissions of any new file in its folder, not a temporary file's owner-only ones. */
    @Test
    void writtenArchiveHasTheUsualPermissionsAndNoTemporaryFilesRemain() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("perm"));
        var usual = Files.getPosixFilePermissions(Files.createFile(dir.resolve("plain")));
        Path npz = dir.resolve("a.npz");
        try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3)) {
            Npz.write(npz, Map.of("a", t), false);
        }
        assertEquals(usual, Files.getPosixFilePermissions(npz));
        try (var files = Files.list(dir)) {
            assertEquals(List.of("a.npz", "plain"), files.map(f -> f.getFileName().toString()).sorted().toList());
        }
    }
}
