package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend;
import dir4j.engine.Backend.Reduce;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Reductions over the outer axes (column sums, a mean over the batch), which the CPU backend runs
 * by blocks of contiguous columns, against float64 sums computed here in the same row order;
 * per-channel reductions of an NCHW tensor (many outputs, each a long reduction split across
 * threads by output); ReLU's −0, NaN and ∞.
 */
class ReduceColumnsTest {
    private static float[] data(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * 3);
        }
        return x;
    }

    private static double identity(Reduce op) {
        return op == Reduce.SUM ? 0 : op == Reduce.MAX ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
    }

    /** The reference reduction in float64, in the order the loops visit the values. */
    private static double fold(Reduce op, double acc, double v) {
        return op == Reduce.SUM ? acc + v : op == Reduce.MAX ? Math.max(acc, v) : Math.min(acc, v);
    }

    @ParameterizedTest
    @EnumSource(Reduce.class)
    void outerAxesOfAContiguousTensor(Reduce op) {
        int rows = 301; // past the 64-row float blocks, not a multiple of them
        int cols = 1000 + 7; // several column blocks and a tail under a vector
        float[] x = data(new Random(11), rows * cols);
        x[5 * cols + 1003] = Float.NaN; // a NaN in the tail column block
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, rows, cols);
            Tensor out = Tensor.zeros(1, cols);
            t.backend().reduce(op, t, new boolean[] {true, false}, out);
            float[] got = out.toFloatArray();
            for (int j = 0; j < cols; j++) {
                double want = identity(op);
                for (int i = 0; i < rows; i++) {
                    double v = x[i * cols + j];
                    want = fold(op, want, v);
                }
                if (j == 1003) {
                    assertTrue(Float.isNaN(got[j]), op + " of a column holding NaN: " + got[j]);
                } else if (op == Reduce.SUM) {
                    assertEquals(want, got[j], 2e-5 * Math.sqrt(rows) * 3, op + " column " + j);
                } else {
                    assertEquals((float) want, got[j], op + " column " + j);
                }
            }
        }
    }

    @Test
    void meanOverTwoLeadingAxesOfAStridedView() {
        int a = 3;
        int b = 70;
        int c = 48;
        float[] x = data(new Random(12), a * b * c * 2);
        try (MemoryScope s = MemoryScope.open()) {
            // a [a, b, c] view of rows of 2c floats: the kept axis at stride 1, not contiguous
            Tensor base = Tensor.of(x, a, b, 2 * c);
            Tensor view = base.slice(2, 0, c); // kept axis stride 1, rows 2c apart
            Tensor m = Ops.mean(view, new int[] {0, 1}, false);
            float[] got = m.toFloatArray();
            for (int k = 0; k < c; k++) {
                double want = 0;
                for (int i = 0; i < a * b; i++) {
                    want += x[i * 2 * c + k];
                }
                assertEquals(want / (a * b), got[k], 1e-5, "column " + k);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Reduce.class)
    void aMiddleAxisKeepingSeveralRowsOfColumns(Reduce op) {
        int n = 3;
        int c = 70; // past the 64-row float blocks
        int hw = 45; // two vectors and a tail
        float[] x = data(new Random(14), n * c * hw);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, n, c, hw);
            Tensor out = Tensor.zeros(n, 1, hw);
            t.backend().reduce(op, t, new boolean[] {false, true, false}, out);
            float[] got = out.toFloatArray();
            for (int b = 0; b < n; b++) {
                for (int k = 0; k < hw; k++) {
                    double want = identity(op);
                    for (int ch = 0; ch < c; ch++) {
                        double v = x[(b * c + ch) * hw + k];
                        want = fold(op, want, v);
                    }
                    assertEquals(op == Reduce.SUM ? want : (float) want, got[b * hw + k], op == Reduce.SUM ? 1e-4 : 0,
                            op + " at " + b + ", " + k);
                }
            }
        }
    }

    @Test
    void perChannelSumsOfAnNchwTensorSplitAcrossThreads() {
        int n = 2;
        int c = 40;
        int hw = 37 * 41;
        float[] x = data(new Random(13), n * c * hw);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, n, c, 37, 41);
            Tensor out = Tensor.zeros(1, c, 1, 1);
            Backend be = t.backend();
            be.reduce(Reduce.SUM, t, new boolean[] {true, false, true, true}, out);
            float[] got = out.toFloatArray();
            for (int ch = 0; ch < c; ch++) {
                double want = 0;
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < hw; i++) {
                        want += x[(b * c + ch) * hw + i];
                    }
                }
                assertEquals(want, got[ch], 1e-3, "channel " + ch);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Reduce.class)
    void rowsAlongTheLastAxisWithNanInTheVectorBody(Reduce op) {
        int rows = 5;
        int cols = 16 * 4 + 9; // two double-vector steps and a scalar tail at 16 lanes
        float[] x = data(new Random(15), rows * cols);
        x[1 * cols + 20] = Float.NaN; // in the vector body
        x[2 * cols + cols - 1] = Float.NaN; // in the tail
        x[3 * cols + 7] = Float.POSITIVE_INFINITY;
        x[4 * cols + 40] = Float.NEGATIVE_INFINITY;
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, rows, cols);
            Tensor out = Tensor.zeros(rows, 1);
            t.backend().reduce(op, t, new boolean[] {false, true}, out);
            float[] got = out.toFloatArray();
            for (int r = 0; r < rows; r++) {
                double want = identity(op);
                for (int c = 0; c < cols; c++) {
                    double v = x[r * cols + c];
                    want = fold(op, want, v);
                }
                if (Double.isNaN(want) || Double.isInfinite(want)) {
                    assertEquals((float) want, got[r], op + " row " + r);
                } else {
                    assertEquals(op == Reduce.SUM ? want : (float) want, got[r], op == Reduce.SUM ? 1e-4 : 0, op + " row " + r);
                }
            }
        }
    }

    @Test
    void reluKeepsNanAndSendsNegativeZeroToZero() {
        int len = CpuVectors.FLOAT.length() * 2 + 3; // vector body and scalar tail
        float[] x = new float[len];
        float[] specials = {-0f, 0f, Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, -1.5f, 2.5f,
            Float.MIN_VALUE, -Float.MIN_VALUE};
        for (int i = 0; i < len; i++) {
            x[i] = specials[i % specials.length];
        }
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = Tensor.of(x, len);
            float[] got = Ops.relu(t).toFloatArray();
            for (int i = 0; i < len; i++) {
                float want = Float.isNaN(x[i]) ? Float.NaN : Math.max(x[i], 0f);
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i]), "relu(" + x[i] + ") at " + i);
            }
        }
    }
}
