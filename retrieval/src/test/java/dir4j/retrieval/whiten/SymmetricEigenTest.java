package dir4j.retrieval.whiten;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Both eigensolvers against a hand-derived case, and LAPACK's dsyevd (where this machine has a
 * LAPACK library) against EJML on a covariance with a wide spread of eigenvalues, as a PCA of
 * descriptors has.
 */
class SymmetricEigenTest {
    private static final double S = Math.sqrt(0.5);

    private static Optional<SymmetricEigen.Lapack> lapack() {
        return SymmetricEigen.Lapack.find(null);
    }

    /** [[2, 1], [1, 2]]: eigenvalue 1 along (1, -1)/√2, 3 along (1, 1)/√2. */
    @Test
    void aHandDerivedMatrixByBothSolvers() {
        double[] a = {2, 1, 1, 2};
        checkTwoByTwo(SymmetricEigen.ejml(a.clone(), 2));
        lapack().ifPresent(l -> {
            double[] copy = a.clone();
            SymmetricEigen.Decomposition d = l.dsyevd(copy, 2);
            assertTrue(Arrays.equals(a, copy), "the input is left as it was");
            checkTwoByTwo(d);
            assertEquals(1, d.values()[0], 1e-15, "LAPACK: ascending");
        });
        assertEquals(3, SymmetricEigen.of(new double[] {3}, 1).values()[0]);
    }

    private static void checkTwoByTwo(SymmetricEigen.Decomposition d) {
        for (int i = 0; i < 2; i++) {
            double lambda = d.values()[i];
            double x = d.vectors()[2 * i];
            double y = d.vectors()[2 * i + 1];
            if (Math.abs(lambda - 1) < 1e-12) {
                assertEquals(S, Math.abs(x), 1e-15, d.by());
                assertEquals(-x, y, 1e-15, d.by());
            } else {
                assertEquals(3, lambda, 1e-12, d.by());
                assertEquals(S, Math.abs(x), 1e-15, d.by());
                assertEquals(x, y, 1e-15, d.by());
            }
        }
    }

    /**
     * A 160 x 160 covariance of rows whose axes scale from 1 to 1e-3 (eigenvalues over six
     * decades): the same eigenvalues as EJML's to 1e-12 of the largest, the same eigenvectors up
     * to sign, and each one an eigenvector of the matrix to rounding.
     */
    @Test
    void lapackAgreesWithEjmlOnACovariance() {
        Optional<SymmetricEigen.Lapack> l = lapack();
        Assumptions.assumeTrue(l.isPresent(), "no LAPACK library on this machine");
        int n = 160;
        int rows = 400;
        Random r = new Random(11);
        double[] x = new double[rows * n];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextGaussian() * Math.pow(1e-3, (i % n) / (double) (n - 1));
        }
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = 0; k < rows; k++) {
                    s += x[k * n + i] * x[k * n + j];
                }
                a[i * n + j] = s / (rows - 1);
                a[j * n + i] = s / (rows - 1);
            }
        }
        SymmetricEigen.Decomposition got = l.get().dsyevd(a, n);
        SymmetricEigen.Decomposition ref = SymmetricEigen.ejml(a, n);
        Integer[] gi = byValue(got.values());
        Integer[] ri = byValue(ref.values());
        double largest = got.values()[gi[n - 1]];
        for (int k = 0; k < n; k++) {
            double lambda = got.values()[gi[k]];
            assertEquals(ref.values()[ri[k]], lambda, 1e-12 * largest, "eigenvalue " + k);
            double dot = 0;
            for (int j = 0; j < n; j++) {
                dot += got.vectors()[gi[k] * n + j] * ref.vectors()[ri[k] * n + j];
            }
            assertEquals(1, Math.abs(dot), 1e-6, "eigenvector " + k + " (eigenvalue " + lambda + ")");
            for (int i = 0; i < n; i++) {
                double av = 0;
                for (int j = 0; j < n; j++) {
                    av += a[i * n + j] * got.vectors()[gi[k] * n + j];
                }
                assertEquals(lambda * got.vectors()[gi[k] * n + i], av, 1e-13 * largest, "A v = λ v, row " + i);
            }
        }
    }

    private static Integer[] byValue(double[] v) {
        Integer[] order = new Integer[v.length];
        for (int i = 0; i < v.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (p, q) -> Double.compare(v[p], v[q]));
        return order;
    }

    @Test
    void theSettingChoosesTheLibraryOrNone() {
        assertTrue(SymmetricEigen.Lapack.find("false").isEmpty());
        assertTrue(SymmetricEigen.Lapack.find(" FALSE ").isEmpty());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SymmetricEigen.Lapack.find("/nonexistent/liblapack.so.3"));
        assertTrue(e.getMessage().contains("-Ddir4j.lapack=/nonexistent/liblapack.so.3")
                && e.getMessage().contains("=false uses EJML"), e.getMessage());
        // a library without dsyevd_
        assertThrows(IllegalStateException.class, () -> SymmetricEigen.Lapack.find("libc.so.6"));
        lapack().ifPresent(l -> assertEquals(l.location,
                SymmetricEigen.Lapack.find(l.location).orElseThrow().location, "a library named is the one used"));
    }

    /**
     * The default search finds a LAPACK exactly when the dynamic linker can open one of its names
     * with dsyevd_ in it, and what finds one then computes with it and names it.
     */
    @Test
    void theDefaultSearchUsesALapackTheLinkerCanOpen() {
        boolean openable = SymmetricEigen.DEFAULT_LIBRARIES.stream().anyMatch(name -> {
            try {
                return java.lang.foreign.SymbolLookup.libraryLookup(name, java.lang.foreign.Arena.global())
                        .find("dsyevd_").isPresent();
            } catch (IllegalArgumentException e) {
                return false;
            }
        });
        assertEquals(openable, lapack().isPresent());
        assertEquals(openable, SymmetricEigen.Lapack.get().isPresent(), "no -Ddir4j.lapack in the tests");
        assertTrue(SymmetricEigen.Lapack.get() == SymmetricEigen.Lapack.get(), "bound once");
        String by = SymmetricEigen.of(new double[] {2, 1, 1, 2}, 2).by();
        assertEquals(openable, by.startsWith("LAPACK dsyevd ("), by);
        String backend = SymmetricEigen.backend();
        assertTrue(openable ? backend.equals(by) : backend.startsWith("EJML (no LAPACK library: liblapack.so.3, "
                + "libopenblas.so.0 not found)"), backend);
        assertEquals(2, SymmetricEigen.of(new double[] {2, 1, 1, 2}, 2).size());
    }

    @Test
    void badMatricesAreErrors() {
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> SymmetricEigen.of(new double[5], 2));
        assertEquals("a 2x2 matrix needs 4 entries, got 5", size.getMessage());
        IllegalStateException nan = assertThrows(IllegalStateException.class,
                () -> SymmetricEigen.of(new double[] {1, Double.NaN, Double.NaN, 1}, 2));
        assertTrue(nan.getMessage().contains("did not converge (non-finite descriptors?)"), nan.getMessage());
    }

    /**
     * Whitenings learned on several threads of one JVM at once (a service learning per tenant):
     * each thread's decomposition is bit for bit the one a lone call gives, by LAPACK (its
     * workspace per call; OpenBLAS's own threads inside) and by EJML (whose lone results the tests
     * above check against LAPACK's and a hand-derived case).
     */
    @Test
    void decompositionsOnFourThreadsAtOnceAreTheLoneOnes() throws Exception {
        int n = 64;
        Random r = new Random(4);
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double v = r.nextGaussian() + (i == j ? n : 0);
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        java.util.List<java.util.function.UnaryOperator<double[]>> solvers = new java.util.ArrayList<>();
        solvers.add(m -> flatten(SymmetricEigen.ejml(m, n)));
        lapack().ifPresent(l -> solvers.add(m -> flatten(l.dsyevd(m, n))));
        for (var solver : solvers) {
            double[] lone = solver.apply(a);
            java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
            try {
                for (int round = 0; round < 3; round++) {
                    java.util.concurrent.CyclicBarrier go = new java.util.concurrent.CyclicBarrier(4);
                    java.util.List<java.util.concurrent.Future<double[]>> each = new java.util.ArrayList<>();
                    for (int t = 0; t < 4; t++) {
                        each.add(pool.submit(() -> {
                            go.await();
                            return solver.apply(a.clone());
                        }));
                    }
                    for (var f : each) {
                        assertTrue(Arrays.equals(lone, f.get()), "round " + round + ": the lone call's values and "
                                + "vectors");
                    }
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    private static double[] flatten(SymmetricEigen.Decomposition d) {
        double[] all = Arrays.copyOf(d.values(), d.size() + d.vectors().length);
        System.arraycopy(d.vectors(), 0, all, d.size(), d.vectors().length);
        return all;
    }
}
