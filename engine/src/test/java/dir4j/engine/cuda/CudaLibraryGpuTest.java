package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ACCUMULATED;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.EngineInfo;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** What runs on cuBLAS and cuDNN: matrix products, convolutions, batch norm; and the status line naming them. */
@Tag("gpu")
class CudaLibraryGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @BeforeEach
    @AfterEach
    void strictFloat32Again() {
        GpuParity.backend().setTf32(false);
    }

    @Test
    void theStatusLineNamesTheDeviceDriverLibrariesAndKernels() {
        String s = EngineInfo.cudaStatus();
        System.out.println("cudaStatus: " + s);
        assertTrue(s.startsWith("usable: cuda:0 "), s);
        assertTrue(s.contains("; cuBLAS 1") && !s.contains("cuBLAS unavailable"), s);
        assertTrue(s.contains("; cuDNN 9.") && !s.contains("cuDNN unavailable"), s);
        assertTrue(!s.contains(" lacking "), "every bound symbol exists: " + s);
        assertTrue(s.contains("; kernels nvcc "), s);
        System.out.println("kernel load times: " + GpuParity.backend().loadKernels());
    }

    @Test
    void matrixProductsMatchInEveryOperandLayout() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor a = randn(1, 33, 65).requiresGrad(true);
            Tensor b = randn(2, 65, 17).requiresGrad(true);
            check("matmul", ACCUMULATED, ACCUMULATED, in -> in[0].matmul(in[1]), a, b);
            check("matmul with transposed operands", ACCUMULATED, ACCUMULATED,
                    in -> in[1].t().matmul(in[0].t()), a, b);
            Tensor batched = randn(3, 2, 3, 33, 65).requiresGrad(true);
            check("batched, b broadcast over the batch", ACCUMULATED, ACCUMULATED, in -> in[0].matmul(in[1]), batched, b);
            Tensor strided = randn(4, 33, 130).requiresGrad(true);
            check("a column-strided operand (copied first)", ACCUMULATED, ACCUMULATED,
                    in -> Ops.slice(in[0], 1, 0, 130).reshape(33, 65, 2).select(2, 0).matmul(in[1]), strided, b);
            Tensor d = randn(5, 256, 128).requiresGrad(true);
            check("gram (the AP loss's S = D·Dᵀ)", ACCUMULATED, ACCUMULATED, in -> Ops.gram(in[0]), d);
            check("linear", ACCUMULATED, ACCUMULATED, in -> NnOps.linear(in[0], in[1], in[2]), randn(6, 8, 64)
                    .requiresGrad(true), randn(7, 32, 64).requiresGrad(true), randn(8, 32).requiresGrad(true));
            check("float64 matmul", GpuParity.DOUBLE, GpuParity.DOUBLE, in -> in[0].matmul(in[1]),
                    Tensor.ofDoubles(randn(9, 60).toDoubleArray(), 6, 10).requiresGrad(true),
                    Tensor.ofDoubles(randn(10, 40).toDoubleArray(), 10, 4).requiresGrad(true));
            GpuParity.backend().setTf32(true);
            check("matmul in TF32", GpuParity.TF32, GpuParity.TF32, in -> in[0].matmul(in[1]), a, b);
        }
    }

    @Test
    void convolutionsMatchForwardAndBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(11, 2, 8, 17, 19).requiresGrad(true);
            Tensor w3 = randn(12, 16, 8, 3, 3).requiresGrad(true);
            Tensor bias = randn(13, 16).requiresGrad(true);
            check("conv 3x3 pad 1", ACCUMULATED, ACCUMULATED, in -> NnOps.conv2d(in[0], in[1], in[2], 1, 1, 1), x, w3,
                    bias);
            check("conv 3x3 stride 2 dilation 2", ACCUMULATED, ACCUMULATED,
                    in -> NnOps.conv2d(in[0], in[1], null, new ConvParams(2, 2, 2, 2, 2, 2)), x, w3);
            Tensor w1 = randn(14, 32, 8, 1, 1).requiresGrad(true);
            check("conv 1x1 stride 2", ACCUMULATED, ACCUMULATED, in -> NnOps.conv2d(in[0], in[1], null, 2, 0, 1), x, w1);
            Tensor img = randn(15, 2, 3, 64, 48).requiresGrad(true);
            Tensor w7 = randn(16, 8, 3, 7, 7).requiresGrad(true);
            check("the ResNet stem: 7x7 stride 2 pad 3", ACCUMULATED, ACCUMULATED,
                    in -> NnOps.conv2d(in[0], in[1], null, 2, 3, 1), img, w7);
            System.out.println("cuDNN choices:\n" + GpuParity.backend().convolutionChoices());
        }
    }

    @Test
    void batchNormMatchesInTrainingAndInEval() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(21, 4, 6, 9, 7).requiresGrad(true);
            Tensor gamma = randn(22, 6).requiresGrad(true);
            Tensor beta = randn(23, 6).requiresGrad(true);
            Tensor rmC = randn(24, 6);
            Tensor rvC = Ops.abs(randn(25, 6)).add(0.5);
            Tensor rmG = rmC.to(GPU);
            Tensor rvG = rvC.to(GPU);
            check("batch norm, training", ACCUMULATED, ACCUMULATED, in -> NnOps.batchNorm2d(in[0], in[1], in[2],
                    in[0].device().equals(GPU) ? rmG : rmC, in[0].device().equals(GPU) ? rvG : rvC, true, 0.1, 1e-5),
                    x, gamma, beta);
            GpuParity.assertClose("running mean after training", ACCUMULATED, rmC, rmG);
            GpuParity.assertClose("running variance (unbiased) after training", ACCUMULATED, rvC, rvG);
            check("batch norm, eval", ACCUMULATED, ACCUMULATED, in -> NnOps.batchNorm2d(in[0], in[1], in[2],
                    in[0].device().equals(GPU) ? rmG : rmC, in[0].device().equals(GPU) ? rvG : rvC, false, 0.1, 1e-5),
                    x, gamma, beta);
        }
    }
}
