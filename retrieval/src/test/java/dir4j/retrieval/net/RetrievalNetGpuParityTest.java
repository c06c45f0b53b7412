package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.EngineInfo;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.CudaBackend;
import dir4j.nn.optim.Sgd;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A reduced-width ResNet-50-GeM-FC retrieval network (base width 4, 32-d descriptors) with
 * non-trivial batch-norm statistics, on the CPU and as a copy moved to cuda:0, strict float32:
 * the adopted backbone's tensors move with the network; eval descriptors, training-mode
 * descriptors and the gradients of every parameter (GeM's p and the FC included) and one SGD
 * step agree.
 */
@Tag("gpu")
class RetrievalNetGpuParityTest {
    static final Device GPU = Device.cuda(0);
    /** Descriptors (unit vectors): 1e-4 relative plus 1e-4 absolute. */
    static final double[] FORWARD = {1e-4, 1e-4};
    /** Gradients: 2e-3 relative plus 2e-3 of the largest |gradient| per tensor. */
    static final double[] GRADIENT = {2e-3, 2e-3};

    @BeforeAll
    static void gpu() {
        String status;
        try {
            status = EngineInfo.cudaStatus();
        } catch (RuntimeException | LinkageError e) {
            status = "status failed: " + e;
        }
        if (!status.startsWith("usable")) {
            if (Boolean.getBoolean("dir4j.gpu.required")) {
                fail("CUDA is not usable here: " + status);
            }
            Assumptions.abort("CUDA is not usable here: " + status);
        }
    }

    @BeforeEach
    @AfterEach
    void strictFloat32() {
        ((CudaBackend) Backends.of(GPU)).setTf32(false);
    }

    static RetrievalNet net() {
        RetrievalNet net = new RetrievalNet(new RetrievalNet.Options("resnet50", 32, "gem", 3, false, false, 4),
                new Random(21));
        Random rng = new Random(22);
        for (var e : net.stateDict().entrySet()) {
            String k = e.getKey();
            Tensor t = e.getValue();
            if (!(k.contains("bn") || k.contains("downsample.1")) || k.endsWith("num_batches_tracked")) {
                continue;
            }
            float[] v = new float[(int) t.numel()];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (k.endsWith("running_mean") ? 0.2 * rng.nextGaussian()
                        : k.endsWith("bias") ? 0.1 * rng.nextGaussian() : 0.5 + rng.nextDouble());
            }
            try (Tensor src = Tensor.of(v, t.shape())) {
                t.backend().copy(src, t);
            }
        }
        return net;
    }

    static void assertClose(String what, double[] tol, Tensor cpu, Tensor gpu) {
        assertArrayEquals(cpu.shape(), gpu.shape(), what + ": shape");
        assertEquals(Device.Kind.CUDA, gpu.device().kind(), what + ": the CUDA result's device");
        assertClose(what, tol, cpu.toDoubleArray(), gpu.toDoubleArray());
    }

    static void assertClose(String what, double[] tol, double[] e, double[] a) {
        double scale = 1;
        for (double v : e) {
            scale = Math.max(scale, Math.abs(v));
        }
        int bad = 0;
        int worst = -1;
        for (int i = 0; i < e.length; i++) {
            if (!(Math.abs(a[i] - e[i]) <= tol[0] * Math.abs(e[i]) + tol[1] * scale)) {
                bad++;
                if (worst < 0 || Math.abs(a[i] - e[i]) > Math.abs(a[worst] - e[worst])) {
                    worst = i;
                }
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + e.length + " values differ beyond rtol " + tol[0] + ", atol " + tol[1]
                    + "×" + scale + "; worst at " + worst + ": cuda " + a[worst] + ", cpu " + e[worst]);
        }
    }

    /** Eval-mode inference on cuda:0 runs the compiled channels-last trunk and gives the CPU module's descriptors. */
    @Test
    void inferenceRunsCompiledOnCudaAndMatchesTheCpuModule() {
        try (RetrievalNet cpu = net(); RetrievalNet gpu = net(); MemoryScope s = MemoryScope.open();
             var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            gpu.to(GPU);
            cpu.eval();
            gpu.eval();
            Tensor x = Tensor.randn(new Random(31), 3, 3, 80, 72);
            Tensor expected = cpu.forward(x);
            try (RetrievalNet.Inference inference = gpu.inference()) {
                assertTrue(inference.compiled(), "eval mode on CUDA compiles the backbone");
                assertClose("compiled inference on cuda vs the CPU module", FORWARD, expected,
                        inference.describe(x.to(GPU)));
                assertTrue(inference.compiled(), "the compiled backbone ran (no fall-back to the module: see stderr)");
            }
            gpu.train(true);
            try (RetrievalNet.Inference inference = gpu.inference()) {
                org.junit.jupiter.api.Assertions.assertFalse(inference.compiled(), "batch statistics: the module runs");
            }
        }
    }

    @Test
    void theAdoptedBackboneMovesWithTheNetwork() {
        try (RetrievalNet net = net()) {
            Map<String, Tensor> before = new LinkedHashMap<>(net.stateDict());
            net.to(GPU);
            for (var e : net.stateDict().entrySet()) {
                Device expected = e.getKey().endsWith("num_batches_tracked") ? Device.CPU : GPU;
                assertEquals(expected, e.getValue().device(), e.getKey());
                if (expected == GPU) {
                    assertTrue(before.get(e.getKey()).isClosed(), e.getKey() + ": the CPU copy was not freed");
                }
            }
            // the backbone reads its members through its own (adopted) modules: a forward on cuda:0 proves they moved
            try (MemoryScope s = MemoryScope.open()) {
                net.eval();
                Tensor d = net.forward(Tensor.randn(new Random(1), 2, 3, 64, 64).to(GPU));
                assertEquals(GPU, d.device());
                double[] v = d.toDoubleArray();
                for (int r = 0; r < 2; r++) {
                    double n = 0;
                    for (int c = 0; c < 32; c++) {
                        n += v[r * 32 + c] * v[r * 32 + c];
                    }
                    assertEquals(1.0, n, 1e-5, "descriptor " + r + " is a unit vector");
                }
            }
        }
    }

    @Test
    void descriptorsGradientsAndAStepMatchTheCpu() {
        try (RetrievalNet cpu = net(); RetrievalNet gpu = net(); MemoryScope scope = MemoryScope.open()) {
            gpu.to(GPU);
            Tensor x = Tensor.randn(new Random(23), 4, 3, 64, 96);
            cpu.eval();
            gpu.eval();
            assertClose("eval descriptors", FORWARD, cpu.forward(x), gpu.forward(x.to(GPU)));
            cpu.train(true);
            gpu.train(true);
            Tensor dc = cpu.forward(x);
            Tensor dg = gpu.forward(x.to(GPU));
            assertClose("train descriptors", FORWARD, dc, dg);
            Tensor up = Tensor.randn(new Random(24), dc.shape());
            dc.backward(up);
            dg.backward(up.to(GPU));
            Map<String, Tensor> pg = gpu.namedParameters();
            for (var e : cpu.namedParameters().entrySet()) {
                Tensor g = pg.get(e.getKey()).grad();
                assertTrue(g != null, e.getKey() + ": no gradient on CUDA");
                assertClose("grad " + e.getKey(), GRADIENT, e.getValue().grad(), g);
            }
            Map<String, double[]> start = new LinkedHashMap<>();
            cpu.namedParameters().forEach((k, t) -> start.put(k, t.toDoubleArray()));
            try (Sgd sc = new Sgd(cpu.parameters(), 0.1, 0.9, 1e-4, false);
                 Sgd sg = new Sgd(gpu.parameters(), 0.1, 0.9, 1e-4, false)) {
                sc.step();
                sg.step();
            }
            for (var e : cpu.namedParameters().entrySet()) {
                double[] p0 = start.get(e.getKey());
                double[] c = e.getValue().toDoubleArray();
                double[] g = pg.get(e.getKey()).toDoubleArray();
                for (int i = 0; i < p0.length; i++) {
                    c[i] = p0[i] - c[i];
                    g[i] = p0[i] - g[i];
                }
                assertClose(e.getKey() + ": change made by one SGD step", GRADIENT, c, g);
            }
            cpu.zeroGrad();
            gpu.zeroGrad();
        }
    }
}
