package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
 * The blocked AP loss on cuda:0 against the CPU backend (the ops it uses: ApHistogramBlockGpuTest),
 * float32, strict GEMMs (TF32 off). Tolerances: histograms and per-score gradients 1e-5 of the
 * largest value (float32 sums; the scores' GEMMs differ in summation order), loss 1e-5, dL/dD
 * 1e-4 of its largest entry.
 */
@Tag("gpu")
class APLossBlockedGpuTest {
    private static final Device GPU = Device.cuda(0);

    @BeforeAll
    static void requireGpu() {
        dir4j.retrieval.Gpu.require().setTf32(false);
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
                // the default on CUDA computes dL/dD with the forward (APLoss.withEagerGradient)
                Out gpu = run(loss, d, ids, GPU, rows);
                String what = loss.getClass().getSimpleName() + " " + loss.bins() + ", " + rows + " rows";
                Out lazy = run(loss.withEagerGradient(false), d, ids, GPU, rows);
                loss.withEagerGradient(null);
                assertEquals(gpu.loss(), lazy.loss(), 0, what + ": loss, dL/dD at the backward");
                APLossBlockedTest.assertArrayClose(gpu.grad(), lazy.grad(), 1e-6, what + ": dL/dD at the backward");
                assertEquals(cpu.excluded(), gpu.excluded(), what + ": excluded");
                assertEquals(cpu.loss(), gpu.loss(), 1e-5, what + ": loss");
                assertEquals(cpuFull.loss(), gpu.loss(), 1e-5, what + ": loss against the full CPU path");
                APLossBlockedTest.assertArrayClose(cpu.hist(), gpu.hist(), 1e-5, what + ": histograms");
                APLossBlockedTest.assertArrayClose(cpu.grad(), gpu.grad(), 1e-4, what + ": dL/dD");
                APLossBlockedTest.assertArrayClose(cpuFull.grad(), gpu.grad(), 1e-4, what + ": dL/dD vs full CPU");
            }
        }
    }
}
