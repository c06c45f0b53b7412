package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A missing native library is an error that names it, every place searched, and what to do. */
class NativeLibrariesTest {
    @Test
    void aMissingLibraryNamesEverySonameAndFolderSearched(@TempDir Path dir) {
        List<Path> folders = List.of(Path.of("/nonexistent/cuda/lib64"), dir);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> NativeLibraries.open("Test Library",
                List.of("libdir4j-missing.so.7", "libdir4j-missing.so.6"), folders, s -> List.of(),
                "install it or run with --device cpu"));
        String m = e.getMessage();
        assertTrue(m.startsWith("cannot open libdir4j-missing.so.7 or libdir4j-missing.so.6 (Test Library)"), m);
        assertTrue(m.contains("the dynamic linker's path (LD_LIBRARY_PATH="), m);
        assertTrue(m.contains("/nonexistent/cuda/lib64"), m);
        assertTrue(m.contains(dir.toString()), m);
        assertTrue(m.endsWith("install it or run with --device cpu"), m);
    }

    @Test
    void aFileThatDoesNotLoadIsNamedWithTheLoadersReason(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("libdir4j-broken.so.1"), "not an ELF file");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> NativeLibraries.open("Broken",
                List.of("libdir4j-broken.so.1"), List.of(dir), s -> List.of(), "reinstall it"));
        assertTrue(e.getMessage().contains(dir.resolve("libdir4j-broken.so.1") + " exists but did not load"),
                e.getMessage());
    }

    @Test
    void theSearchCoversCudaHomeAndTheUsualCudaFolders() {
        List<Path> f = NativeLibraries.searchFolders(Map.of("CUDA_HOME", "/opt/cuda-13.0"));
        assertEquals(List.of(Path.of("/opt/cuda-13.0/lib64"), Path.of("/opt/cuda-13.0/targets/x86_64-linux/lib"),
                Path.of("/usr/local/cuda/lib64"), Path.of("/usr/local/cuda/targets/x86_64-linux/lib"),
                Path.of("/usr/lib/x86_64-linux-gnu")), f);
        assertEquals(Path.of("/usr/local/cuda/lib64"), NativeLibraries.searchFolders(Map.of()).get(0));
    }

    @Test
    void cublasAndCudnnSayWhichLibraryIsMissingAndWhere() {
        for (var lib : List.<Runnable>of(Cublas::library, Cudnn::library)) {
            String m;
            try {
                lib.run();
                continue; // installed here: nothing to check
            } catch (IllegalStateException e) {
                m = e.getMessage();
            }
            assertTrue(m.contains("libcublas.so.13 or libcublas.so.12 (cuBLAS)") || m.contains("libcudnn.so.9 (cuDNN 9)"),
                    m);
            assertTrue(m.contains("/usr/local/cuda/lib64") && m.contains("/usr/local/cuda/targets/x86_64-linux/lib"), m);
            assertTrue(m.contains("or run with --device cpu"), m);
        }
    }

    @Test
    void theDriverProbeAgreesWithTheDynamicLinker() {
        Assumptions.assumeFalse(NativeLibraries.driverPresent(), "libcuda.so.1 is present: the GPU tests cover this");
        CudaDriver.Availability a = CudaDriver.availability();
        assertEquals("no NVIDIA driver (libcuda.so.1 not found; searched " + NativeLibraries.linkerPath() + ")",
                a.reason());
        assertEquals(0, a.devices());
    }
}
