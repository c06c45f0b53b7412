package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The host side of the kernels' Geometry: dimension merging, the 32-bit test, the packed layout. */
class StridedGeometryTest {
    @Test
    void contiguousOperandsMergeIntoOneDimension() {
        StridedGeometry g = StridedGeometry.of("t", new int[] {2, 3, 4}, new long[] {12, 4, 1}, new long[] {12, 4, 1});
        assertEquals(1, g.rank);
        assertArrayEquals(new long[] {24}, g.shape);
        assertTrue(g.contiguous(0) && g.contiguous(1));
        assertEquals(24, g.numel);
    }

    @Test
    void aBroadcastOperandKeepsItsDimensionsApartAndSizeOneDimensionsDrop() {
        // bias [1, C, 1, 1] broadcast over [N, C, H, W] = [2, 3, 4, 5]
        StridedGeometry g = StridedGeometry.of("add", new int[] {2, 3, 4, 5}, new long[] {60, 20, 5, 1},
                new long[] {0, 1, 0, 0}, new long[] {60, 20, 5, 1});
        assertArrayEquals(new long[] {2, 3, 20}, g.shape);
        assertArrayEquals(new long[] {60, 20, 1}, g.strides[0]);
        assertArrayEquals(new long[] {0, 1, 0}, g.strides[1]);
        StridedGeometry s = StridedGeometry.of("t", new int[] {1, 7, 1}, new long[] {99, 3, 42});
        assertArrayEquals(new long[] {7}, s.shape);
        assertArrayEquals(new long[] {3}, s.strides[0]);
        assertFalse(s.contiguous(0));
    }

    @Test
    void aTransposedViewStaysTwoDimensional() {
        StridedGeometry g = StridedGeometry.of("copy", new int[] {4, 6}, new long[] {1, 4}, new long[] {6, 1});
        assertEquals(2, g.rank);
        assertArrayEquals(new long[] {1, 4}, g.strides[0]);
    }

    @Test
    void aScalarIsOneElementOfRankOne() {
        StridedGeometry g = StridedGeometry.of("fill", new int[0], new long[0]);
        assertEquals(1, g.rank);
        assertEquals(1, g.numel);
        assertTrue(g.contiguous(0));
    }

    @Test
    void moreThanSixUnmergeableDimensionsAreRefusedByName() {
        int[] shape = {2, 2, 2, 2, 2, 2, 2};
        long[] strides = {1000000, 100000, 10000, 1000, 100, 10, 1}; // gaps: nothing merges
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                () -> StridedGeometry.of("unary exp", shape, strides));
        assertTrue(e.getMessage().contains("unary exp on CUDA") && e.getMessage().contains("rank 7"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> StridedGeometry.of("t", new int[] {3}, new long[] {-1}));
    }

    @Test
    void thirtyTwoBitIndexingOnlyWhenEveryOffsetFits() {
        assertTrue(StridedGeometry.of("t", new int[] {1 << 15, 1 << 15}, new long[] {1 << 15, 1}).fitsInt32());
        assertFalse(StridedGeometry.of("t", new int[] {1 << 16, 1 << 15}, new long[] {1 << 15, 1}).fitsInt32());
        // few elements, but a huge stride
        assertFalse(StridedGeometry.of("t", new int[] {3}, new long[] {1L << 30}).fitsInt32());
        assertTrue(StridedGeometry.of("t", new int[] {2}, new long[] {(1L << 31) - 1}).fitsInt32());
    }

    @Test
    void packedWordsFollowTheKernelsStruct() {
        StridedGeometry g = StridedGeometry.of("t", new int[] {5, 7}, new long[] {1, 5}, new long[] {7, 1},
                new long[] {0, 1});
        long[] w = g.pack();
        assertEquals(StridedGeometry.WORDS, w.length);
        assertEquals(26, w.length);
        assertEquals(2, w[0]);
        assertEquals(35, w[1]);
        assertArrayEquals(new long[] {5, 7, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(w, 2, 8));
        assertArrayEquals(new long[] {1, 5, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(w, 8, 14));
        assertArrayEquals(new long[] {7, 1, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(w, 14, 20));
        assertArrayEquals(new long[] {0, 1, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(w, 20, 26));
    }
}
