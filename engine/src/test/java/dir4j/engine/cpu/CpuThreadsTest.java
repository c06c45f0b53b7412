package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
}
