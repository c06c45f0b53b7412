package dir4j.nn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/** Files written by tests/fixtures/make_checkpoint_fixtures.py, from the test classpath. */
final class CheckpointFixtures {
    private CheckpointFixtures() {}

    static Path path(String name) {
        URL url = CheckpointFixtures.class.getResource("/fixtures/checkpoints/" + name);
        if (url == null) {
            throw new IllegalStateException("missing fixture checkpoints/" + name
                    + "; run /usr/bin/python3 tests/fixtures/make_checkpoint_fixtures.py");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** PyTorch's values of a tensor, as the fixture script saved them (caller closes). */
    static Tensor expected(String folder, String key) throws IOException {
        return Npy.read(path("expected/" + folder + "/" + key + ".npy"));
    }

    /** Same dtype, shape and values (exactly: every conversion dir4j makes is exact). */
    static void assertSameTensor(String what, Tensor expected, Tensor actual) {
        assertEquals(expected.dtype(), actual.dtype(), what + ": dtype");
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        if (expected.dtype() == DType.INT32) {
            assertArrayEquals(expected.toIntArray(), actual.toIntArray(), what + ": values");
        } else {
            assertArrayEquals(expected.toDoubleArray(), actual.toDoubleArray(), 0.0, what + ": values");
        }
    }
}
