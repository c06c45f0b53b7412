package dir4j.engine.cuda;

/** Raw device memory under the {@link CachingAllocator}: cuMemAlloc/cuMemFree on a GPU, a fake in tests. */
interface DeviceMemory {
    /** The address of a new block of {@code bytes}, or 0 when the device is out of memory. */
    long allocate(long bytes);

    /** Returns a block to the device. */
    void free(long address);

    /** Waits until no queued work can still use memory about to be freed. */
    void synchronize();

    /** Free and total bytes of the device, for error messages ("3.1 GiB free of 139.8 GiB"). */
    String describe();
}
