package dir4j.nn;

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
        double[] grads = NnFixtures.npy("optim_" + name + "/grads.npy").toDoubleArray();
        double[] expected = NnFixtures.npy("optim_" + name + "/params.npy").toDoubleArray();
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
     * values of its own Sgd (the per-parameter step), bit for bit, also when a parameter gets its
     * first gradient (and momentum buffer) a step later than the others or has none on a step.
     */
    @Test
    void sgdOverSeveralParametersStepsEachAsItsOwnSgd() {
        java.util.Random r = new java.util.Random(5);
        int[] sizes = {7, 1, 300};
        List<Tensor> together = new java.util.ArrayList<>();
        List<Tensor> apart = new java.util.ArrayList<>();
        for (int n : sizes) {
            float[] init = Tensor.randn(r, n).toFloatArray();
            together.add(Tensor.of(init, n).requiresGrad(true)); // two storages
            apart.add(Tensor.of(init, n).requiresGrad(true));
        }
        List<Optimizer> own = new java.util.ArrayList<>();
        for (Tensor p : apart) {
            own.add(new Sgd(List.of(p), 0.1, 0.9, 0.3, 0.01, false)); // dampening: a first step differs
        }
        try (Optimizer all = new Sgd(together, 0.1, 0.9, 0.3, 0.01, false)) {
            for (int t = 0; t < 4; t++) {
                for (int i = 0; i < sizes.length; i++) {
                    boolean has = !(i == 2 && t == 0) && !(i == 0 && t == 2);
                    together.get(i).zeroGrad();
                    apart.get(i).zeroGrad();
                    if (has) {
                        float[] g = Tensor.randn(r, sizes[i]).toFloatArray();
                        together.get(i).setGrad(Tensor.of(g, sizes[i]));
                        apart.get(i).setGrad(Tensor.of(g, sizes[i]));
                    }
                }
                all.step();
                own.forEach(Optimizer::step);
                for (int i = 0; i < sizes.length; i++) {
                    org.junit.jupiter.api.Assertions.assertArrayEquals(apart.get(i).toFloatArray(),
                            together.get(i).toFloatArray(), "parameter " + i + " after step " + (t + 1));
                }
            }
        } finally {
            own.forEach(Optimizer::close);
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
        double[] want = NnFixtures.npy(file + ".npy").toDoubleArray();
        double[] got = new double[want.length];
        for (int i = 0; i < got.length; i++) {
            got[i] = s.lr(i);
        }
        NnFixtures.assertClose(file, want, got, 1e-9, 1e-12);
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
}
