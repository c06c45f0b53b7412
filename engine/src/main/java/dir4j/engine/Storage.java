package dir4j.engine;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A block of memory on one device, shared by every tensor view of it. Reference counted: each
 * live {@link Tensor} holding it counts once; the memory is freed when the last one closes.
 */
public abstract class Storage {
    private final AtomicInteger refs = new AtomicInteger();
    private volatile boolean freed;

    /** Bytes held. */
    public abstract long byteSize();

    /** Device of the memory. */
    public abstract Device device();

    /** Frees the memory; called once, when the last reference is released. */
    protected abstract void free();

    /** True once the memory has been freed. */
    public final boolean isFreed() {
        return freed;
    }

    final void retain() {
        if (freed) {
            throw new IllegalStateException("storage already freed");
        }
        refs.incrementAndGet();
    }

    final void release() {
        if (refs.decrementAndGet() == 0) {
            freed = true;
            free();
        }
    }

    /** Live tensor references. */
    public final int refCount() {
        return refs.get();
    }
}
