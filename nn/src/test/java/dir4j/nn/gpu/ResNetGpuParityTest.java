package dir4j.nn.gpu;

import static dir4j.nn.gpu.NnGpu.GPU;
import static dir4j.nn.gpu.NnGpu.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.gpu.NnGpu.Tol;
import dir4j.nn.optim.Sgd;
import dir4j.nn.resnet.ResNet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A reduced-width ResNet-50 (base width 4) with non-trivial batch-norm statistics, on the CPU and
 * as a copy moved to cuda:0 by Module.to, in strict float32 (TF32 off): the same eval output, the
 * same training-mode output, running statistics and gradients of every parameter, and the same
 * parameters after one SGD step (momentum, weight decay).
 */
@Tag("gpu")
class ResNetGpuParityTest {
    /** Eval forward through ~50 layers of float32 sums in a different order: 1e-4 relative plus 1e-4 of the largest |value|. */
    static final Tol FORWARD = new Tol(1e-4, 1e-4);
    /** Gradients through ~50 layers and batch statistics: 2e-3 relative plus 2e-3 of the largest |gradient| per tensor. */
    static final Tol GRADIENT = new Tol(2e-3, 2e-3);

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
        ResNet net = new ResNet(ResNet.Depth.RESNET50, 4, 0, new Random(11));
        NnGpu.randomiseBatchNorms(net, 12);
        return net;
    }

    @Test
    void movingToCudaReplacesEveryTensorButTheBatchCounterAndKeepsValues() {
        try (ResNet cpu = net(); ResNet gpu = net()) {
            Map<String, Tensor> before = gpu.stateDict();
            assertSame(gpu, gpu.to(GPU));
            Map<String, Tensor> after = gpu.stateDict();
            for (var e : cpu.stateDict().entrySet()) {
                String k = e.getKey();
                Tensor now = after.get(k);
                if (k.endsWith("num_batches_tracked")) {
                    assertEquals(Device.CPU, now.device(), k + " stays on the host");
                    assertSame(before.get(k), now, k);
                    continue;
                }
                assertEquals(GPU, now.device(), k);
                assertNotSame(before.get(k), now, k);
                assertTrue(before.get(k).isClosed(), k + ": the CPU tensor was not freed");
                assertEquals(java.util.Arrays.toString(e.getValue().toDoubleArray()),
                        java.util.Arrays.toString(now.toDoubleArray()), k + " changed value");
            }
            for (var e : gpu.namedParameters().entrySet()) {
                assertTrue(e.getValue().requiresGrad() && e.getValue().isLeaf(), e.getKey() + " is a leaf requiring grad");
            }
            assertEquals(GPU, gpu.device());
        }
    }

    @Test
    void evalForwardMatchesTheCpu() {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            gpu.to(GPU);
            cpu.eval();
            gpu.eval();
            Tensor x = Tensor.randn(new Random(13), 3, 3, 96, 64);
            Tensor yc = cpu.forward(x);
            Tensor yg = gpu.forward(x.to(GPU));
            assertClose("eval forward", FORWARD, yc, yg);
            try (var noGrad = Autograd.noGrad()) {
                assertClose("eval forward without grad (fused batch norms, in place)", FORWARD, cpu.forward(x),
                        gpu.forward(x.to(GPU)));
            }
        }
    }

    @Test
    void trainingStepMatchesTheCpu() {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            gpu.to(GPU);
            cpu.train(true);
            gpu.train(true);
            Tensor x = Tensor.randn(new Random(14), 4, 3, 64, 64);
            Tensor yc = cpu.forward(x);
            Tensor yg = gpu.forward(x.to(GPU));
            assertClose("train forward", FORWARD, yc, yg);
            Tensor up = Tensor.randn(new Random(15), yc.shape());
            yc.backward(up);
            yg.backward(up.to(GPU));
            NnGpu.assertGradientsAndBuffersMatch("NCHW", cpu, gpu, FORWARD, GRADIENT, 1.0);
            List<Tensor> cpuParams = new ArrayList<>(cpu.parameters());
            Map<String, double[]> start = new java.util.LinkedHashMap<>();
            cpu.namedParameters().forEach((k, t) -> start.put(k, t.toDoubleArray()));
            try (Sgd sc = new Sgd(cpuParams, 0.1, 0.9, 1e-4, false); Sgd sg = new Sgd(gpu.parameters(), 0.1, 0.9, 1e-4, false)) {
                sc.step();
                sg.step();
            }
            // the step's change p0 − p1 = lr·(g + wd·p0) carries the gradients' tolerance
            Map<String, Tensor> pg = gpu.namedParameters();
            for (var e : cpu.namedParameters().entrySet()) {
                double[] p0 = start.get(e.getKey());
                double[] dc = e.getValue().toDoubleArray();
                double[] dg = pg.get(e.getKey()).toDoubleArray();
                for (int i = 0; i < p0.length; i++) {
                    dc[i] = p0[i] - dc[i];
                    dg[i] = p0[i] - dg[i];
                }
                assertEquals(GPU, pg.get(e.getKey()).device(), e.getKey());
                NnGpu.assertClose(e.getKey() + ": change made by one SGD step", GRADIENT, dc, dg);
            }
            cpu.zeroGrad();
            gpu.zeroGrad();
        }
    }

}
