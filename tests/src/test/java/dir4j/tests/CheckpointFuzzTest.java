package dir4j.tests;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Npz;
import dir4j.nn.io.Safetensors;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.Unpickler;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Damaged and hostile checkpoints ({@link FileFuzzing}): every reader of the nn module (zip and
 * legacy .pt, pickles of protocols 0-5 with NumPy arrays, safetensors, npz, npy) takes 250 seeded
 * mutations of a fixture and must load each or refuse it with a message.
 */
class CheckpointFuzzTest {
    @TempDir
    Path dir;

    private static Path checkpoint(String name) {
        return FileFuzzing.fixture("nn/src/test/resources/fixtures/checkpoints/" + name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"state_zip.pt", "retrieval_zip.pt", "state_legacy.pt", "retrieval_legacy.pt"})
    void torchCheckpoints(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, checkpoint(name), file -> {
            Object root = TorchCheckpoint.read(file, Unpickler.Options.inertObjects());
            try {
                Map<String, Tensor> sd = TorchCheckpoint.stateDict(root);
                for (Tensor t : sd.values()) {
                    t.toDoubleArray();
                }
                TorchCheckpoint.modelOptions(root);
                TorchCheckpoint.pca(root);
            } finally {
                TorchCheckpoint.closeTensors(root);
            }
        }, name.endsWith("_zip.pt"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"pickle_protocol0.pkl", "pickle_protocol1.pkl", "pickle_protocol2.pkl",
            "pickle_protocol3.pkl", "pickle_protocol4.pkl", "pickle_protocol5.pkl", "numpy_protocol2.pkl",
            "numpy_protocol5.pkl"})
    void pickles(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, checkpoint(name), file -> {
            Unpickler u = new Unpickler(file.toString(), Unpickler.Options.inertObjects());
            Object o = u.load(Files.readAllBytes(file));
            TorchCheckpoint.closeTensors(o);
        }, false);
    }

    @ParameterizedTest
    @ValueSource(strings = {"python_written.safetensors"})
    void safetensors(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, checkpoint(name), file -> {
            try (Safetensors.Contents c = Safetensors.read(file)) {
                for (Tensor t : c.tensors().values()) {
                    t.toDoubleArray();
                }
            }
        }, false);
    }

    @ParameterizedTest
    @ValueSource(strings = {"numpy_savez.npz"})
    void npz(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, checkpoint(name), file -> {
            for (Tensor t : Npz.read(file).values()) {
                try (t) {
                    t.toDoubleArray();
                }
            }
        }, true);
    }

    @ParameterizedTest
    @ValueSource(strings = {"expected/pca/components_.npy"})
    void npy(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, checkpoint(name), file -> {
            try (Tensor t = Npy.read(file)) {
                t.toDoubleArray();
            }
        }, false);
    }

}
