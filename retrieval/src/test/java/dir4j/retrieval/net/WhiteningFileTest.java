package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.whiten.PcaParameters;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Whitenings stored by name: in a reference checkpoint, in a converted one, and as dir4j whiten writes them. */
class WhiteningFileTest {
    static Path referencePca() {
        return ImageFixtures.path("whiten/reference_pca");
    }

    static double[] npy(String name) throws IOException {
        try (Tensor t = Npy.read(referencePca().resolve(name + ".npy"))) {
            return t.toDoubleArray();
        }
    }

    @Test
    void theSklearnPcaOfAReferenceCheckpointIsReadWithItsArrays() throws IOException {
        Map<String, WhiteningFile.Stored> all = WhiteningFile.read(referencePca().resolve("retrieval_zip.pt"));
        assertEquals(List.of("Landmarks_clean"), List.copyOf(all.keySet()));
        WhiteningFile.Stored s = all.get("Landmarks_clean");
        assertArrayEquals(npy("mean_"), s.pca().mean(), 0);
        assertArrayEquals(npy("components_"), s.pca().components(), 0);
        assertArrayEquals(npy("explained_variance_"), s.pca().explainedVariance(), 0);
        assertEquals(6, s.pca().dimension());
        assertEquals(4, s.pca().componentCount());
        assertTrue(s.pca().whiten());
        assertNull(s.options(), "the reference stores no options: test_dir.py's flags apply");
    }

    @Test
    void aWrittenWhiteningReadsBackWithItsOptionsAndAConvertedLayoutReadsToo(@TempDir Path dir) throws IOException {
        Random rng = new Random(3);
        double[] mean = rng.doubles(5).toArray();
        double[] comps = rng.doubles(15).toArray();
        double[] var = {3, 2, 1};
        PcaParameters p = new PcaParameters(mean, comps, var, true);
        Path f = dir.resolve("w.safetensors");
        WhiteningFile.write(f, "learned", p, new WhiteningOptions(0.5, 2, 3), Map.of("rows", 17L));
        WhiteningFile.Stored s = WhiteningFile.read(f).get("learned");
        assertArrayEquals(mean, s.pca().mean(), 0);
        assertArrayEquals(comps, s.pca().components(), 0);
        assertArrayEquals(var, s.pca().explainedVariance(), 0);
        assertEquals(new WhiteningOptions(0.5, 2, 3), s.options());
        try (Safetensors.Contents c = Safetensors.read(f)) {
            assertTrue(c.metadata().get("pca.learned").contains("\"rows\":17"), c.metadata().toString());
        }
        WhiteningFile.write(f, "all", p, WhiteningOptions.DEFAULTS, Map.of());
        assertEquals(WhiteningOptions.DEFAULTS, WhiteningFile.read(f).get("all").options());

        // dir4j convert's layout of a reference checkpoint: tensors pca.<name>.<attr>, scalars as metadata, no options
        Path converted = dir.resolve("converted.safetensors");
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> t = new LinkedHashMap<>();
            t.put("conv1.weight", Tensor.zeros(2, 3, 1, 1));
            t.put("pca.Landmarks.clean.mean_", Tensor.ofDoubles(mean, 5));
            t.put("pca.Landmarks.clean.components_", Tensor.ofDoubles(comps, 3, 5));
            t.put("pca.Landmarks.clean.explained_variance_", Tensor.ofDoubles(var, 3));
            Safetensors.write(converted, t, Map.of("pca.Landmarks.clean", "{\"class\": \"sklearn.decomposition.pca.PCA\", "
                    + "\"whiten\": false}"));
        }
        WhiteningFile.Stored c = WhiteningFile.read(converted).get("Landmarks.clean");
        assertArrayEquals(comps, c.pca().components(), 0);
        assertEquals(false, c.pca().whiten());
        assertNull(c.options());
    }

    @Test
    void filesWithoutOrWithBrokenWhiteningsSaySo(@TempDir Path dir) throws IOException {
        assertEquals(Map.of(), WhiteningFile.read(ImageFixtures.path("datasets/checkpoint/tiny_resnet18_w2.pt")));
        Path f = dir.resolve("bad.safetensors");
        try (MemoryScope scope = MemoryScope.open()) {
            Safetensors.write(f, Map.of("pca.x.mean_", Tensor.zeros(4), "pca.x.components_", Tensor.zeros(2, 3)),
                    Map.of());
        }
        IOException e = assertThrows(IOException.class, () -> WhiteningFile.read(f));
        assertTrue(e.getMessage().contains("whitening 'x'") && e.getMessage().contains("explained_variance_"),
                e.getMessage());
        assertThrows(IOException.class, () -> WhiteningFile.read(dir.resolve("none.pt")));
        assertThrows(IllegalArgumentException.class, () -> WhiteningFile.write(dir.resolve("w.safetensors"), "a.b",
                new PcaParameters(new double[1], new double[1], new double[1], true), WhiteningOptions.DEFAULTS, Map.of()));
        assertTrue(Files.notExists(dir.resolve("w.safetensors")));
    }

    /**
     * A .pt whose pca entries are dicts (as dir4j convert writes them): one with the PCA's
     * attributes is read, with its whiten flag; the reference's other form (use_sklearn=False: means
     * and W) is not a PCA of that kind and is left out, as are entries of other types.
     */
    @Test
    void dictEntriesWithThePcaAttributesAreReadAndOtherFormsLeftOut(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("dicts.pt");
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Object> fitted = new LinkedHashMap<>();
            fitted.put("mean_", Tensor.ofDoubles(new double[] {0.5, -0.5}, 2));
            fitted.put("components_", Tensor.ofDoubles(new double[] {0, 1, 1, 0}, 2, 2));
            fitted.put("explained_variance_", Tensor.ofDoubles(new double[] {4, 1}, 2));
            fitted.put("whiten", false);
            Map<String, Object> other = new LinkedHashMap<>();
            other.put("means", Tensor.ofDoubles(new double[] {0, 0}, 2));
            other.put("W", Tensor.ofDoubles(new double[] {1, 0, 0, 1}, 2, 2));
            Map<String, Object> pca = new LinkedHashMap<>();
            pca.put("fitted", fitted);
            pca.put("means_and_w", other);
            pca.put("text", "not a pca");
            dir4j.nn.io.TorchSave.write(file, Map.of("pca", pca));
        }
        Map<String, WhiteningFile.Stored> all = WhiteningFile.read(file);
        assertEquals(List.of("fitted"), List.copyOf(all.keySet()));
        PcaParameters p = all.get("fitted").pca();
        assertArrayEquals(new double[] {0.5, -0.5}, p.mean(), 0);
        assertArrayEquals(new double[] {0, 1, 1, 0}, p.components(), 0);
        assertArrayEquals(new double[] {4, 1}, p.explainedVariance(), 0);
        assertEquals(false, p.whiten());
        assertNull(all.get("fitted").options(), "no options given, none read");
    }
}
