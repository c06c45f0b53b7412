package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.Backend.Binary;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The CPU binary kernels' operand layouts, each a loop of its own: both rows, b broadcast along
 * the row, a broadcast, and both broadcast (the scalar loop), against the op computed here per
 * element (ScalarMath's rules), for every op including the non-commutative ones, with rows of
 * whole vectors and a tail.
 */
class BinaryLayoutsTest {
    @ParameterizedTest
    @EnumSource(value = Binary.class, names = {"POW"}, mode = EnumSource.Mode.EXCLUDE)
    void everyLayoutMatchesTheScalarRule(Binary op) {
        int rows = 3;
        int cols = 16 * 2 + 5;
        Random r = new Random(op.ordinal());
        float[] x = new float[rows * cols];
        float[] y = new float[rows * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
            y[i] = i % 7 == 0 ? x[i] : (float) r.nextGaussian(); // some equal pairs for EQ
        }
        float[] colA = {x[0], x[1], x[2]};
        float[] colB = {y[0], y[1], y[2]};
        try (MemoryScope s = MemoryScope.open()) {
            Tensor a = Tensor.of(x, rows, cols);
            Tensor b = Tensor.of(y, rows, cols);
            Tensor aCol = Tensor.of(colA, rows, 1).expand(rows, cols); // stride 0 along the row
            Tensor bCol = Tensor.of(colB, rows, 1).expand(rows, cols);
            Tensor[][] cases = {{a, b}, {a, bCol}, {aCol, b}, {aCol, bCol}};
            for (int k = 0; k < cases.length; k++) {
                Tensor out = Tensor.zeros(rows, cols);
                a.backend().binary(op, cases[k][0], cases[k][1], out);
                float[] got = out.toFloatArray();
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        float u = k >= 2 ? colA[i] : x[i * cols + j];
                        float v = k % 2 == 1 ? colB[i] : y[i * cols + j];
                        float want = (float) ScalarMath.binary(op, u, v);
                        assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i * cols + j]),
                                op + " layout " + k + " at " + i + "," + j);
                    }
                }
            }
        }
    }
}
