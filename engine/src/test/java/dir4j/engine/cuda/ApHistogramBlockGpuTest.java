package dir4j.engine.cuda;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The AP histogram ops as the blocked AP loss uses them, CUDA against the CPU: a diagonal at an
 * offset (a row block's self-matches), on a transposed view with a negative offset, and the
 * symmetric backward of a row block (row and column query terms per score); labels dense or
 * read from class numbers; the per-thread and the per-warp (atomic) histogram kernels; the AP
 * and its gradient from histograms in one pass.
 */
@Tag("gpu")
class ApHistogramBlockGpuTest {
    private static final Device GPU = GpuParity.GPU;

    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
        GpuParity.backend();
    }

    @Test
    void apHistogramDiagonalOffsetOnCudaMatchesTheCpu() {
        Random rng = new Random(4);
        int rows = 37;
        int m = 300;
        float[] s = new float[rows * m];
        float[] y = new float[rows * m];
        float[] g = new float[m * 2 * 20];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (rng.nextDouble() * 2.4 - 1.2);
            y[i] = rng.nextInt(4) == 0 ? 1 : 0;
        }
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) rng.nextGaussian();
        }
        Backend.ApBins bins = new Backend.ApBins(20, -1, 1);
        for (int diag : new int[] {0, 5, 263, -3, Backend.AP_KEEP_ALL}) {
            try (MemoryScope scope = MemoryScope.open()) {
                double[][] res = new double[2][];
                double[][] grad = new double[2][];
                double[][] gradT = new double[2][];
                double[][] gradSym = new double[2][];
                Device[] devs = {Device.CPU, GPU};
                for (int k = 0; k < 2; k++) {
                    Tensor sc = Tensor.of(s, rows, m).to(devs[k]);
                    Tensor lab = Tensor.of(y, rows, m).to(devs[k]);
                    Tensor gh = Tensor.of(g, m, 2, 20).to(devs[k]);
                    Tensor h = Tensor.empty(DType.FLOAT32, devs[k], rows, 2, 20);
                    sc.backend().apHistogram(sc, lab, bins, diag, h);
                    res[k] = h.toDoubleArray();
                    Tensor ds = Tensor.empty(DType.FLOAT32, devs[k], rows, m);
                    sc.backend().apHistogramBackward(sc, lab, bins, diag, Ops.slice(gh, 0, 0, rows), ds);
                    grad[k] = ds.toDoubleArray();
                    // the transposed view with the negated offset, as the blocked backward uses it
                    Tensor dt = Tensor.empty(DType.FLOAT32, devs[k], m, rows);
                    int neg = diag == Backend.AP_KEEP_ALL ? diag : -diag;
                    sc.backend().apHistogramBackward(Ops.transpose(sc, 0, 1), Ops.transpose(lab, 0, 1), bins, neg,
                            gh, dt);
                    gradT[k] = dt.toDoubleArray();
                    // rows 11 … 47 of a symmetric matrix: each score's row and column terms
                    Tensor sym = Tensor.empty(DType.FLOAT32, devs[k], rows, m);
                    sc.backend().apHistogramBackwardSymmetric(sc, lab, bins, 11, diag, gh, sym);
                    gradSym[k] = sym.toDoubleArray();
                }
                GpuParity.assertClose("histogram, diagonal " + diag, GpuParity.ACCUMULATED, res[0], res[1]);
                GpuParity.assertClose("backward, diagonal " + diag, GpuParity.ELEMENTWISE, grad[0], grad[1]);
                GpuParity.assertClose("transposed backward, diagonal " + diag, GpuParity.ELEMENTWISE, gradT[0], gradT[1]);
                GpuParity.assertClose("symmetric backward, diagonal " + diag, GpuParity.ELEMENTWISE, gradSym[0], gradSym[1]);
            }
        }
    }

    /** Class numbers (classes of about 3) as float32, and the dense labels of rows r0 … r0 + rows − 1. */
    private static float[][] classes(Random rng, int rows, int m, int r0) {
        float[] ids = new float[m];
        for (int j = 0; j < m; j++) {
            ids[j] = rng.nextInt(Math.max(1, m / 3));
        }
        float[] y = new float[rows * m];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < m; j++) {
                y[r * m + j] = ids[r0 + r] == ids[j] ? 1 : 0;
            }
        }
        return new float[][] {ids, y};
    }

    @Test
    void classNumberLabelsBothHistogramKernelsAndTheTiledBackwardMatchTheCpu() {
        Random rng = new Random(6);
        CudaBackend cuda = GpuParity.backend();
        // shapes: a tile's edge cases (rows and columns not multiples of the tile), a wide row
        // (several column splits), nq from 2 to 100 (the tile sizes change with nq)
        int[][] cases = {{37, 300, 11, 20}, {5, 5000, 0, 25}, {70, 129, 40, 2}, {33, 257, 100, 100}, {64, 64, 0, 48}};
        for (int[] c : cases) {
            int rows = c[0];
            int m = c[1];
            int r0 = Math.min(c[2], m - rows);
            int nq = c[3];
            Backend.ApBins bins = new Backend.ApBins(nq, -1, 1);
            float[] s = new float[rows * m];
            for (int i = 0; i < s.length; i++) {
                // a third of the scores crowd near 0, as random descriptors' do
                s[i] = (float) (i % 3 == 0 ? rng.nextGaussian() * 0.03 : rng.nextDouble() * 2.4 - 1.2);
            }
            float[][] cl = classes(rng, rows, m, r0);
            float[] g = new float[m * 2 * nq];
            for (int i = 0; i < g.length; i++) {
                g[i] = (float) rng.nextGaussian();
            }
            for (int diag : new int[] {r0, Backend.AP_KEEP_ALL}) {
                String what = rows + "x" + m + " rows from " + r0 + ", nq " + nq + ", diagonal " + diag;
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor sc = Tensor.of(s, rows, m);
                    Tensor lab = Tensor.of(cl[1], rows, m);
                    Tensor gh = Tensor.of(g, m, 2, nq);
                    Tensor h = Tensor.empty(DType.FLOAT32, Device.CPU, rows, 2, nq);
                    sc.backend().apHistogram(sc, lab, bins, diag, h);
                    Tensor sym = Tensor.empty(DType.FLOAT32, Device.CPU, rows, m);
                    sc.backend().apHistogramBackwardSymmetric(sc, lab, bins, r0, diag, gh, sym);

                    Tensor scG = sc.to(GPU);
                    Tensor ids = Tensor.of(cl[0], m).to(GPU);
                    Backend.ApLabels byClass = Backend.ApLabels.sameClass(Ops.slice(ids, 0, r0, r0 + rows), ids);
                    Tensor ghG = gh.to(GPU);
                    double[][] hists = new double[3][];
                    int k = 0;
                    for (boolean atomic : new boolean[] {false, true}) {
                        cuda.setApHistogramAtomic(atomic);
                        try {
                            Tensor hG = Tensor.empty(DType.FLOAT32, GPU, rows, 2, nq);
                            cuda.apHistogram(scG, byClass, bins, diag, hG);
                            hists[k++] = hG.toDoubleArray();
                        } finally {
                            cuda.setApHistogramAtomic(false);
                        }
                    }
                    Tensor hD = Tensor.empty(DType.FLOAT32, GPU, rows, 2, nq);
                    cuda.apHistogram(scG, lab.to(GPU), bins, diag, hD);
                    hists[2] = hD.toDoubleArray();
                    GpuParity.assertClose("histogram (per-thread bins, class numbers), " + what, GpuParity.ACCUMULATED,
                            h.toDoubleArray(), hists[0]);
                    // integer sums: both kernels and both label forms give the same bits
                    org.junit.jupiter.api.Assertions.assertArrayEquals(hists[0], hists[1],
                            "per-thread vs per-warp atomic bins, " + what);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(hists[0], hists[2],
                            "class numbers vs dense labels, " + what);
                    Tensor symG = Tensor.empty(DType.FLOAT32, GPU, rows, m);
                    cuda.apHistogramBackwardSymmetric(scG, byClass, bins, r0, diag, ghG, symG);
                    GpuParity.assertClose("tiled symmetric backward, " + what, GpuParity.ELEMENTWISE,
                            sym.toDoubleArray(), symG.toDoubleArray());
                    Tensor symD = Tensor.empty(DType.FLOAT32, GPU, rows, m);
                    cuda.apHistogramBackwardSymmetric(scG, lab.to(GPU), bins, r0, diag, ghG, symD);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(symG.toDoubleArray(), symD.toDoubleArray(),
                            "tiled backward, class numbers vs dense labels, " + what);
                }
            }
        }
    }

    @Test
    void lossFromHistogramOnCudaMatchesTheCpu() {
        Random rng = new Random(10);
        for (int nq : new int[] {2, 20, 100}) {
            int n = 1000;
            float[] h = new float[n * 2 * nq];
            float[] coef = new float[n];
            for (int q = 0; q < n; q++) {
                for (int k = 0; k < nq; k++) {
                    float c = rng.nextInt(4) == 0 ? 0 : (float) (rng.nextDouble() * 50);
                    h[q * 2 * nq + k] = c;
                    h[q * 2 * nq + nq + k] = q % 17 == 0 ? 0 : (float) (c * rng.nextDouble());
                }
                coef[q] = q % 13 == 0 ? 0 : (float) (-1.0 / n * (0.5 + rng.nextDouble()));
            }
            double[][] ap = new double[2][];
            double[][] grad = new double[2][];
            Device[] devs = {Device.CPU, GPU};
            for (int d = 0; d < 2; d++) {
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor hist = Tensor.of(h, n, 2, nq).to(devs[d]);
                    Tensor a = Tensor.empty(DType.FLOAT32, devs[d], n);
                    Tensor g = Tensor.empty(DType.FLOAT32, devs[d], n, 2, nq);
                    hist.backend().apLossFromHistogram(hist, Tensor.of(coef, n).to(devs[d]), a, g);
                    ap[d] = a.toDoubleArray();
                    grad[d] = g.toDoubleArray();
                }
            }
            // the same double arithmetic in the same order, rounded once to float: equal bits
            org.junit.jupiter.api.Assertions.assertArrayEquals(ap[0], ap[1], 1e-7, "AP, nq " + nq);
            GpuParity.assertClose("dL/dhist, nq " + nq, GpuParity.ELEMENTWISE, grad[0], grad[1]);
        }
    }
}
