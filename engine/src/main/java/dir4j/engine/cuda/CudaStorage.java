package dir4j.engine.cuda;

import dir4j.engine.Device;
import dir4j.engine.Storage;

/** Device memory of a CUDA tensor: one block of its device's {@link CachingAllocator}. */
final class CudaStorage extends Storage {
    private final CachingAllocator allocator;
    private final CachingAllocator.Block block;
    private final long bytes;
    private final Device device;

    CudaStorage(CachingAllocator allocator, CachingAllocator.Block block, long bytes, Device device) {
        this.allocator = allocator;
        this.block = block;
        this.bytes = bytes;
        this.device = device;
    }

    /** The raw device address of byte 0. */
    long address() {
        return block.address();
    }

    @Override
    public long byteSize() {
        return bytes;
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    protected void free() {
        allocator.free(block);
    }
}
