package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class CpuThreadsTest {
    @Test
    void everyIndexRunsExactlyOnceAndTheCallReturnsAfterAll() {
        for (int n : new int[] {1, 2, 3, 17, 1000}) {
            AtomicIntegerArray hits = new AtomicIntegerArray(n);
            CpuThreads.parallelFor(n, i -> {
                // uneven work, so that the caller and the workers interleave
                long x = 0;
                for (int q = 0; q < (i % 7) * 2000; q++) {
                    x += q;
                }
                hits.addAndGet(i, x >= 0 ? 1 : 2);
            });
            for (int i = 0; i < n; i++) {
                assertEquals(1, hits.get(i), "n " + n + ", index " + i);
            }
        }
    }

    @Test
    void aFailingIndexFailsTheCallWithItsException() {
        IllegalArgumentException boom = new IllegalArgumentException("index 5 is bad");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CpuThreads.parallelFor(64, i -> {
            if (i == 5) {
                throw boom;
            }
        }));
        assertSame(boom, e);
        // the pool is still usable afterwards
        AtomicLong sum = new AtomicLong();
        CpuThreads.parallelFor(10, i -> sum.addAndGet(i));
        assertEquals(45, sum.get());
    }

    @Test
    void nestedCallsRunToCompletion() {
        AtomicLong sum = new AtomicLong();
        CpuThreads.parallelFor(8, i -> CpuThreads.parallelFor(8, j -> sum.addAndGet(i * 8 + j)));
        assertEquals(64 * 63 / 2, sum.get());
        sum.set(0);
        CpuThreads.parallelRange(1000, 10, (s, e) -> {
            for (long x = s; x < e; x++) {
                sum.addAndGet(x);
            }
        });
        assertEquals(1000 * 999 / 2, sum.get());
    }

    @Test
    void eachParticipantTakesItsOwnRunInOrderThenTheEndsOfTheOthers() {
        // 10 indices, 3 participants: runs [0, 3), [3, 6), [6, 10)
        CpuThreads.Shared shared = new CpuThreads.Shared(i -> {}, 10, 3);
        assertEquals(3, shared.claim(1));
        assertEquals(6, shared.claim(2));
        List<Integer> caller = new ArrayList<>();
        for (int i; (i = shared.claim(0)) < 10; ) {
            caller.add(i);
        }
        // its own run front to back, then run 1's rest from its end, then run 2's
        assertEquals(List.of(0, 1, 2, 5, 4, 9, 8, 7), caller);
        assertEquals(10, shared.claim(1));
        assertEquals(10, shared.claim(2));
    }

    @Test
    void concurrentClaimsHandOutEveryIndexExactlyOnce() throws InterruptedException {
        int n = 100_000;
        int parts = 4;
        CpuThreads.Shared shared = new CpuThreads.Shared(i -> {}, n, parts);
        AtomicIntegerArray hits = new AtomicIntegerArray(n);
        int[] counts = new int[parts];
        Thread[] threads = new Thread[parts];
        for (int p = 0; p < parts; p++) {
            int me = p;
            // participant 3 starts late and finds its run partly taken from the end
            threads[p] = new Thread(() -> {
                for (int i; (i = shared.claim(me)) < n; ) {
                    hits.incrementAndGet(i);
                    counts[me]++;
                }
            });
        }
        for (int p = 0; p < parts - 1; p++) {
            threads[p].start();
        }
        Thread.sleep(1);
        threads[parts - 1].start();
        for (Thread t : threads) {
            t.join();
        }
        int total = 0;
        for (int p = 0; p < parts; p++) {
            total += counts[p];
        }
        assertEquals(n, total);
        for (int i = 0; i < n; i++) {
            assertEquals(1, hits.get(i), "index " + i);
        }
    }

    @Test
    void theCallerRunsTheFirstRunWhileAWorkerRunsTheNext() {
        assumeTrue(CpuThreads.threads() > 1, "one thread: parallelFor runs inline");
        Thread caller = Thread.currentThread();
        Thread[] ran = twoRunsTogether("a plain thread");
        assertSame(caller, ran[0], "the caller takes its own run, the first");
        assertNotSame(caller, ran[1], "a pool worker takes the second run");
    }

    /**
     * parallelFor(2) whose runs each hold their thread until both have started (the caller, once it
     * holds index 0, cannot take index 1 as well, and a worker holding index 1 cannot take index 0),
     * checked to have run at the same time; the threads that ran them.
     */
    private static Thread[] twoRunsTogether(String caller) {
        Thread[] ran = new Thread[2];
        boolean[] sawTheOther = new boolean[2];
        CountDownLatch started = new CountDownLatch(2);
        CpuThreads.parallelFor(2, i -> {
            ran[i] = Thread.currentThread();
            started.countDown();
            try {
                sawTheOther[i] = started.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        assertTrue(sawTheOther[0] && sawTheOther[1], caller + ": the two runs ran at the same time");
        return ran;
    }

    /**
     * A service that calls the engine from a ForkJoinPool task (CompletableFuture.supplyAsync and
     * parallel streams run on the common pool; some frameworks have pools of their own) gets the
     * engine's workers as any other caller does: only the engine's own workers run nested calls
     * inline.
     */
    @Test
    void aCallerInAnotherForkJoinPoolSharesTheWorkWithTheEnginesWorkers() throws Exception {
        assumeTrue(CpuThreads.threads() > 1, "one thread: parallelFor runs inline");
        try (java.util.concurrent.ForkJoinPool service = new java.util.concurrent.ForkJoinPool(2)) {
            var pools = List.of(java.util.concurrent.ForkJoinPool.commonPool(), service);
            for (java.util.concurrent.ForkJoinPool pool : pools) {
                Thread[][] ran = new Thread[1][];
                Thread caller = pool.submit(() -> {
                    ran[0] = twoRunsTogether(pool.toString());
                    return Thread.currentThread();
                }).get(60, TimeUnit.SECONDS);
                assertSame(caller, ran[0][0], "the caller takes its own run, the first");
                assertNotSame(caller, ran[0][1], "an engine worker takes the second run");
            }
        }
        // the engine's own workers still run a nested call inline, on themselves
        Thread[] outer = new Thread[2];
        Thread[][] inner = new Thread[2][4];
        CountDownLatch started = new CountDownLatch(2);
        CpuThreads.parallelFor(2, i -> {
            outer[i] = Thread.currentThread();
            started.countDown();
            try {
                started.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            CpuThreads.parallelFor(4, j -> inner[i][j] = Thread.currentThread());
        });
        assertNotSame(Thread.currentThread(), outer[1], "an engine worker takes the second run");
        for (int j = 0; j < 4; j++) {
            assertSame(outer[1], inner[1][j], "a worker's nested index " + j);
        }
    }

    @Test
    @org.junit.jupiter.api.Timeout(120)
    void manyCallersBackToBackEachRunEveryIndexOnce() throws InterruptedException {
        // back-to-back calls from several threads at once, each with its own runs and helpers, the
        // pool's workers shared among them
        int callers = 4;
        int calls = 1500;
        java.util.concurrent.atomic.AtomicReference<String> wrong = new java.util.concurrent.atomic.AtomicReference<>();
        Thread[] threads = new Thread[callers];
        for (int c = 0; c < callers; c++) {
            int seed = c;
            threads[c] = new Thread(() -> {
                java.util.Random r = new java.util.Random(seed);
                for (int k = 0; k < calls && wrong.get() == null; k++) {
                    int n = 1 + r.nextInt(24);
                    AtomicIntegerArray hits = new AtomicIntegerArray(n);
                    CpuThreads.parallelFor(n, hits::incrementAndGet);
                    for (int i = 0; i < n; i++) {
                        if (hits.get(i) != 1) {
                            wrong.compareAndSet(null, "call " + k + " of caller " + seed + ": index " + i + " ran "
                                    + hits.get(i) + " times");
                        }
                    }
                    if (k % 100 == 0) {
                        // now and then a pause, so that the workers park between calls
                        java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                    }
                }
            });
            threads[c].start();
        }
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(null, wrong.get());
    }
}
