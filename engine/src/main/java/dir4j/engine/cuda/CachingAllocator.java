package dir4j.engine.cuda;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching allocator of device memory. Requests are rounded up to a size bucket; freed blocks
 * stay cached per size and serve later requests of their bucket (or a large request up to 1/8
 * smaller) without a driver call. Every op of a device runs on one stream, so a block freed
 * while kernels that use it are still queued can be handed out at once: the new owner's work
 * queues behind theirs. When the device is out of memory the cache is released (after the
 * stream drains) and the request retried; failing that, an {@link OutOfMemoryError} names the
 * request and what is held.
 *
 * <p>Buckets: up to 512 B, 512 B; up to 1 MiB, the next power of two (small tensors: few sizes,
 * high reuse, at most 1 MiB wasted per block); above, the next multiple of 2 MiB.
 */
public final class CachingAllocator {
    static final long MIN_BLOCK = 512;
    static final long SMALL_LIMIT = 1L << 20;
    static final long LARGE_STEP = 2L << 20;

    /** A block handed out: its address and its (bucket) size. */
    record Block(long address, long size) {}

    /**
     * Counters.
     *
     * @param inUseBytes     bytes in blocks held by live storages
     * @param inUseBlocks    blocks held by live storages
     * @param cachedBytes    bytes in freed blocks kept for reuse
     * @param cachedBlocks   freed blocks kept for reuse
     * @param peakInUseBytes the largest inUseBytes seen
     * @param deviceAllocs   blocks obtained from the device
     * @param cacheHits      requests served from the cache
     * @param releases       times the cache was given back to the device under memory pressure
     */
    public record Stats(long inUseBytes, long inUseBlocks, long cachedBytes, long cachedBlocks, long peakInUseBytes,
                 long deviceAllocs, long cacheHits, long releases) {}

    private final String device;
    private final DeviceMemory memory;
    private final TreeMap<Long, ArrayDeque<Long>> cached = new TreeMap<>();
    private long inUseBytes;
    private long inUseBlocks;
    private long cachedBytes;
    private long cachedBlocks;
    private long peak;
    private long deviceAllocs;
    private long hits;
    private long releases;
    /** Where frees go while a CUDA graph is captured (null otherwise). */
    private CapturePool capture;

    /**
     * The blocks freed while a CUDA graph was being captured: the graph's replays use them again
     * (a cuDNN workspace, say), so they stay out of the cache until the graph is destroyed
     * ({@link #release(CapturePool)}). Requests during the capture are served from them first,
     * which is safe: the captured work runs in the order it was queued.
     */
    static final class CapturePool {
        private final TreeMap<Long, ArrayDeque<Long>> free = new TreeMap<>();
        private long bytes;

        /** Bytes the pool holds. */
        long bytes() {
            return bytes;
        }
    }

    CachingAllocator(String device, DeviceMemory memory) {
        this.device = device;
        this.memory = memory;
    }

    /** The bucket a request of {@code bytes} is served from. */
    static long bucketSize(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation request: " + bytes + " bytes");
        }
        if (bytes <= MIN_BLOCK) {
            return MIN_BLOCK;
        }
        if (bytes <= SMALL_LIMIT) {
            return Long.highestOneBit(bytes - 1) << 1;
        }
        long steps = (bytes - 1) / LARGE_STEP + 1;
        if (steps > Long.MAX_VALUE / LARGE_STEP) {
            throw new IllegalArgumentException("allocation request too large: " + bytes + " bytes");
        }
        return steps * LARGE_STEP;
    }

    /** The largest cached block that may serve a request of this bucket. */
    static long largestReusable(long bucket) {
        return bucket <= SMALL_LIMIT ? bucket : bucket + bucket / 8;
    }

    /** A block of at least {@code bytes}. */
    synchronized Block allocate(long bytes) {
        long bucket = bucketSize(bytes);
        if (capture != null) {
            Map.Entry<Long, ArrayDeque<Long>> p = capture.free.ceilingEntry(bucket);
            if (p != null && p.getKey() <= largestReusable(bucket)) {
                long size = p.getKey();
                long address = p.getValue().pop();
                if (p.getValue().isEmpty()) {
                    capture.free.remove(size);
                }
                capture.bytes -= size;
                hits++;
                return handOut(address, size);
            }
        }
        Map.Entry<Long, ArrayDeque<Long>> e = cached.ceilingEntry(bucket);
        if (e != null && e.getKey() <= largestReusable(bucket)) {
            long size = e.getKey();
            long address = e.getValue().pop();
            if (e.getValue().isEmpty()) {
                cached.remove(size);
            }
            cachedBytes -= size;
            cachedBlocks--;
            hits++;
            return handOut(address, size);
        }
        long address = memory.allocate(bucket);
        if (address == 0 && capture != null) {
            // releasing the cache waits for the stream, which a capture forbids (it would invalidate
            // the graph and report the wait's failure instead of the shortage)
            throw outOfMemory(bytes, bucket, 0, " while a CUDA graph was being recorded (its cache of "
                    + bytes(cachedBytes) + " cannot be released during a capture: record the graph with less"
                    + " memory in use, or free the cache before recording)");
        }
        if (address == 0 && cachedBlocks > 0) {
            long released = cachedBytes;
            releaseCached();
            releases++;
            address = memory.allocate(bucket);
            if (address == 0) {
                throw outOfMemory(bytes, bucket, released);
            }
        } else if (address == 0) {
            throw outOfMemory(bytes, bucket, 0);
        }
        deviceAllocs++;
        return handOut(address, bucket);
    }

    private Block handOut(long address, long size) {
        inUseBytes += size;
        inUseBlocks++;
        peak = Math.max(peak, inUseBytes);
        return new Block(address, size);
    }

    /** Returns a block to the cache (to the capture's pool while a CUDA graph is captured). */
    synchronized void free(Block b) {
        inUseBytes -= b.size();
        inUseBlocks--;
        if (capture != null) {
            capture.free.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b.address());
            capture.bytes += b.size();
            return;
        }
        cached.computeIfAbsent(b.size(), k -> new ArrayDeque<>()).push(b.address());
        cachedBytes += b.size();
        cachedBlocks++;
    }

    /** Gives every cached block back to the device (after queued work finishes); returns the bytes released. */
    synchronized long releaseCached() {
        if (cachedBlocks == 0) {
            return 0;
        }
        memory.synchronize();
        long released = cachedBytes;
        for (ArrayDeque<Long> q : cached.values()) {
            for (long a : q) {
                memory.free(a);
            }
        }
        cached.clear();
        cachedBytes = 0;
        cachedBlocks = 0;
        return released;
    }

    /** Whether a CUDA graph capture is under way ({@link #beginCapture} without its {@link #endCapture}). */
    synchronized boolean capturing() {
        return capture != null;
    }

    /** From now until {@link #endCapture}, frees go to a capture pool. */
    synchronized void beginCapture() {
        if (capture != null) {
            throw new IllegalStateException("a CUDA graph capture is already under way on " + device);
        }
        capture = new CapturePool();
    }

    /** Ends the routing of frees; the returned pool belongs to the captured graph. */
    synchronized CapturePool endCapture() {
        CapturePool p = capture;
        capture = null;
        return p;
    }

    /** Puts a destroyed graph's blocks in the cache. */
    synchronized void release(CapturePool p) {
        for (Map.Entry<Long, ArrayDeque<Long>> e : p.free.entrySet()) {
            for (long a : e.getValue()) {
                cached.computeIfAbsent(e.getKey(), k -> new ArrayDeque<>()).push(a);
                cachedBytes += e.getKey();
                cachedBlocks++;
            }
        }
        p.free.clear();
        p.bytes = 0;
    }

    /** Starts the peak afresh from what is in use now (as torch.cuda.reset_peak_memory_stats). */
    synchronized void resetPeak() {
        peak = inUseBytes;
    }

    synchronized Stats stats() {
        return new Stats(inUseBytes, inUseBlocks, cachedBytes, cachedBlocks, peak, deviceAllocs, hits, releases);
    }

    private OutOfMemoryError outOfMemory(long bytes, long bucket, long released) {
        return outOfMemory(bytes, bucket, released, released > 0 ? " after releasing its cache of " + bytes(released)
                : " and caches nothing");
    }

    private OutOfMemoryError outOfMemory(long bytes, long bucket, long released, String cache) {
        return new OutOfMemoryError("CUDA out of memory on " + device + ": cannot allocate " + bytes(bytes)
                + " (a block of " + bytes(bucket) + "); dir4j holds " + bytes(inUseBytes) + " in " + inUseBlocks
                + " live blocks (peak " + bytes(peak) + ")" + cache
                + "; device: " + memory.describe()
                + ". Free tensors sooner (MemoryScope), use a smaller batch, or multistage back-propagation");
    }

    /** "1.50 GiB", "512 B". */
    static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = b;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(java.util.Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
