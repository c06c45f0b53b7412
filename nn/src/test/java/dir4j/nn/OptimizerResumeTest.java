package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dir4j.engine.Tensor;
import dir4j.nn.optim.Adam;
import dir4j.nn.optim.Optimizer;
import dir4j.nn.optim.Sgd;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * Resuming from saved optimiser state (what the Trainer's checkpoints hold: the named state
 * tensors and the step count) continues bit for bit as if never interrupted.
 */
class OptimizerResumeTest {
    private static final int N = 1037;

    private static Tensor grad(int t) {
        Random r = new Random(t);
        float[] g = new float[N];
        for (int i = 0; i < N; i++) {
            g[i] = (float) r.nextGaussian();
        }
        return Tensor.of(g, N);
    }

    private static void resumesBitForBit(String name, Function<List<Tensor>, Optimizer> make) {
        float[] init;
        try (Tensor g = grad(999)) {
            init = g.toFloatArray();
        }
        Tensor straight = Tensor.of(init.clone(), N).requiresGrad(true);
        Tensor resumed = Tensor.of(init.clone(), N).requiresGrad(true);
        try (Optimizer a = make.apply(List.of(straight)); Optimizer b1 = make.apply(List.of(resumed))) {
            for (int t = 1; t <= 6; t++) {
                straight.setGrad(grad(t));
                a.step();
            }
            for (int t = 1; t <= 3; t++) {
                resumed.setGrad(grad(t));
                b1.step();
            }
            try (Optimizer b2 = make.apply(List.of(resumed))) {
                for (Map.Entry<String, Tensor> e : b1.state(resumed).entrySet()) {
                    b2.restoreState(resumed, e.getKey(), e.getValue());
                }
                b2.setSteps(b1.steps());
                for (int t = 4; t <= 6; t++) {
                    resumed.setGrad(grad(t));
                    b2.step();
                }
                assertArrayEquals(straight.toFloatArray(), resumed.toFloatArray(), name + ": resumed parameters");
                for (String k : a.state(straight).keySet()) {
                    assertArrayEquals(a.state(straight).get(k).toFloatArray(), b2.state(resumed).get(k).toFloatArray(),
                            name + ": resumed " + k);
                }
            }
        } finally {
            straight.close();
            resumed.close();
        }
    }

    @Test
    void sgdWithMomentumResumesBitForBit() {
        resumesBitForBit("sgd", ps -> new Sgd(ps, 0.1, 0.9, 1e-4, false));
        resumesBitForBit("sgd nesterov", ps -> new Sgd(ps, 0.1, 0.9, 0, true));
    }

    @Test
    void adamAndAdamWResumeBitForBit() {
        resumesBitForBit("adam", ps -> Adam.adam(ps, 0.01, 0.1));
        resumesBitForBit("adamw", ps -> Adam.adamW(ps, 0.01, 0.1));
    }
}
