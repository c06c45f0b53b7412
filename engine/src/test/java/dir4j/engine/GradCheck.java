package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.autograd.Autograd;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Function;

/**
 * Finite-difference gradient check in float64: autograd's gradient of the scalar
 * L = Σ w ⊙ f(inputs), for a fixed random w, against central differences
 * (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h for every element of every input. With h = 1e-6 the truncation
 * error is O(h²) and the rounding error O(ε·|L|/h), both far below the tolerance: an error of
 * 1e-6 relative to max(1, |analytic|, |numeric|) is a wrong backward rule, not noise.
 */
final class GradCheck {
    static final double H = 1e-6;
    static final double TOLERANCE = 1e-6;

    private GradCheck() {}

    /**
     * Checks every input's gradient. The inputs are float64 leaves in any layout (views included);
     * they are marked as requiring grad here. Call inside a MemoryScope.
     */
    static void check(String what, Function<Tensor[], Tensor> f, Tensor... inputs) {
        for (Tensor t : inputs) {
            assertEquals(DType.FLOAT64, t.dtype(), what + ": gradient checks run in float64");
            t.requiresGrad(true);
        }
        Tensor out = f.apply(inputs);
        assertEquals(DType.FLOAT64, out.dtype(), what + ": output dtype");
        double[] w = weights(what, (int) out.numel());
        Tensor wt = Tensor.ofDoubles(w, out.shape());
        Ops.sum(Ops.mul(out, wt), null, false).backward();
        StringBuilder failures = new StringBuilder();
        for (int i = 0; i < inputs.length; i++) {
            Tensor g = inputs[i].grad();
            assertNotNull(g, what + ": input " + i + " received no gradient");
            assertEquals(DType.FLOAT64, g.dtype(), what + ": gradient dtype of input " + i);
            assertEquals(Arrays.toString(inputs[i].shape()), Arrays.toString(g.shape()),
                    what + ": gradient shape of input " + i);
            double[] analytic = g.toDoubleArray();
            double[] numeric = numericGradient(f, inputs, i, w);
            int worst = -1;
            double worstErr = 0;
            for (int j = 0; j < analytic.length; j++) {
                double scale = Math.max(1, Math.max(Math.abs(analytic[j]), Math.abs(numeric[j])));
                double err = Math.abs(analytic[j] - numeric[j]) / scale;
                if (!(err <= worstErr)) { // NaN counts as worst
                    worst = j;
                    worstErr = err;
                }
            }
            if (!(worstErr <= TOLERANCE)) {
                failures.append(String.format("%n  input %d %s: relative error %.3g at flat index %d: autograd %.12g,"
                                + " finite differences %.12g", i, Arrays.toString(inputs[i].shape()), worstErr, worst,
                        analytic[worst], numeric[worst]));
            }
        }
        if (!failures.isEmpty()) {
            fail(what + ": autograd disagrees with central differences" + failures);
        }
    }

    private static double[] numericGradient(Function<Tensor[], Tensor> f, Tensor[] inputs, int which, double[] w) {
        double[] x = inputs[which].toDoubleArray();
        int[] shape = inputs[which].shape();
        double[] grad = new double[x.length];
        try (var ng = Autograd.noGrad()) {
            for (int j = 0; j < x.length; j++) {
                double keep = x[j];
                x[j] = keep + H;
                double plus = weightedSum(f, inputs, which, x, shape, w);
                x[j] = keep - H;
                double minus = weightedSum(f, inputs, which, x, shape, w);
                x[j] = keep;
                grad[j] = (plus - minus) / (2 * H);
            }
        }
        return grad;
    }

    /** L with input {@code which} replaced by the values x; every tensor it makes is freed. */
    private static double weightedSum(Function<Tensor[], Tensor> f, Tensor[] inputs, int which, double[] x,
                                      int[] shape, double[] w) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor[] args = inputs.clone();
            args[which] = Tensor.ofDoubles(x, shape);
            double[] y = f.apply(args).toDoubleArray();
            double s = 0;
            for (int k = 0; k < y.length; k++) {
                s += w[k] * y[k];
            }
            return s;
        }
    }

    /** Weights in [0.5, 1.5) with random signs: no output is left out of the check. */
    private static double[] weights(String what, int n) {
        Random rng = new Random(what.hashCode());
        double[] w = new double[n];
        for (int i = 0; i < n; i++) {
            w[i] = (rng.nextBoolean() ? 1 : -1) * (0.5 + rng.nextDouble());
        }
        return w;
    }

    // ------------------------------------------------------------------ inputs

    /** Standard normal float64 values. */
    static Tensor randn(Random rng, int... shape) {
        double[] d = new double[(int) Shape.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = rng.nextGaussian();
        }
        return Tensor.ofDoubles(d, shape);
    }

    /** Uniform float64 values in [lo, hi). */
    static Tensor uniform(Random rng, double lo, double hi, int... shape) {
        double[] d = new double[(int) Shape.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = lo + (hi - lo) * rng.nextDouble();
        }
        return Tensor.ofDoubles(d, shape);
    }

    /** Normal values at least {@code gap} away from every kink (where the derivative jumps). */
    static Tensor awayFrom(Random rng, double gap, double[] kinks, int... shape) {
        double[] d = new double[(int) Shape.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            double v;
            boolean near;
            do {
                v = rng.nextGaussian();
                near = false;
                for (double k : kinks) {
                    near |= Math.abs(v - k) < gap;
                }
            } while (near);
            d[i] = v;
        }
        return Tensor.ofDoubles(d, shape);
    }

    /** A permutation of evenly spaced values 0.1 apart (so max/min have no ties, even after ±h). */
    static Tensor distinct(Random rng, int... shape) {
        int n = (int) Shape.numel(shape);
        double[] d = new double[n];
        for (int i = 0; i < n; i++) {
            d[i] = (i - n / 2.0) * 0.1;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            double t = d[i];
            d[i] = d[j];
            d[j] = t;
        }
        return Tensor.ofDoubles(d, shape);
    }

    /** A column-major view with t's values (a non-contiguous leaf). */
    static Tensor transposedLayout(Tensor t) {
        int r = t.rank();
        int[] rev = new int[r];
        for (int i = 0; i < r; i++) {
            rev[i] = r - 1 - i;
        }
        return Ops.permute(Ops.cloneDetached(Ops.permute(t, rev)), rev);
    }
}
