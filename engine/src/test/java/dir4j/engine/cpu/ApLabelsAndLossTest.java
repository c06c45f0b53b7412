package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend;
import dir4j.engine.Backend.ApLabels;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Same-class labels read from class numbers give exactly the histograms and gradients of the
 * dense 0/1 matrix; the one-pass AP from histograms ({@link Backend#apLossFromHistogram}) equals
 * the composition of cumsum/div/sum and its autograd gradient, and central differences.
 */
class ApLabelsAndLossTest {
    private static final int ROWS = 29;
    private static final int M = 83;
    private static final int R0 = 17;

    /** Class numbers of M items (classes of 1–4) and the dense labels of rows R0 … R0 + ROWS − 1. */
    private record Labels(double[] ids, Tensor rowIds, Tensor colIds, Tensor dense) {}

    private static Labels labels(Random rng) {
        double[] ids = new double[M];
        for (int j = 0; j < M; j++) {
            ids[j] = rng.nextInt(M / 3);
        }
        double[] y = new double[ROWS * M];
        for (int r = 0; r < ROWS; r++) {
            for (int j = 0; j < M; j++) {
                y[r * M + j] = ids[R0 + r] == ids[j] ? 1 : 0;
            }
        }
        Tensor col = Tensor.ofDoubles(ids, M).to(DType.FLOAT32);
        // the row ids as a strided view (every other element of a doubled vector)
        double[] twice = new double[2 * ROWS];
        for (int r = 0; r < ROWS; r++) {
            twice[2 * r] = ids[R0 + r];
            twice[2 * r + 1] = -1;
        }
        Tensor row = Ops.select(Tensor.ofDoubles(twice, ROWS, 2).to(DType.FLOAT32), 1, 0);
        return new Labels(ids, row, col, Tensor.ofDoubles(y, ROWS, M).to(DType.FLOAT32));
    }

    @Test
    void sameClassLabelsGiveExactlyTheDenseResults() {
        Random rng = new Random(8);
        try (MemoryScope scope = MemoryScope.open()) {
            Labels l = labels(rng);
            assertTrue(l.rowIds().stride(0) == 2, "the row ids should be a strided view");
            Tensor s = Tensor.uniform(rng, -1.1, 1.1, ROWS, M);
            Tensor g = Tensor.uniform(rng, -1, 1, M, 2, 20);
            Backend be = s.backend();
            Backend.ApBins bins = new Backend.ApBins(20, -1, 1);
            ApLabels ids = ApLabels.sameClass(l.rowIds(), l.colIds());
            double positives = Ops.sum(l.dense(), null, false).item();
            assertTrue(positives > ROWS, "some rows should have positives besides themselves: " + positives);
            for (int diag : new int[] {R0, Backend.AP_KEEP_ALL}) {
                Tensor hd = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, 2, 20);
                Tensor hi = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, 2, 20);
                be.apHistogram(s, l.dense(), bins, diag, hd);
                be.apHistogram(s, ids, bins, diag, hi);
                assertArrayEquals(hd.toDoubleArray(), hi.toDoubleArray(), "histograms, diagonal " + diag);
                Tensor bd = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                Tensor bi = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                be.apHistogramBackward(s, l.dense(), bins, diag, Ops.slice(g, 0, R0, R0 + ROWS), bd);
                be.apHistogramBackward(s, ids, bins, diag, Ops.slice(g, 0, R0, R0 + ROWS), bi);
                assertArrayEquals(bd.toDoubleArray(), bi.toDoubleArray(), "backward, diagonal " + diag);
                Tensor sd = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                Tensor si = Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, M);
                be.apHistogramBackwardSymmetric(s, l.dense(), bins, R0, diag, g, sd);
                be.apHistogramBackwardSymmetric(s, ids, bins, R0, diag, g, si);
                assertArrayEquals(sd.toDoubleArray(), si.toDoubleArray(), "symmetric backward, diagonal " + diag);
            }
            // wrong lengths and dtypes are named
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.apHistogram(s,
                    ApLabels.sameClass(l.colIds(), l.colIds()), bins, 0,
                    Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, 2, 20)));
            assertTrue(e.getMessage().contains("class numbers"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> be.apHistogram(s,
                    ApLabels.sameClass(l.rowIds().to(DType.FLOAT64), l.colIds()), bins, 0,
                    Tensor.empty(DType.FLOAT32, Device.CPU, ROWS, 2, 20)));
            assertThrows(IllegalArgumentException.class, () -> new ApLabels(l.dense(), l.rowIds(), l.colIds()));
        }
    }

    /** Histograms [N, 2, nq] in float64: counts, positives ≤ counts; row 3 without positives. */
    private static Tensor histograms(Random rng, int n, int nq) {
        double[] h = new double[n * 2 * nq];
        for (int q = 0; q < n; q++) {
            for (int k = 0; k < nq; k++) {
                double c = rng.nextInt(5) == 0 ? 0 : rng.nextDouble() * 6;
                h[q * 2 * nq + k] = c;
                h[q * 2 * nq + nq + k] = q == 3 ? 0 : c * rng.nextDouble();
            }
        }
        return Tensor.ofDoubles(h, n, 2, nq);
    }

    /** Σ_q coef_q·AP_q by the graph APLoss composes (cumsum, div, sum). */
    private static Tensor graph(Tensor hist, Tensor coef) {
        Tensor c = Ops.select(hist, 1, 0);
        Tensor cp = Ops.select(hist, 1, 1);
        Tensor prec = Ops.div(Ops.cumsum(cp, 1), Ops.affine(Ops.cumsum(c, 1), 1, 1e-16));
        Tensor mass = Ops.sum(cp, new int[] {1}, true);
        Tensor none = Ops.equal(mass, Tensor.zeros(mass.dtype(), mass.device()));
        Tensor ap = Ops.sum(Ops.mul(prec, Ops.div(cp, Ops.add(mass, none))), new int[] {1}, false);
        return ap;
    }

    @Test
    void lossFromHistogramEqualsTheGraphAndItsGradient() {
        Random rng = new Random(9);
        int n = 12;
        for (int nq : new int[] {2, 20, 100}) {
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor hist = histograms(rng, n, nq);
                double[] cv = new double[n];
                for (int q = 0; q < n; q++) {
                    cv[q] = q == 5 ? 0 : rng.nextGaussian();
                }
                Tensor coef = Tensor.ofDoubles(cv, n);
                Tensor ap = Tensor.empty(DType.FLOAT64, Device.CPU, n);
                Tensor grad = Tensor.empty(DType.FLOAT64, Device.CPU, n, 2, nq);
                hist.backend().apLossFromHistogram(hist, coef, ap, grad);

                Tensor leaf = Ops.cloneDetached(hist).requiresGrad(true);
                Tensor expectedAp = graph(leaf, coef);
                Tensor total = Ops.sum(Ops.mul(expectedAp, coef), null, false);
                Autograd.backward(total, null);
                double[] e = expectedAp.toDoubleArray();
                double[] a = ap.toDoubleArray();
                for (int q = 0; q < n; q++) {
                    assertEquals(e[q], a[q], 1e-13, "AP of query " + q + ", nq " + nq);
                }
                assertEquals(0, a[3], "no positives: AP 0");
                double[] eg = leaf.grad().toDoubleArray();
                double[] ag = grad.toDoubleArray();
                double scale = 0;
                for (int i = 0; i < eg.length; i++) {
                    assertEquals(eg[i], ag[i], 1e-12 * (1 + Math.abs(eg[i])), "dL/dhist[" + i + "], nq " + nq);
                    scale = Math.max(scale, Math.abs(eg[i]));
                }
                assertTrue(scale > 1e-3, "gradients should not vanish");
                for (int k = 0; k < 2 * nq; k++) {
                    assertEquals(0, ag[5 * 2 * nq + k], 0.0, "coef 0: no gradient");
                }
                // central differences of Σ coef·AP, independent of autograd
                double[] base = hist.toDoubleArray();
                for (int idx : new int[] {0, nq - 1, nq, 2 * nq + 1, 7 * 2 * nq + nq + nq / 2}) {
                    double h = 1e-6;
                    double[] p = base.clone();
                    double[] m = base.clone();
                    p[idx] += h;
                    m[idx] -= h;
                    double fd = (weighted(p, n, nq, coef) - weighted(m, n, nq, coef)) / (2 * h);
                    assertEquals(fd, ag[idx], 1e-6 * (1 + Math.abs(fd)), "finite difference at " + idx + ", nq " + nq);
                }
            }
        }
    }

    private static double weighted(double[] h, int n, int nq, Tensor coef) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor ap = Tensor.empty(DType.FLOAT64, Device.CPU, n);
            Tensor g = Tensor.empty(DType.FLOAT64, Device.CPU, n, 2, nq);
            Tensor hist = Tensor.ofDoubles(h, n, 2, nq);
            hist.backend().apLossFromHistogram(hist, coef, ap, g);
            double[] a = ap.toDoubleArray();
            double[] c = coef.toDoubleArray();
            double s = 0;
            for (int q = 0; q < n; q++) {
                s += a[q] * c[q];
            }
            return s;
        }
    }

    @Test
    void lossFromHistogramNamesBadOperands() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor hist = Tensor.zeros(DType.FLOAT64, Device.CPU, 4, 2, 5);
            Tensor ok = Tensor.zeros(DType.FLOAT64, Device.CPU, 4);
            Tensor grad = Tensor.zeros(DType.FLOAT64, Device.CPU, 4, 2, 5);
            Backend be = hist.backend();
            assertThrows(IllegalArgumentException.class, () -> be.apLossFromHistogram(
                    Tensor.zeros(DType.FLOAT64, Device.CPU, 4, 3, 5), ok, ok, grad));
            assertThrows(IllegalArgumentException.class, () -> be.apLossFromHistogram(hist,
                    Tensor.zeros(DType.FLOAT64, Device.CPU, 3), ok, grad));
            assertThrows(IllegalArgumentException.class, () -> be.apLossFromHistogram(hist, ok,
                    Tensor.zeros(DType.FLOAT32, Device.CPU, 4), grad));
            assertThrows(IllegalArgumentException.class, () -> be.apLossFromHistogram(hist, ok, ok,
                    Tensor.zeros(DType.FLOAT64, Device.CPU, 4, 2, 4)));
        }
    }

    /** An infinite end makes the bin width infinite (every weight 0 or NaN): refused, naming the ends. */
    @Test
    void binsRefuseAnInfiniteOrEmptyRange() {
        for (double[] mm : new double[][] {{0, Double.POSITIVE_INFINITY}, {Double.NEGATIVE_INFINITY, 1},
            {Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Backend.ApBins(25, mm[0], mm[1]));
            assertTrue(e.getMessage().contains("must be finite") && e.getMessage().contains("Infinity"),
                    e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Backend.ApBins(25, 1, 1)).getMessage()
                .contains("max (1.0) must exceed min (1.0)"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Backend.ApBins(1, 0, 1)).getMessage()
                .contains("nq must be in [2, 100], got 1"));
        assertEquals(100, new Backend.ApBins(100, -1, 1).nq());
    }
}
