package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.GPU;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The caching allocator on the device, the out-of-memory error, and an unsupported case's error. */
@Tag("gpu")
class CudaMemoryGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void freedTensorsAreReusedFromTheCache() {
        CudaBackend b = GpuParity.backend();
        try (MemoryScope s = MemoryScope.open()) {
            Tensor.zeros(DType.FLOAT32, GPU, 1000, 1000).close();
        }
        CachingAllocator.Stats before = b.memoryStats();
        try (Tensor t = Tensor.zeros(DType.FLOAT32, GPU, 1000, 1000)) {
            assertEquals(before.cacheHits() + 1, b.memoryStats().cacheHits(), "the same 4 MB bucket came from the cache");
            assertEquals(0f, t.toFloatArray()[123_456], "a reused block is zero-filled again");
        }
        b.emptyCache();
        assertEquals(0, b.memoryStats().cachedBytes());
    }

    @Test
    void anImpossibleAllocationNamesTheRequestAndTheDevice() {
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class,
                () -> Tensor.zeros(DType.FLOAT32, GPU, 1 << 30, 1 << 10)); // 4 TiB
        assertTrue(e.getMessage().startsWith("CUDA out of memory on cuda:0: cannot allocate 4.00 TiB"), e.getMessage());
        assertTrue(e.getMessage().contains("free of"), e.getMessage());
        try (Tensor ok = Tensor.zeros(DType.FLOAT32, GPU, 4)) {
            assertEquals(4, ok.toFloatArray().length, "the device works after a failed allocation");
        }
    }

    @Test
    void unsupportedCasesSaySo() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = Tensor.zeros(DType.FLOAT64, GPU, 1, 1, 4, 4);
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> NnOps.maxPool2d(x, 2, 2, 0));
            assertEquals("maxPool2d on CUDA takes float32, not float64", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.FLOAT32, Device.cuda(99), 1),
                    "a device that does not exist");
        }
    }
}
