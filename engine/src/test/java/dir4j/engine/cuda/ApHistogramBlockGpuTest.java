package dir4j.engine.cuda;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The AP histogram ops as the blocked AP loss uses them, CUDA against the CPU: a diagonal at an
 * offset (a row block's self-matches), on a transposed view with a negative offset, and the
 * symmetric backward of a row block (row and column query terms per score).
 */
@Tag("gpu")
class ApHistogramBlockGpuTest {
    private static final Device GPU = GpuParity.GPU;

    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
        GpuParity.backend();
    }

    @Test
    void apHistogramDiagonalOffsetOnCudaMatchesTheCpu() {
        Random rng = new Random(4);
        int rows = 37;
        int m = 300;
        float[] s = new float[rows * m];
        float[] y = new float[rows * m];
        float[] g = new float[m * 2 * 20];
        for (int i = 0; i < s.length; i++) {
            s[i] = (float) (rng.nextDouble() * 2.4 - 1.2);
            y[i] = rng.nextInt(4) == 0 ? 1 : 0;
        }
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) rng.nextGaussian();
        }
        Backend.ApBins bins = new Backend.ApBins(20, -1, 1);
        for (int diag : new int[] {0, 5, 263, -3, Backend.AP_KEEP_ALL}) {
            try (MemoryScope scope = MemoryScope.open()) {
                double[][] res = new double[2][];
                double[][] grad = new double[2][];
                double[][] gradT = new double[2][];
                double[][] gradSym = new double[2][];
                Device[] devs = {Device.CPU, GPU};
                for (int k = 0; k < 2; k++) {
                    Tensor sc = Tensor.of(s, rows, m).to(devs[k]);
                    Tensor lab = Tensor.of(y, rows, m).to(devs[k]);
                    Tensor gh = Tensor.of(g, m, 2, 20).to(devs[k]);
                    Tensor h = Tensor.empty(DType.FLOAT32, devs[k], rows, 2, 20);
                    sc.backend().apHistogram(sc, lab, bins, diag, h);
                    res[k] = h.toDoubleArray();
                    Tensor ds = Tensor.empty(DType.FLOAT32, devs[k], rows, m);
                    sc.backend().apHistogramBackward(sc, lab, bins, diag, Ops.slice(gh, 0, 0, rows), ds);
                    grad[k] = ds.toDoubleArray();
                    // the transposed view with the negated offset, as the blocked backward uses it
                    Tensor dt = Tensor.empty(DType.FLOAT32, devs[k], m, rows);
                    int neg = diag == Backend.AP_KEEP_ALL ? diag : -diag;
                    sc.backend().apHistogramBackward(Ops.transpose(sc, 0, 1), Ops.transpose(lab, 0, 1), bins, neg,
                            gh, dt);
                    gradT[k] = dt.toDoubleArray();
                    // rows 11 … 47 of a symmetric matrix: each score's row and column terms
                    Tensor sym = Tensor.empty(DType.FLOAT32, devs[k], rows, m);
                    sc.backend().apHistogramBackwardSymmetric(sc, lab, bins, 11, diag, gh, sym);
                    gradSym[k] = sym.toDoubleArray();
                }
                GpuParity.assertClose("histogram, diagonal " + diag, GpuParity.ACCUMULATED, res[0], res[1]);
                GpuParity.assertClose("backward, diagonal " + diag, GpuParity.ELEMENTWISE, grad[0], grad[1]);
                GpuParity.assertClose("transposed backward, diagonal " + diag, GpuParity.ELEMENTWISE, gradT[0], gradT[1]);
                GpuParity.assertClose("symmetric backward, diagonal " + diag, GpuParity.ELEMENTWISE, gradSym[0], gradSym[1]);
            }
        }
    }
}
