package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** How row-major views enter cuBLAS's column-major GEMM (the transposition trick). */
class GemmLayoutTest {
    @Test
    void aRowMajorMatrixIsPassedAsIsWithItsRowStride() {
        assertEquals(new GemmLayout(Cublas.OP_N, 5), GemmLayout.of(3, 5, 5, 1));
        // a column slice of a wider matrix: leading dimension is the parent's row stride
        assertEquals(new GemmLayout(Cublas.OP_N, 8), GemmLayout.of(3, 5, 8, 1));
    }

    @Test
    void aTransposedViewIsPassedTransposedWithItsColumnStride() {
        // xᵀ of a contiguous x [5, 3]: shape [3, 5], strides (1, 3)
        assertEquals(new GemmLayout(Cublas.OP_T, 3), GemmLayout.of(3, 5, 1, 3));
    }

    @Test
    void vectorsTakeAnyStrideOnTheirSizeOneSide() {
        assertEquals(new GemmLayout(Cublas.OP_N, 4), GemmLayout.of(1, 4, 999, 1));
        assertEquals(new GemmLayout(Cublas.OP_T, 4), GemmLayout.of(1, 4, 999, 4));
        assertEquals(new GemmLayout(Cublas.OP_N, 7), GemmLayout.of(6, 1, 7, 123));
        assertEquals(new GemmLayout(Cublas.OP_N, 1), GemmLayout.of(1, 1, 0, 0));
    }

    @Test
    void broadcastAndGappedLayoutsNeedACopy() {
        assertNull(GemmLayout.of(3, 5, 0, 1), "rows broadcast (stride 0)");
        assertNull(GemmLayout.of(3, 5, 10, 2), "no unit stride");
        assertNull(GemmLayout.of(3, 5, 4, 1), "rows overlap: leading dimension below the column count");
    }
}
