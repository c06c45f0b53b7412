package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Npz;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.net.WhiteningFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dir4j convert`: reference checkpoints in both PyTorch formats, .npz and safetensors; notes,
 * --strict, --float32, --quiet.
 */
class ConvertCommandTest {
    @TempDir
    Path dir;

    @Test
    void notesGoToStderrAndQuietLeavesThemOut() throws IOException {
        Path in = dir.resolve("w.safetensors");
        float[] values = {1, 2, 3, 4, 5, 6};
        try (MemoryScope scope = MemoryScope.open()) {
            Safetensors.write(in, Map.of("fc.weight", Tensor.of(values, 2, 3)), Map.of("model_options", "{}"));
        }
        Path out = dir.resolve("w.npz");
        Run r = run("convert", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertEquals("note: the .npz format has no metadata: model_options not written (write .safetensors to keep "
                + "them)\n", r.err());
        assertTrue(r.out().startsWith("wrote " + out + ": 1 tensors, 6 values") && r.out().lines().count() == 1,
                r.out());
        try (MemoryScope scope = MemoryScope.open()) {
            assertArrayEquals(values, Npz.read(out).get("fc.weight").toFloatArray());
        }
        Run quiet = run("convert", in.toString(), out.toString(), "--quiet");
        assertEquals(0, quiet.rc(), quiet.toString());
        assertEquals("", quiet.err());
        assertEquals(r.out(), quiet.out());
    }

    /** nn's checkpoint fixtures (tests/fixtures/make_checkpoint_fixtures.py), from this module's directory. */
    private static Path checkpoints() {
        Path p = Path.of("..", "nn", "src", "test", "resources", "fixtures", "checkpoints");
        assertTrue(Files.isDirectory(p), "missing fixtures " + p.toAbsolutePath() + " (run the tests from the repository)");
        return p;
    }

    /**
     * A checkpoint shaped like the reference's released models (state dict under module.*, model_options, a
     * pickled sklearn PCA), in both PyTorch formats: every tensor arrives with PyTorch's values under its name without
     * the prefix, the options and the PCA's scalars as JSON metadata, the PCA's arrays as tensors, and the whitening
     * read from the converted file is the one read from the .pt.
     */
    @ParameterizedTest
    @ValueSource(strings = {"retrieval_zip.pt", "retrieval_legacy.pt"})
    void aReferenceCheckpointConvertsWithItsStateDictOptionsAndWhitening(String name) throws IOException {
        Path in = checkpoints().resolve(name);
        Path out = dir.resolve("converted.safetensors");
        Run r = run("convert", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertEquals(List.of(
                "note: stripped 'module.' from 14 state-dict keys",
                "note: model_options kept as safetensors metadata 'model_options' (JSON): {\"arch\":\"resnet101_rmac\","
                        + "\"out_dim\":2048,\"pooling\":\"gem\",\"gemp\":3,\"dropout_p\":0.5,\"without_fc\":false,"
                        + "\"pretrained\":null}",
                "note: pca entry 'Landmarks_clean' (sklearn.decomposition.pca.PCA) kept as pca.Landmarks_clean.mean_, "
                        + "pca.Landmarks_clean.components_, pca.Landmarks_clean.explained_variance_, "
                        + "pca.Landmarks_clean.explained_variance_ratio_, pca.Landmarks_clean.singular_values_; its other "
                        + "attributes as metadata 'pca.Landmarks_clean'"), r.err().lines().toList());
        assertEquals("wrote " + out + ": 19 tensors, 353 values (state dict: 14 tensors, 311 parameters and buffers), "
                + "1,556 bytes of tensor data, " + String.format(Locale.ROOT, "%,d", Files.size(out))
                + " bytes in all; metadata: model_options, pca.Landmarks_clean\n", r.out());

        Path expected = checkpoints().resolve("expected");
        try (Safetensors.Contents c = Safetensors.read(out, false)) {
            List<String> stateKeys;
            try (var files = Files.list(expected.resolve("retrieval"))) {
                stateKeys = files.map(f -> f.getFileName().toString().replaceFirst("\\.npy$", "")).sorted().toList();
            }
            assertEquals(14, stateKeys.size());
            for (String key : stateKeys) {
                Tensor got = c.tensors().get(key);
                assertTrue(got != null, key + " converted, among " + c.tensors().keySet());
                try (Tensor want = Npy.read(expected.resolve("retrieval").resolve(key + ".npy"))) {
                    assertArrayEquals(want.shape(), got.shape(), key);
                    assertArrayEquals(want.toDoubleArray(), got.toDoubleArray(), 0, key);
                }
            }
            for (String attr : List.of("mean_", "components_", "explained_variance_", "explained_variance_ratio_",
                    "singular_values_")) {
                Tensor got = c.tensors().get("pca.Landmarks_clean." + attr);
                try (Tensor want = Npy.read(expected.resolve("pca").resolve(attr + ".npy"))) {
                    assertEquals(want.dtype(), got.dtype(), attr + " keeps its numpy dtype");
                    assertArrayEquals(want.shape(), got.shape(), attr);
                    assertArrayEquals(want.toDoubleArray(), got.toDoubleArray(), 0, attr);
                }
            }
            assertEquals("{\"class\":\"sklearn.decomposition.pca.PCA\",\"n_components\":4,\"copy\":true,\"whiten\":true,"
                    + "\"svd_solver\":\"full\",\"tol\":0.0,\"iterated_power\":\"auto\",\"random_state\":null,"
                    + "\"n_samples_\":100,\"n_features_\":6,\"n_components_\":4,\"noise_variance_\":0.0123,"
                    + "\"_sklearn_version\":\"0.20.2\"}", c.metadata().get("pca.Landmarks_clean"));
        }
        WhiteningFile.Stored fromPt = WhiteningFile.read(in).get("Landmarks_clean");
        WhiteningFile.Stored fromConverted = WhiteningFile.read(out).get("Landmarks_clean");
        assertArrayEquals(fromPt.pca().mean(), fromConverted.pca().mean(), 0);
        assertArrayEquals(fromPt.pca().components(), fromConverted.pca().components(), 0);
        assertArrayEquals(fromPt.pca().explainedVariance(), fromConverted.pca().explainedVariance(), 0);
        assertEquals(fromPt.pca().whiten(), fromConverted.pca().whiten());

        // --float32 narrows the PCA's float64 arrays; the state dict's float32 values are unchanged
        Run narrow = run("convert", "--float32", "--quiet", in.toString(), out.toString());
        assertEquals(0, narrow.rc(), narrow.toString());
        assertEquals("", narrow.err());
        try (Safetensors.Contents c = Safetensors.read(out, false)) {
            assertEquals(DType.FLOAT32, c.tensors().get("pca.Landmarks_clean.components_").dtype());
            try (Tensor want = Npy.read(expected.resolve("pca").resolve("components_.npy"))) {
                double[] w = want.toDoubleArray();
                double[] g = c.tensors().get("pca.Landmarks_clean.components_").toDoubleArray();
                for (int i = 0; i < w.length; i++) {
                    assertEquals((float) w[i], g[i], 0, "components_[" + i + "] rounded to float32");
                }
            }
        }
    }

    /** --strict refuses the pickled sklearn object, says how to read it inert, and writes nothing. */
    @Test
    void strictRefusesTheReferencePcaAndWritesNothing() {
        Path out = dir.resolve("strict.safetensors");
        Run r = run("convert", "--strict", checkpoints().resolve("retrieval_legacy.pt").toString(), out.toString());
        assertEquals(1, r.rc(), r.toString());
        assertEquals("", r.out());
        assertTrue(r.err().contains("sklearn.decomposition.pca.PCA, which is not on the allow-list"), r.err());
        assertTrue(r.err().contains("run without --strict to read sklearn.decomposition.pca.PCA as an inert attribute "
                + "map (none of its code is run)"), r.err());
        assertFalse(Files.exists(out));
    }

    /** An OUT that is neither .safetensors nor .npz is a command-line error (2), checked before IN is read. */
    @Test
    void anUnknownOutputExtensionIsACommandLineError() {
        Run r = run("convert", dir.resolve("missing.pt").toString(), dir.resolve("w.bin").toString());
        assertEquals(2, r.rc(), r.toString());
        assertEquals("dir4j convert: OUT must end in .safetensors or .npz, not w.bin\n", r.err());
    }

    /** .npz in, safetensors out: the arrays by name, values and dtypes unchanged. */
    @Test
    void anNpzConvertsToSafetensors() throws IOException {
        Path in = checkpoints().resolve("numpy_savez.npz");
        Path out = dir.resolve("from_npz.safetensors");
        Run r = run("convert", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        Map<String, Tensor> want = Npz.read(in);
        try (Safetensors.Contents c = Safetensors.read(out, false)) {
            assertEquals(want.keySet(), c.tensors().keySet());
            for (Map.Entry<String, Tensor> e : want.entrySet()) {
                Tensor got = c.tensors().get(e.getKey());
                assertEquals(e.getValue().dtype(), got.dtype(), e.getKey());
                assertArrayEquals(e.getValue().shape(), got.shape(), e.getKey());
                assertArrayEquals(e.getValue().toDoubleArray(), got.toDoubleArray(), 0, e.getKey());
            }
        } finally {
            want.values().forEach(Tensor::close);
        }
    }
}
