package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.cuda.CudaBackend;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j describe --device cuda` writes the CPU's descriptors (TF32 off for the comparison). */
@Tag("gpu")
class DescribeCommandGpuTest {
    @TempDir
    Path dir;

    @BeforeAll
    static void gpu() {
        dir4j.retrieval.Gpu.require();
    }

    @Test
    void theGpuDescribesAsTheCpuDoes() throws IOException {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);
        Path ckpt = dir.resolve("net.safetensors");
        Path input = dir.resolve("x.npy");
        try (RetrievalNet net = new RetrievalNet(o, new Random(2)); MemoryScope scope = MemoryScope.open()) {
            Safetensors.write(ckpt, net.stateDict(), Map.of("model_options", "{\"pooling\": \"gem\"}"));
            Npy.write(input, Tensor.randn(new Random(7), 5, 3, 40, 28));
        }
        CudaBackend be = (CudaBackend) Backends.of(Device.cuda(0));
        boolean convTf32 = be.convTf32();
        be.setConvTf32(false);
        try {
            Path cpu = dir.resolve("cpu.npy");
            Path gpu = dir.resolve("gpu.npy");
            Run a = run("describe", "--checkpoint", ckpt.toString(), "--input", input.toString(), "--out",
                    cpu.toString(), "--quiet");
            assertEquals(0, a.rc(), a.toString());
            Run b = run("describe", "--checkpoint", ckpt.toString(), "--input", input.toString(), "--out",
                    gpu.toString(), "--quiet", "--device", "cuda", "--batch-size", "2");
            assertEquals(0, b.rc(), b.toString());
            try (Tensor x = Npy.read(cpu); Tensor y = Npy.read(gpu)) {
                assertArrayEquals(x.shape(), y.shape());
                assertArrayEquals(x.toFloatArray(), y.toFloatArray(), 1e-4f, "unit descriptors, CPU vs CUDA");
            }
        } finally {
            be.setConvTf32(convTf32);
        }
    }
}
