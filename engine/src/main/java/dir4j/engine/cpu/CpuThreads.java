package dir4j.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * The CPU backend's worker pool: one ForkJoinPool sized to the cores (override with
 * {@code -Ddir4j.threads=N}). Kernels split their work into tasks with {@link #parallelFor}.
 */
public final class CpuThreads {
    private static final int THREADS = Integer.getInteger("dir4j.threads",
            Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = THREADS > 1 ? new ForkJoinPool(THREADS) : null;

    private CpuThreads() {}

    /** Number of worker threads kernels may use. */
    public static int threads() {
        return THREADS;
    }

    /**
     * Runs {@code body.accept(i)} for i in [0, n), spread over the pool. Runs inline when n is 1,
     * the pool has one thread, or the caller is already a pool worker (no nested parallelism).
     */
    public static void parallelFor(int n, IntConsumer body) {
        if (n <= 0) {
            return;
        }
        if (n == 1 || POOL == null || ForkJoinTask.inForkJoinPool()) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        POOL.invoke(new Range(body, 0, n));
    }

    /**
     * Splits [0, total) into at most {@code threads()} contiguous chunks of at least
     * {@code minChunk} items and runs {@code body.run(start, end)} on each.
     */
    public static void parallelRange(long total, long minChunk, RangeBody body) {
        if (total <= 0) {
            return;
        }
        int chunks = (int) Math.max(1, Math.min(THREADS, total / Math.max(1, minChunk)));
        if (chunks == 1) {
            body.run(0, total);
            return;
        }
        long per = (total + chunks - 1) / chunks;
        parallelFor(chunks, c -> {
            long s = c * per;
            long e = Math.min(total, s + per);
            if (s < e) {
                body.run(s, e);
            }
        });
    }

    /** A chunk of a parallel range. */
    @FunctionalInterface
    public interface RangeBody {
        void run(long start, long end);
    }

    private static final class Range extends RecursiveAction {
        private final IntConsumer body;
        private final int lo;
        private final int hi;

        Range(IntConsumer body, int lo, int hi) {
            this.body = body;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                body.accept(lo);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Range(body, lo, mid), new Range(body, mid, hi));
        }
    }
}
