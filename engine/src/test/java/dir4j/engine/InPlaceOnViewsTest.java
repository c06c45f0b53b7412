package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * In-place writes into views that PyTorch 1.13 refuses, refused by dir4j too with a message that
 * says what to do (each used to run and give silently wrong values, listed below), and the in-place
 * writes through views that are well defined, hand-derived. The writes PyTorch allows are checked
 * against its add_ by the view_add_in_place_* fixture cases (OpsFixtureTest) and, for random pairs
 * of views of one tensor, by ViewOverlapTest.
 */
class InPlaceOnViewsTest {

    private static float[] seq(int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = i;
        }
        return f;
    }

    @Test
    void addingATensorsTransposeIntoItIsRefusedAsPyTorchDoes() {
        // was: x = [[0,1,2],[3,4,5],[6,7,8]] became [[0,4,8],[7,8,12],[14,19,16]], not x + xᵀ
        // PyTorch: "unsupported operation: some elements of the input tensor and the written-to
        // tensor refer to a single memory location"
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(9), 3, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(x, x.t()));
            assertTrue(e.getMessage().contains("shares memory with the target") && e.getMessage().contains("copy"),
                    e.getMessage());
            assertArrayEquals(seq(9), x.toFloatArray(), "x is left as it was");
            // what the message advises gives x + xᵀ
            Ops.addInPlace(x, Ops.cloneDetached(x.t()));
            assertArrayEquals(new float[] {0, 4, 8, 4, 8, 12, 8, 12, 16}, x.toFloatArray());
        }
    }

    @Test
    void addingAShiftedSliceOrARowOfTheTargetIsRefused() {
        try (MemoryScope scope = MemoryScope.open()) {
            // was: y[1:] += y[:-1] of 0..5 gave the running sum 0,1,3,6,10,15, not 0,1,3,5,7,9
            Tensor y = Tensor.of(seq(6), 6);
            assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(y.slice(0, 1, 6), y.slice(0, 0, 5)));
            // was: z += z[0] of [[0,1],[2,3]] gave [[0,2],[2,5]], not [[0,2],[2,4]]
            Tensor z = Tensor.of(seq(4), 2, 2);
            assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(z, z.select(0, 0)));
            assertArrayEquals(seq(6), y.toFloatArray());
            assertArrayEquals(seq(4), z.toFloatArray());
            // disjoint slices of one tensor are fine: y[3:] += y[:3]
            Ops.addInPlace(y.slice(0, 3, 6), y.slice(0, 0, 3));
            assertArrayEquals(new float[] {0, 1, 2, 3, 5, 7}, y.toFloatArray());
        }
    }

    @Test
    void addingIntoAnExpandedViewIsRefused() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor base = Tensor.of(new float[] {1, 2, 3}, 1, 3);
            Tensor expanded = base.expand(4, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Ops.addInPlace(expanded, Tensor.ones(4, 3)));
            assertTrue(e.getMessage().contains("expanded view"), e.getMessage());
            assertArrayEquals(new float[] {1, 2, 3}, base.toFloatArray());
        }
    }

    @Test
    void addingIntoASliceWithGapsWritesThroughToTheBase() {
        // PyTorch's x[:, 1::2] += b; before, dir4j refused any target that was not dense
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(8), 2, 4);
            Tensor odd = x.reshape(2, 2, 2).select(2, 1);
            Ops.addInPlace(odd, Tensor.of(new float[] {10, 20}, 2));
            assertArrayEquals(new float[] {0, 11, 2, 23, 4, 15, 6, 27}, x.toFloatArray());
        }
    }

    /** PyTorch's x.as_strided((3, 2), (2, 3)).add_(b) (values from torch 1.13): no element twice. */
    @Test
    void addingIntoInterleavedStridesWritesEachElementOnce() {
        // was refused as "an expanded view": only strides that nest counted as non-overlapping
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(8), 8);
            Tensor a = x.viewOf(new int[] {3, 2}, new long[] {2, 3}, 0); // x[0], x[3], x[2], x[5], x[4], x[7]
            Ops.addInPlace(a, Tensor.of(new float[] {10, 20, 30, 40, 50, 60}, 3, 2));
            assertArrayEquals(new float[] {10, 1, 32, 23, 54, 45, 6, 67}, x.toFloatArray());
            // interleaved strides that meet (element 6 twice) are still refused
            Tensor y = Tensor.of(seq(13), 13);
            assertThrows(IllegalArgumentException.class,
                    () -> Ops.addInPlace(y.viewOf(new int[] {4, 3}, new long[] {2, 3}, 0), Tensor.ones(4, 3)));
            assertArrayEquals(seq(13), y.toFloatArray());
        }
    }

    @Test
    void inferenceBatchNormInPlaceRefusesAnExpandedInput() {
        // was: in place on x expanded over the batch, with residuals 0 and 10, both outputs were
        // x + 10 (the second image overwrote the first's memory), and the base was overwritten
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor base = Tensor.of(new float[] {1, 2, 3, 4}, 1, 1, 2, 2);
            Tensor x = base.expand(2, 1, 2, 2);
            Tensor residual = Tensor.of(new float[] {0, 0, 0, 0, 10, 10, 10, 10}, 2, 1, 2, 2);
            Tensor gamma = Tensor.of(new float[] {1}, 1);
            Tensor beta = Tensor.of(new float[] {0}, 1);
            Tensor mean = Tensor.of(new float[] {0}, 1);
            Tensor var = Tensor.of(new float[] {1}, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NnOps.batchNorm2dInference(x, gamma, beta, mean, var, 0, residual, false, true));
            assertTrue(e.getMessage().contains("inPlace=false"), e.getMessage());
            assertArrayEquals(new float[] {1, 2, 3, 4}, base.toFloatArray());
            // γ = 1, β = 0, μ = 0, σ² = 1, eps = 0: BN is the identity, so the result is x + residual
            assertArrayEquals(new float[] {1, 2, 3, 4, 11, 12, 13, 14},
                    NnOps.batchNorm2dInference(x, gamma, beta, mean, var, 0, residual, false, false).toFloatArray());
            // a residual that is another view of the input, in place: refused
            Tensor y = Tensor.of(seq(8), 2, 1, 2, 2);
            Tensor yt = y.transpose(2, 3);
            assertThrows(IllegalArgumentException.class,
                    () -> NnOps.batchNorm2dInference(y, gamma, beta, mean, var, 0, yt, false, true));
        }
    }

    @Test
    void inferenceBatchNormInPlaceOnASliceWritesThroughToTheBase() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor base = Tensor.of(seq(8), 1, 1, 2, 4);
            Tensor x = base.slice(3, 1, 3); // columns 1 and 2 of each row: [[1, 2], [5, 6]]
            Tensor gamma = Tensor.of(new float[] {2}, 1);
            Tensor beta = Tensor.of(new float[] {1}, 1);
            Tensor mean = Tensor.of(new float[] {1}, 1);
            Tensor var = Tensor.of(new float[] {1}, 1);
            // 2·(x − 1) + 1 = 2x − 1
            Tensor y = NnOps.batchNorm2dInference(x, gamma, beta, mean, var, 0, null, false, true);
            assertArrayEquals(new float[] {1, 3, 9, 11}, y.toFloatArray());
            assertArrayEquals(new float[] {0, 1, 3, 3, 4, 9, 11, 7}, base.toFloatArray());
        }
    }

    @Test
    void overlapTestsOfViews() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(12), 3, 4);
            assertTrue(Shape.isNonOverlapping(x.shape(), x.strides()));
            assertTrue(Shape.isNonOverlapping(new int[] {3, 2}, new long[] {4, 2}), "every other column");
            assertTrue(Shape.isNonOverlapping(new int[] {0, 5}, new long[] {0, 0}), "empty");
            assertTrue(Shape.isNonOverlapping(new int[] {1, 5}, new long[] {0, 1}), "stride 0 on a size-1 axis");
            assertFalse(Shape.isNonOverlapping(new int[] {3, 4}, new long[] {0, 1}), "expanded rows");
            assertFalse(Shape.isNonOverlapping(new int[] {2, 3}, new long[] {1, 1}), "a sliding window");
            // was: true only when the strides nest, so these interleaved strides (0, 3, 2, 5, 4, 7) said false
            assertTrue(Shape.isNonOverlapping(new int[] {3, 2}, new long[] {2, 3}), "interleaved strides");
            assertTrue(Shape.isNonOverlapping(new int[] {2, 4}, new long[] {5, 2}), "interleaved strides, rows of 4");
            assertFalse(Shape.isNonOverlapping(new int[] {4, 3}, new long[] {2, 3}), "interleaved strides meeting at 6");
            assertTrue(Shape.isNonOverlapping(new int[] {3, 2}, new long[] {-2, 3}), "a negative stride");
            assertFalse(Shape.isNonOverlapping(new int[] {3, 2}, new long[] {3, 0}), "expanded columns");
            assertFalse(x.partiallyOverlaps(x), "the same view");
            assertFalse(x.partiallyOverlaps(x.t().t()), "the same view made again");
            assertTrue(x.partiallyOverlaps(x.slice(0, 1, 2)));
            assertFalse(x.slice(1, 0, 2).partiallyOverlaps(x.slice(1, 2, 4)), "interleaved columns: no common element");
            assertTrue(x.slice(1, 0, 2).partiallyOverlaps(x.slice(1, 1, 3)), "columns 0-1 and 1-2 share column 1");
            assertTrue(x.select(1, 0).partiallyOverlaps(x.select(0, 0)), "a column and a row share their corner");
            assertFalse(x.select(1, 1).partiallyOverlaps(x.select(0, 1).slice(0, 2, 4)), "row 1's end misses column 1");
            assertTrue(x.select(1, 1).partiallyOverlaps(x.select(0, 1)), "column 1 and row 1 share (1, 1)");
            assertTrue(x.select(1, 3).partiallyOverlaps(x.slice(0, 1, 2)), "a dense row inside a column's range");
            assertFalse(x.select(1, 3).partiallyOverlaps(x.select(0, 1).slice(0, 0, 3)), "a row stopping short of it");
            assertTrue(x.t().partiallyOverlaps(x.slice(0, 0, 2)), "a transpose and a dense slice");
            assertFalse(x.slice(0, 0, 1).partiallyOverlaps(x.slice(0, 1, 3)), "disjoint rows");
            assertFalse(x.partiallyOverlaps(Tensor.of(seq(12), 3, 4)), "another storage");
        }
    }

    /** x[::2] += x[1::2] as PyTorch allows it (values from torch 1.13): the two views share no element. */
    @Test
    void interleavedViewsAddInPlace() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(10), 10);
            Ops.addInPlace(x.viewOf(new int[] {5}, new long[] {2}, 0), x.viewOf(new int[] {5}, new long[] {2}, 1));
            assertArrayEquals(new float[] {1, 1, 5, 3, 9, 5, 13, 7, 17, 9}, x.toFloatArray());
            // and a column into its neighbour, of a matrix
            Tensor m = Tensor.of(seq(6), 3, 2);
            Ops.addInPlace(m.select(1, 0), m.select(1, 1));
            assertArrayEquals(new float[] {1, 1, 5, 3, 9, 5}, m.toFloatArray());
            // a shifted interleaved view does share elements: refused
            Tensor y = Tensor.of(seq(10), 10);
            assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(
                    y.viewOf(new int[] {4}, new long[] {2}, 0), y.viewOf(new int[] {4}, new long[] {2}, 2)));
        }
    }

    @Test
    void gradientsOfSeveralViewsAccumulateIntoTheBaseAcrossBackwardPasses() {
        // x.grad after backward of sum(x.t() ⊙ c) and then of sum(x.expand(2, 2, 3)): cᵀ + 2
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.of(seq(6), 2, 3).requiresGrad(true);
            Tensor c = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
            Ops.mul(x.t(), c).sum().backward();
            assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, x.grad().toFloatArray());
            x.expand(2, 2, 3).sum().backward();
            assertArrayEquals(new float[] {3, 5, 7, 4, 6, 8}, x.grad().toFloatArray());
            // a slice's gradient lands in its part of the base only
            x.slice(1, 1, 3).sum().backward();
            assertArrayEquals(new float[] {3, 6, 8, 4, 7, 9}, x.grad().toFloatArray());
        }
    }
}
