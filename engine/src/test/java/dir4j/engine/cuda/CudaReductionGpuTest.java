package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ACCUMULATED;
import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Sums, maxima, minima and cumulative sums through every kernel the reduction plan picks. */
@Tag("gpu")
class CudaReductionGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void sumsMatchForRowsColumnsAndSplitBlocks() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(1, 16, 64, 24, 24).requiresGrad(true);
            check("sum over the trailing (H, W): rows", ACCUMULATED, ELEMENTWISE, in -> Ops.sum(in[0], new int[] {2, 3}, false), x);
            check("sum over N, H, W: blocks (a bias gradient)", ACCUMULATED, ELEMENTWISE,
                    in -> Ops.sum(in[0], new int[] {0, 2, 3}, true), x);
            check("sum over N: columns", ACCUMULATED, ELEMENTWISE, in -> Ops.sum(in[0], new int[] {0}, false), x);
            check("sum of everything: split blocks", ACCUMULATED, ELEMENTWISE, in -> in[0].sum(), x);
            check("mean over C", ACCUMULATED, ELEMENTWISE, in -> in[0].mean(1, true), x);
            Tensor wide = randn(2, 4096, 2048).requiresGrad(true);
            check("sum over a 4096x2048 matrix's rows (long rows, a block each)", ACCUMULATED, ELEMENTWISE,
                    in -> in[0].sum(1, false), wide);
            check("sum over its columns", ACCUMULATED, ELEMENTWISE, in -> in[0].sum(0, false), wide);
            check("sum over a transposed view", ACCUMULATED, ELEMENTWISE, in -> in[0].t().sum(1, false), wide);
            check("float64 sum", GpuParity.DOUBLE, GpuParity.DOUBLE, in -> in[0].sum(0, false),
                    Tensor.ofDoubles(randn(3, 300).toDoubleArray(), 30, 10).requiresGrad(true));
        }
    }

    @Test
    void maximaAndMinimaMatchIncludingTiesAndNaN() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(4, 8, 33, 17).requiresGrad(true);
            check("max over the last axis", ELEMENTWISE, ELEMENTWISE, in -> in[0].max(2, false), x);
            check("max over the first axis", ELEMENTWISE, ELEMENTWISE, in -> in[0].max(0, true), x);
            check("min over (0, 2)", ELEMENTWISE, ELEMENTWISE, in -> Ops.min(in[0], new int[] {0, 2}, false), x);
            // ties share the gradient
            Tensor ties = Tensor.of(new float[] {1, 3, 3, 2, 5, 5, 5, 0}, 2, 4).requiresGrad(true);
            check("max with ties", ELEMENTWISE, ELEMENTWISE, in -> in[0].max(1, false), ties);
            Tensor nan = Tensor.of(new float[] {1, Float.NaN, 3, 4}, 2, 2);
            Tensor m = nan.to(GPU).max(1, false);
            assertEquals(Float.NaN, m.toFloatArray()[0]);
            assertEquals(4f, m.toFloatArray()[1]);
        }
    }

    @Test
    void cumulativeSumsMatchForwardReversedShortAndLong() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor bins = randn(5, 512, 20).requiresGrad(true); // the AP loss's shape: a thread per line
            check("cumsum over 20 bins", ACCUMULATED, ACCUMULATED, in -> in[0].cumsum(1), bins);
            check("reversed cumsum over 20 bins", ACCUMULATED, ACCUMULATED, in -> Ops.cumsum(in[0], 1, true), bins);
            check("cumsum down the columns (strided lines)", ACCUMULATED, ACCUMULATED, in -> in[0].cumsum(0), bins);
            Tensor lines = randn(6, 7, 3000).requiresGrad(true); // a block per line, chunks of 256
            check("cumsum over 3000 values", ACCUMULATED, ACCUMULATED, in -> in[0].cumsum(1), lines);
            check("reversed cumsum over 3000 values", ACCUMULATED, ACCUMULATED, in -> Ops.cumsum(in[0], 1, true), lines);
            check("float64 cumsum", GpuParity.DOUBLE, GpuParity.DOUBLE, in -> in[0].cumsum(0),
                    Tensor.ofDoubles(randn(7, 2000).toDoubleArray(), 1000, 2).requiresGrad(true));
            assertEquals(DType.FLOAT32, bins.to(GPU).cumsum(1).dtype());
        }
    }
}
