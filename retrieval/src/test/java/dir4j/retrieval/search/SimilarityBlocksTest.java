package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.TopK;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The per-block selection path (what the GPU search takes) finds what the exact index finds. */
class SimilarityBlocksTest {
    private static float[] coarse(Random rng, int count) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = (rng.nextInt(5) - 2) * 0.25f;
        }
        return v;
    }

    /** Blocks of scores: 512 × 8192 on the CPU, 256 MiB on a device unless -Ddir4j.search.deviceBlockBytes says otherwise. */
    @Test
    void deviceBlocksAreSizedByBytes() {
        dir4j.engine.Device gpu = dir4j.engine.Device.cuda(0);
        assertEquals(8192, SimilarityBlocks.databaseBlock(dir4j.engine.Device.CPU));
        assertEquals(131_072, SimilarityBlocks.databaseBlock(gpu));
        try {
            System.setProperty("dir4j.search.deviceBlockBytes", String.valueOf(512 * 8192 * 4));
            assertEquals(8192, SimilarityBlocks.databaseBlock(gpu));
            System.setProperty("dir4j.search.deviceBlockBytes", "1");
            assertEquals(1, SimilarityBlocks.databaseBlock(gpu), "at least one row");
            assertEquals(8192, SimilarityBlocks.databaseBlock(dir4j.engine.Device.CPU), "the CPU's are fixed");
        } finally {
            System.clearProperty("dir4j.search.deviceBlockBytes");
        }
    }

    @Test
    void perBlockSelectionMergesToTheExactNeighbours() {
        Random rng = new Random(4);
        int n = 9000; // two database blocks
        int nq = 600; // two query blocks
        int k = 10;
        try (MemoryScope s = MemoryScope.open()) {
            // coarse values: many exact ties, which must break by lower row as the index does
            Tensor db = Tensor.of(coarse(rng, n * 16), n, 16);
            Tensor q = Tensor.of(coarse(rng, nq * 16), nq, 16);
            // the reference: every score of every block offered (the walk for k above TOPK_MAX)
            TopK[] all = new TopK[nq];
            for (int i = 0; i < nq; i++) {
                all[i] = new TopK(k);
            }
            SimilarityBlocks.forEach(q, db, n, (scores, q0, qn, d0, dn) -> {
                for (int i = 0; i < qn; i++) {
                    for (int j = 0; j < dn; j++) {
                        all[q0 + i].offer(scores[i * dn + j], d0 + j);
                    }
                }
            });
            Neighbours want = Neighbours.of(all);
            TopK[] best = new TopK[nq];
            for (int i = 0; i < nq; i++) {
                best[i] = new TopK(k);
            }
            SimilarityBlocks.forEachTop(q, db, n, k, (values, columns, q0, qn, d0, kept) -> {
                for (int i = 0; i < qn; i++) {
                    for (int r = 0; r < kept; r++) {
                        best[q0 + i].offer(values[i * kept + r], d0 + columns[i * kept + r]);
                    }
                }
            });
            Neighbours got = Neighbours.of(best);
            for (int i = 0; i < nq; i++) {
                assertArrayEquals(want.indices()[i], got.indices()[i], "query " + i);
                assertArrayEquals(want.scores()[i], got.scores()[i], "query " + i);
            }
        }
    }
}
