package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.cli.CliRun.Run;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j search --device cuda` over an exact index prints what the CPU prints; hnsw is refused. */
@Tag("gpu")
class SearchCommandGpuTest {
    @TempDir
    Path dir;
    @BeforeAll
    static void gpu() {
        dir4j.retrieval.Gpu.require();
    }

    @Test
    void exactSearchOnTheGpuPrintsTheCpuResults() throws IOException {
        Path db = dir.resolve("db.npy");
        Path queries = dir.resolve("q.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(db, Tensor.of(SearchCommandTest.unitRows(new Random(3), 9000, 32), 9000, 32));
            Npy.write(queries, Tensor.of(SearchCommandTest.unitRows(new Random(4), 5, 32), 5, 32));
        }
        String exact = dir.resolve("exact").toString();
        assertEquals(0, run("index", "--descriptors", db.toString(), "--out", exact, "--quiet").rc());
        assertEquals(0, run("index", "--descriptors", db.toString(), "--out", dir.resolve("hnsw").toString(),
                "--type", "hnsw", "--quiet").rc());
        Run cpu = run("search", "--index", exact, "--descriptors", queries.toString(), "-k", "7", "--quiet");
        Run gpu = run("search", "--index", exact, "--descriptors", queries.toString(), "-k", "7", "--quiet",
                "--device", "cuda");
        assertEquals(0, gpu.rc(), gpu.toString());
        SearchCommandTest.assertSameResults(cpu.out(), gpu.out());
        Run hnsw = run("search", "--index", dir.resolve("hnsw").toString(), "--descriptors", queries.toString(),
                "--device", "cuda");
        assertEquals(2, hnsw.rc(), hnsw.toString());
        assertTrue(hnsw.err().contains("Lucene on the CPU"), hnsw.err());
    }
}
