package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Exact search with the similarity products on cuda:0 ranks exactly as on the CPU. */
@Tag("gpu")
class ExactIndexGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeAll
    static void gpu() {
        dir4j.retrieval.Gpu.require();
    }

    @Test
    void theGpuFindsTheSameNeighboursWithTheSameScores() {
        Random rng = new Random(5);
        // more rows than one database block on a device (131,072) and more queries than one query
        // block (512)
        int n = SimilarityBlocks.databaseBlock(GPU) + 9000;
        int d = 64;
        int nq = 600;
        try (MemoryScope s = MemoryScope.open();
                ExactIndex cpu = new ExactIndex(d);
                ExactIndex gpu = new ExactIndex(d).computeOn(GPU)) {
            Tensor db = Tensor.randn(rng, n, d);
            Tensor q = Tensor.randn(rng, nq, d);
            cpu.add(db);
            gpu.add(db);
            Neighbours a = cpu.search(q, 10);
            Neighbours b = gpu.search(q, 10);
            Neighbours c = gpu.search(q.to(GPU), 10);
            float[] dbv = db.toFloatArray();
            float[] qv = q.toFloatArray();
            for (int i = 0; i < nq; i++) {
                float[] sa = a.scores()[i];
                float[] sb = b.scores()[i];
                int[] ra = a.indices()[i];
                int[] rb = b.indices()[i];
                java.util.Set<Integer> seen = new java.util.HashSet<>();
                for (int j = 0; j < sa.length; j++) {
                    assertEquals(sa[j], sb[j], 1e-4 * Math.max(1, Math.abs(sa[j])), "query " + i + " rank " + j);
                    // the row the GPU names must be the row whose score it gives: a row of the second
                    // device block reported without its block's offset has a score of its own
                    double dot = 0;
                    for (int e = 0; e < d; e++) {
                        dot += (double) qv[i * d + e] * dbv[rb[j] * d + e];
                    }
                    assertEquals(dot, sb[j], 1e-4 * Math.max(1, Math.abs(dot)), "query " + i + " rank " + j
                            + ": the score of gpu row " + rb[j]);
                    if (!seen.add(rb[j])) {
                        fail("query " + i + ": gpu row " + rb[j] + " twice");
                    }
                    // ranks may swap only between near-ties of the CPU's own list
                    boolean nearTie = j > 0 && Math.abs(sa[j] - sa[j - 1]) < 1e-4
                            || j + 1 < sa.length && Math.abs(sa[j] - sa[j + 1]) < 1e-4;
                    if (ra[j] != rb[j] && !nearTie) {
                        fail("query " + i + " rank " + j + ": cpu row " + ra[j] + ", gpu row " + rb[j]);
                    }
                }
                assertArrayEquals(rb, c.indices()[i], "queries already on the GPU");
            }
            // the test is only worth its size if the neighbours reach past the first device block
            long beyond = java.util.Arrays.stream(b.indices()).flatMapToInt(java.util.Arrays::stream)
                    .filter(r -> r >= SimilarityBlocks.databaseBlock(GPU)).count();
            org.junit.jupiter.api.Assertions.assertTrue(beyond > 0, "no neighbour beyond the first device block");
            // an addition invalidates the device copy
            gpu.add(Tensor.randn(rng, 3, d));
            cpu.add(Tensor.randn(new Random(5 + 1), 3, d));
            assertEquals(n + 3, gpu.search(q.slice(0, 0, 2), n + 3).indices()[0].length);
        }
    }
}
