package dir4j.nn.gpu;

import static dir4j.nn.gpu.NnGpu.GPU;
import static dir4j.nn.gpu.NnGpu.assertClose;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.Module;
import dir4j.nn.gpu.NnGpu.Tol;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.optim.Adam;
import dir4j.nn.optim.Optimizer;
import dir4j.nn.optim.Sgd;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetDeviceInference;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
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
    /** Parameters and optimiser state after two steps on each device. */
    static final Tol STEPPED = new Tol(1e-3, 1e-4);

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

    static ResNet frozenResNet18() {
        ResNet net = new ResNet(ResNet.Depth.RESNET18, 8, 0, new Random(61));
        NnGpu.randomiseBatchNorms(net, 62);
        freeze(net); // running statistics: no ReLU-mask flips between devices
        return net;
    }

    /**
     * The CUDA paths of channels-last stored k x k weights as `dir4j train --device cuda` takes them:
     * switched on the CPU, moved to cuda:0 (Module.to's flat-span move), two optimiser steps on the
     * device (fused SGD over every tensor, or Adam) against the NCHW module on the CPU, the compiled
     * inference of the channels-last net, and the move back to the CPU (ResNet-18, width 8, frozen
     * batch norms).
     */
    @ParameterizedTest(name = "adam={0}")
    @ValueSource(booleans = {false, true})
    void movedChannelsLastNetStepsAsTheCpuNchwOne(boolean adam) {
        Function<java.util.List<Tensor>, Optimizer> make = ps -> adam ? Adam.adam(ps, 1e-3, 1e-2)
                : new Sgd(ps, 0.05, 0.9, 1e-3, false);
        try (ResNet cpu = frozenResNet18(); ResNet gpu = frozenResNet18(); MemoryScope scope = MemoryScope.open()) {
            gpu.channelsLast(true); // on the CPU, as TrainCommand does
            Map<String, long[]> strides = new java.util.LinkedHashMap<>();
            gpu.namedParameters().forEach((k, p) -> strides.put(k, p.strides()));
            gpu.to(GPU); // then the trainer moves it
            gpu.namedParameters().forEach((k, p) -> {
                assertEquals(GPU, p.device(), k);
                assertArrayEquals(strides.get(k), p.strides(), k + ": layout kept by the move");
            });
            assertFalse(gpu.namedParameters().get("layer1.0.conv1.weight").isContiguous());
            cpu.train(true);
            gpu.train(true);
            try (Optimizer oc = make.apply(cpu.parameters()); Optimizer og = make.apply(gpu.parameters())) {
                for (int step = 0; step < 2; step++) {
                    try (MemoryScope s = MemoryScope.open()) {
                        Tensor x = Tensor.randn(new Random(70 + step), 4, 3, 64, 64);
                        Tensor up = Tensor.randn(new Random(80 + step), 4, 64, 2, 2);
                        cpu.forward(x).backward(up);
                        gpu.forward(x.to(GPU)).backward(up.to(GPU));
                    }
                    gpu.namedParameters().forEach((k, p) -> assertTrue(p.sameDenseLayout(p.grad()) || p.isContiguous(),
                            k + ": gradient in the parameter's layout"));
                    oc.step();
                    og.step();
                    oc.zeroGrad();
                    og.zeroGrad();
                }
                Map<String, Tensor> pc = cpu.namedParameters();
                gpu.namedParameters().forEach((k, p) -> {
                    assertClose("after 2 steps " + k, STEPPED, pc.get(k), p);
                    og.state(p).forEach((name, st) -> {
                        assertTrue(st.laidOutAs(p), k + "." + name + " in the parameter's layout");
                        assertClose(k + "." + name, STEPPED, oc.state(pc.get(k)).get(name), st);
                    });
                });
            }
            cpu.eval();
            gpu.eval();
            try (var ng = Autograd.noGrad(); ResNetDeviceInference plan = ResNetDeviceInference.of(gpu)) {
                Tensor x = Tensor.randn(new Random(90), 2, 3, 64, 64);
                assertClose("compiled inference of the channels-last net", new NnGpu.Tol(1e-3, 1e-3),
                        cpu.features(x), plan.features(x.to(GPU)));
            }
            gpu.to(Device.CPU);
            Map<String, Tensor> pc = cpu.namedParameters();
            gpu.namedParameters().forEach((k, p) -> {
                assertArrayEquals(strides.get(k), p.strides(), k + ": layout kept on the way back");
                assertClose("back on the CPU " + k, STEPPED, pc.get(k).toDoubleArray(), p.toDoubleArray());
            });
        }
    }
}
