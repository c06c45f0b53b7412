package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dir4j.engine.Backend.AdamStep;
import dir4j.engine.Backend.SgdStep;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CPU's fused optimiser steps against the per-element formulas of Backend#sgdStep and
 * Backend#adamStep written out as scalar float code (bit for bit: the vector body, its scalar
 * tail and the chunking over threads must not change a result), and against torch.optim's
 * composed update evaluated in float64 (within float32 rounding).
 */
class FusedOptimizerStepTest {
    /** Over two parallel chunks and not a multiple of any vector width. */
    private static final int N = 150_001;

    private static float[] randn(long seed, int n) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static void assertClose(String what, double[] want, float[] got, double rtol, double atol) {
        for (int i = 0; i < want.length; i++) {
            if (Math.abs(got[i] - want[i]) > rtol * Math.abs(want[i]) + atol) {
                throw new AssertionError(what + " at " + i + ": got " + got[i] + ", want " + want[i]);
            }
        }
    }

    private static void sgdAgrees(SgdStep h, int steps) {
        float[] p = randn(1, N);
        float[] b = new float[N];
        double[] pd = new double[N];
        double[] bd = new double[N];
        for (int i = 0; i < N; i++) {
            pd[i] = p[i];
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor pt = Tensor.of(p.clone(), N);
            Tensor bt = Tensor.zeros(N);
            for (int t = 1; t <= steps; t++) {
                float[] g = randn(10 + t, N);
                pt.backend().sgdStep(pt, Tensor.of(g, N), h.momentum() != 0 ? bt : null, t == 1, h);
                float nlr = (float) -h.lr();
                float mu = (float) h.momentum();
                float damp1 = (float) (1 - h.dampening());
                float wd = (float) h.weightDecay();
                for (int i = 0; i < N; i++) {
                    // the formula as Backend#sgdStep states it, in float
                    float gi = h.weightDecay() != 0 ? Math.fma(wd, p[i], g[i]) : g[i];
                    if (h.momentum() != 0) {
                        b[i] = t == 1 ? gi : Math.fma(damp1, gi, mu * b[i]);
                        gi = h.nesterov() ? Math.fma(mu, b[i], gi) : b[i];
                    }
                    p[i] = Math.fma(nlr, gi, p[i]);
                    // torch.optim.SGD in float64
                    double gd = g[i] + h.weightDecay() * pd[i];
                    if (h.momentum() != 0) {
                        bd[i] = t == 1 ? gd : h.momentum() * bd[i] + (1 - h.dampening()) * gd;
                        gd = h.nesterov() ? gd + h.momentum() * bd[i] : bd[i];
                    }
                    pd[i] -= h.lr() * gd;
                }
                assertArrayEquals(p, pt.toFloatArray(), "sgd " + h + " step " + t + ": param");
                if (h.momentum() != 0) {
                    assertArrayEquals(b, bt.toFloatArray(), "sgd " + h + " step " + t + ": momentum buffer");
                }
                assertClose("sgd " + h + " step " + t + " vs float64 torch formula", pd, pt.toFloatArray(), 1e-5, 1e-6);
            }
        }
    }

    @Test
    void sgdStepIsTheStatedFormulaBitForBitAndTorchsUpdateWithinRounding() {
        sgdAgrees(new SgdStep(0.1, 0.9, 0, 0.01, false), 4);
        sgdAgrees(new SgdStep(0.05, 0.8, 0, 1e-3, true), 4);
        sgdAgrees(new SgdStep(0.05, 0.9, 0.25, 0, false), 3);
        sgdAgrees(new SgdStep(0.2, 0, 0, 0, false), 2);
    }

    private static void adamAgrees(double lr, double b1, double b2, double eps, double wd, boolean decoupled, int steps) {
        float[] p = randn(2, N);
        float[] m = new float[N];
        float[] v = new float[N];
        double[] pd = new double[N];
        double[] md = new double[N];
        double[] vd = new double[N];
        for (int i = 0; i < N; i++) {
            pd[i] = p[i];
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor pt = Tensor.of(p.clone(), N);
            Tensor mt = Tensor.zeros(N);
            Tensor vt = Tensor.zeros(N);
            for (int t = 1; t <= steps; t++) {
                float[] g = randn(20 + t, N);
                AdamStep h = new AdamStep(lr, b1, b2, eps, wd, decoupled, t);
                pt.backend().adamStep(pt, Tensor.of(g, N), mt, vt, h);
                float fwd = (float) wd;
                float factor = (float) h.decayFactor();
                float fb1 = (float) b1;
                float omb1 = (float) (1 - b1);
                float fb2 = (float) b2;
                float omb2 = (float) (1 - b2);
                float bc2 = (float) h.biasCorrection2Sqrt();
                float feps = (float) eps;
                float nstep = (float) -h.stepSize();
                double bc1d = 1 - Math.pow(b1, t);
                double bc2d = 1 - Math.pow(b2, t);
                for (int i = 0; i < N; i++) {
                    float gi = g[i];
                    if (wd != 0 && decoupled) {
                        p[i] = p[i] * factor;
                    } else if (wd != 0) {
                        gi = Math.fma(fwd, p[i], gi);
                    }
                    m[i] = Math.fma(omb1, gi, fb1 * m[i]);
                    v[i] = Math.fma(omb2, gi * gi, fb2 * v[i]);
                    float denom = (float) Math.sqrt(v[i]) / bc2 + feps;
                    p[i] = Math.fma(nstep, m[i] / denom, p[i]);
                    // torch.optim.Adam/AdamW in float64
                    double gd = g[i];
                    if (wd != 0 && decoupled) {
                        pd[i] *= 1 - lr * wd;
                    } else {
                        gd += wd * pd[i];
                    }
                    md[i] = b1 * md[i] + (1 - b1) * gd;
                    vd[i] = b2 * vd[i] + (1 - b2) * gd * gd;
                    pd[i] -= lr / bc1d * md[i] / (Math.sqrt(vd[i]) / Math.sqrt(bc2d) + eps);
                }
                String what = (decoupled ? "adamw" : "adam") + " wd " + wd + " step " + t;
                assertArrayEquals(p, pt.toFloatArray(), what + ": param");
                assertArrayEquals(m, mt.toFloatArray(), what + ": exp_avg");
                assertArrayEquals(v, vt.toFloatArray(), what + ": exp_avg_sq");
                assertClose(what + " vs float64 torch formula", pd, pt.toFloatArray(), 1e-4, 1e-6);
            }
        }
    }

    @Test
    void adamStepIsTheStatedFormulaBitForBitAndTorchsUpdateWithinRounding() {
        adamAgrees(0.01, 0.9, 0.999, 1e-8, 0.1, false, 4);
        adamAgrees(0.01, 0.9, 0.999, 1e-8, 0.1, true, 4);
        adamAgrees(1e-3, 0.8, 0.99, 1e-6, 0, false, 3);
    }

    @Test
    void float64StepsFollowTheSameFormulaInDouble() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor p = Tensor.ofDoubles(new double[] {1, -2, 0.5}, 3);
            Tensor b = Tensor.zeros(DType.FLOAT64, Device.CPU, 3);
            Tensor g = Tensor.ofDoubles(new double[] {0.1, 0.2, -0.3}, 3);
            SgdStep h = new SgdStep(0.5, 0.9, 0, 0.1, true);
            p.backend().sgdStep(p, g, b, true, h);
            // g' = g + 0.1·p; b = g'; p −= 0.5·(g' + 0.9·b) = p − 0.95·g'
            double[] g1 = {0.1 + 0.1, 0.2 - 0.2, -0.3 + 0.05};
            assertArrayEquals(new double[] {1 - 0.95 * g1[0], -2 - 0.95 * g1[1], 0.5 - 0.95 * g1[2]},
                    p.toDoubleArray(), 1e-15);
            assertArrayEquals(g1, b.toDoubleArray(), 1e-15);
            Tensor m = Tensor.zeros(DType.FLOAT64, Device.CPU, 3);
            Tensor v = Tensor.zeros(DType.FLOAT64, Device.CPU, 3);
            Tensor q = Tensor.ofDoubles(new double[] {1, 1, 1}, 3);
            // step 1 of Adam without decay moves every weight by lr·sign(g) (up to ε)
            q.backend().adamStep(q, g, m, v, new AdamStep(0.01, 0.9, 0.999, 1e-12, 0, false, 1));
            assertArrayEquals(new double[] {0.99, 0.99, 1.01}, q.toDoubleArray(), 1e-10);
        }
    }

    @Test
    void stepsRejectMismatchedBuffers() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor p = Tensor.zeros(4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> p.backend().sgdStep(p, Tensor.zeros(4), null, true, new SgdStep(0.1, 0.9, 0, 0, false)));
            assertEquals("sgdStep: momentum 0.9 needs a momentum buffer", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> p.backend().adamStep(p, Tensor.zeros(5), Tensor.zeros(4),
                    Tensor.zeros(4), new AdamStep(0.1, 0.9, 0.999, 1e-8, 0, false, 1)));
        }
    }
}
