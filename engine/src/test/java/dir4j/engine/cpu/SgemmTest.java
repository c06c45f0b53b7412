package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Sgemm against a double-precision reference over shapes that hit every edge of the blocking
 * (1, primes, one past MR/NR/KC/NC, k = 0), every operand layout (row-major, transposed, padded,
 * non-unit and negative strides) and alpha/beta combinations. The Vector API's bounds checks are
 * off in these runs (surefire's argLine), so each output also sits between sentinel zones, with
 * sentinels in the row gaps of C, and a stray write anywhere fails the test.
 */
class SgemmTest {

    /** How an m×k operand lies in memory. */
    enum Layout {
        ROW_MAJOR, TRANSPOSED, PADDED, STRIDED, REVERSED_ROWS;

        /** {offset, rowStride, colStride, floats spanned} of a rows×cols matrix in this layout. */
        long[] place(int rows, int cols) {
            return switch (this) {
                case ROW_MAJOR -> span(0, cols, 1, rows, cols);
                case TRANSPOSED -> span(0, 1, rows, rows, cols);
                case PADDED -> span(3, cols + 5, 1, rows, cols);
                case STRIDED -> span(1, 2L * cols + 3, 2, rows, cols);
                case REVERSED_ROWS -> span(Math.max(0, rows - 1) * (long) cols, -cols, 1, rows, cols);
            };
        }

        private static long[] span(long off, long rs, long cs, int rows, int cols) {
            // Offsets are chosen so the lowest element is at index ≥ 0; the buffer ends after the highest.
            long hi = off + Math.max(0, (rows - 1L) * rs) + Math.max(0, (cols - 1L) * cs);
            return new long[] {off, rs, cs, rows == 0 || cols == 0 ? 1 : hi + 1};
        }
    }

    static Stream<Arguments> shapes() {
        int mr = Sgemm.MR;
        int nr = Sgemm.NR;
        int kc = Sgemm.KC;
        int[][] shapes = {
            {1, 1, 1}, {1, 1, 7}, {7, 1, 1}, {1, 9, 1}, {2, 3, 4}, {11, 31, 5},
            {mr, nr, kc}, {mr + 1, nr + 1, kc + 1}, {mr - 1, nr - 1, kc - 1},
            {97, 131, 73}, {13, 5, 300}, {300, 77, 1}, {64, 64, 64}, {65, 63, 129},
            {257, 259, 513}, {500, 7, 600}, {3, Sgemm.NC + 52, 5}, {24, 2 * Sgemm.NC + 1, 40},
            {30, Sgemm.NC + 7, 2 * Sgemm.KC + 3},
            // the few-rows schedule: full and partial panels, one and several depth blocks
            {64, 3000, 256}, {37, 1500, 70}, {Sgemm.SMALL_M, Sgemm.SMALL_M_MIN_COLUMNS, Sgemm.SMALL_M_DEPTH},
            {1, 1100, 5}, {12, 1024 + 33, 2 * Sgemm.KC + 1},
            // the split-depth schedule: the smallest depth it takes, uneven chunks, partial tiles
            {5, 40, 4 * Sgemm.SPLIT_K_CHUNK}, {37, 70, 4 * Sgemm.SPLIT_K_CHUNK + 77}, {200, 128, 5 * Sgemm.SPLIT_K_CHUNK - 1},
        };
        return Stream.of(shapes).map(s -> Arguments.of(s[0], s[1], s[2]));
    }

    @ParameterizedTest(name = "{0}x{1}x{2}")
    @MethodSource("shapes")
    void rowMajorProductMatchesReferenceAtEveryShape(int m, int n, int k) {
        check(m, n, k, Layout.ROW_MAJOR, Layout.ROW_MAJOR, 1f, 0f, 0, 1);
    }

    static Stream<Arguments> layouts() {
        List<Arguments> out = new ArrayList<>();
        int[][] shapes = {{1, 1, 1}, {5, 3, 2}, {37, 41, 43}, {97, 131, 73}, {130, 70, 260}, {50, 1030, 300}, {30, 50, 2100}};
        for (int[] s : shapes) {
            for (Layout a : Layout.values()) {
                for (Layout b : Layout.values()) {
                    out.add(Arguments.of(s[0], s[1], s[2], a, b));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}x{1}x{2} A {3} B {4}")
    @MethodSource("layouts")
    void stridedAndTransposedOperandsMatchReference(int m, int n, int k, Layout a, Layout b) {
        check(m, n, k, a, b, 1f, 0f, 3, 2);
    }

    static Stream<Arguments> scalings() {
        List<Arguments> out = new ArrayList<>();
        float[][] ab = {{1, 0}, {2.5f, 0}, {1, 1}, {-0.5f, 2}, {0, 1}, {0, 0}, {1, -1}};
        int[][] shapes = {{1, 1, 1}, {13, 35, 9}, {97, 131, 73}, {40, 50, 300}, {40, 50, 2100}};
        for (int[] s : shapes) {
            for (float[] x : ab) {
                out.add(Arguments.of(s[0], s[1], s[2], x[0], x[1]));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}x{1}x{2} alpha={3} beta={4}")
    @MethodSource("scalings")
    void alphaAndBetaScaleProductAndOldC(int m, int n, int k, float alpha, float beta) {
        check(m, n, k, Layout.ROW_MAJOR, Layout.TRANSPOSED, alpha, beta, 1, 3);
    }

    @ParameterizedTest(name = "{0}x{1}x{2}")
    @MethodSource("shapes")
    void betaZeroNeverReadsNaNFilledC(int m, int n, int k) {
        // check() fills C with NaN when beta is 0: any read of old C would poison the result.
        check(m, n, k, Layout.PADDED, Layout.ROW_MAJOR, 1.5f, 0f, 2, 4);
    }

    @ParameterizedTest(name = "k=0 beta={0}")
    @ValueSource(floats = {0f, 1f, -2f})
    void emptyDepthLeavesBetaTimesC(float beta) {
        check(17, 40, 0, Layout.ROW_MAJOR, Layout.ROW_MAJOR, 3f, beta, 1, 5);
    }

    @Test
    void emptyOutputTouchesNothing() {
        check(0, 5, 3, Layout.ROW_MAJOR, Layout.ROW_MAJOR, 1f, 0f, 0, 6);
        check(5, 0, 3, Layout.ROW_MAJOR, Layout.ROW_MAJOR, 1f, 0f, 0, 7);
    }

    @Test
    void batchedProductsMatchOneByOne() {
        for (int batch : new int[] {1, 3, 4, 9}) {
            int m = 17;
            int n = 35;
            int k = 23;
            try (Arena arena = Arena.ofConfined()) {
                SplittableRandom rnd = new SplittableRandom(batch);
                long aStride = (long) m * k + 7;
                long bStride = (long) k * n + 3;
                long cStride = (long) m * n + 11;
                var a = NaiveKernels.Guarded.allocate(arena, aStride * batch);
                var b = NaiveKernels.Guarded.allocate(arena, bStride * batch);
                var c = NaiveKernels.Guarded.allocate(arena, cStride * batch);
                a.fillRandom(rnd);
                b.fillRandom(rnd);
                c.fillRandom(rnd);
                double[][][] want = new double[batch][][];
                double[][][] bound = new double[batch][m][n];
                for (int t = 0; t < batch; t++) {
                    // A transposed, B row-major.
                    want[t] = NaiveKernels.sgemm(m, n, k, 0.5f, a, t * aStride, 1, m, b, t * bStride, n, 1,
                            2f, c, t * cStride, n, bound[t]);
                }
                Sgemm.sgemmBatched(batch, m, n, k, 0.5f, a.body(), 0, 1, m, aStride, b.body(), 0, n, 1, bStride,
                        2f, c.body(), 0, n, cStride);
                for (int t = 0; t < batch; t++) {
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double got = c.get(t * cStride + (long) i * n + j);
                            assertTrue(Math.abs(got - want[t][i][j]) <= bound[t][i][j],
                                    "batch " + t + " C(" + i + "," + j + ") = " + got + ", want " + want[t][i][j]);
                        }
                    }
                }
                assertNull(c.guardDamage());
            }
        }
    }

    /** Callers on several threads share the worker pool; each keeps its own packing buffers. */
    @Test
    void splitDepthProductIsTheSameWhicheverThreadsRunItsChunks() throws Exception {
        int m = 45;
        int n = 70;
        int k = 6 * Sgemm.SPLIT_K_CHUNK + 13;
        assertTrue(Sgemm.splitsDepth(m, n, k));
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rnd = new SplittableRandom(17);
            MemorySegment a = arena.allocate((long) m * k * Float.BYTES);
            MemorySegment b = arena.allocate((long) k * n * Float.BYTES);
            for (long i = 0; i < (long) m * k; i++) {
                a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            }
            for (long i = 0; i < (long) k * n; i++) {
                b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            }
            MemorySegment pooled = arena.allocate((long) m * n * Float.BYTES);
            MemorySegment inline = arena.allocate((long) m * n * Float.BYTES);
            Sgemm.sgemm(m, n, k, 1f, a, 0, k, 1, b, 0, n, 1, 0f, pooled, 0, n);
            // Inside a pool worker the chunks run one after another on that thread: index 1 of a
            // parallelFor whose two indices wait for each other runs on a worker (CpuThreadsTest).
            java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(
                    CpuThreads.threads() > 1 ? 2 : 1); // one thread: both indices run inline on the caller
            CpuThreads.parallelFor(2, i -> {
                started.countDown();
                try {
                    started.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                if (i == 1) {
                    Sgemm.sgemm(m, n, k, 1f, a, 0, k, 1, b, 0, n, 1, 0f, inline, 0, n);
                }
            });
            for (long i = 0; i < (long) m * n; i++) {
                assertEquals(Float.floatToRawIntBits(pooled.getAtIndex(ValueLayout.JAVA_FLOAT, i)),
                        Float.floatToRawIntBits(inline.getAtIndex(ValueLayout.JAVA_FLOAT, i)), "element " + i);
            }
        }
    }

    @Test
    void concurrentCallersGetTheirOwnResults() throws Exception {
        int callers = 4;
        var pool = java.util.concurrent.Executors.newFixedThreadPool(callers);
        try {
            List<java.util.concurrent.Future<?>> done = new ArrayList<>();
            for (int t = 0; t < callers; t++) {
                int seed = 100 + t;
                done.add(pool.submit(() -> {
                    for (int rep = 0; rep < 3; rep++) {
                        check(90 + seed % 7, 300 + seed, 270, Layout.ROW_MAJOR, Layout.TRANSPOSED, 1f, 0f, 1, seed + rep);
                    }
                }));
            }
            for (var f : done) {
                f.get(5, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void operandPastItsSegmentIsRejectedBeforeAnyWrite() {
        try (Arena arena = Arena.ofConfined()) {
            var a = arena.allocate(4L * 10 * 10, 64);
            var small = arena.allocate(4L * 10 * 9, 64);
            var ex = assertThrows(IllegalArgumentException.class,
                    () -> Sgemm.sgemm(10, 10, 10, 1f, a, 0, 10, 1, a, 0, 10, 1, 0f, small, 0, 10));
            assertTrue(ex.getMessage().startsWith("C: a 10x10 matrix"), ex.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> Sgemm.sgemm(10, 10, 10, 1f, a, 1, 10, 1, a, 0, 10, 1, 0f, a, 0, 10));
            assertThrows(IllegalArgumentException.class,
                    () -> Sgemm.sgemm(-1, 10, 10, 1f, a, 0, 10, 1, a, 0, 10, 1, 0f, a, 0, 10));
        }
    }

    @Test
    void microTileIsTwoVectorsOfTheBackendSpecies() {
        assertEquals(CpuVectors.FLOAT, Sgemm.SPECIES);
        assertEquals(2 * CpuVectors.FLOAT.length(), Sgemm.NR);
    }

    /**
     * The species is a static final (so the JIT folds it), so each width needs its own JVM: this
     * runs {@link VectorWidthCheck} — random products and convolutions against the reference —
     * under -Ddir4j.vector.bits=128, 256 and 512.
     */
    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void kernelsAreCorrectAtEachVectorWidth(int bits) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Ddir4j.vector.bits=" + bits,
                "-cp", System.getProperty("java.class.path"), VectorWidthCheck.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        boolean done = p.waitFor(5, TimeUnit.MINUTES);
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!done) {
            p.destroyForcibly();
            fail("width check at " + bits + " bits timed out: " + output);
        }
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("OK " + bits + " bits"), output);
    }

    /**
     * Runs one product through sgemm and the reference and compares every element within the
     * float32 error bound of a k-term dot product; checks the sentinels around and inside C.
     */
    static void check(int m, int n, int k, Layout aLayout, Layout bLayout, float alpha, float beta, int cPad,
            long seed) {
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rnd = new SplittableRandom(seed * 1_000_003L + m * 7919L + n * 31L + k);
            long[] ap = aLayout.place(m, k);
            long[] bp = bLayout.place(k, n);
            long ldc = n + cPad;
            long cSize = m == 0 || n == 0 ? 1 : (m - 1) * ldc + n;
            var a = NaiveKernels.Guarded.allocate(arena, ap[3]);
            var b = NaiveKernels.Guarded.allocate(arena, bp[3]);
            var c = NaiveKernels.Guarded.allocate(arena, cSize);
            a.fillRandom(rnd);
            b.fillRandom(rnd);
            if (beta == 0f) {
                c.fill(Float.NaN);
            } else {
                c.fillRandom(rnd);
            }
            // Row gaps of C keep the sentinel, to catch writes past a row's n-th column.
            for (long i = 0; i < m; i++) {
                for (long j = n; j < ldc && i * ldc + j < cSize; j++) {
                    c.set(i * ldc + j, NaiveKernels.SENTINEL);
                }
            }
            double[][] bound = new double[m][n];
            double[][] want = NaiveKernels.sgemm(m, n, k, alpha, a, ap[0], ap[1], ap[2], b, bp[0], bp[1], bp[2],
                    beta, c, 0, ldc, bound);
            Sgemm.sgemm(m, n, k, alpha, a.body(), ap[0], ap[1], ap[2], b.body(), bp[0], bp[1], bp[2],
                    beta, c.body(), 0, ldc);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double got = c.get(i * ldc + j);
                    if (!(Math.abs(got - want[i][j]) <= bound[i][j])) {
                        fail(m + "x" + n + "x" + k + " A " + aLayout + " B " + bLayout + " alpha " + alpha + " beta "
                                + beta + ": C(" + i + "," + j + ") = " + got + ", want " + want[i][j] + " ± "
                                + bound[i][j]);
                    }
                }
                for (long j = n; j < ldc && i * ldc + j < cSize; j++) {
                    assertEquals(0x7fc0dead, Float.floatToRawIntBits(c.get(i * ldc + j)),
                            "row gap of C written at (" + i + "," + j + ")");
                }
            }
            assertNull(c.guardDamage(), "C's sentinel zone");
            assertNull(a.guardDamage(), "A's sentinel zone");
            assertNull(b.guardDamage(), "B's sentinel zone");
        }
    }
}
