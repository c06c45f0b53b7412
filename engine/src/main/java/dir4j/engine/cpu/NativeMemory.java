package dir4j.engine.cpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Off-heap allocation for CPU tensors: 64-byte aligned blocks from libc's aligned_alloc, freed
 * explicitly (never left to the GC), with counters a test or a long run can watch.
 *
 * <p>Blocks of 256 KiB and more are cached when freed and handed out again for requests of the
 * same size class (sizes round up by at most 1/8): a fresh large block costs a page fault per
 * 4 KiB on first touch (~30 ms for 64 MiB here), which a training step would pay for every
 * activation. The cache holds at most {@code -Ddir4j.cpu.cacheBytes} (default 2 GiB; 0 disables
 * it) and {@link #releaseCache()} empties it. {@link #liveBytes()} counts only blocks in use.
 *
 * <p>With {@code -Ddir4j.cpu.trackAllocations=true} every live block also remembers where it was
 * allocated, so that a leak can be traced to its source ({@link #describeLiveSince}); this costs a
 * stack walk per allocation, so it is off by default (the test suite's leak check says when to
 * turn it on).
 */
public final class NativeMemory {
    /** Alignment of every block: one AVX-512 register, one cache line. */
    public static final long ALIGNMENT = 64;

    private static final MethodHandle ALIGNED_ALLOC;
    private static final MethodHandle FREE;
    private static final AtomicLong LIVE_BYTES = new AtomicLong();
    private static final AtomicLong LIVE_BLOCKS = new AtomicLong();
    private static final AtomicLong PEAK_BYTES = new AtomicLong();
    private static final AtomicLong TOTAL_ALLOCATIONS = new AtomicLong();
    private static final long CACHE_LIMIT = Long.getLong("dir4j.cpu.cacheBytes", 2L << 30);
    private static final long CACHE_MIN_BLOCK = 256 << 10;
    private static final java.util.concurrent.ConcurrentHashMap<Long, java.util.concurrent.ConcurrentLinkedDeque<MemorySegment>>
            CACHE = new java.util.concurrent.ConcurrentHashMap<>();
    private static final AtomicLong CACHED_BYTES = new AtomicLong();
    /** Property that turns on {@link #describeLiveSince}'s record of allocation sites. */
    public static final String TRACK_PROPERTY = "dir4j.cpu.trackAllocations";
    private static final boolean TRACK = Boolean.getBoolean(TRACK_PROPERTY);
    /** Live blocks by address, when tracking: their allocation's number, size and stack. */
    private static final java.util.concurrent.ConcurrentHashMap<Long, Allocation> SITES =
            new java.util.concurrent.ConcurrentHashMap<>();

    private record Allocation(long number, long bytes, StackTraceElement[] stack) {}

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        ALIGNED_ALLOC = linker.downcallHandle(libc.find("aligned_alloc").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        FREE = linker.downcallHandle(libc.find("free").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    }

    private NativeMemory() {}

    /** The size a request is served with: 64-byte multiples, large ones in steps of 1/8 of a power of two. */
    static long sizeClass(long bytes) {
        long r = Math.max(ALIGNMENT, (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT);
        if (r < CACHE_MIN_BLOCK) {
            return r;
        }
        long step = Long.highestOneBit(r - 1) / 8;
        return (r + step - 1) / step * step;
    }

    /** Allocates {@code bytes} (rounded up to its size class), zero-filled. */
    public static MemorySegment allocate(long bytes) {
        return allocate(bytes, true);
    }

    /** Allocates {@code bytes}; zero-filled only when {@code zero} (else the contents are undefined). */
    public static MemorySegment allocate(long bytes, boolean zero) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
        }
        long rounded = sizeClass(bytes);
        MemorySegment seg = null;
        if (rounded >= CACHE_MIN_BLOCK) {
            var q = CACHE.get(rounded);
            seg = q == null ? null : q.pollFirst();
            if (seg != null) {
                CACHED_BYTES.addAndGet(-rounded);
            }
        }
        if (seg == null) {
            seg = fresh(rounded, bytes);
        }
        if (zero) {
            zero(seg);
        }
        long live = LIVE_BYTES.addAndGet(rounded);
        LIVE_BLOCKS.incrementAndGet();
        long number = TOTAL_ALLOCATIONS.incrementAndGet();
        PEAK_BYTES.accumulateAndGet(live, Math::max);
        if (TRACK) {
            SITES.put(seg.address(), new Allocation(number, rounded, new Throwable().getStackTrace()));
        }
        return seg;
    }

    private static MemorySegment fresh(long rounded, long requested) {
        MemorySegment p;
        try {
            p = (MemorySegment) ALIGNED_ALLOC.invokeExact(ALIGNMENT, rounded);
        } catch (Throwable t) {
            throw new IllegalStateException("aligned_alloc failed", t);
        }
        if (p.address() == 0 && CACHED_BYTES.get() > 0) {
            releaseCache();
            return fresh(rounded, requested);
        }
        if (p.address() == 0) {
            throw new OutOfMemoryError("cannot allocate " + requested + " bytes of native memory for a CPU tensor ("
                    + LIVE_BYTES.get() + " bytes in " + LIVE_BLOCKS.get() + " blocks held)");
        }
        return p.reinterpret(rounded);
    }

    /** Zero-fills, in parallel for large blocks. */
    private static void zero(MemorySegment seg) {
        long n = seg.byteSize();
        if (n < (8 << 20)) {
            seg.fill((byte) 0);
            return;
        }
        CpuThreads.parallelRange(n / ALIGNMENT, (1 << 20) / ALIGNMENT,
                (s, e) -> seg.asSlice(s * ALIGNMENT, (e - s) * ALIGNMENT).fill((byte) 0));
    }

    /** Returns every cached block to the C library. */
    public static void releaseCache() {
        for (var q : CACHE.values()) {
            MemorySegment seg;
            while ((seg = q.pollFirst()) != null) {
                CACHED_BYTES.addAndGet(-seg.byteSize());
                freeNative(seg);
            }
        }
    }

    /** Bytes held in the cache of freed blocks. */
    public static long cachedBytes() {
        return CACHED_BYTES.get();
    }

    /** Frees a block returned by {@link #allocate} (into the cache when it is large and there is room). */
    public static void free(MemorySegment seg) {
        long size = seg.byteSize();
        if (TRACK) {
            SITES.remove(seg.address());
        }
        LIVE_BYTES.addAndGet(-size);
        LIVE_BLOCKS.decrementAndGet();
        if (size >= CACHE_MIN_BLOCK && CACHED_BYTES.addAndGet(size) <= CACHE_LIMIT) {
            CACHE.computeIfAbsent(size, k -> new java.util.concurrent.ConcurrentLinkedDeque<>()).addFirst(seg);
            return;
        }
        if (size >= CACHE_MIN_BLOCK) {
            CACHED_BYTES.addAndGet(-size);
        }
        freeNative(seg);
    }

    private static void freeNative(MemorySegment seg) {
        try {
            FREE.invokeExact(seg);
        } catch (Throwable t) {
            throw new IllegalStateException("free failed", t);
        }
    }

    /** Bytes currently allocated. */
    public static long liveBytes() {
        return LIVE_BYTES.get();
    }

    /** Blocks currently allocated. */
    public static long liveBlocks() {
        return LIVE_BLOCKS.get();
    }

    /** Highest {@link #liveBytes()} seen (since the start or the last {@link #resetPeak()}). */
    public static long peakBytes() {
        return PEAK_BYTES.get();
    }

    /** Starts {@link #peakBytes()} again from the bytes live now, to measure the peak of what follows. */
    public static void resetPeak() {
        PEAK_BYTES.set(LIVE_BYTES.get());
    }

    /** Allocations since start; the n-th allocation is number n in {@link #describeLiveSince}. */
    public static long totalAllocations() {
        return TOTAL_ALLOCATIONS.get();
    }

    /** True when live blocks remember their allocation sites ({@value #TRACK_PROPERTY}). */
    public static boolean tracking() {
        return TRACK;
    }

    /** A frame of the allocation's own machinery, left out of a site's description. */
    private static boolean plumbing(StackTraceElement e) {
        String c = e.getClassName();
        return c.equals(NativeMemory.class.getName()) || c.equals(CpuStorage.class.getName())
                || (c.equals(CpuBackend.class.getName()) && e.getMethodName().equals("allocate"));
    }

    /**
     * The blocks still live among allocations after number {@code after} ({@link #totalAllocations()}
     * taken earlier), grouped by allocation site: for each site its blocks, bytes and the first
     * {@code frames} frames of its stack above the allocator's own, largest first. Empty when nothing of
     * them is live; a note saying how to turn it on when tracking is off.
     */
    public static String describeLiveSince(long after, int frames) {
        if (!TRACK) {
            return "(allocation sites not recorded: run with -D" + TRACK_PROPERTY + "=true)";
        }
        java.util.Map<String, long[]> bySite = new java.util.HashMap<>();
        for (Allocation a : SITES.values()) {
            if (a.number() <= after) {
                continue;
            }
            StringBuilder site = new StringBuilder();
            int shown = 0;
            for (StackTraceElement e : a.stack()) {
                if (plumbing(e)) {
                    continue;
                }
                if (shown++ == frames) {
                    break;
                }
                site.append("\n    at ").append(e);
            }
            long[] c = bySite.computeIfAbsent(site.toString(), k -> new long[2]);
            c[0]++;
            c[1] += a.bytes();
        }
        StringBuilder out = new StringBuilder();
        bySite.entrySet().stream()
                .sorted((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1]))
                .forEach(e -> out.append(e.getValue()[0]).append(" block(s), ").append(e.getValue()[1])
                        .append(" bytes, allocated").append(e.getKey()).append('\n'));
        return out.toString();
    }
}
