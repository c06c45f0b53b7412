package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ACCUMULATED;
import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.Backend.ApBins;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The method's fused kernels (GeM, the AP histogram), max pooling and L2 normalisation: CUDA against the CPU. */
@Tag("gpu")
class CudaMethodGpuTest {
    /** Sums over a plane in double on both sides: tighter than ACCUMULATED. */
    private static final GpuParity.Tol PLANE_SUM = new GpuParity.Tol(2e-5, 1e-6, true);
    /** The AP histogram's bin weights round identically on both sides (no FMA on the GPU). */
    private static final GpuParity.Tol SAME_ARITHMETIC = new GpuParity.Tol(1e-6, 1e-7, true);

    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void gemMatchesForwardAndBackwardIncludingDlDp() {
        try (MemoryScope s = MemoryScope.open()) {
            // ReLU-like activations with exact zeros and values at eps; 16x16 planes take the float4 path
            Tensor x = randn(1, 4, 32, 16, 16).relu().detach().requiresGrad(true);
            Tensor odd = randn(2, 3, 5, 7, 7).relu().add(1e-6).detach().requiresGrad(true);
            for (double p : new double[] {3, 2.5}) {
                Tensor pt = Tensor.of(new float[] {(float) p}, 1).requiresGrad(true);
                check("gem p=" + p + " 16x16", PLANE_SUM, PLANE_SUM, in -> NnOps.gem(in[0], in[1], 1e-6), x, pt);
                check("gem p=" + p + " 7x7 (scalar path)", PLANE_SUM, PLANE_SUM, in -> NnOps.gem(in[0], in[1], 1e-6),
                        odd, pt);
            }
        }
    }

    @Test
    void apHistogramMatchesForwardAndBackwardAtBinCentresAndOutOfRange() {
        try (MemoryScope s = MemoryScope.open()) {
            int n = 96;
            int m = 300;
            Random r = new Random(3);
            float[] sc = new float[n * m];
            float[] lab = new float[n * m];
            for (int i = 0; i < sc.length; i++) {
                int kind = r.nextInt(10);
                // exact bin centres of 21 bins over [-1, 1], the ends, beyond the ends, and the rest random
                sc[i] = switch (kind) {
                    case 0 -> (float) (1 - r.nextInt(21) * 0.1);
                    case 1 -> r.nextBoolean() ? 1f : -1f;
                    case 2 -> r.nextBoolean() ? 1.5f : -3f;
                    default -> (float) (2 * r.nextDouble() - 1);
                };
                lab[i] = r.nextInt(5) == 0 ? 1 : 0;
            }
            Tensor scores = Tensor.of(sc, n, m).requiresGrad(true);
            Tensor labels = Tensor.of(lab, n, m);
            ApBins bins = new ApBins(21, -1, 1);
            check("apHistogram", SAME_ARITHMETIC, SAME_ARITHMETIC,
                    in -> NnOps.apHistogram(in[0], in[1], bins, false), scores, labels);
            check("apHistogram without the diagonal", SAME_ARITHMETIC, SAME_ARITHMETIC,
                    in -> NnOps.apHistogram(in[0], in[1], bins, true), scores, labels);
            // a transposed score view, and the loss's own composition downstream of the histogram
            Tensor sq = Tensor.of(java.util.Arrays.copyOf(sc, 96 * 96), 96, 96).requiresGrad(true);
            Tensor lq = Tensor.of(java.util.Arrays.copyOf(lab, 96 * 96), 96, 96);
            check("apHistogram of a transposed view, cumsum and ratio after it", ACCUMULATED, ACCUMULATED, in -> {
                Tensor h = NnOps.apHistogram(in[0].t(), in[1], new ApBins(20, -1, 1), true);
                Tensor nb = h.select(1, 0).cumsum(1);
                Tensor np = h.select(1, 1).cumsum(1);
                return np.div(nb.add(1e-9));
            }, sq, lq);
            // many columns per row: the column split across blocks (2 rows, 200k columns)
            Tensor wide = randn(4, 2, 200_000).mul(0.5).detach().requiresGrad(true);
            Tensor wl = Ops.greater(randn(5, 2, 200_000), Tensor.zeros(1));
            check("apHistogram with split columns", SAME_ARITHMETIC, SAME_ARITHMETIC,
                    in -> NnOps.apHistogram(in[0], in[1], new ApBins(25, -1, 1), false), wide, wl);
        }
    }

    @Test
    void aNaNScoreMakesTheSameBinsNaNAsOnTheCpu() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor sc = Tensor.of(new float[] {0.3f, Float.NaN, -0.2f, 0.9f}, 1, 4);
            Tensor lab = Tensor.of(new float[] {1, 0, 0, 1}, 1, 4);
            ApBins bins = new ApBins(5, -1, 1);
            double[] cpu = NnOps.apHistogram(sc, lab, bins, false).toDoubleArray();
            double[] gpu = NnOps.apHistogram(sc.to(GPU), lab.to(GPU), bins, false).toDoubleArray();
            for (int i = 0; i < cpu.length; i++) {
                assertEquals(Double.isNaN(cpu[i]), Double.isNaN(gpu[i]), "bin " + i + ": cpu " + cpu[i] + ", cuda " + gpu[i]);
            }
        }
    }

    @Test
    void maxPoolingMatchesForwardAndBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(6, 2, 8, 33, 30).requiresGrad(true);
            check("max pool 3x3 stride 2 pad 1 (the ResNet stem)", ELEMENTWISE, ELEMENTWISE,
                    in -> NnOps.maxPool2d(in[0], 3, 2, 1), x);
            check("max pool 2x2 stride 2", ELEMENTWISE, ELEMENTWISE, in -> NnOps.maxPool2d(in[0], 2, 2, 0), x);
        }
    }

    @Test
    void l2NormalisationComposedOfPrimitivesMatches() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor d = randn(7, 64, 2048).requiresGrad(true);
            check("l2Normalize rows", ACCUMULATED, ACCUMULATED, in -> NnOps.l2Normalize(in[0], 1, 1e-12), d);
            Tensor zeroRow = Tensor.zeros(2, 8).requiresGrad(true);
            check("l2Normalize of a zero row (eps)", ELEMENTWISE, ELEMENTWISE, in -> NnOps.l2Normalize(in[0], 1, 1e-6),
                    zeroRow);
            check("descriptor pipeline: gem, linear, normalise, gram", ACCUMULATED, ACCUMULATED, in -> {
                Tensor g = NnOps.gem(in[0], in[1], 1e-6);
                return Ops.gram(NnOps.l2Normalize(NnOps.linear(g, in[2], null), 1, 1e-12));
            }, randn(8, 6, 16, 5, 5).relu().detach().requiresGrad(true), Tensor.of(new float[] {3f}, 1).requiresGrad(true),
                    randn(9, 12, 16).requiresGrad(true));
        }
    }
}
