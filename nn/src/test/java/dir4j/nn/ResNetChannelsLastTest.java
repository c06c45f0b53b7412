package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.layers.BatchNorm2d;
import dir4j.nn.optim.Sgd;
import dir4j.nn.resnet.ResNet;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * ResNet's channels-last mode against the NCHW module with the same weights and non-trivial
 * batch-norm statistics (reduced width): the eval output (with and without grad), the
 * training-mode output, every parameter's gradient, the running statistics and batch counters
 * after one step, the parameters after one SGD step, and the frozen-BN recipe (running statistics
 * in training mode, nothing updated). On the CPU the channels-last convolutions and batch norm
 * are their own kernels, summing in other orders than the NCHW ones, so the two agree to float
 * rounding as the network propagates it: elementwise in eval and with frozen statistics, but in
 * training mode (batch statistics over as few as 8 values per channel at this input size) a
 * perturbation of one float ulp in the input moves the NCHW module's own output by up to 10×
 * (ResNet-18) and 200× (ResNet-50) the elementwise tolerance, so there each tensor is compared
 * norm-wise: ‖got − want‖ ≤ rtol·‖want‖ ({@link #TRAIN_NORM_RTOL}, {@link #TRAIN_GRAD_NORM_RTOL}).
 */
class ResNetChannelsLastTest {
    private static final double RTOL = 1e-5;
    private static final double ATOL = 1e-6;
    /**
     * Norm-wise relative tolerances for training mode with batch statistics (see the class doc):
     * outputs and running statistics (seen: up to 3e-5), and gradients and SGD changes, which
     * the NCHW module itself moves by up to 4.6 % under a one-ulp input perturbation (seen between
     * the layouts: up to 2.4 %, ResNet-18's stem weight; 1.2e-4 elsewhere).
     */
    private static final double TRAIN_NORM_RTOL = 1e-3;
    private static final double TRAIN_GRAD_NORM_RTOL = 0.1;

    /** Elementwise (frozen: running statistics) or, with batch statistics, norm-wise. */
    private static void assertCloseTraining(boolean frozen, String what, double[] want, double[] got, double rtol,
                                            double atol, double normRtol) {
        if (frozen) {
            NnFixtures.assertClose(what, want, got, rtol, atol);
            return;
        }
        assertEquals(want.length, got.length, what + " length");
        double dd = 0;
        double ww = 0;
        for (int i = 0; i < want.length; i++) {
            dd += (got[i] - want[i]) * (got[i] - want[i]);
            ww += want[i] * want[i];
        }
        double rel = Math.sqrt(dd) / Math.max(Math.sqrt(ww), 1e-30);
        assertTrue(Math.sqrt(dd) <= normRtol * Math.sqrt(ww) + atol, what + ": norm-wise relative difference "
                + rel + " over " + normRtol);
    }

    private static ResNet net(ResNet.Depth depth, boolean channelsLast) {
        ResNet net = new ResNet(depth, 8, 0, new Random(41));
        randomiseBatchNorms(net, 42);
        return net.channelsLast(channelsLast);
    }

    /** Batch-norm weights/variances in [0.5, 1.5), biases N(0, 0.1²), running means N(0, 0.2²). */
    private static void randomiseBatchNorms(Module net, long seed) {
        Random rng = new Random(seed);
        for (Map.Entry<String, Tensor> e : net.stateDict().entrySet()) {
            String k = e.getKey();
            Tensor t = e.getValue();
            if (!(k.contains("bn") || k.contains("downsample.1")) || t.dtype() != dir4j.engine.DType.FLOAT32) {
                continue;
            }
            float[] v = new float[(int) t.numel()];
            for (int i = 0; i < v.length; i++) {
                double g = rng.nextGaussian();
                double u = rng.nextDouble();
                v[i] = (float) (k.endsWith("running_mean") ? 0.2 * g : k.endsWith("bias") ? 0.1 * g : 0.5 + u);
            }
            try (Tensor src = Tensor.of(v, t.shape())) {
                t.backend().copy(src, t);
            }
        }
    }

    private static void freezeBatchNorms(Module net) {
        for (Module m : net.modules()) {
            if (m instanceof BatchNorm2d bn) {
                bn.freeze(true);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"RESNET18", "RESNET50"})
    void evalForwardMatchesTheNchwModuleWithAndWithoutGrad(ResNet.Depth depth) {
        try (ResNet ref = net(depth, false); ResNet cl = net(depth, true); MemoryScope scope = MemoryScope.open()) {
            assertTrue(cl.channelsLast() && !ref.channelsLast());
            ref.eval();
            cl.eval();
            Tensor x = Tensor.randn(new Random(43), 2, 3, 67, 45);
            Tensor want = ref.forward(x);
            NnFixtures.assertClose(depth + " eval", want.toDoubleArray(), cl.forward(x).toDoubleArray(), RTOL, ATOL);
            try (MemoryScope inference = MemoryScope.open(); var noGrad = Autograd.noGrad()) {
                long blocks = dir4j.engine.cpu.NativeMemory.liveBlocks();
                Tensor out = cl.forward(x);
                assertEquals(1, dir4j.engine.cpu.NativeMemory.liveBlocks() - blocks,
                        "native blocks held after a channels-last no-grad forward, besides its output");
                assertEquals(java.util.Arrays.toString(want.shape()), java.util.Arrays.toString(out.shape()));
                NnFixtures.assertClose(depth + " no-grad eval", want.toDoubleArray(), out.toDoubleArray(), RTOL, ATOL);
            }
        }
    }

    @ParameterizedTest(name = "{0} frozen BN={1}")
    @CsvSource({"RESNET18, false", "RESNET50, false", "RESNET18, true", "RESNET50, true"})
    void trainingStepMatchesTheNchwModule(ResNet.Depth depth, boolean frozen) {
        try (ResNet ref = net(depth, false); ResNet cl = net(depth, true); MemoryScope scope = MemoryScope.open()) {
            ref.train(true);
            cl.train(true);
            if (frozen) {
                freezeBatchNorms(ref);
                freezeBatchNorms(cl);
            }
            Map<String, double[]> before = new java.util.LinkedHashMap<>();
            cl.stateDict().forEach((k, t) -> before.put(k, t.toDoubleArray()));
            Tensor x = Tensor.randn(new Random(44), 2, 3, 64, 61);
            Tensor yr = ref.forward(x);
            Tensor yc = cl.forward(x);
            assertCloseTraining(frozen, depth + " train forward", yr.toDoubleArray(), yc.toDoubleArray(), RTOL, ATOL,
                    TRAIN_NORM_RTOL);
            Tensor up = Tensor.randn(new Random(45), yr.shape());
            yr.backward(up);
            yc.backward(up);
            Map<String, Tensor> pc = cl.namedParameters();
            for (var e : ref.namedParameters().entrySet()) {
                Tensor g = pc.get(e.getKey()).grad();
                assertNotNull(g, e.getKey() + ": no gradient in channels-last mode");
                assertEquals(java.util.Arrays.toString(e.getValue().shape()), java.util.Arrays.toString(g.shape()),
                        e.getKey() + ": gradient shape");
                assertCloseTraining(frozen, "grad " + e.getKey(), e.getValue().grad().toDoubleArray(),
                        g.toDoubleArray(), 1e-4, 1e-5, TRAIN_GRAD_NORM_RTOL);
            }
            Map<String, Tensor> bc = cl.namedBuffers();
            boolean moved = false;
            for (var e : ref.namedBuffers().entrySet()) {
                String k = e.getKey();
                double[] got = bc.get(k).toDoubleArray();
                assertCloseTraining(frozen, k + " after one step", e.getValue().toDoubleArray(), got, RTOL, ATOL,
                        TRAIN_NORM_RTOL);
                moved |= !java.util.Arrays.equals(before.get(k), got);
                if (k.endsWith("num_batches_tracked")) {
                    assertEquals(frozen ? 0.0 : 1.0, got[0], k);
                }
            }
            assertEquals(!frozen, moved, frozen ? "frozen statistics must not move" : "running statistics must move");
            try (Sgd sr = new Sgd(ref.parameters(), 0.1, 0.9, 1e-4, false);
                 Sgd sc = new Sgd(cl.parameters(), 0.1, 0.9, 1e-4, false)) {
                sr.step();
                sc.step();
            }
            for (var e : ref.namedParameters().entrySet()) {
                double[] p0 = before.get(e.getKey());
                double[] pr = e.getValue().toDoubleArray();
                double[] pl = pc.get(e.getKey()).toDoubleArray();
                assertFalse(java.util.Arrays.equals(p0, pl), e.getKey() + " did not move");
                for (int i = 0; i < p0.length; i++) {
                    pr[i] = p0[i] - pr[i];
                    pl[i] = p0[i] - pl[i];
                }
                assertCloseTraining(frozen, e.getKey() + ": change made by one SGD step", pr, pl, 1e-4, 1e-5,
                        TRAIN_GRAD_NORM_RTOL);
            }
        }
    }
}
