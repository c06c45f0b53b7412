package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.GPU;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** topk.cu against the CPU's bounded heap: the same columns in the same order, the same bits. */
@Tag("gpu")
class CudaTopkGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    private static float[] scores(Random rng, int count) {
        float[] s = new float[count];
        for (int i = 0; i < count; i++) {
            // few distinct values, so ties straddle the k-th place; −0, +0, NaN, −∞ mixed in
            int c = rng.nextInt(40);
            s[i] = c == 0 ? Float.NaN : c == 1 ? -0f : c == 2 ? 0f : c == 3 ? Float.NEGATIVE_INFINITY
                    : (rng.nextInt(2001) - 1000) / 1000f;
        }
        return s;
    }

    private static void compare(Tensor cpuScores, int k, String what) {
        try (MemoryScope s = MemoryScope.open()) {
            compare(cpuScores, cpuScores.to(GPU), k, what);
        }
    }

    private static void compare(Tensor cpuScores, Tensor gs, int k, String what) {
        int rows = cpuScores.shape(0);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor cv = Tensor.empty(DType.FLOAT32, Device.CPU, rows, k);
            Tensor ci = Tensor.empty(DType.INT32, Device.CPU, rows, k);
            cpuScores.backend().topk(cpuScores, k, cv, ci);
            Tensor gv = Tensor.empty(DType.FLOAT32, GPU, rows, k);
            Tensor gi = Tensor.empty(DType.INT32, GPU, rows, k);
            gs.backend().topk(gs, k, gv, gi);
            assertArrayEquals(ci.toDoubleArray(), gi.toDoubleArray(), what + " k=" + k + ": columns");
            double[] a = cv.toDoubleArray();
            double[] b = gv.toDoubleArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(Double.doubleToLongBits(a[i]) == Double.doubleToLongBits(b[i]) || Double.isNaN(a[i])
                        && Double.isNaN(b[i]), true, what + " k=" + k + ": value " + i + " cpu " + a[i] + " cuda " + b[i]);
            }
        }
    }

    @Test
    void theKLargestOfLongRowsMatchTheCpuIncludingTiesAndNaN() {
        Random rng = new Random(8);
        int rows = 5;
        int n = 100_003;
        try (MemoryScope s = MemoryScope.open()) {
            Tensor scores = Tensor.of(scores(rng, rows * n), rows, n);
            for (int k : new int[] {1, 7, 100, 1000, 1024}) {
                compare(scores, k, "5 x 100003");
            }
        }
    }

    @Test
    void shortRowsStridedRowsAndKEqualToN() {
        Random rng = new Random(9);
        try (MemoryScope s = MemoryScope.open()) {
            Tensor small = Tensor.of(scores(rng, 3 * 37), 3, 37);
            compare(small, 37, "3 x 37");
            compare(small, 1, "3 x 37");
            // rows of a wider matrix on both sides: row stride 700, 513 columns
            Tensor wide = Tensor.of(scores(rng, 4 * 700), 4, 700);
            Tensor wideGpu = wide.to(GPU);
            compare(wide.slice(1, 0, 513), wideGpu.slice(1, 0, 513), 300, "4 x 513 of stride 700");
        }
    }
}
