package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The blocked path (descriptors + class ids, never an N×N matrix) against the full path
 * (S = gram(D) with the N×N label matrix), in float64: loss, per-query AP, histograms and dL/dD.
 */
class APLossBlockedTest {
    private static final int N = 300;
    private static final int DIM = 24;

    /** Unit rows; classes of 1–6 images, so some queries have no other positive. */
    static Tensor descriptors(Random rng, int n, int dim) {
        double[] v = new double[n * dim];
        for (int i = 0; i < n; i++) {
            double norm = 0;
            for (int k = 0; k < dim; k++) {
                v[i * dim + k] = rng.nextGaussian();
                norm += v[i * dim + k] * v[i * dim + k];
            }
            for (int k = 0; k < dim; k++) {
                v[i * dim + k] /= Math.sqrt(norm);
            }
        }
        return Tensor.ofDoubles(v, n, dim);
    }

    static int[] classes(Random rng, int n) {
        int[] ids = new int[n];
        int c = 1000;
        for (int i = 0; i < n; ) {
            int size = 1 + rng.nextInt(6);
            for (int k = 0; k < size && i < n; k++) {
                ids[i++] = c;
            }
            c += 7; // sparse, non-dense ids
        }
        // shuffle so that classes straddle block boundaries
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
        return ids;
    }

    private record Out(double loss, double[] ap, double[] hist, double[] grad, int excluded) {}

    private static Out run(APLoss loss, Tensor base, int[] ids, Tensor weights, int rows) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = Ops.cloneDetached(base).requiresGrad(true);
            APLoss.Result r = rows == 0 ? loss.forward(Ops.gram(d), APLoss.sameClass(ids, DType.FLOAT64), weights)
                    : loss.forwardBlocked(d, ids, weights, rows);
            r.loss().backward();
            return new Out(r.loss().item(), r.ap().toDoubleArray(), r.histogram().toDoubleArray(),
                    d.grad().toDoubleArray(), r.excluded());
        }
    }

    private static void assertSame(Out full, Out blocked, String what) {
        assertEquals(full.loss(), blocked.loss(), 1e-12, what + ": loss");
        assertEquals(full.excluded(), blocked.excluded(), what + ": excluded queries");
        assertArrayClose(full.ap(), blocked.ap(), 1e-12, what + ": AP");
        assertArrayClose(full.hist(), blocked.hist(), 1e-9, what + ": histograms");
        assertArrayClose(full.grad(), blocked.grad(), 1e-11, what + ": dL/dD");
    }

    static void assertArrayClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Double.isNaN(e) ? 0 : Math.abs(e));
        }
        assertTrue(scale > 0, what + ": all zero, the test would prove nothing");
        for (int i = 0; i < expected.length; i++) {
            if (Double.isNaN(expected[i])) {
                assertTrue(Double.isNaN(actual[i]), what + ": [" + i + "] should be NaN, got " + actual[i]);
                continue;
            }
            assertEquals(expected[i], actual[i], tol * Math.max(1, scale), what + ": [" + i + "]");
        }
    }

    private void compare(APLoss loss, Tensor weights, String name) {
        Random rng = new Random(7);
        try (Tensor d = descriptors(rng, N, DIM)) {
            int[] ids = classes(rng, N);
            Out full = run(loss, d, ids, weights, 0);
            // with the self-match kept every query is its own positive
            assertEquals(loss.excludesSelf(), full.excluded() > 0, "queries without positives");
            for (int rows : new int[] {N, 1000, 64, 97, 1}) {
                assertSame(full, run(loss, d, ids, weights, rows), name + ", " + rows + " rows per block");
                loss.withEagerGradient(true);
                try {
                    assertSame(full, run(loss, d, ids, weights, rows), name + ", " + rows + " rows per block, eager dL/dD");
                } finally {
                    loss.withEagerGradient(null);
                }
            }
        }
    }

    /**
     * With dL/dD computed during the forward, the backward scales it by the upstream gradient:
     * 2.5·loss gives 2.5 times the gradient of the lazy path, and a forward without a gradient
     * gives the same loss and APs.
     */
    @Test
    void eagerGradientIsScaledByTheUpstreamGradient() {
        Random rng = new Random(11);
        try (Tensor base = descriptors(rng, 120, 16)) {
            int[] ids = classes(rng, 120);
            double[][] grads = new double[2][];
            double[] losses = new double[2];
            for (int eager = 0; eager < 2; eager++) {
                APLoss loss = new APLoss(20, -1, 1, false, true).withEagerGradient(eager == 1);
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor d = Ops.cloneDetached(base).requiresGrad(true);
                    APLoss.Result r = loss.forwardBlocked(d, ids, null, 50);
                    Ops.affine(r.loss(), 2.5, 0).backward();
                    grads[eager] = d.grad().toDoubleArray();
                    losses[eager] = r.loss().item();
                    try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                        assertEquals(losses[eager], loss.forwardBlocked(base, ids, null, 50).loss().item(), 0,
                                "the loss without a gradient");
                    }
                }
            }
            assertEquals(losses[0], losses[1], 0, "loss");
            assertArrayClose(grads[0], grads[1], 1e-15, "2.5 · dL/dD, eager against lazy");
            // the eager path computed dL/dD in the forward: descriptors zeroed in place after it no
            // longer matter (the lazy path recomputes from them at the backward: dD = H·0 = 0)
            for (boolean eager : new boolean[] {false, true}) {
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor d = Ops.cloneDetached(base).requiresGrad(true);
                    APLoss.Result r = new APLoss(20, -1, 1, false, true).withEagerGradient(eager).forwardBlocked(d, ids, null, 50);
                    d.segment().fill((byte) 0);
                    r.loss().backward();
                    double norm = 0;
                    for (double v : d.grad().toDoubleArray()) {
                        norm += v * v;
                    }
                    assertEquals(eager, norm > 0, "gradient after the descriptors were zeroed, eager " + eager + ": " + norm);
                }
            }
        }
    }

    /** Class numbering by first appearance, through the table (a narrow id range) and the map (a wide one). */
    @Test
    void classesAreNumberedByFirstAppearanceForNarrowAndWideIdRanges() {
        int[][] cases = {{7, -3, 7, 12, -3, 7}, {Integer.MAX_VALUE, Integer.MIN_VALUE, Integer.MAX_VALUE, 0, Integer.MIN_VALUE, Integer.MAX_VALUE}};
        for (int[] ids : cases) {
            double[] classOf = new double[ids.length];
            int[] count = new int[ids.length];
            APLoss.denseClasses(ids, classOf, count);
            assertArrayClose(new double[] {0, 1, 0, 2, 1, 0}, classOf, 0, "classes of " + java.util.Arrays.toString(ids));
            assertEquals("[3, 2, 1, 0, 0, 0]", java.util.Arrays.toString(count), "counts");
        }
        // the same classes under ids far apart give the same loss
        Random rng = new Random(4);
        try (Tensor d = descriptors(rng, 80, 8)) {
            int[] ids = classes(rng, 80);
            int[] wide = new int[ids.length];
            for (int i = 0; i < ids.length; i++) {
                wide[i] = ids[i] * 1_000_003;
            }
            APLoss loss = new APLoss(20, -1, 1, false, true);
            assertEquals(run(loss, d, ids, null, 30).loss(), run(loss, d, wide, null, 30).loss(), 0, "loss, wide ids");
        }
    }

    @Test
    void blockedApLossEqualsFullPathWithSelfExclusion() {
        compare(new APLoss(20, -1, 1, false, true), null, "AP, self excluded");
    }

    @Test
    void blockedApLossEqualsFullPathWithTheDiagonalKept() {
        compare(new APLoss(25, 0, 1, false, false), null, "AP, self kept");
    }

    @Test
    void blockedApLossEqualsFullPathWithQueryWeights() {
        double[] w = new double[N];
        Random rng = new Random(3);
        for (int i = 0; i < N; i++) {
            w[i] = 0.5 + rng.nextDouble();
        }
        try (Tensor weights = Tensor.ofDoubles(w, N)) {
            compare(new APLoss(20, -1, 1, false, true), weights, "AP, weighted");
        }
    }

    @Test
    void blockedDistanceVariantEqualsFullPath() {
        compare(new APLoss(20, 0, 1, true, true), null, "AP distance variant");
    }

    @Test
    void blockedTieAwareLossesEqualFullPath() {
        compare(new TAPLoss(20, -1, 1, false, false, true), null, "TAP full");
        compare(new TAPLoss(20, -1, 1, true, false, true), null, "TAP simplified");
    }

    @Test
    void forwardWithIdsTakesTheBlockedPathAboveTheThreshold() {
        Random rng = new Random(11);
        try (Tensor d = descriptors(rng, N, DIM)) {
            int[] ids = classes(rng, N);
            APLoss loss = new APLoss(20, -1, 1, false, true);
            Out full = run(loss, d, ids, null, 0);
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor x = Ops.cloneDetached(d).requiresGrad(true);
                // a budget of 2·N·8·40 bytes (scores and their gradient) gives blocks of 40 rows
                APLoss blocked = new APLoss(20, -1, 1, false, true).withBlockedAbove(0).withBlockBudget(2L * N * 8 * 40);
                assertEquals(40, blocked.blockRows(N, 8));
                // the distance variant keeps its mapped scores too: three buffers
                assertEquals(40, new APLoss(20, 0, 1, true, true).withBlockBudget(3L * N * 8 * 40).blockRows(N, 8));
                APLoss.Result r = blocked.forward(x, ids, null);
                r.loss().backward();
                assertSame(full, new Out(r.loss().item(), r.ap().toDoubleArray(), r.histogram().toDoubleArray(),
                        x.grad().toDoubleArray(), r.excluded()), "forward(D, ids) blocked");
            }
        }
    }

    @Test
    void blockedGradientMatchesFiniteDifferences() {
        // independent of the full path: central differences of the blocked loss itself
        Random rng = new Random(5);
        int n = 40;
        try (Tensor d = descriptors(rng, n, 6)) {
            int[] ids = classes(rng, n);
            APLoss loss = new APLoss(10, -1, 1, false, true);
            Out o = run(loss, d, ids, null, 7);
            double[] base = d.toDoubleArray();
            double h = 1e-6;
            for (int idx : new int[] {0, 13, 77, 150, 239}) {
                double[] p = base.clone();
                double[] m = base.clone();
                p[idx] += h;
                m[idx] -= h;
                double fd = (value(loss, p, n, ids) - value(loss, m, n, ids)) / (2 * h);
                assertEquals(fd, o.grad()[idx], 1e-6, "dL/dD[" + idx + "]");
            }
        }
    }

    private static double value(APLoss loss, double[] v, int n, int[] ids) {
        try (MemoryScope scope = MemoryScope.open()) {
            return loss.forwardBlocked(Tensor.ofDoubles(v, n, v.length / n), ids, null, 7).loss().item();
        }
    }

    /**
     * A NaN or infinite descriptor is a clear error on every path (the full one with scores, the
     * blocked one with ids, fused or through a subclass's graph, with or without a gradient),
     * never a NaN loss.
     */
    @Test
    void nonFiniteDescriptorsAreAClearErrorOnEveryPath() {
        for (double bad : new double[] {Double.NaN, Double.POSITIVE_INFINITY}) {
            for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                try (MemoryScope scope = MemoryScope.open()) {
                    Random rng = new Random(5);
                    int[] ids = classes(rng, 40);
                    double[] v = descriptors(rng, 40, 8).toDoubleArray();
                    v[3 * 8 + 5] = bad;
                    Tensor d = Tensor.ofDoubles(v, 40, 8).to(dtype);
                    Tensor leaf = d.detach().requiresGrad(true);
                    for (APLoss loss : new APLoss[] {new APLoss(20, 0, 1), new APLoss(20, 0, 1).withEagerGradient(true),
                            new TAPLoss(20, 0, 1, false)}) {
                        for (Tensor x : new Tensor[] {d, leaf}) {
                            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                                    IllegalArgumentException.class, () -> loss.forwardBlocked(x, ids, null, 16));
                            assertTrue(e.getMessage().contains("NaN or infinite"), e.getMessage());
                        }
                        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                                IllegalArgumentException.class, () -> loss.forward(Ops.matmul(d, Ops.transpose(d, 0, 1)),
                                        APLoss.sameClass(ids, dtype), null));
                        assertTrue(e.getMessage().contains("NaN or infinite"), e.getMessage());
                    }
                }
            }
        }
    }
}
