package dir4j.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
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
        new Shared(body, n).run();
    }

    /**
     * One parallelFor: the calling thread and up to threads − 1 pool workers claim indices from a
     * shared counter until none are left; the caller then waits only for the indices already
     * claimed, never for a worker that has not woken up yet. A parked worker takes tens of
     * microseconds to wake on these machines, as long as a mid-sized GEMM's depth block, so the
     * caller working at once (and the work going to whoever is awake) is what lets products of a
     * millisecond use both cores.
     */
    private static final class Shared {
        private final IntConsumer body;
        private final int n;
        private final java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        private final java.util.concurrent.atomic.AtomicInteger finished = new java.util.concurrent.atomic.AtomicInteger();
        private final java.util.concurrent.atomic.AtomicReference<Throwable> failure =
                new java.util.concurrent.atomic.AtomicReference<>();

        Shared(IntConsumer body, int n) {
            this.body = body;
            this.n = n;
        }

        void run() {
            int helpers = Math.min(THREADS - 1, n - 1);
            for (int h = 0; h < helpers; h++) {
                POOL.execute(this::work);
            }
            work();
            // the claimed indices finish soon after the caller runs out: spin briefly, then sleep
            // in short naps rather than hold a core while a long index completes elsewhere
            int spins = 0;
            while (finished.get() < n) {
                if (++spins < 20_000) {
                    Thread.onSpinWait();
                } else {
                    java.util.concurrent.locks.LockSupport.parkNanos(20_000);
                }
            }
            Throwable t = failure.get();
            if (t instanceof RuntimeException r) {
                throw r;
            }
            if (t instanceof Error e) {
                throw e;
            }
            if (t != null) {
                throw new IllegalStateException(t);
            }
        }

        private void work() {
            int i;
            while ((i = next.getAndIncrement()) < n) {
                try {
                    if (failure.get() == null) {
                        body.accept(i);
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    finished.incrementAndGet();
                }
            }
        }
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
}
