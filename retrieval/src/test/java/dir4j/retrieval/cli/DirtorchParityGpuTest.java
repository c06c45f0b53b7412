package dir4j.retrieval.cli;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.cuda.CudaBackend;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dir4j extract --device cuda` against the descriptors naver's dirtorch made (see
 * {@link DirtorchParityTest}), at one scale and three, with TF32 off for the convolutions: within
 * 1e-4 of the reference's (cuDNN's algorithms sum in other orders than the CPU's).
 */
@Tag("gpu")
class DirtorchParityGpuTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void gpu() {
        dir4j.retrieval.Gpu.require();
    }

    @Test
    void extractOnCudaGivesTheReferencesDescriptors() throws IOException {
        Path fixtures = DirtorchParityTest.fixtures(dir);
        Path ckpt = DirtorchParityTest.checkpoint(fixtures, dir);
        Path list = DirtorchParityTest.imageList(fixtures, dir);
        CudaBackend be = (CudaBackend) Backends.of(Device.cuda(0));
        boolean convTf32 = be.convTf32();
        be.setConvTf32(false);
        try {
            DirtorchParityTest.compare(dir, fixtures, ckpt, list, "1", "single.npy", null, 1e-4f, "--device", "cuda");
            DirtorchParityTest.compare(dir, fixtures, ckpt, list, "1,0.7071,0.5", "multiscale.npy", "undetermined.npy",
                    1e-4f, "--device", "cuda");
        } finally {
            be.setConvTf32(convTf32);
        }
    }
}
