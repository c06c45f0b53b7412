package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The caching allocator's buckets, reuse, statistics and out-of-memory behaviour, over a fake device. */
class CachingAllocatorTest {
    /** A device of fixed capacity handing out increasing addresses. */
    static final class FakeDevice implements DeviceMemory {
        final long capacity;
        final Map<Long, Long> live = new HashMap<>();
        long used;
        long next = 1 << 20;
        int syncs;
        int frees;

        FakeDevice(long capacity) {
            this.capacity = capacity;
        }

        @Override
        public long allocate(long bytes) {
            if (used + bytes > capacity) {
                return 0;
            }
            long a = next;
            next += bytes;
            live.put(a, bytes);
            used += bytes;
            return a;
        }

        @Override
        public void free(long address) {
            used -= live.remove(address);
            frees++;
        }

        @Override
        public void synchronize() {
            syncs++;
        }

        @Override
        public String describe() {
            return (capacity - used) + " B free of " + capacity + " B";
        }
    }

    @Test
    void smallRequestsRoundToPowersOfTwoFrom512AndLargeOnesTo2MiB() {
        assertEquals(512, CachingAllocator.bucketSize(0));
        assertEquals(512, CachingAllocator.bucketSize(1));
        assertEquals(512, CachingAllocator.bucketSize(512));
        assertEquals(1024, CachingAllocator.bucketSize(513));
        assertEquals(4096, CachingAllocator.bucketSize(4000));
        assertEquals(1 << 20, CachingAllocator.bucketSize((1 << 19) + 1));
        assertEquals(1 << 20, CachingAllocator.bucketSize(1 << 20));
        assertEquals(2 << 20, CachingAllocator.bucketSize((1 << 20) + 1));
        assertEquals(2 << 20, CachingAllocator.bucketSize(2 << 20));
        assertEquals(4 << 20, CachingAllocator.bucketSize((2 << 20) + 1));
        long gem = 64L * 2048 * 32 * 32 * 4; // a 512 MiB activation: an exact multiple of 2 MiB
        assertEquals(gem, CachingAllocator.bucketSize(gem));
        assertEquals(gem + (2 << 20), CachingAllocator.bucketSize(gem + 4));
        assertThrows(IllegalArgumentException.class, () -> CachingAllocator.bucketSize(-1));
        assertThrows(IllegalArgumentException.class, () -> CachingAllocator.bucketSize(Long.MAX_VALUE));
    }

    @Test
    void largeRequestsMayReuseABlockUpToAnEighthLargerSmallOnesOnlyTheirOwnBucket() {
        assertEquals(1024, CachingAllocator.largestReusable(1024));
        assertEquals(1 << 20, CachingAllocator.largestReusable(1 << 20));
        assertEquals((16 << 20) + (2 << 20), CachingAllocator.largestReusable(16 << 20));
    }

    @Test
    void aFreedBlockServesTheNextRequestOfItsBucketWithoutADeviceCall() {
        FakeDevice dev = new FakeDevice(1 << 30);
        CachingAllocator a = new CachingAllocator("fake:0", dev);
        CachingAllocator.Block b1 = a.allocate(3000);
        assertEquals(4096, b1.size());
        a.free(b1);
        CachingAllocator.Block b2 = a.allocate(2100);
        assertEquals(b1.address(), b2.address(), "same bucket: the cached block comes back");
        CachingAllocator.Block b3 = a.allocate(5000);
        assertNotEquals(b1.address(), b3.address());
        // a 17 MiB request (bucket 18 MiB) reuses a cached 20 MiB block (≤ 18 + 18/8 MiB), a 16 MiB one does not
        CachingAllocator.Block big = a.allocate(20 << 20);
        a.free(big);
        CachingAllocator.Block small = a.allocate(16 << 20);
        assertNotEquals(big.address(), small.address());
        CachingAllocator.Block mid = a.allocate(17 << 20);
        assertEquals(big.address(), mid.address());
        assertEquals(20 << 20, mid.size());
        CachingAllocator.Stats s = a.stats();
        assertEquals(2, s.cacheHits());
        assertEquals(4, s.deviceAllocs());
        assertEquals(4, s.inUseBlocks());
        assertEquals(4096 + 8192 + (16 << 20) + (20 << 20), s.inUseBytes());
        assertEquals(0, s.cachedBlocks());
        assertEquals(4096 + 8192 + (16 << 20) + (20 << 20), s.peakInUseBytes());
        a.free(mid);
        a.resetPeak();
        assertEquals(4096 + 8192 + (16 << 20), a.stats().peakInUseBytes(), "a reset peak starts from what is in use");
        a.allocate(1 << 20);
        assertEquals(4096 + 8192 + (17 << 20), a.stats().peakInUseBytes());
    }

    /**
     * While a CUDA graph is captured, freed blocks (a workspace the graph will use again on every
     * replay) go to the capture's pool: later requests of the capture reuse them, nothing after it
     * gets them until the graph is destroyed, and then the cache has them again.
     */
    @Test
    void blocksFreedDuringACaptureStayWithTheGraphUntilItIsReleased() {
        FakeDevice dev = new FakeDevice(1 << 30);
        CachingAllocator a = new CachingAllocator("fake:0", dev);
        CachingAllocator.Block before = a.allocate(3000);
        a.free(before); // cached before the capture: the capture may take it from the cache
        a.beginCapture();
        assertThrows(IllegalStateException.class, a::beginCapture, "one capture at a time");
        CachingAllocator.Block ws1 = a.allocate(3000);
        assertEquals(before.address(), ws1.address(), "the cache serves the capture");
        a.free(ws1);
        CachingAllocator.Block ws2 = a.allocate(2500);
        assertEquals(ws1.address(), ws2.address(), "the capture reuses its own freed block (same stream order)");
        a.free(ws2);
        CachingAllocator.Block other = a.allocate(9000);
        a.free(other);
        CachingAllocator.CapturePool pool = a.endCapture();
        assertEquals(4096 + 16384, pool.bytes());
        assertEquals(0, a.stats().cachedBlocks(), "the graph's blocks are not in the cache");
        CachingAllocator.Block after = a.allocate(3000);
        assertNotEquals(ws1.address(), after.address(), "nothing after the capture gets the graph's workspace");
        assertNotEquals(other.address(), a.allocate(9000).address());
        a.release(pool);
        assertEquals(0, pool.bytes());
        assertEquals(2, a.stats().cachedBlocks(), "a destroyed graph's blocks are cached again");
        assertEquals(ws1.address(), a.allocate(3000).address());
        assertEquals(other.address(), a.allocate(9000).address());
        assertEquals(0, dev.frees, "no block went back to the driver");
    }

    @Test
    void outOfMemoryReleasesTheCacheAndRetriesBeforeFailing() {
        FakeDevice dev = new FakeDevice(64 << 20);
        CachingAllocator a = new CachingAllocator("fake:0", dev);
        CachingAllocator.Block x = a.allocate(40 << 20);
        a.free(x); // cached: 40 MiB of 64 held
        CachingAllocator.Block y = a.allocate(50 << 20); // does not fit beside the cache; fits after release
        assertEquals(50 << 20, y.size());
        assertEquals(1, dev.syncs, "queued work drains before cached memory goes back to the driver");
        assertEquals(1, dev.frees);
        CachingAllocator.Stats s = a.stats();
        assertEquals(1, s.releases());
        assertEquals(0, s.cachedBytes());
        assertEquals(50 << 20, s.inUseBytes());
    }

    @Test
    void outOfMemoryDuringACaptureNeitherWaitsForTheStreamNorReleasesTheCache() {
        FakeDevice dev = new FakeDevice(64 << 20);
        CachingAllocator a = new CachingAllocator("fake:0", dev);
        a.free(a.allocate(40 << 20)); // cached: releasing it would make room, but only after a stream wait
        assertFalse(a.capturing());
        a.beginCapture();
        assertTrue(a.capturing(), "what cuDNN's algorithm search asks before it runs");
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> a.allocate(50 << 20));
        String m = e.getMessage();
        assertTrue(m.contains("cannot allocate 50.00 MiB"), m);
        assertTrue(m.contains("while a CUDA graph was being recorded"), m);
        assertTrue(m.contains("its cache of 40.00 MiB"), m);
        assertEquals(0, dev.syncs, "no stream wait inside a capture");
        assertEquals(0, dev.frees, "the cache stays");
        assertEquals(40 << 20, a.stats().cachedBytes());
        a.endCapture();
        assertFalse(a.capturing());
        assertEquals(50 << 20, a.allocate(50 << 20).size(), "after the capture the cache is released as usual");
        assertEquals(1, dev.syncs);
    }

    @Test
    void anImpossibleRequestNamesItselfAndWhatIsHeld() {
        FakeDevice dev = new FakeDevice(64 << 20);
        CachingAllocator a = new CachingAllocator("fake:0", dev);
        a.allocate(30 << 20);
        a.free(a.allocate(10 << 20));
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> a.allocate(100L << 20));
        String m = e.getMessage();
        assertTrue(m.contains("CUDA out of memory on fake:0"), m);
        assertTrue(m.contains("cannot allocate 100.00 MiB"), m);
        assertTrue(m.contains("holds 30.00 MiB in 1 live blocks"), m);
        assertTrue(m.contains("after releasing its cache of 10.00 MiB"), m);
        assertTrue(m.contains("B free of"), m);
        assertEquals(30 << 20, a.stats().inUseBytes(), "a failed request changes nothing held");
    }
}
