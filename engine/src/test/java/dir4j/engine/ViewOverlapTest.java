package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;

/**
 * Overlap between two views of one storage, checked element by element: {@link
 * Tensor#partiallyOverlaps} and {@link Shape#isNonOverlapping} against a brute-force oracle (the
 * set of storage offsets each view addresses) for thousands of random views, and {@link
 * Ops#addInPlace} against PyTorch 1.13's add_ for the random view pairs of
 * fixtures/view_overlap/add_in_place_torch.txt (tests/fixtures/make_view_overlap_fixture.py).
 */
class ViewOverlapTest {

    /** A view's storage offsets, index by index in row-major order. */
    static long[] offsets(int[] shape, long[] strides, long offset) {
        int n = 1;
        for (int s : shape) {
            n *= s;
        }
        long[] out = new long[n];
        int[] idx = new int[shape.length];
        for (int k = 0; k < n; k++) {
            long at = offset;
            for (int d = 0; d < shape.length; d++) {
                at += idx[d] * strides[d];
            }
            out[k] = at;
            for (int d = shape.length - 1; d >= 0 && ++idx[d] == shape[d]; d--) {
                idx[d] = 0;
            }
        }
        return out;
    }

    static long[] offsets(Tensor t) {
        return offsets(t.shape(), t.strides(), t.offset());
    }

    static boolean distinct(long[] at) {
        return Arrays.stream(at).distinct().count() == at.length;
    }

    static boolean share(long[] a, long[] b) {
        Set<Long> seen = new HashSet<>();
        for (long v : a) {
            seen.add(v);
        }
        for (long v : b) {
            if (seen.contains(v)) {
                return true;
            }
        }
        return false;
    }

    /** The same view: one shape, and index by index the same storage offset. */
    static boolean sameView(Tensor a, Tensor b) {
        return Arrays.equals(a.shape(), b.shape()) && Arrays.equals(offsets(a), offsets(b));
    }

    /** A random view of a storage of n elements: rank 0-4, sizes 0-5, strides 0-7 (no element beyond n). */
    static Tensor randomView(Tensor base, Random r) {
        int n = (int) base.numel();
        while (true) {
            int rank = r.nextInt(5);
            int[] shape = new int[rank];
            long[] strides = new long[rank];
            long span = 0;
            for (int d = 0; d < rank; d++) {
                shape[d] = r.nextInt(20) == 0 ? 0 : 1 + r.nextInt(5);
                strides[d] = r.nextInt(8);
                span += strides[d] * Math.max(0, shape[d] - 1);
            }
            if (span < n) {
                return base.viewOf(shape, strides, r.nextInt((int) (n - span)));
            }
        }
    }

    /** A second view for a: random, a shifted by a few elements, a's dimensions permuted, or a itself. */
    static Tensor partnerOf(Tensor a, Tensor base, Random r) {
        int n = (int) base.numel();
        int[] shape = a.shape();
        long[] strides = a.strides();
        switch (r.nextInt(5)) {
            case 0 -> {
                long lo = Arrays.stream(offsets(a)).min().orElse(0);
                long hi = Arrays.stream(offsets(a)).max().orElse(0);
                int shift = r.nextInt(9) - 4;
                if (lo + shift >= 0 && hi + shift < n) {
                    return base.viewOf(shape, strides, a.offset() + shift);
                }
                return a;
            }
            case 1 -> {
                // the same layout written differently: strides of size-1 dimensions changed
                long[] s = strides.clone();
                for (int d = 0; d < s.length; d++) {
                    if (shape[d] == 1) {
                        s[d] = r.nextInt(8);
                    }
                }
                return base.viewOf(shape, s, a.offset());
            }
            case 2 -> {
                int[] order = new int[shape.length];
                for (int d = 0; d < order.length; d++) {
                    order[d] = d;
                }
                for (int d = order.length - 1; d > 0; d--) {
                    int j = r.nextInt(d + 1);
                    int t = order[d];
                    order[d] = order[j];
                    order[j] = t;
                }
                int[] ps = new int[shape.length];
                long[] pst = new long[shape.length];
                for (int d = 0; d < order.length; d++) {
                    ps[d] = shape[order[d]];
                    pst[d] = strides[order[d]];
                }
                return base.viewOf(ps, pst, a.offset());
            }
            default -> {
                return randomView(base, r);
            }
        }
    }

    @Test
    void partiallyOverlapsAgreesWithTheElementByElementOracle() {
        Random r = new Random(26);
        int[] seen = new int[4]; // overlapping, disjoint, same view, disjoint but interleaved in range
        try (MemoryScope scope = MemoryScope.open()) {
            for (int i = 0; i < 20_000; i++) {
                Tensor base = Tensor.zeros(1 + r.nextInt(64));
                Tensor a = randomView(base, r);
                Tensor b = partnerOf(a, base, r);
                long[] ao = offsets(a);
                long[] bo = offsets(b);
                boolean same = sameView(a, b);
                boolean expected = !same && share(ao, bo);
                String what = describe(a) + " and " + describe(b);
                assertEquals(expected, a.partiallyOverlaps(b), what);
                assertEquals(expected, b.partiallyOverlaps(a), "the other way round: " + what);
                seen[same ? 2 : expected ? 0 : 1]++;
                if (!expected && !same && ao.length > 0 && bo.length > 0 && inRangeOf(ao, bo)) {
                    seen[3]++;
                }
                // Shape.isNonOverlapping: whether a addresses each element once (interleaved strides too)
                assertEquals(distinct(ao), Shape.isNonOverlapping(a.shape(), a.strides()), "isNonOverlapping of "
                        + describe(a));
            }
        }
        // the random views reach every kind of pair
        for (int k : seen) {
            assertTrue(k > 500, Arrays.toString(seen));
        }
    }

    /** A random rectangle of a rows x cols matrix, rows and columns with steps, maybe transposed or one line of it. */
    static Tensor randomRectangle(Tensor base, int rows, int cols, Random r) {
        int r0 = r.nextInt(rows);
        int c0 = r.nextInt(cols);
        int rs = 1 + r.nextInt(3);
        int cs = 1 + r.nextInt(3);
        int nr = 1 + r.nextInt((rows - 1 - r0) / rs + 1);
        int nc = 1 + r.nextInt((cols - 1 - c0) / cs + 1);
        Tensor v = base.viewOf(new int[] {nr, nc}, new long[] {(long) rs * cols, cs}, (long) r0 * cols + c0);
        return switch (r.nextInt(4)) {
            case 0 -> v.t();
            case 1 -> v.select(r.nextInt(2), 0);
            default -> v;
        };
    }

    /** Slices of one matrix (the views the quick paths take: same row stride, dense, shifted). */
    @Test
    void partiallyOverlapsOfMatrixSlicesAgreesWithTheOracle() {
        Random r = new Random(2026);
        int overlapping = 0;
        try (MemoryScope scope = MemoryScope.open()) {
            for (int i = 0; i < 10_000; i++) {
                int rows = 2 + r.nextInt(12);
                int cols = 2 + r.nextInt(12);
                Tensor base = Tensor.zeros(rows * cols);
                Tensor a = randomRectangle(base, rows, cols, r);
                Tensor b = randomRectangle(base, rows, cols, r);
                boolean expected = !sameView(a, b) && share(offsets(a), offsets(b));
                assertEquals(expected, a.partiallyOverlaps(b), describe(a) + " and " + describe(b));
                assertEquals(expected, b.partiallyOverlaps(a), describe(b) + " and " + describe(a));
                overlapping += expected ? 1 : 0;
            }
        }
        assertTrue(overlapping > 1000 && overlapping < 9000, "overlapping pairs: " + overlapping);
    }

    /** Whether some offset of b lies between a's lowest and highest. */
    private static boolean inRangeOf(long[] a, long[] b) {
        long lo = Arrays.stream(a).min().getAsLong();
        long hi = Arrays.stream(a).max().getAsLong();
        return Arrays.stream(b).anyMatch(v -> v >= lo && v <= hi);
    }

    @Test
    void viewsOfAnotherStorageOrEmptyViewsNeverOverlap() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.zeros(12);
            Tensor y = Tensor.zeros(12);
            assertFalse(x.viewOf(new int[] {3}, new long[] {2}, 0).partiallyOverlaps(y.viewOf(new int[] {3}, new long[] {2}, 1)));
            assertFalse(x.viewOf(new int[] {0, 3}, new long[] {1, 1}, 0).partiallyOverlaps(x));
            assertFalse(x.partiallyOverlaps(x.viewOf(new int[] {3, 0}, new long[] {1, 1}, 0)));
        }
    }

    /**
     * Columns of a matrix too wide to compare element by element (rows 2^32 elements apart; the
     * views' geometry alone is read): was counted as overlapping, as any intersection of ranges of
     * 2^31 elements or more, so adding one column into another was refused.
     */
    @Test
    void columnsOfAWideMatrixAreComparedRowByRowPattern() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.zeros(4);
            long row = 1L << 32;
            Tensor col0 = x.viewOf(new int[] {3}, new long[] {row}, 0);
            Tensor col1 = x.viewOf(new int[] {3}, new long[] {row}, 1);
            Tensor cols01 = x.viewOf(new int[] {3, 2}, new long[] {row, 1}, 0);
            Tensor evenRowsCol1 = x.viewOf(new int[] {2}, new long[] {2 * row}, 1);
            assertFalse(col0.partiallyOverlaps(col1));
            assertTrue(cols01.partiallyOverlaps(col1));
            assertFalse(cols01.viewOf(new int[] {3, 1}, new long[] {row, 1}, 0).partiallyOverlaps(col1));
            assertTrue(evenRowsCol1.partiallyOverlaps(col1), "rows 0 and 2 of column 1");
            assertFalse(evenRowsCol1.partiallyOverlaps(x.viewOf(new int[] {1}, new long[] {1}, row + 1)),
                    "row 1 of column 1");
        }
    }

    private static String describe(Tensor t) {
        return Shape.str(t.shape()) + " strides " + Arrays.toString(t.strides()) + " offset " + t.offset();
    }

    // ------------------------------------------------------------------ against PyTorch

    record Case(int line, int n, int[] aShape, long[] aStrides, long aOffset, int[] bShape, long[] bStrides,
            long bOffset, String outcome, float[] after) {
        String describe() {
            return "line " + line + ": a " + Shape.str(aShape) + " strides " + Arrays.toString(aStrides) + " offset "
                    + aOffset + ", b " + Shape.str(bShape) + " strides " + Arrays.toString(bStrides) + " offset "
                    + bOffset + " of arange(" + n + "), PyTorch: " + outcome;
        }
    }

    static List<Case> torchCases() throws IOException {
        List<Case> out = new ArrayList<>();
        try (InputStream in = ViewOverlapTest.class.getResourceAsStream("/fixtures/view_overlap/add_in_place_torch.txt")) {
            assertNotNull(in, "fixtures/view_overlap/add_in_place_torch.txt: run tests/fixtures/make_view_overlap_fixture.py");
            BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
            String line;
            int no = 0;
            while ((line = reader.readLine()) != null) {
                no++;
                String[] f = line.split(" \\| ", -1);
                out.add(new Case(no, Integer.parseInt(f[0].trim()), ints(f[1]), longs(f[2]), Long.parseLong(f[3]),
                        ints(f[4]), longs(f[5]), Long.parseLong(f[6]), f[7], floats(f[8])));
            }
        }
        return out;
    }

    private static int[] ints(String s) {
        return s.isBlank() ? new int[0] : Arrays.stream(s.trim().split(",")).mapToInt(Integer::parseInt).toArray();
    }

    private static long[] longs(String s) {
        return s.isBlank() ? new long[0] : Arrays.stream(s.trim().split(",")).mapToLong(Long::parseLong).toArray();
    }

    private static float[] floats(String s) {
        int[] v = ints(s);
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = v[i];
        }
        return f;
    }

    private static float[] arange(int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = i;
        }
        return f;
    }

    /**
     * a += b for each random pair of views of one arange: where a addresses each element once and
     * b shares none of a's elements (or is a itself), dir4j computes the sum of the values before,
     * as PyTorch does (PyTorch also refuses a view and itself with another stride on a size-1
     * dimension, comparing stride vectors whole; dir4j sums those); where
     * they share an element, dir4j refuses and leaves the base as it was, whatever PyTorch did
     * (it checks overlap only between dense views, so for others it computes in its kernel's
     * order); an expanded or self-overlapping target is refused, as PyTorch refuses a stride-0 one.
     */
    @Test
    void addInPlaceAgreesWithPyTorchOnRandomViewPairs() throws IOException {
        List<Case> cases = torchCases();
        assertTrue(cases.size() >= 300, "cases: " + cases.size());
        int computed = 0;
        int refusedShared = 0;
        int torchComputedShared = 0;
        int refusedTarget = 0;
        int torchRefusedSame = 0;
        int torchComputedTarget = 0;
        try (MemoryScope scope = MemoryScope.open()) {
            for (Case c : cases) {
                Tensor base = Tensor.of(arange(c.n()), c.n());
                Tensor a = base.viewOf(c.aShape(), c.aStrides(), c.aOffset());
                Tensor b = base.viewOf(c.bShape(), c.bStrides(), c.bOffset());
                long[] ao = offsets(a);
                long[] bo = offsets(b);
                boolean sharing = share(ao, bo) && !sameView(a, b);
                if (!distinct(ao)) {
                    assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(a, b), c.describe());
                    refusedTarget++;
                    torchComputedTarget += c.outcome().equals("ok") ? 1 : 0;
                } else if (sharing) {
                    assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(a, b), c.describe());
                    refusedShared++;
                    if (c.outcome().equals("ok")) {
                        torchComputedShared++;
                    }
                } else {
                    // the sum, element by element, of the values before
                    float[] expected = arange(c.n());
                    long[] bb;
                    try (Tensor bv = Ops.broadcastView("test", b, a.shape())) {
                        bb = offsets(bv);
                    }
                    for (int k = 0; k < ao.length; k++) {
                        expected[(int) ao[k]] = (float) ao[k] + (float) bb[k];
                    }
                    Ops.addInPlace(a, b);
                    assertArrayEquals(expected, base.toFloatArray(), c.describe());
                    if (c.outcome().equals("ok")) {
                        assertArrayEquals(c.after(), base.toFloatArray(), c.describe());
                    } else {
                        // PyTorch compares stride vectors whole: a view and itself with another
                        // stride on a size-1 dimension count as a partial overlap there
                        assertTrue(c.outcome().equals("partial") && sameView(a, b),
                                "PyTorch refused views that share no element: " + c.describe());
                        torchRefusedSame++;
                    }
                    computed++;
                    continue;
                }
                assertArrayEquals(arange(c.n()), base.toFloatArray(), "base left as it was: " + c.describe());
                // what PyTorch refuses, dir4j refuses
                assertTrue(!c.outcome().equals("partial") || sharing, c.describe());
            }
        }
        assertTrue(computed > 100 && refusedShared > 50 && refusedTarget > 10,
                "computed " + computed + ", refused (shared) " + refusedShared + ", refused (target) " + refusedTarget);
        System.out.println("ViewOverlapTest: " + cases.size() + " PyTorch cases: " + computed + " computed ("
                + torchRefusedSame + " of them refused by PyTorch: the same view with other strides on size-1 "
                + "dimensions), "
                + refusedShared + " refused for a shared element (" + torchComputedShared + " of them computed by "
                + "PyTorch, whose check covers dense views only), " + refusedTarget + " refused for the target (" + torchComputedTarget + " of them computed by PyTorch: "
                + "an as_strided target that is not expanded but addresses an element twice)");
    }
}
