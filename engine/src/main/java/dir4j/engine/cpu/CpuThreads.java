package dir4j.engine.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * The CPU backend's worker pool: one ForkJoinPool sized to the cores (override with
 * {@code -Ddir4j.threads=N}). Kernels split their work into tasks with {@link #parallelFor}.
 */
public final class CpuThreads {
    private static final int THREADS = threadsSetting();
    private static final ForkJoinPool POOL = THREADS > 1 ? new ForkJoinPool(THREADS) : null;

    private CpuThreads() {}

    private static int threadsSetting() {
        CpuSettings.require(); // -Ddir4j.threads=0 or "two": a sentence, not a division by zero later
        String s = System.getProperty("dir4j.threads");
        return s == null ? Runtime.getRuntime().availableProcessors() : Integer.parseInt(s.strip());
    }

    /** Number of worker threads kernels may use. */
    public static int threads() {
        return THREADS;
    }

    /**
     * Runs {@code body.accept(i)} for i in [0, n), spread over the pool. Runs inline when n is 1,
     * the pool has one thread, or the caller is already one of this pool's workers (no nested
     * parallelism). A task of another ForkJoinPool (the common pool, where
     * CompletableFuture.supplyAsync and parallel streams run, or a service's own) is a caller like
     * any other: its kernels get the pool's workers.
     */
    public static void parallelFor(int n, IntConsumer body) {
        if (n <= 0) {
            return;
        }
        if (n == 1 || POOL == null || ForkJoinTask.getPool() == POOL) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        new Shared(body, n, Math.min(THREADS, n)).run();
    }

    /**
     * One parallelFor: the calling thread and up to threads − 1 pool workers each own a contiguous
     * run of the indices (the caller the first run) and take their own in order; one that runs out
     * takes indices from the end of another's run. The caller works at once and then waits only for
     * the indices already claimed, never for a worker that has not woken up yet: a parked worker
     * takes tens of microseconds to wake on these machines, as long as a mid-sized GEMM's depth
     * block, so the caller working at once (and the work going to whoever is awake) is what lets
     * products of a millisecond use both cores.
     *
     * <p>Contiguous runs (rather than indices dealt out in turn from one counter) keep each thread
     * on neighbouring work: a convolution whose tasks run output block by output block gives each
     * thread its own output channels (and their weights), one whose tasks run pixel run by pixel
     * run its own rows, which the next layer, split the same way, finds in that core's cache.
     * Batch-1 ResNet-50 on two cores ran faster this way (bench/RESULTS.md, session 19).
     */
    static final class Shared {
        private final IntConsumer body;
        private final int n;
        /** Each participant's run [lo, hi) of the indices not yet claimed, as lo << 32 | hi. */
        private final AtomicLongArray runs;
        private final AtomicInteger joined = new AtomicInteger();
        private final AtomicInteger finished = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();

        /** n indices shared by up to {@code parts} participants (at least one). */
        Shared(IntConsumer body, int n, int parts) {
            this.body = body;
            this.n = n;
            runs = new AtomicLongArray(parts);
            for (int p = 0; p < parts; p++) {
                runs.set(p, pack((int) ((long) n * p / parts), (int) ((long) n * (p + 1) / parts)));
            }
        }

        private static long pack(int lo, int hi) {
            return (long) lo << 32 | hi;
        }

        void run() {
            int helpers = runs.length() - 1;
            for (int h = 0; h < helpers; h++) {
                POOL.execute(this::help);
            }
            work(0);
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

        private void help() {
            work(Math.min(joined.incrementAndGet(), runs.length() - 1));
        }

        /**
         * The next index for participant p: the front of its own run, else the back of another's;
         * n when none is left.
         */
        int claim(int p) {
            int parts = runs.length();
            for (int k = 0; k < parts; k++) {
                int q = (p + k) % parts;
                boolean own = k == 0;
                while (true) {
                    long r = runs.get(q);
                    int lo = (int) (r >>> 32);
                    int hi = (int) r;
                    if (lo >= hi) {
                        break;
                    }
                    if (runs.compareAndSet(q, r, own ? pack(lo + 1, hi) : pack(lo, hi - 1))) {
                        return own ? lo : hi - 1;
                    }
                }
            }
            return n;
        }

        private void work(int p) {
            int i;
            while ((i = claim(p)) < n) {
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
