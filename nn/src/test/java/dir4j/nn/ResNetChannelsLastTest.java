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
 * in training mode, nothing updated). On the CPU the channels-last ops are the NCHW ones on
 * permuted copies, so the two must agree to float rounding.
 */
class ResNetChannelsLastTest {
    private static final double RTOL = 1e-5;
    private static final double ATOL = 1e-6;

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

    /**
     * Channels-last mode stores the k×k weights past the stem channels-last (same values), their
     * gradients and SGD's momentum buffers land in the same layout (no copies), a checkpoint
     * written from it loads into an NCHW network with the same values, and switching back
     * restores row-major weights.
     */
    @org.junit.jupiter.api.Test
    void channelsLastModeStoresKxKWeightsGradientsAndStateChannelsLast(@org.junit.jupiter.api.io.TempDir
            java.nio.file.Path dir) throws java.io.IOException {
        try (ResNet ref = net(ResNet.Depth.RESNET18, false); ResNet cl = net(ResNet.Depth.RESNET18, true);
             MemoryScope scope = MemoryScope.open()) {
            int kxk = 0;
            for (var e : cl.namedParameters().entrySet()) {
                Tensor p = e.getValue();
                boolean expect = p.rank() == 4 && p.shape(2) * p.shape(3) > 1 && !e.getKey().equals("conv1.weight");
                kxk += expect ? 1 : 0;
                assertEquals(expect, !p.isContiguous(), e.getKey() + " stored channels-last");
                assertTrue(p.isDense(), e.getKey());
                assertTrue(java.util.Arrays.equals(ref.namedParameters().get(e.getKey()).toDoubleArray(),
                        p.toDoubleArray()), e.getKey() + ": the same values");
            }
            assertEquals(16, kxk, "ResNet-18's 3×3 convolutions past the stem");
            cl.train(true);
            cl.forward(Tensor.randn(new Random(47), 2, 3, 64, 64)).sum().backward();
            try (Sgd sgd = new Sgd(cl.parameters(), 0.1, 0.9, 1e-4, false)) {
                sgd.step();
                for (var e : cl.namedParameters().entrySet()) {
                    Tensor p = e.getValue();
                    assertTrue(p.sameDenseLayout(p.grad()), e.getKey() + ": gradient layout");
                    Tensor buf = sgd.state(p).get("momentum_buffer");
                    assertTrue(p.sameDenseLayout(buf), e.getKey() + ": momentum layout");
                }
            }
            java.nio.file.Path file = dir.resolve("cl.safetensors");
            dir4j.nn.io.Safetensors.write(file, cl.stateDict(), Map.of());
            Map<String, double[]> trained = new java.util.LinkedHashMap<>();
            cl.stateDict().forEach((k, t) -> trained.put(k, t.toDoubleArray()));
            ref.loadStateDict(dir4j.nn.io.Safetensors.read(file).tensors(), true);
            ref.stateDict().forEach((k, t) -> assertTrue(java.util.Arrays.equals(trained.get(k), t.toDoubleArray()),
                    k + ": read back into the NCHW network"));
            cl.channelsLast(false);
            cl.namedParameters().forEach((k, p) -> {
                assertTrue(p.isContiguous(), k + " row-major again");
                assertTrue(java.util.Arrays.equals(trained.get(k), p.toDoubleArray()), k + ": the same values");
            });
        }
    }

    /** One training step's observable results: the output, gradients, buffers and SGD's changes. */
    private record Step(double[] out, Map<String, double[]> grads, Map<String, double[]> buffers,
                        Map<String, double[]> changes, Map<String, double[]> before, Map<String, double[]> beforeBuffers) {
        static Step run(ResNet net, boolean frozen, Tensor x, Tensor up) {
            net.train(true);
            if (frozen) {
                freezeBatchNorms(net);
            }
            Map<String, double[]> before = new java.util.LinkedHashMap<>();
            net.namedParameters().forEach((k, t) -> before.put(k, t.toDoubleArray()));
            Map<String, double[]> beforeBuffers = new java.util.LinkedHashMap<>();
            net.namedBuffers().forEach((k, t) -> beforeBuffers.put(k, t.toDoubleArray()));
            Tensor y = net.forward(x);
            double[] out = y.toDoubleArray();
            y.backward(up);
            Map<String, double[]> grads = new java.util.LinkedHashMap<>();
            for (var e : net.namedParameters().entrySet()) {
                Tensor g = e.getValue().grad();
                assertNotNull(g, e.getKey() + ": no gradient");
                assertEquals(java.util.Arrays.toString(e.getValue().shape()), java.util.Arrays.toString(g.shape()),
                        e.getKey() + ": gradient shape");
                grads.put(e.getKey(), g.toDoubleArray());
            }
            Map<String, double[]> buffers = new java.util.LinkedHashMap<>();
            net.namedBuffers().forEach((k, t) -> buffers.put(k, t.toDoubleArray()));
            try (Sgd sgd = new Sgd(net.parameters(), 0.1, 0.9, 1e-4, false)) {
                sgd.step();
            }
            Map<String, double[]> changes = new java.util.LinkedHashMap<>();
            for (var e : net.namedParameters().entrySet()) {
                double[] p0 = before.get(e.getKey());
                double[] p1 = e.getValue().toDoubleArray();
                assertFalse(java.util.Arrays.equals(p0, p1), e.getKey() + " did not move");
                for (int i = 0; i < p0.length; i++) {
                    p1[i] = p0[i] - p1[i];
                }
                changes.put(e.getKey(), p1);
            }
            return new Step(out, grads, buffers, changes, before, beforeBuffers);
        }
    }

    private static double maxAbsDiff(double[] a, double[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    /**
     * got is as close to want as float32 allows for this computation: within 4× how far want moves
     * when the network's input moves by float rounding (noise: the same NCHW step on an input with
     * relative perturbations of 1e-7), plus 1e-5 of want's scale. Training-mode batch norm over a
     * few values per channel amplifies rounding (here up to a few per cent of an output for a
     * 1e-7 input change in ResNet-50), so a fixed tolerance cannot tell a bug from another
     * summation order; this can, as an error far above the network's own noise floor.
     */
    private static void assertWithinNoise(String what, double[] want, double[] got, double[] noise) {
        assertEquals(want.length, got.length, what + ": length");
        double scale = 0;
        for (double v : want) {
            scale = Math.max(scale, Math.abs(v));
        }
        double floor = maxAbsDiff(want, noise);
        double err = maxAbsDiff(want, got);
        assertTrue(err <= 4 * floor + 1e-5 * scale, what + ": max difference " + err + " against a noise floor of "
                + floor + " (scale " + scale + ")");
    }

    @ParameterizedTest(name = "{0} frozen BN={1}")
    @CsvSource({"RESNET18, false", "RESNET50, false", "RESNET18, true", "RESNET50, true"})
    void trainingStepMatchesTheNchwModule(ResNet.Depth depth, boolean frozen) {
        try (ResNet ref = net(depth, false); ResNet cl = net(depth, true); ResNet noisy = net(depth, false);
             MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(new Random(44), 2, 3, 64, 61);
            Tensor up = Tensor.randn(new Random(45), 2, ref.featureChannels(), 2, 2); // 64x61 / 32 -> 2x2
            Step r = Step.run(ref, frozen, x, up);
            Step c = Step.run(cl, frozen, x, up);
            assertTrue(cl.channelsLast() && !ref.channelsLast());
            for (var e : r.buffers().entrySet()) {
                String k = e.getKey();
                double[] got = c.buffers().get(k);
                if (k.endsWith("num_batches_tracked")) {
                    assertEquals(frozen ? 0.0 : 1.0, got[0], k);
                }
            }
            boolean moved = r.buffers().entrySet().stream()
                    .anyMatch(e -> !java.util.Arrays.equals(r.beforeBuffers().get(e.getKey()), c.buffers().get(e.getKey())));
            assertEquals(!frozen, moved, frozen ? "frozen statistics must not move" : "running statistics must move");
            if (frozen) {
                // running statistics: well conditioned, so within float rounding of the NCHW module
                NnFixtures.assertClose(depth + " train forward", r.out(), c.out(), RTOL, ATOL);
                r.grads().forEach((k, g) -> NnFixtures.assertClose("grad " + k, g, c.grads().get(k), 1e-4, 1e-5));
                r.buffers().forEach((k, b) -> NnFixtures.assertClose(k + " after one step", b, c.buffers().get(k),
                        RTOL, ATOL));
                r.changes().forEach((k, d) -> NnFixtures.assertClose(k + ": change made by one SGD step", d,
                        c.changes().get(k), 1e-4, 1e-5));
                return;
            }
            float[] xv = x.toFloatArray();
            Random rng = new Random(46);
            for (int i = 0; i < xv.length; i++) {
                xv[i] *= (float) (1 + 1e-7 * rng.nextGaussian());
            }
            Step n = Step.run(noisy, frozen, Tensor.of(xv, x.shape()), up);
            assertWithinNoise(depth + " train forward", r.out(), c.out(), n.out());
            r.grads().forEach((k, g) -> assertWithinNoise("grad " + k, g, c.grads().get(k), n.grads().get(k)));
            r.buffers().forEach((k, b) -> assertWithinNoise(k + " after one step", b, c.buffers().get(k),
                    n.buffers().get(k)));
            r.changes().forEach((k, d) -> assertWithinNoise(k + ": change made by one SGD step", d,
                    c.changes().get(k), n.changes().get(k)));
        }
    }
}
