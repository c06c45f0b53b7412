package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.onGpu;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.GpuParity.Tol;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Average pooling, indexSelect/indexAdd, the deterministic max-pool backward and the fused
 * SGD/Adam/AdamW steps on CUDA against the CPU backend. Each kernel performs the CPU's
 * operations in the CPU's order with the same roundings (kernels/src/main/cuda/pool.cu,
 * index.cu, optim.cu), so the expected agreement is bit for bit (tolerance 0).
 */
@Tag("gpu")
class CudaPoolIndexOptimGpuTest {
    /** The same bits. */
    private static final Tol EXACT = new Tol(0, 0, false);

    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void averagePoolingMatchesTheCpuForwardAndBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(11, 2, 5, 17, 14).requiresGrad(true);
            check("avg pool 3x3 stride 2 pad 1 counting padding", EXACT, EXACT,
                    in -> NnOps.avgPool2d(in[0], 3, 2, 1, true), x);
            check("avg pool 3x3 stride 2 pad 1 excluding padding", EXACT, EXACT,
                    in -> NnOps.avgPool2d(in[0], 3, 2, 1, false), x);
            check("avg pool 2x2 stride 2", EXACT, EXACT, in -> NnOps.avgPool2d(in[0], 2, 2, 0, true), x);
            check("adaptive avg pool 17x14 -> 5x3 (overlapping windows)", EXACT, EXACT,
                    in -> NnOps.adaptiveAvgPool2d(in[0], 5, 3), x);
            check("adaptive avg pool 17x14 -> 1x1 (global)", EXACT, EXACT,
                    in -> NnOps.adaptiveAvgPool2d(in[0], 1, 1), x);
            check("adaptive avg pool 17x14 -> 20x20 (upsampling windows)", EXACT, EXACT,
                    in -> NnOps.adaptiveAvgPool2d(in[0], 20, 20), x);
            Tensor xd = Tensor.ofDoubles(randn(12, 1, 3, 9, 8).toDoubleArray(), 1, 3, 9, 8).requiresGrad(true);
            check("float64 adaptive avg pool 9x8 -> 4x3", EXACT, EXACT, in -> NnOps.adaptiveAvgPool2d(in[0], 4, 3), xd);
            Tensor y = randn(13, 2, 3, 12, 10).requiresGrad(true);
            check("avg pool of a transposed view", EXACT, EXACT,
                    in -> NnOps.avgPool2d(in[0].permute(0, 1, 3, 2), 3, 1, 1, false), y);
        }
    }

    @Test
    void indexSelectAndItsAdjointWithRepeatedIndicesMatchTheCpu() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(21, 6, 37).requiresGrad(true);
            Tensor rows = Tensor.ofInts(new int[] {3, 0, 3, 5, 3, 1, 0}, 7);
            check("indexSelect axis 0, repeats (indices on the CPU)", EXACT, EXACT, in -> Ops.indexSelect(in[0], 0, rows),
                    x);
            Tensor cols = Tensor.ofInts(new int[] {36, 2, 2, 0, 36, 17, 2, 2}, 8);
            check("indexSelect axis 1, repeats", EXACT, EXACT, in -> Ops.indexSelect(in[0], 1, cols), x);
            Tensor devCols = cols.to(GPU);
            Tensor xg = onGpu(x.detach());
            assertArrayEquals(Ops.indexSelect(x.detach(), 1, cols).toFloatArray(),
                    Ops.indexSelect(xg, 1, devCols).toFloatArray(), "indices already on the device");
            Tensor t3 = randn(22, 4, 5, 6).requiresGrad(true);
            check("indexSelect axis 1 of a rank-3 permuted view", EXACT, EXACT,
                    in -> Ops.indexSelect(in[0].permute(2, 1, 0), 1, Tensor.ofInts(new int[] {4, 4, 0, 2}, 4)), t3);
            Tensor xd = Tensor.ofDoubles(randn(23, 5, 4).toDoubleArray(), 5, 4).requiresGrad(true);
            check("float64 indexSelect axis 0, repeats", EXACT, EXACT,
                    in -> Ops.indexSelect(in[0], 0, Tensor.ofInts(new int[] {4, 4, 4, 1}, 4)), xd);
            // many repeats of one row: the adjoint sums 1000 slices in index order on both devices
            int[] many = new int[1000];
            for (int i = 0; i < many.length; i++) {
                many[i] = i % 7 == 0 ? 2 : 5;
            }
            Tensor y = randn(24, 8, 33).requiresGrad(true);
            check("indexAdd of 1000 mostly repeated indices", EXACT, EXACT,
                    in -> Ops.indexSelect(in[0], 0, Tensor.ofInts(many, many.length)), y);
        }
    }

    @Test
    void maxPoolBackwardIsDeterministicAndMatchesTheCpuOnOverlappingWindows() {
        try (MemoryScope s = MemoryScope.open()) {
            // integer-valued inputs with few distinct values: ties and inputs that are the maximum of
            // several overlapping 3x3 stride-2 windows, so many inputs receive several adds
            float[] v = new float[4 * 16 * 29 * 31];
            java.util.Random r = new java.util.Random(5);
            for (int i = 0; i < v.length; i++) {
                v[i] = r.nextInt(4);
            }
            Tensor x = Tensor.of(v, 4, 16, 29, 31).requiresGrad(true);
            check("max pool 3x3 stride 2 pad 1 with ties", EXACT, EXACT, in -> NnOps.maxPool2d(in[0], 3, 2, 1), x);
            check("max pool 3x3 stride 1 pad 1 (every input in 9 windows)", EXACT, EXACT,
                    in -> NnOps.maxPool2d(in[0], 3, 1, 1), x);
            Tensor xg = onGpu(x);
            Tensor up = randn(6, 4, 16, 15, 16).to(GPU);
            float[] first = null;
            for (int run = 0; run < 3; run++) {
                xg.zeroGrad();
                NnOps.maxPool2d(xg, 3, 2, 1).backward(up);
                float[] g = xg.grad().toFloatArray();
                if (first == null) {
                    first = g;
                } else {
                    assertArrayEquals(first, g, "max pool backward run " + run + " differs from run 0");
                }
            }
        }
    }

    /** Runs {@code steps} steps on the CPU and on CUDA with the same gradients; params and buffers agree exactly. */
    private static void stepsAgree(String what, DType dtype, int n, int steps, boolean adam, Backend.SgdStep sgd,
                                   Backend.AdamStep adamH) {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor p = randn(31, n).to(dtype);
            Tensor pg = p.to(GPU);
            Tensor a = Tensor.zeros(dtype, p.device(), n);
            Tensor b = Tensor.zeros(dtype, p.device(), n);
            Tensor ag = a.to(GPU);
            Tensor bg = b.to(GPU);
            for (int t = 1; t <= steps; t++) {
                Tensor g = randn(100 + t, n).to(dtype);
                Tensor gg = g.to(GPU);
                if (adam) {
                    Backend.AdamStep h = new Backend.AdamStep(adamH.lr(), adamH.beta1(), adamH.beta2(), adamH.eps(),
                            adamH.weightDecay(), adamH.decoupled(), t);
                    p.backend().adamStep(p, g, a, b, h);
                    pg.backend().adamStep(pg, gg, ag, bg, h);
                } else {
                    p.backend().sgdStep(p, g, sgd.momentum() != 0 ? a : null, t == 1, sgd);
                    pg.backend().sgdStep(pg, gg, sgd.momentum() != 0 ? ag : null, t == 1, sgd);
                }
                GpuParity.assertClose(what + " step " + t + " param", EXACT, p, pg);
                GpuParity.assertClose(what + " step " + t + (adam ? " exp_avg" : " momentum buffer"), EXACT, a, ag);
                GpuParity.assertClose(what + " step " + t + " exp_avg_sq", EXACT, b, bg);
            }
        }
    }

    @Test
    void fusedSgdStepsMatchTheCpu() {
        int n = 100_003; // not a multiple of the CPU's vector width: the scalar tail is compared too
        stepsAgree("sgd momentum + wd", DType.FLOAT32, n, 5, false, new Backend.SgdStep(0.1, 0.9, 0, 0.01, false), null);
        stepsAgree("sgd nesterov", DType.FLOAT32, n, 5, false, new Backend.SgdStep(0.05, 0.8, 0, 1e-4, true), null);
        stepsAgree("sgd dampening", DType.FLOAT32, n, 5, false, new Backend.SgdStep(0.05, 0.9, 0.3, 0, false), null);
        stepsAgree("sgd plain", DType.FLOAT32, n, 3, false, new Backend.SgdStep(0.2, 0, 0, 0, false), null);
        stepsAgree("sgd float64", DType.FLOAT64, 1001, 4, false, new Backend.SgdStep(0.1, 0.9, 0, 0.01, true), null);
    }

    @Test
    void fusedAdamAndAdamWStepsMatchTheCpu() {
        int n = 100_003;
        stepsAgree("adam L2", DType.FLOAT32, n, 6, true, null, new Backend.AdamStep(0.01, 0.9, 0.999, 1e-8, 0.1, false, 1));
        stepsAgree("adamw", DType.FLOAT32, n, 6, true, null, new Backend.AdamStep(0.01, 0.9, 0.999, 1e-8, 0.1, true, 1));
        stepsAgree("adam no wd", DType.FLOAT32, n, 6, true, null, new Backend.AdamStep(1e-3, 0.8, 0.99, 1e-6, 0, false, 1));
        stepsAgree("adamw float64", DType.FLOAT64, 1001, 4, true, null,
                new Backend.AdamStep(0.01, 0.9, 0.999, 1e-8, 0.05, true, 1));
    }

    /**
     * sgdSteps over many parameters in one launch (sgd_steps_f32) against the CPU backend's
     * per-parameter steps, bit for bit: sizes from empty to several chunks of 4096 with tails,
     * first-step flags differing between parameters, with and without momentum, Nesterov.
     */
    @Test
    void multiTensorSgdStepsMatchTheCpuPerParameter() {
        int[] sizes = {5, 0, 1, 4095, 4096, 4097, 9000, 100_003};
        Backend.SgdStep[] hs = {new Backend.SgdStep(0.1, 0.9, 0, 0.01, false), new Backend.SgdStep(0.05, 0.8, 0, 1e-4, true),
            new Backend.SgdStep(0.2, 0, 0, 1e-3, false)};
        for (Backend.SgdStep h : hs) {
            try (MemoryScope s = MemoryScope.open()) {
                java.util.List<Tensor> p = new java.util.ArrayList<>();
                java.util.List<Tensor> pg = new java.util.ArrayList<>();
                java.util.List<Tensor> b = new java.util.ArrayList<>();
                java.util.List<Tensor> bg = new java.util.ArrayList<>();
                for (int i = 0; i < sizes.length; i++) {
                    Tensor pi = randn(40 + i, sizes[i]);
                    p.add(pi);
                    pg.add(pi.to(GPU));
                    Tensor bi = randn(60 + i, sizes[i]);
                    b.add(h.momentum() != 0 ? bi : null);
                    bg.add(h.momentum() != 0 ? bi.to(GPU) : null);
                }
                for (int t = 1; t <= 3; t++) {
                    java.util.List<Tensor> g = new java.util.ArrayList<>();
                    java.util.List<Tensor> gg = new java.util.ArrayList<>();
                    boolean[] first = new boolean[sizes.length];
                    for (int i = 0; i < sizes.length; i++) {
                        Tensor gi = randn(100 * t + i, sizes[i]);
                        g.add(gi);
                        gg.add(gi.to(GPU));
                        first[i] = t == 1 && i % 2 == 0; // some parameters' buffers start on this step
                    }
                    p.get(0).backend().sgdSteps(p, g, b, first, h);
                    pg.get(0).backend().sgdSteps(pg, gg, bg, first, h);
                    for (int i = 0; i < sizes.length; i++) {
                        String what = "sgdSteps " + h + " step " + t + " parameter " + i + " (" + sizes[i] + ")";
                        GpuParity.assertClose(what, EXACT, p.get(i), pg.get(i));
                        if (h.momentum() != 0) {
                            GpuParity.assertClose(what + " momentum buffer", EXACT, b.get(i), bg.get(i));
                        }
                    }
                }
            }
        }
    }
}
