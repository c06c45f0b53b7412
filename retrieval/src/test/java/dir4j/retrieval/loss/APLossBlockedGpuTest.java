package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backend;
import dir4j.engine.Backends;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.CudaBackend;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The blocked AP loss and the AP histogram's diagonal offset on cuda:0 against the CPU backend,
 * float32, strict GEMMs (TF32 off). Tolerances: histograms and per-score gradients 1e-5 of the
 * largest value (float32 sums; the scores' GEMMs differ in summation order), loss 1e-5, dL/dD
 * 1e-4 of its largest entry.
 */
@Tag("gpu")
class APLossBlockedGpuTest {
    private static final Device GPU = Device.cuda(0);

    @BeforeAll
    static void requireGpu() {
        try {
            ((CudaBackend) Backends.of(GPU)).setTf32(false);
        } catch (RuntimeException | LinkageError e) {
            String why = "CUDA is not usable here: " + e;
            if (Boolean.getBoolean("dir4j.gpu.required")) {
                fail(why);
            }
            Assumptions.abort(why);
        }
    }

    private static float[] floats(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    private record Out(double loss, double[] hist, double[] grad, int excluded) {}

    private static Out run(APLoss loss, Tensor base, int[] ids, Device dev, int rows) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = base.to(dev).detach().requiresGrad(true);
            APLoss.Result r = rows == 0 ? loss.forward(Ops.gram(d), APLoss.sameClass(ids, DType.FLOAT32), null)
                    : loss.forwardBlocked(d, ids, null, rows);
            r.loss().backward();
            return new Out(r.loss().item(), r.histogram().toDoubleArray(), d.grad().toDoubleArray(), r.excluded());
        }
    }

    @Test
    void blockedLossOnCudaMatchesTheCpu() {
        Random rng = new Random(21);
        int n = 300;
        Tensor d = Tensor.of(floats(APLossBlockedTest.descriptors(rng, n, 64).toDoubleArray()), n, 64);
        int[] ids = APLossBlockedTest.classes(rng, n);
        for (APLoss loss : new APLoss[] {new APLoss(20, -1, 1, false, true), new APLoss(25, 0, 1, true, false),
                new TAPLoss(20, -1, 1, true, false, true)}) {
            Out cpuFull = run(loss, d, ids, Device.CPU, 0);
            for (int rows : new int[] {n, 97, 64}) {
                Out cpu = run(loss, d, ids, Device.CPU, rows);
                Out gpu = run(loss, d, ids, GPU, rows);
                String what = loss.getClass().getSimpleName() + " " + loss.bins() + ", " + rows + " rows";
                assertEquals(cpu.excluded(), gpu.excluded(), what + ": excluded");
                assertEquals(cpu.loss(), gpu.loss(), 1e-5, what + ": loss");
                assertEquals(cpuFull.loss(), gpu.loss(), 1e-5, what + ": loss against the full CPU path");
                APLossBlockedTest.assertArrayClose(cpu.hist(), gpu.hist(), 1e-5, what + ": histograms");
                APLossBlockedTest.assertArrayClose(cpu.grad(), gpu.grad(), 1e-4, what + ": dL/dD");
                APLossBlockedTest.assertArrayClose(cpuFull.grad(), gpu.grad(), 1e-4, what + ": dL/dD vs full CPU");
            }
        }
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
                }
                APLossBlockedTest.assertArrayClose(res[0], res[1], 1e-5, "histogram, diagonal " + diag);
                APLossBlockedTest.assertArrayClose(grad[0], grad[1], 1e-6, "backward, diagonal " + diag);
                APLossBlockedTest.assertArrayClose(gradT[0], gradT[1], 1e-6, "transposed backward, diagonal " + diag);
            }
        }
    }
}
