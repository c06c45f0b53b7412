package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Which reduction kernel a layout gets, and the dimensions it walks. */
class ReducePlanTest {
    private static final int SMS = 132;

    @Test
    void aTrailingContiguousAxisIsReducedByRows() {
        ReducePlan p = ReducePlan.of("sum", new int[] {4096, 20}, new long[] {20, 1}, new boolean[] {false, true}, SMS);
        assertEquals(ReducePlan.Kind.ROWS, p.kind());
        assertEquals(4096, p.kept().numel);
        assertEquals(20, p.reduced().numel);
        // trailing axes merge into one run: sum over (H, W) of [N, C, H, W]
        ReducePlan hw = ReducePlan.of("sum", new int[] {2, 3, 4, 5}, new long[] {60, 20, 5, 1},
                new boolean[] {false, false, true, true}, SMS);
        assertEquals(ReducePlan.Kind.ROWS, hw.kind());
        assertArrayEquals(new long[] {6}, hw.kept().shape);
        assertArrayEquals(new long[] {20}, hw.reduced().shape);
    }

    @Test
    void aLeadingAxisWithManyOutputsGetsAThreadPerOutput() {
        ReducePlan p = ReducePlan.of("sum", new int[] {64, 4096}, new long[] {4096, 1}, new boolean[] {true, false},
                SMS);
        assertEquals(ReducePlan.Kind.COLUMNS, p.kind());
        assertArrayEquals(new long[] {64}, p.reduced().shape);
        assertArrayEquals(new long[] {4096}, p.reduced().strides[0]);
    }

    @Test
    void fewOutputsOverALongStridedRangeSplitAcrossBlocks() {
        // bias gradient: sum over (N, H, W) of [16, 64, 128, 128] -> 64 outputs of 262144 values
        ReducePlan p = ReducePlan.of("sum", new int[] {16, 64, 128, 128}, new long[] {64 * 16384, 16384, 128, 1},
                new boolean[] {true, false, true, true}, SMS);
        assertEquals(ReducePlan.Kind.BLOCKS, p.kind());
        assertEquals(64, p.kept().numel);
        assertArrayEquals(new long[] {16, 16384}, p.reduced().shape, "H and W merge; N stays apart");
        assertTrue(p.splits() > 1, "splits " + p.splits());
        // a full reduction of a long contiguous vector also splits
        ReducePlan all = ReducePlan.of("sum", new int[] {1 << 24}, new long[] {1}, new boolean[] {true}, SMS);
        assertEquals(ReducePlan.Kind.BLOCKS, all.kind());
        assertEquals(1, all.kept().numel);
        assertTrue(all.splits() > 1);
    }

    @Test
    void reducedDimensionsAreWalkedDensestInnermost() {
        // a transposed view [C, N] of x [N, C], reduced over both: the unit stride (C) goes innermost and merges
        ReducePlan p = ReducePlan.of("sum", new int[] {8, 3}, new long[] {1, 8}, new boolean[] {true, true}, SMS);
        assertArrayEquals(new long[] {24}, p.reduced().shape);
        assertEquals(ReducePlan.Kind.ROWS, p.kind());
    }
}
