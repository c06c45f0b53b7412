package dir4j.nn.gpu;

import static dir4j.nn.gpu.NnGpu.GPU;
import static dir4j.nn.gpu.NnGpu.assertClose;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.Module;
import dir4j.nn.gpu.NnGpu.Tol;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.resnet.ResNet;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ResNet's channels-last mode on cuda:0 (cuDNN's NHWC convolutions and batch norms, pool.cu's
 * channels-last max pooling) against the NCHW module on the CPU with the same weights and
 * non-trivial batch-norm statistics (ResNet-50, base width 8), strict float32: eval output with
 * and without grad, training-mode output, every parameter's gradient and the running statistics
 * after one step, with batch statistics (gradients elementwise, or within 10% in norm where a
 * ReLU mask flips: NnGpu#assertGradientsClose) and with frozen BN (the multistage recipe).
 */
@Tag("gpu")
class ResNetChannelsLastGpuTest {
    static final Tol FORWARD = ResNetGpuParityTest.FORWARD;
    static final Tol GRADIENT = ResNetGpuParityTest.GRADIENT;

    @BeforeAll
    static void gpu() {
        NnGpu.requireGpu();
    }

    @BeforeEach
    @AfterEach
    void strict() {
        NnGpu.strictFloat32();
    }

    static ResNet net() {
        ResNet net = new ResNet(ResNet.Depth.RESNET50, 8, 0, new Random(51));
        NnGpu.randomiseBatchNorms(net, 52);
        return net;
    }

    private static void freeze(Module net) {
        for (Module m : net.modules()) {
            if (m instanceof BatchNorm2d bn) {
                bn.freeze(true);
            }
        }
    }

    @org.junit.jupiter.api.Test
    void evalForwardMatchesTheCpuNchwModule() {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            gpu.to(GPU);
            gpu.channelsLast(true);
            cpu.eval();
            gpu.eval();
            Tensor x = Tensor.randn(new Random(53), 3, 3, 96, 70);
            assertClose("channels-last eval forward", FORWARD, cpu.forward(x), gpu.forward(x.to(GPU)));
            try (var noGrad = Autograd.noGrad()) {
                assertClose("channels-last eval forward without grad", FORWARD, cpu.forward(x), gpu.forward(x.to(GPU)));
            }
        }
    }

    @ParameterizedTest(name = "frozen BN={0}")
    @ValueSource(booleans = {false, true})
    void trainingStepMatchesTheCpuNchwModule(boolean frozen) {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            gpu.to(GPU);
            gpu.channelsLast(true);
            cpu.train(true);
            gpu.train(true);
            if (frozen) {
                freeze(cpu);
                freeze(gpu);
            }
            Tensor x = Tensor.randn(new Random(54), 4, 3, 64, 64);
            Tensor yc = cpu.forward(x);
            Tensor yg = gpu.forward(x.to(GPU));
            assertClose("channels-last train forward", FORWARD, yc, yg);
            Tensor up = Tensor.randn(new Random(55), yc.shape());
            yc.backward(up);
            yg.backward(up.to(GPU));
            if (frozen) {
                NnGpu.assertGradientsAndBuffersMatch("channels-last", cpu, gpu, FORWARD, GRADIENT, 0.0);
                return;
            }
            // batch statistics over 64 values per channel in layer3: a ReLU mask may flip (NnGpu#assertGradientsClose)
            NnGpu.assertGradientsClose("channels-last", cpu, gpu, FORWARD, GRADIENT, 0.1, 1.0);
        }
    }

    @org.junit.jupiter.api.Test
    void tf32TrainingForwardStaysClose() {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            NnGpu.backend().setConvTf32(true);
            gpu.to(GPU);
            gpu.channelsLast(true);
            cpu.train(true);
            gpu.train(true);
            Tensor x = Tensor.randn(new Random(56), 4, 3, 64, 64);
            // TF32 products (10-bit mantissas) through ~50 layers, renormalised by each batch norm
            assertClose("channels-last train forward, TF32 convolutions", new Tol(5e-2, 5e-2), cpu.forward(x),
                    gpu.forward(x.to(GPU)));
        }
    }
}
