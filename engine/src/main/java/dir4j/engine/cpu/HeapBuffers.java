package dir4j.engine.cpu;

import java.util.ArrayDeque;

/**
 * Large heap buffers of the calling thread kept between calls, for the channels-last copies of the
 * direct and Winograd convolutions (NCHW and channels-last training alike). A fresh large float[]
 * costs the JVM a zeroing pass on every convolution and later a collection (several MiB each,
 * humongous for G1): layer1's 3×3 passes ran about 1.3× slower on fresh copies (bench/RESULTS.md,
 * session 13). Borrowed buffers hold whatever they held: callers write or zero every element they
 * read. A thread keeps at most {@link #POOL_FLOATS} floats, dropping the least recently returned.
 */
final class HeapBuffers {
    private HeapBuffers() {}

    private static final ThreadLocal<ArrayDeque<float[]>> POOL = ThreadLocal.withInitial(ArrayDeque::new);
    /** Most floats a thread keeps: {@code -Ddir4j.cpu.nhwcPoolFloats}, default 2^27 (512 MiB). */
    static final long POOL_FLOATS = Long.getLong("dir4j.cpu.nhwcPoolFloats", 128L << 20);

    /**
     * A buffer of exactly {@code floats} (contents undefined), recycled when the thread holds one.
     *
     * @throws OutOfMemoryError when the size is past one Java array, or the heap is full
     */
    static float[] borrow(long floats) {
        if (floats > Integer.MAX_VALUE - 16) {
            throw new OutOfMemoryError("a channels-last copy of " + floats + " floats");
        }
        var pool = POOL.get();
        for (var it = pool.iterator(); it.hasNext(); ) {
            float[] b = it.next();
            if (b.length == floats) {
                it.remove();
                return b;
            }
        }
        return new float[(int) floats];
    }

    /** Returns a buffer (null: nothing) to the calling thread's pool, dropping the oldest beyond the limit. */
    static void giveBack(float[] b) {
        if (b == null) {
            return;
        }
        var pool = POOL.get();
        pool.addFirst(b);
        long total = 0;
        for (float[] a : pool) {
            total += a.length;
        }
        while (total > POOL_FLOATS && !pool.isEmpty()) {
            total -= pool.removeLast().length;
        }
    }
}
