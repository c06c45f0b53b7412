package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backends;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.EngineInfo;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** On a machine without an NVIDIA driver, every way into CUDA fails with the reason and the way out. */
class CudaUnavailableTest {
    @BeforeEach
    void onlyWithoutADriver() {
        org.junit.jupiter.api.Assumptions.assumeFalse(NativeLibraries.driverPresent(),
                "libcuda.so.1 is present: CUDA's availability is covered by the gpu-tagged tests");
    }

    @Test
    void theCudaBackendSaysThereIsNoDriverAndSuggestsTheCpu() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.of(Device.cuda(0)));
        assertEquals("no backend for cuda:0: CUDA is not usable: no NVIDIA driver (libcuda.so.1 not found; searched "
                + NativeLibraries.linkerPath() + "); run with --device cpu", e.getMessage());
        // and again: a failed factory caches nothing
        assertThrows(IllegalStateException.class, () -> Backends.of(Device.cuda(1)));
    }

    @Test
    void movingATensorToTheGpuFailsTheSameWay() {
        try (Tensor t = Tensor.zeros(2, 3)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.to(Device.cuda(0)));
            assertTrue(e.getMessage().contains("no NVIDIA driver"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> Tensor.zeros(DType.FLOAT32, Device.cuda(0), 4));
        }
    }

    @Test
    void engineInfoReportsTheMissingDriverAsBefore() {
        assertEquals("not usable: no NVIDIA driver (libcuda.so.1 not found; searched " + NativeLibraries.linkerPath()
                + "); use --device cpu", EngineInfo.cudaStatus());
        assertTrue(NativeLibraries.linkerPath().contains("LD_LIBRARY_PATH=") && NativeLibraries.linkerPath()
                .contains("/etc/ld.so.cache"), NativeLibraries.linkerPath());
        assertTrue(EngineInfo.report().contains("cuda            not usable: no NVIDIA driver"));
    }
}
