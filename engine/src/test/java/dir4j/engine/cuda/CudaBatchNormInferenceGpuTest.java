package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.assertClose;
import static dir4j.engine.cuda.GpuParity.onGpu;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The fused inference batch norm (+ residual, + ReLU) of batchnorm.cu, and the training-time
 * batch norm + residual + ReLU node (NnOps.batchNorm2dAct: Backend's default composition on CUDA,
 * fused kernels on the CPU), against the CPU backend.
 */
@Tag("gpu")
class CudaBatchNormInferenceGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void fusedInferenceMatchesTheCpuWithAndWithoutResidualAndRelu() {
        try (MemoryScope s = MemoryScope.open()) {
            // 7x7 planes (ResNet's layer4 at 224): channel boundaries fall inside any vector width
            Tensor x = randn(1, 3, 6, 7, 7);
            Tensor res = randn(2, 3, 6, 7, 7);
            Tensor gamma = randn(3, 6);
            Tensor beta = randn(4, 6);
            Tensor mean = randn(5, 6);
            Tensor var = randn(6, 6).mul(randn(6, 6)).add(0.1);
            for (boolean withResidual : new boolean[] {false, true}) {
                for (boolean relu : new boolean[] {false, true}) {
                    String what = "bn inference residual=" + withResidual + " relu=" + relu;
                    Tensor cpu = NnOps.batchNorm2dInference(x, gamma, beta, mean, var, 1e-5,
                            withResidual ? res : null, relu, false);
                    Tensor gpu = NnOps.batchNorm2dInference(onGpu(x), onGpu(gamma), onGpu(beta), onGpu(mean),
                            onGpu(var), 1e-5, withResidual ? onGpu(res) : null, relu, false);
                    assertClose(what, ELEMENTWISE, cpu, gpu);
                }
            }
            // in place over a temporary, and NaN passes through the ReLU as on the CPU
            Tensor xn = randn(7, 2, 5, 3, 3);
            xn.backend().fill(xn.slice(1, 2, 3), Double.NaN);
            Tensor g5 = randn(8, 5);
            Tensor b5 = randn(9, 5);
            Tensor m5 = randn(10, 5);
            Tensor v5 = randn(11, 5).mul(randn(11, 5)).add(0.5);
            Tensor cpu = NnOps.batchNorm2dInference(xn, g5, b5, m5, v5, 1e-5, null, true, false);
            Tensor tmp = onGpu(xn);
            Tensor gpu = NnOps.batchNorm2dInference(tmp, onGpu(g5), onGpu(b5), onGpu(m5), onGpu(v5), 1e-5, null,
                    true, true);
            assertSame(tmp, gpu, "in place returns the input");
            assertClose("bn inference in place with NaN", ELEMENTWISE, cpu, gpu);
            assertTrue(Double.isNaN(gpu.toDoubleArray()[2 * 9]), "NaN survives the ReLU");
            assertTrue(gpu.device().equals(GPU));
        }
    }

    @Test
    void batchNormActForwardAndBackwardMatchTheCpuInBothModes() {
        for (boolean training : new boolean[] {true, false}) {
            for (boolean withResidual : new boolean[] {false, true}) {
                for (boolean relu : new boolean[] {false, true}) {
                    String what = "batchNorm2dAct training=" + training + " residual=" + withResidual + " relu=" + relu;
                    Tensor x = randn(21, 3, 6, 7, 9).requiresGrad(true);
                    Tensor gamma = randn(22, 6).requiresGrad(true);
                    Tensor beta = randn(23, 6).requiresGrad(true);
                    Tensor[] inputs = withResidual
                            ? new Tensor[] {x, gamma, beta, randn(24, 3, 6, 7, 9).requiresGrad(true)}
                            : new Tensor[] {x, gamma, beta};
                    GpuParity.check(what, ELEMENTWISE, GpuParity.ACCUMULATED, t -> {
                        // running statistics are leaves without grad, fresh per device
                        Tensor rm = t[0].device().equals(GPU) ? onGpu(randn(25, 6)) : randn(25, 6);
                        Tensor rv = (t[0].device().equals(GPU) ? onGpu(randn(26, 6)) : randn(26, 6)).mul(0.1).exp();
                        return NnOps.batchNorm2dAct(t[0], t[1], t[2], rm, rv, training, 0.1, 1e-5,
                                withResidual ? t[3] : null, relu);
                    }, inputs);
                }
            }
        }
    }
}
