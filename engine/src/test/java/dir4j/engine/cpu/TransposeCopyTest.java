package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Copies whose last two dimensions are transposed (contiguous() after t() or a permute), which
 * the CPU backend runs in tiles when both sides span at least a tile: every element against its
 * index arithmetic, with partial tiles, an outer batch dimension and the element-by-element path
 * for small sides; unary and binary ops on such views, which go through that copy.
 */
class TransposeCopyTest {
    @ParameterizedTest
    @CsvSource({"1, 37, 45", "1, 64, 33", "3, 40, 50", "2, 70, 100", "2, 5, 90", "1, 31, 31"})
    void permutedLastTwoAxesMadeContiguous(int batch, int rows, int cols) {
        float[] x = new float[batch * rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = i * 0.5f - 7;
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, batch, rows, cols);
            Tensor view = t.permute(0, 2, 1); // [batch, cols, rows]
            float[] got = view.contiguous().toFloatArray();
            for (int b = 0; b < batch; b++) {
                for (int j = 0; j < cols; j++) {
                    for (int i = 0; i < rows; i++) {
                        assertEquals(x[(b * rows + i) * cols + j], got[(b * cols + j) * rows + i],
                                "batch " + b + " at " + j + "," + i);
                    }
                }
            }
        }
    }

    /** A unary op on a transposed view (staged through a tiled copy) gives the bits it gives on the copy. */
    @org.junit.jupiter.api.Test
    void unaryOpsOnATransposedViewEqualThoseOnItsCopy() {
        int rows = 150;
        int cols = 130; // 19,500 elements: past the staging threshold
        float[] x = new float[rows * cols];
        java.util.Random r = new java.util.Random(4);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 4);
        }
        x[77] = Float.NaN;
        try (MemoryScope s = MemoryScope.open()) {
            Tensor view = Tensor.of(x, rows, cols).t();
            Tensor copy = view.contiguous();
            for (dir4j.engine.Backend.Unary op : new dir4j.engine.Backend.Unary[] {dir4j.engine.Backend.Unary.EXP,
                dir4j.engine.Backend.Unary.RELU, dir4j.engine.Backend.Unary.AFFINE, dir4j.engine.Backend.Unary.LOG}) {
                Tensor a = Tensor.zeros(cols, rows);
                Tensor b = Tensor.zeros(cols, rows);
                view.backend().unary(op, view, 1.5, -0.25, a);
                view.backend().unary(op, copy, 1.5, -0.25, b);
                float[] fa = a.toFloatArray();
                float[] fb = b.toFloatArray();
                for (int i = 0; i < fa.length; i++) {
                    assertEquals(Float.floatToIntBits(fb[i]), Float.floatToIntBits(fa[i]), op + " at " + i);
                }
                float v = x[(5 % rows) * cols + 7]; // view element (7, 5)
                float want = op == dir4j.engine.Backend.Unary.AFFINE ? v * 1.5f - 0.25f : fb[7 * rows + 5];
                assertEquals(want, fa[7 * rows + 5], 1e-5f * Math.abs(want), op + " at (7, 5)");
            }
        }
    }

    /** Binary ops with a transposed operand on either side (staged) give the bits of the ops on copies. */
    @org.junit.jupiter.api.Test
    void binaryOpsWithATransposedOperandEqualThoseOnCopies() {
        int rows = 150;
        int cols = 130;
        java.util.Random r = new java.util.Random(5);
        float[] x = new float[rows * cols];
        float[] y = new float[rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 4);
            y[i] = (float) (r.nextGaussian() * 4);
        }
        x[99] = Float.NaN;
        try (MemoryScope s = MemoryScope.open()) {
            Tensor view = Tensor.of(x, rows, cols).t(); // [cols, rows], strided
            Tensor copy = view.contiguous();
            Tensor other = Tensor.of(y, cols, rows);
            Tensor otherView = Tensor.of(y, rows, cols).t();
            Tensor otherCopy = otherView.contiguous();
            for (dir4j.engine.Backend.Binary op : new dir4j.engine.Backend.Binary[] {dir4j.engine.Backend.Binary.SUB,
                dir4j.engine.Backend.Binary.DIV, dir4j.engine.Backend.Binary.MAX, dir4j.engine.Backend.Binary.GT}) {
                Tensor[][] cases = {{view, other, copy, other}, {other, view, other, copy}, {view, otherView, copy, otherCopy}};
                for (Tensor[] c : cases) {
                    Tensor a = Tensor.zeros(cols, rows);
                    Tensor b = Tensor.zeros(cols, rows);
                    view.backend().binary(op, c[0], c[1], a);
                    view.backend().binary(op, c[2], c[3], b);
                    assertArrayBits(b.toFloatArray(), a.toFloatArray(), op.toString());
                }
            }
        }
    }

    private static void assertArrayBits(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), what + " at " + i);
        }
    }
}
