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
                "note: kept 'model_options' as metadata (JSON): {\"arch\":\"resnet101_rmac\","
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
        assertFalse(r.err().contains("Unpickler.Options"), "no Java remedy on the command line: " + r.err());
        assertTrue(r.err().contains("run without --strict to read sklearn.decomposition.pca.PCA as an inert attribute "
                + "map (none of its code is run)"), r.err());
        assertFalse(Files.exists(out));
    }

    /**
     * What convert cannot carry is refused with exit 1, a message naming the file and what is in the
     * way, and no output: a whole pickled nn.Module (by its class, never run) and a tensor dir4j has
     * no dtype for (by its key).
     */
    @Test
    void aWholeModuleOrAnUnreadableTensorIsRefusedByName() {
        Path out = dir.resolve("refused.safetensors");
        for (String[] c : new String[][] {
            {"whole_module_zip.pt", "a whole pickled nn.Module (class __main__.Tiny", "model.state_dict()"},
            {"whole_module_legacy.pt", "a whole pickled nn.Module (class __main__.Tiny", "model.state_dict()"},
            {"whole_module_nested_zip.pt", "its entry 'model' is a whole pickled nn.Module (class __main__.Tiny"},
            {"unsupported_complex_zip.pt", "tensor ['cplx']", "a complex64 tensor"},
            {"int64_overflow_zip.pt", "tensor ['state_dict']['idx']", "does not fit dir4j's int32"}}) {
            Run r = run("convert", checkpoints().resolve(c[0]).toString(), out.toString());
            assertEquals(1, r.rc(), r.toString());
            assertEquals("", r.out());
            assertTrue(r.err().startsWith("dir4j convert: ") && r.err().contains(c[0]), r.err());
            for (int i = 1; i < c.length; i++) {
                assertTrue(r.err().contains(c[i]), r.err());
            }
            assertFalse(Files.exists(out));
        }
    }

    /** An OUT that is neither .safetensors nor .npz is a command-line error (2), checked before IN is read. */
    @Test
    void anUnknownOutputExtensionIsACommandLineError() {
        Run r = run("convert", dir.resolve("missing.pt").toString(), dir.resolve("w.bin").toString());
        assertEquals(2, r.rc(), r.toString());
        assertEquals("dir4j convert: OUT must end in .safetensors, .npz, .pt or .pth, not w.bin\n", r.err());
    }

    /**
     * The reference's legacy checkpoint to safetensors and back to a .pt: the .pt holds the state dict
     * under its PyTorch names (without 'module.'), model_options as a dict, and the PCA as a dict of
     * its arrays, from which dir4j reads the same whitening as from the reference's sklearn object.
     */
    @Test
    void aReferenceCheckpointComesBackAsAPt() throws IOException {
        Path in = checkpoints().resolve("retrieval_legacy.pt");
        Path mid = dir.resolve("mid.safetensors");
        Path out = dir.resolve("back.pt");
        assertEquals(0, run("convert", "--quiet", in.toString(), mid.toString()).rc());
        Run r = run("convert", mid.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertEquals(List.of("note: pca [Landmarks_clean] written as dicts of arrays (mean_, components_, "
                + "explained_variance_...), not scikit-learn objects: dir4j reads them, the reference's whiten_features "
                + "wants the object"), r.err().lines().toList());
        assertTrue(r.out().startsWith("wrote " + out + ": 19 tensors, 353 values") && r.out().endsWith(
                " bytes in all; entries: state_dict, model_options, pca\n"), r.out());
        Object root = dir4j.nn.io.TorchCheckpoint.read(out, dir4j.nn.io.Unpickler.Options.strict());
        try {
            Map<?, ?> top = (Map<?, ?>) root;
            assertEquals(List.of("state_dict", "model_options", "pca"), List.copyOf(top.keySet()));
            assertEquals(Map.of("arch", "resnet101_rmac", "out_dim", 2048L, "pooling", "gem", "gemp", 3L,
                    "dropout_p", 0.5, "without_fc", false), withoutNulls((Map<?, ?>) top.get("model_options")));
            assertTrue(((Map<?, ?>) top.get("model_options")).containsKey("pretrained"), "None kept");
            Map<?, ?> sd = (Map<?, ?>) top.get("state_dict");
            Path expected = checkpoints().resolve("expected").resolve("retrieval");
            try (var files = Files.list(expected)) {
                List<String> keys = files.map(f -> f.getFileName().toString().replaceFirst("\\.npy$", "")).sorted()
                        .toList();
                assertEquals(keys, sd.keySet().stream().map(String::valueOf).sorted().toList());
                for (String key : keys) {
                    try (Tensor want = Npy.read(expected.resolve(key + ".npy"))) {
                        Tensor got = (Tensor) sd.get(key);
                        assertArrayEquals(want.shape(), got.shape(), key);
                        assertArrayEquals(want.toDoubleArray(), got.toDoubleArray(), 0, key);
                    }
                }
            }
            Map<?, ?> pca = (Map<?, ?>) ((Map<?, ?>) top.get("pca")).get("Landmarks_clean");
            assertEquals(true, pca.get("whiten"));
            assertEquals(4L, pca.get("n_components_"));
        } finally {
            dir4j.nn.io.TorchCheckpoint.closeTensors(root);
        }
        WhiteningFile.Stored fromPt = WhiteningFile.read(in).get("Landmarks_clean");
        WhiteningFile.Stored back = WhiteningFile.read(out).get("Landmarks_clean");
        assertArrayEquals(fromPt.pca().mean(), back.pca().mean(), 0);
        assertArrayEquals(fromPt.pca().components(), back.pca().components(), 0);
        assertArrayEquals(fromPt.pca().explainedVariance(), back.pca().explainedVariance(), 0);
        assertEquals(fromPt.pca().whiten(), back.pca().whiten());
    }

    /**
     * The reference's legacy checkpoint straight to a zip .pt: its state dict without 'module.', its
     * model_options, its PCA as a dict (tensors and scalars together), the same whitening read back.
     */
    @Test
    void aLegacyReferenceCheckpointBecomesAZipPt() throws IOException {
        Path in = checkpoints().resolve("retrieval_legacy.pt");
        Path out = dir.resolve("zip.pt");
        Run r = run("convert", "--quiet", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.out().endsWith("; entries: state_dict, model_options, pca\n"), r.out());
        Object root = dir4j.nn.io.TorchCheckpoint.read(out, dir4j.nn.io.Unpickler.Options.strict());
        try {
            Map<?, ?> top = (Map<?, ?>) root;
            Map<?, ?> sd = (Map<?, ?>) top.get("state_dict");
            assertEquals(14, sd.size());
            assertTrue(sd.keySet().stream().noneMatch(k -> String.valueOf(k).startsWith("module.")),
                    sd.keySet().toString());
            Map<?, ?> pca = (Map<?, ?>) ((Map<?, ?>) top.get("pca")).get("Landmarks_clean");
            assertEquals(List.of("mean_", "components_", "explained_variance_", "explained_variance_ratio_",
                    "singular_values_"), pca.keySet().stream().filter(k -> pca.get(k) instanceof Tensor)
                    .map(String::valueOf).toList());
            assertEquals("0.20.2", pca.get("_sklearn_version"));
            assertEquals("resnet101_rmac", ((Map<?, ?>) top.get("model_options")).get("arch"));
        } finally {
            dir4j.nn.io.TorchCheckpoint.closeTensors(root);
        }
        WhiteningFile.Stored want = WhiteningFile.read(in).get("Landmarks_clean");
        WhiteningFile.Stored got = WhiteningFile.read(out).get("Landmarks_clean");
        assertArrayEquals(want.pca().components(), got.pca().components(), 0);
        assertArrayEquals(want.pca().explainedVariance(), got.pca().explainedVariance(), 0);
    }

    /** Metadata named like an entry the .pt layout owns is refused with the name, and nothing is written. */
    @Test
    void metadataCannotTakeTheNameOfAPtEntry() throws IOException {
        for (String key : List.of("pca", "state_dict")) {
            Path in = dir.resolve(key + ".safetensors");
            try (MemoryScope scope = MemoryScope.open()) {
                Safetensors.write(in, Map.of("fc.weight", Tensor.of(new float[] {1}, 1, 1)), Map.of(key, "{}"));
            }
            Path out = dir.resolve(key + ".pt");
            Run r = run("convert", in.toString(), out.toString());
            assertEquals(1, r.rc(), r.toString());
            assertEquals("dir4j convert: metadata '" + key + "' would take the name of another entry\n", r.err());
            assertFalse(Files.exists(out));
        }
    }

    private static Map<Object, Object> withoutNulls(Map<?, ?> m) {
        Map<Object, Object> out = new java.util.LinkedHashMap<>();
        m.forEach((k, v) -> {
            if (v != null) {
                out.put(k, v);
            }
        });
        return out;
    }

    /**
     * A network as dir4j train exports it: model_options loses base_width 64 (the reference's
     * create_model takes no such option) and keeps any other width with a note; the integer buffer
     * travels as int64 and reads back.
     */
    @Test
    void aDir4jNetworkConvertsToAPtTheReferenceCanBuild() throws IOException {
        for (int width : new int[] {64, 16}) {
            Path in = dir.resolve("model" + width + ".safetensors");
            try (MemoryScope scope = MemoryScope.open()) {
                Map<String, Tensor> sd = new java.util.LinkedHashMap<>();
                sd.put("conv1.weight", Tensor.of(new float[] {1, 2, 3, 4}, 1, 1, 2, 2));
                sd.put("bn1.num_batches_tracked", Tensor.ofInts(new int[] {300}));
                Safetensors.write(in, sd, Map.of("format", "pt", "model_options",
                        "{\"arch\":\"resnet18_rmac\",\"out_dim\":128,\"pooling\":\"gem\",\"gemp\":3.0,"
                                + "\"without_fc\":false,\"norm_features\":false,\"base_width\":" + width + "}"));
            }
            Path out = dir.resolve("model" + width + ".pt");
            Run r = run("convert", in.toString(), out.toString());
            assertEquals(0, r.rc(), r.toString());
            assertEquals(width == 64
                    ? "note: model_options: base_width 64 left out (the reference's width; its create_model takes no "
                            + "such option)\n"
                    : "note: model_options keeps base_width 16: dir4j reads it, the reference's create_model does not "
                            + "(its networks are 64 wide)\n", r.err());
            Object root = dir4j.nn.io.TorchCheckpoint.read(out, dir4j.nn.io.Unpickler.Options.strict());
            try {
                Map<?, ?> top = (Map<?, ?>) root;
                assertEquals(List.of("state_dict", "model_options"), List.copyOf(top.keySet()), "no 'format' marker");
                Map<?, ?> options = (Map<?, ?>) top.get("model_options");
                assertEquals(width == 16, options.containsKey("base_width"));
                assertEquals(3.0, options.get("gemp"));
                Map<?, ?> sd = (Map<?, ?>) top.get("state_dict");
                assertArrayEquals(new double[] {300}, ((Tensor) sd.get("bn1.num_batches_tracked")).toDoubleArray(), 0);
                assertArrayEquals(new float[] {1, 2, 3, 4}, ((Tensor) sd.get("conv1.weight")).toFloatArray());
            } finally {
                dir4j.nn.io.TorchCheckpoint.closeTensors(root);
            }
        }
    }

    /**
     * A whitening written by dir4j whiten, converted to a .pt: no state dict, the PCA as a dict with
     * its options, and it reads back with the same arrays and options as the safetensors.
     */
    @Test
    void aDir4jWhiteningConvertsToAPtWithItsOptions() throws IOException {
        Path in = dir.resolve("w.safetensors");
        dir4j.retrieval.whiten.PcaParameters pca = new dir4j.retrieval.whiten.PcaParameters(new double[] {0.5, -1},
                new double[] {0, 1, 1, 0}, new double[] {3, 2}, true);
        WhiteningFile.write(in, "db", pca, new dir4j.retrieval.whiten.WhiteningOptions(0.5, 1, 2.0),
                Map.of("learned_on", "test"));
        Path out = dir.resolve("w.pt");
        Run r = run("convert", "--quiet", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        Object root = dir4j.nn.io.TorchCheckpoint.read(out, dir4j.nn.io.Unpickler.Options.strict());
        try {
            assertEquals(List.of("pca"), List.copyOf(((Map<?, ?>) root).keySet()), "no empty state_dict");
        } finally {
            dir4j.nn.io.TorchCheckpoint.closeTensors(root);
        }
        WhiteningFile.Stored want = WhiteningFile.read(in).get("db");
        WhiteningFile.Stored got = WhiteningFile.read(out).get("db");
        assertArrayEquals(want.pca().mean(), got.pca().mean(), 0);
        assertArrayEquals(want.pca().components(), got.pca().components(), 0);
        assertArrayEquals(want.pca().explainedVariance(), got.pca().explainedVariance(), 0);
        assertEquals(new dir4j.retrieval.whiten.WhiteningOptions(0.5, 1, 2.0), want.options());
        assertEquals(want.options(), got.options());
    }

    /**
     * A training checkpoint (network, optimiser state, run settings; what the demo leaves) to a
     * .pt: its network alone, the reference's layout, with the network's options; the optimiser's
     * state and the settings are left out, with a note.
     */
    @Test
    void aTrainingCheckpointConvertsToAPtOfItsNetwork() throws IOException {
        Path in = dir.resolve("checkpoint.safetensors");
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
            tensors.put("model.fc.weight", Tensor.of(new float[] {1, -2, 3, 0.5f}, 2, 2));
            tensors.put("model.fc.bias", Tensor.of(new float[] {0.25f, -1}, 2));
            tensors.put("optim.fc.weight.momentum", Tensor.of(new float[] {9, 9, 9, 9}, 2, 2));
            Safetensors.write(in, tensors, Map.of("format", "dir4j-train-1", "step", "120",
                    "train_config", "{\"lr\":\"0.001\"}", "model_options", "{\"arch\":\"resnet18\",\"out_dim\":2}"));
        }
        Path out = dir.resolve("c.pt");
        Run r = run("convert", in.toString(), out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertEquals(List.of("note: checkpoint.safetensors is a dir4j training checkpoint (step 120): converted its "
                + "network; the optimiser's state and the run's settings are left out"), r.err().lines().toList());
        Object root = dir4j.nn.io.TorchCheckpoint.read(out, dir4j.nn.io.Unpickler.Options.strict());
        try {
            Map<?, ?> top = (Map<?, ?>) root;
            assertEquals(List.of("state_dict", "model_options"), List.copyOf(top.keySet()));
            assertEquals(Map.of("arch", "resnet18", "out_dim", 2L), top.get("model_options"));
            Map<?, ?> sd = (Map<?, ?>) top.get("state_dict");
            assertEquals(List.of("fc.weight", "fc.bias"), List.copyOf(sd.keySet()));
            assertArrayEquals(new double[] {1, -2, 3, 0.5}, ((Tensor) sd.get("fc.weight")).toDoubleArray(), 0);
            assertArrayEquals(new double[] {0.25, -1}, ((Tensor) sd.get("fc.bias")).toDoubleArray(), 0);
        } finally {
            dir4j.nn.io.TorchCheckpoint.closeTensors(root);
        }
        // to safetensors the checkpoint stays what it is (a copy, e.g. narrowed with --float32)
        Path copy = dir.resolve("copy.safetensors");
        assertEquals(0, run("convert", "--quiet", in.toString(), copy.toString()).rc());
        try (MemoryScope scope = MemoryScope.open()) {
            assertEquals("dir4j-train-1", Safetensors.read(copy).metadata().get("format"));
        }
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
