package dir4j.engine.cpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Off-heap allocation for CPU tensors: 64-byte aligned blocks from libc's aligned_alloc, freed
 * explicitly with free (never left to the GC), with counters a test or a long run can watch.
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

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        ALIGNED_ALLOC = linker.downcallHandle(libc.find("aligned_alloc").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        FREE = linker.downcallHandle(libc.find("free").orElseThrow(),
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    }

    private NativeMemory() {}

    /** Allocates {@code bytes} (rounded up to the alignment), zero-filled. */
    public static MemorySegment allocate(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
        }
        long rounded = Math.max(ALIGNMENT, (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT);
        MemorySegment p;
        try {
            p = (MemorySegment) ALIGNED_ALLOC.invokeExact(ALIGNMENT, rounded);
        } catch (Throwable t) {
            throw new IllegalStateException("aligned_alloc failed", t);
        }
        if (p.address() == 0) {
            throw new OutOfMemoryError("cannot allocate " + bytes + " bytes of native memory for a CPU tensor ("
                    + LIVE_BYTES.get() + " bytes in " + LIVE_BLOCKS.get() + " blocks held)");
        }
        MemorySegment seg = p.reinterpret(rounded);
        seg.fill((byte) 0);
        long live = LIVE_BYTES.addAndGet(rounded);
        LIVE_BLOCKS.incrementAndGet();
        TOTAL_ALLOCATIONS.incrementAndGet();
        PEAK_BYTES.accumulateAndGet(live, Math::max);
        return seg;
    }

    /** Frees a block returned by {@link #allocate}. */
    public static void free(MemorySegment seg) {
        try {
            FREE.invokeExact(seg);
        } catch (Throwable t) {
            throw new IllegalStateException("free failed", t);
        }
        LIVE_BYTES.addAndGet(-seg.byteSize());
        LIVE_BLOCKS.decrementAndGet();
    }

    /** Bytes currently allocated. */
    public static long liveBytes() {
        return LIVE_BYTES.get();
    }

    /** Blocks currently allocated. */
    public static long liveBlocks() {
        return LIVE_BLOCKS.get();
    }

    /** Highest {@link #liveBytes()} seen. */
    public static long peakBytes() {
        return PEAK_BYTES.get();
    }

    /** Allocations since start. */
    public static long totalAllocations() {
        return TOTAL_ALLOCATIONS.get();
    }
}
