package dir4j.bench.gpu;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.Neighbours;
import java.util.Random;

/**
 * Exact top-k search with the similarity products on the GPU ({@link ExactIndex#computeOn}) beside
 * the same search on the CPU: N unit descriptors of dimension D, Q queries, k neighbours. The GPU
 * runs first with 512 × 8192 blocks of scores (the CPU's, and the GPU's before 2026-11-30), then
 * with the default device blocks; each the best of 3 after 2 s of warm-up searches.
 * Prints {@code RESULT exact search ...} lines and whether both found the same top-k.
 * Arguments: N D Q k (default 100000 2048 1000 100).
 */
public final class ExactSearchGpuBench {
    private ExactSearchGpuBench() {}

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        int d = args.length > 1 ? Integer.parseInt(args[1]) : 2048;
        int nq = args.length > 2 ? Integer.parseInt(args[2]) : 1000;
        int k = args.length > 3 ? Integer.parseInt(args[3]) : 100;
        Random rng = new Random(1);
        try (MemoryScope s = MemoryScope.open();
                ExactIndex cpu = new ExactIndex(d);
                ExactIndex gpu = new ExactIndex(d).computeOn(Device.cuda(0))) {
            Tensor db = NnOps.l2Normalize(Tensor.randn(rng, n, d), 1, 1e-12);
            Tensor q = NnOps.l2Normalize(Tensor.randn(rng, nq, d), 1, 1e-12);
            cpu.add(db);
            gpu.add(db);
            gpu.search(q.slice(0, 0, Math.min(nq, 16)), k); // uploads the database
            String what = "exact search N=" + n + " D=" + d + " Q=" + nq + " k=" + k;
            // first with the blocks of 8192 database rows the GPU had before 2026-11-30 (as on the CPU)
            System.setProperty("dir4j.search.deviceBlockBytes", String.valueOf(512L * 8192 * Float.BYTES));
            double smallBlocks = best(gpu, q, k);
            System.out.printf("RESULT %s on cuda:0 in blocks of 512 x 8192: %.1f queries/s (%.3f s)%n", what,
                    nq / smallBlocks, smallBlocks);
            System.clearProperty("dir4j.search.deviceBlockBytes");
            double gpuBest = best(gpu, q, k);
            Neighbours g = gpu.search(q, k);
            long t0 = System.nanoTime();
            Neighbours c = cpu.search(q, k);
            double cpuS = (System.nanoTime() - t0) / 1e9;
            int same = 0;
            for (int i = 0; i < nq; i++) {
                same += g.indices()[i][0] == c.indices()[i][0] ? 1 : 0;
            }
            System.out.printf("RESULT %s on cuda:0: %.1f queries/s (%.3f s)%n", what, nq / gpuBest, gpuBest);
            System.out.printf("RESULT %s on the CPU (%d threads): %.1f queries/s (%.3f s)%n", what,
                    Runtime.getRuntime().availableProcessors(), nq / cpuS, cpuS);
            System.out.printf("RESULT %s: same top-1 for %d of %d queries%n", what, same, nq);
        }
    }

    /** Best of 3 timed searches, after searches for at least 2 s (the host path compiled by the JIT). */
    private static double best(ExactIndex gpu, Tensor q, int k) {
        for (long w0 = System.nanoTime(); System.nanoTime() - w0 < 2_000_000_000L; ) {
            gpu.search(q, k);
        }
        double best = Double.MAX_VALUE;
        for (int r = 0; r < 3; r++) {
            long t0 = System.nanoTime();
            gpu.search(q, k);
            best = Math.min(best, (System.nanoTime() - t0) / 1e9);
        }
        return best;
    }
}
