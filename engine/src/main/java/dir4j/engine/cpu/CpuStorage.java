package dir4j.engine.cpu;

import dir4j.engine.Device;
import dir4j.engine.Storage;
import java.lang.foreign.MemorySegment;

/** Host memory of a CPU tensor: one aligned native block. */
public final class CpuStorage extends Storage {
    private final MemorySegment segment;

    /** Allocates a zero-filled block of {@code bytes}. */
    public CpuStorage(long bytes) {
        this(bytes, true);
    }

    /** Allocates a block of {@code bytes}, zero-filled only when asked. */
    public CpuStorage(long bytes, boolean zero) {
        this.segment = NativeMemory.allocate(bytes, zero);
    }

    /** The memory; valid until the storage is freed. */
    public MemorySegment segment() {
        return segment;
    }

    @Override
    public long byteSize() {
        return segment.byteSize();
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    protected void free() {
        NativeMemory.free(segment);
    }
}
