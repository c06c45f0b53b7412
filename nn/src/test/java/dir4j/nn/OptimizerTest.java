package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertFalse;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.optim.Adam;
import dir4j.nn.optim.GradClip;
import dir4j.nn.optim.LrSchedule;
import dir4j.nn.optim.Optimizer;
import dir4j.nn.optim.Sgd;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

/** Optimisers and schedules step for step against torch.optim (tests/fixtures/make_nn_fixtures.py). */
class OptimizerTest {

    private static void check(String name, Function<List<Tensor>, Optimizer> make) {
        Tensor p0 = NnFixtures.npy("optim_" + name + "/p0.npy");
        double[] grads = NnFixtures.npyValues("optim_" + name + "/grads.npy");
        double[] expected = NnFixtures.npyValues("optim_" + name + "/params.npy");
        int n = (int) p0.numel();
        int steps = grads.length / n;
        Tensor p = Tensor.of(p0.toFloatArray(), n).requiresGrad(true);
        try (Optimizer opt = make.apply(List.of(p))) {
            for (int t = 0; t < steps; t++) {
                float[] g = new float[n];
                for (int i = 0; i < n; i++) {
                    g[i] = (float) grads[t * n + i];
                }
                p.setGrad(Tensor.of(g, n));
                opt.step();
                double[] want = java.util.Arrays.copyOfRange(expected, t * n, (t + 1) * n);
                NnFixtures.assertClose(name + " step " + (t + 1), want, p.toDoubleArray(), 1e-5, 1e-6);
            }
        } finally {
            p.close();
            p0.close();
        }
    }

    @Test
    void sgdWithMomentumAndWeightDecayMatchesTorch() {
        check("sgd_momentum_wd", ps -> new Sgd(ps, 0.1, 0.9, 0.01, false));
    }

    @Test
    void sgdNesterovMatchesTorch() {
        check("sgd_nesterov", ps -> new Sgd(ps, 0.05, 0.8, 0, true));
    }

    @Test
    void plainSgdMatchesTorch() {
        check("sgd_plain", ps -> new Sgd(ps, 0.2, 0, 0, false));
    }

    /**
     * One Sgd over several parameters (the multi-tensor step, Backend#sgdSteps) gives each the
     * values of the backend's per-parameter step with the momentum buffer kept by hand (a new
     * buffer and the first-step rule on a parameter's first gradient), bit for bit, also when a
     * parameter gets its first gradient a step later than the others or has none on a step.
     */
    @Test
    void sgdOverSeveralParametersStepsEachAsTheSingleStepWithItsOwnBuffer() {
        try (MemoryScope scope = MemoryScope.open()) { // parameters, references, buffers
            java.util.Random r = new java.util.Random(5);
            int[] sizes = {7, 1, 300};
            // dampening: a first step (b = g) differs from a later one on a zero buffer (b = 0.7·g)
            dir4j.engine.Backend.SgdStep h = new dir4j.engine.Backend.SgdStep(0.1, 0.9, 0.3, 0.01, false);
            List<Tensor> params = new java.util.ArrayList<>();
            List<Tensor> ref = new java.util.ArrayList<>();
            Tensor[] buffers = new Tensor[sizes.length];
            for (int n : sizes) {
                float[] init = Tensor.randn(r, n).toFloatArray();
                params.add(Tensor.of(init, n).requiresGrad(true)); // two storages
                ref.add(Tensor.of(init, n));
            }
            try (Optimizer sgd = new Sgd(params, h.lr(), h.momentum(), h.dampening(), h.weightDecay(), h.nesterov())) {
                for (int t = 0; t < 4; t++) {
                    for (int i = 0; i < sizes.length; i++) {
                        boolean has = !(i == 2 && t == 0) && !(i == 0 && t == 2);
                        params.get(i).zeroGrad();
                        if (has) {
                            try (Tensor g = Tensor.randn(r, sizes[i])) {
                                params.get(i).setGrad(Tensor.of(g.toFloatArray(), sizes[i]));
                                boolean first = buffers[i] == null;
                                if (first) {
                                    buffers[i] = Tensor.zeros(sizes[i]);
                                }
                                ref.get(i).backend().sgdStep(ref.get(i), g, buffers[i], first, h);
                            }
                        }
                    }
                    sgd.step();
                    for (int i = 0; i < sizes.length; i++) {
                        org.junit.jupiter.api.Assertions.assertArrayEquals(ref.get(i).toFloatArray(),
                                params.get(i).toFloatArray(), "parameter " + i + " after step " + (t + 1));
                    }
                }
            }
        }
    }

    /**
     * A parameter stored channels-last (NCHW shape, NHWC strides) given a plain contiguous
     * gradient (a user's setGrad): the fused steps run over flat spans, so the gradient must be
     * laid out as the parameter first; the values equal those of the same step on contiguous
     * tensors, element by logical element, for SGD (one and several parameters) and Adam.
     */
    @Test
    void aGradientInAnotherLayoutThanItsParameterStepsByLogicalElement() {
        int[] shape = {2, 3, 4, 5};
        java.util.Random r = new java.util.Random(9);
        List<Function<List<Tensor>, Optimizer>> makers = List.of(
                ps -> new Sgd(ps, 0.1, 0.9, 0.01, false),
                ps -> Adam.adam(ps, 0.01, 0.1));
        for (Function<List<Tensor>, Optimizer> make : makers) {
            for (int params = 1; params <= 2; params++) {
                try (MemoryScope scope = MemoryScope.open()) {
                    List<Tensor> cl = new java.util.ArrayList<>();
                    List<Tensor> plain = new java.util.ArrayList<>();
                    for (int i = 0; i < params; i++) {
                        Tensor init = Tensor.randn(r, shape);
                        Tensor nhwc = dir4j.engine.Ops.cloneDetached(init.permute(0, 2, 3, 1)).permute(0, 3, 1, 2);
                        assertFalse(nhwc.isContiguous(), "a channels-last parameter");
                        cl.add(nhwc.requiresGrad(true));
                        plain.add(dir4j.engine.Ops.cloneDetached(init).requiresGrad(true));
                    }
                    try (Optimizer a = make.apply(cl); Optimizer b = make.apply(plain)) {
                        for (int t = 0; t < 3; t++) {
                            for (int i = 0; i < params; i++) {
                                float[] g = Tensor.randn(r, shape).toFloatArray();
                                cl.get(i).setGrad(Tensor.of(g, shape));
                                plain.get(i).setGrad(Tensor.of(g, shape));
                            }
                            a.step();
                            b.step();
                            for (int i = 0; i < params; i++) {
                                org.junit.jupiter.api.Assertions.assertArrayEquals(plain.get(i).toFloatArray(),
                                        cl.get(i).toFloatArray(), a.getClass().getSimpleName() + ", " + params
                                                + " parameter(s), step " + (t + 1) + ", parameter " + i);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void adamWithL2WeightDecayMatchesTorch() {
        check("adam_wd", ps -> Adam.adam(ps, 0.01, 0.1));
    }

    @Test
    void adamWMatchesTorch() {
        check("adamw", ps -> Adam.adamW(ps, 0.01, 0.1));
    }

    @Test
    void schedulesMatchTorchLrSchedulers() {
        assertSchedule("schedule_step", LrSchedule.step(0.1, 3, 0.5));
        assertSchedule("schedule_exponential", LrSchedule.exponential(0.1, 0.9));
        assertSchedule("schedule_cosine", LrSchedule.cosine(0.1, 10, 0.001));
    }

    private static void assertSchedule(String file, LrSchedule s) {
        double[] want = NnFixtures.npyValues(file + ".npy");
        double[] got = new double[want.length];
        for (int i = 0; i < got.length; i++) {
            got[i] = s.lr(i);
        }
        NnFixtures.assertClose(file, want, got, 1e-9, 1e-12);
    }

    /** The arguments at the edges of what the optimisers and schedules accept. */
    @Test
    void argumentsAtTheEdgesAreAcceptedOrRefusedByName() {
        Assertions.assertThrows(IllegalArgumentException.class, () -> LrSchedule.step(0.1, 0, 0.5));
        Assertions.assertEquals(0.1, LrSchedule.step(0.1, 1, 0.5).lr(0), 0);
        Assertions.assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(0.1, 0, 0));
        Assertions.assertEquals(0.0, LrSchedule.cosine(0.1, 1, 0).lr(1), 1e-15);
        LrSchedule c = LrSchedule.constant(0.4);
        Assertions.assertSame(c, c.withWarmup(0), "no warm-up: the schedule itself");
        try (MemoryScope scope = MemoryScope.open()) {
            List<Tensor> ps = List.of(Tensor.zeros(2).requiresGrad(true));
            for (double[] betas : new double[][] {{1, 0.9}, {0.9, 1}, {-0.1, 0.9}}) {
                IllegalArgumentException e = Assertions.assertThrows(IllegalArgumentException.class,
                        () -> new Adam(ps, 1e-3, betas[0], betas[1], 1e-8, 0, false));
                Assertions.assertTrue(e.getMessage().contains("betas"), e.getMessage());
            }
            new Adam(ps, 1e-3, 0, 0, 1e-8, 0, false).close(); // 0 is a valid beta
            Assertions.assertThrows(IllegalArgumentException.class, () -> new Sgd(ps, 0.1, 0, 0, 0, true),
                    "Nesterov without momentum");
            new Sgd(ps, 0.1, 0.5, 0, 0, true).close();
        }
    }

    @Test
    void warmupRampsLinearlyToTheSchedule() {
        LrSchedule s = LrSchedule.constant(0.4).withWarmup(4);
        Assertions.assertArrayEquals(new double[] {0.1, 0.2, 0.3, 0.4, 0.4},
                new double[] {s.lr(0), s.lr(1), s.lr(2), s.lr(3), s.lr(4)}, 1e-12);
    }

    @Test
    void clipNormScalesAllGradientsByTheGlobalNorm() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor a = Tensor.zeros(2).requiresGrad(true);
            Tensor b = Tensor.zeros(1).requiresGrad(true);
            a.setGrad(Tensor.of(new float[] {3, 0}, 2));
            b.setGrad(Tensor.of(new float[] {4}, 1));
            double norm = GradClip.clipNorm(List.of(a, b), 1.0);
            Assertions.assertEquals(5.0, norm, 1e-9);
            Assertions.assertArrayEquals(new float[] {0.6f, 0f}, a.grad().toFloatArray(), 1e-6f);
            Assertions.assertArrayEquals(new float[] {0.8f}, b.grad().toFloatArray(), 1e-6f);
            a.close();
            b.close();
        }
    }

    /**
     * The global norm over float32 and float64 gradients, one of them channels-last strided and
     * one parameter without a gradient, against the norm summed here in double; a huge float32
     * gradient still has a finite norm; a NaN one is an error naming its parameter.
     */
    @Test
    void clipNormSumsEveryLayoutAndDtypeAndNamesANonFiniteGradient() {
        try (MemoryScope scope = MemoryScope.open()) {
            java.util.Random rng = new java.util.Random(3);
            Tensor w = Tensor.emptyDense(dir4j.engine.DType.FLOAT32, dir4j.engine.Device.CPU, new int[] {4, 3, 2, 2},
                    new long[] {12, 1, 6, 3}).requiresGrad(true);
            Tensor gw = Tensor.emptyLayoutLike(w, dir4j.engine.DType.FLOAT32, dir4j.engine.Device.CPU);
            try (Tensor src = Tensor.randn(rng, 4, 3, 2, 2)) {
                gw.backend().copy(src, gw);
            }
            w.setGrad(gw);
            Tensor d = Tensor.zeros(dir4j.engine.DType.FLOAT64, dir4j.engine.Device.CPU, 5).requiresGrad(true);
            d.setGrad(Tensor.randn(rng, 5).to(dir4j.engine.DType.FLOAT64));
            Tensor none = Tensor.zeros(3).requiresGrad(true);
            double want = 0;
            for (Tensor g : List.of(w.grad(), d.grad())) {
                for (double v : g.toDoubleArray()) {
                    want += v * v;
                }
            }
            double[] before = w.grad().toDoubleArray();
            double norm = GradClip.clipNorm(List.of(w, none, d), 0.5);
            Assertions.assertEquals(Math.sqrt(want), norm, 1e-6 * Math.sqrt(want));
            double[] after = w.grad().toDoubleArray();
            for (int i = 0; i < after.length; i++) {
                Assertions.assertEquals(before[i] * 0.5 / (norm + 1e-6), after[i], 1e-6, "clipped gradient " + i);
            }
            Tensor big = Tensor.zeros(2).requiresGrad(true);
            big.setGrad(Tensor.of(new float[] {1e20f, 0}, 2));
            Assertions.assertEquals(1e20, GradClip.clipNorm(List.of(big), 1.0), 1e13);
            Tensor bad = Tensor.zeros(2).requiresGrad(true);
            bad.setGrad(Tensor.of(new float[] {1, Float.NaN}, 2));
            ArithmeticException e = Assertions.assertThrows(ArithmeticException.class,
                    () -> GradClip.clipNorm(List.of(none, bad), 1.0));
            Assertions.assertTrue(e.getMessage().contains("parameter 1"), e.getMessage());
        }
    }

    /**
     * clipNorm's float64 copies and squares live one parameter at a time: a network's worth of them
     * at once (16 bytes a parameter, some 0.7 GB for ResNet-101) would sit beside the gradients.
     */
    @Test
    void clipNormHoldsOneParametersSquaresAtATime() {
        try (MemoryScope scope = MemoryScope.open()) {
            List<Tensor> params = new java.util.ArrayList<>();
            int n = 1 << 18; // 1 MiB of float32 gradient a parameter
            for (int i = 0; i < 32; i++) {
                Tensor p = Tensor.zeros(n).requiresGrad(true);
                p.setGrad(Tensor.uniform(new java.util.Random(i), -1, 1, n));
                params.add(p);
            }
            double expected = 0;
            for (Tensor p : params) {
                for (float v : p.grad().toFloatArray()) {
                    expected += (double) v * v;
                }
            }
            dir4j.engine.cpu.NativeMemory.resetPeak();
            long before = dir4j.engine.cpu.NativeMemory.liveBytes();
            double norm = GradClip.clipNorm(params, 1e9);
            long extra = dir4j.engine.cpu.NativeMemory.peakBytes() - before;
            Assertions.assertEquals(Math.sqrt(expected), norm, 1e-9 * Math.sqrt(expected));
            // one parameter's float64 copy and squares (4 MiB) and the sums; all 32 would be 128 MiB
            Assertions.assertTrue(extra < 16L << 20, "transient bytes " + extra);
        }
    }

    /** An optimiser made before its module's parameters were replaced says so instead of training nothing. */
    @Test
    void stepRefusesParametersThatWereReplaced() {
        try (MemoryScope scope = MemoryScope.open();
             dir4j.nn.resnet.ResNet net = new dir4j.nn.resnet.ResNet(dir4j.nn.resnet.ResNet.Depth.RESNET18, 8, 0,
                     new java.util.Random(1));
             Sgd sgd = new Sgd(net.parameters(), 0.1, 0.9, 0, false)) {
            net.channelsLast(true); // replaces the 3x3 weights
            IllegalStateException e = Assertions.assertThrows(IllegalStateException.class, sgd::step);
            Assertions.assertTrue(e.getMessage().contains("has been freed"), e.getMessage());
            Assertions.assertEquals(0, sgd.steps(), "a refused step is not counted (Adam's bias correction uses it)");
        }
    }
}
