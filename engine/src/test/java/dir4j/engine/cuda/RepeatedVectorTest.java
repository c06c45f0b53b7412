package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class RepeatedVectorTest {
    @Test
    void perChannelBiasRepeatsEachValueOverAPlane() {
        // [1,C,1,1] expanded to [N,C,H,W]
        assertArrayEquals(new long[] {32 * 32, 2048}, RepeatedVector.of(new int[] {64, 2048, 32, 32}, new long[] {0, 1, 0, 0}));
    }

    @Test
    void rowAndColumnVectorsAndScalars() {
        assertArrayEquals(new long[] {1, 7}, RepeatedVector.of(new int[] {5, 7}, new long[] {0, 1}));
        assertArrayEquals(new long[] {7, 5}, RepeatedVector.of(new int[] {5, 7}, new long[] {1, 0}));
        assertArrayEquals(new long[] {35, 1}, RepeatedVector.of(new int[] {5, 7}, new long[] {0, 0}));
        // a contiguous operand is a vector of numel values repeated once
        assertArrayEquals(new long[] {1, 35}, RepeatedVector.of(new int[] {5, 7}, new long[] {7, 1}));
    }

    @Test
    void sizeOneDimensionsAreIgnoredAndMultiDimensionalVectorsMerge() {
        // a [1,C,H,1] view against [N,C,H,W] whose vector dims are compact: inner W, period C*H
        assertArrayEquals(new long[] {4, 6}, RepeatedVector.of(new int[] {2, 3, 2, 4}, new long[] {0, 2, 1, 0}));
        assertArrayEquals(new long[] {9, 3}, RepeatedVector.of(new int[] {1, 3, 1, 9}, new long[] {99, 1, 99, 0}));
    }

    @Test
    void rejectsViewsThatAreNotOneRepeatedVector() {
        // broadcast dims inside the vector (an outer product pattern)
        assertNull(RepeatedVector.of(new int[] {2, 3, 4}, new long[] {1, 0, 2}));
        // a transposed vector (strides not compact row-major)
        assertNull(RepeatedVector.of(new int[] {3, 4}, new long[] {1, 3}));
        // a strided vector
        assertNull(RepeatedVector.of(new int[] {4, 5}, new long[] {0, 2}));
    }
}
