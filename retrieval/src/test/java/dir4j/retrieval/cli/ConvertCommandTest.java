package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.io.Npz;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.cli.CliRun.Run;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j convert`: notes on stderr, the summary on stdout, --quiet. */
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
}
