package dir4j.bench.gpu;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.CudaBackend;
import dir4j.retrieval.loss.APLoss;
import java.util.Random;

/**
 * The AP loss from descriptors on cuda:0, forward + backward including the GEMMs (the blocked
 * path, {@link APLoss#forwardBlocked}): D = 2048, nq = 20, classes of 4 images, self-match
 * excluded. Prints, per case,
 * {@code RESULT aploss N=<n> <precision>: <ms> ms, peak <GiB> GiB beyond inputs}: the mean of
 * timed iterations after warm-ups (synchronised), and the allocator's peak in-use bytes during
 * the case minus those in use before it (the descriptors). Cases run in increasing memory order,
 * as the allocator's peak cannot be reset. Arguments: none (N = 4096 and 8192 strict and TF32,
 * 65,536 TF32 once), or pairs {@code N strict|tf32}.
 */
public final class ApLossGpuBench {
    private ApLossGpuBench() {}

    public static void main(String[] args) {
        String[] cases = args.length > 0 ? args
                : new String[] {"4096", "strict", "4096", "tf32", "8192", "strict", "8192", "tf32", "65536", "tf32"};
        Device gpu = Device.cuda(0);
        CudaBackend backend = (CudaBackend) Backends.of(gpu);
        for (int c = 0; c + 1 < cases.length; c += 2) {
            int n = Integer.parseInt(cases[c]);
            boolean tf32 = cases[c + 1].equals("tf32");
            run(backend, gpu, n, 2048, tf32);
        }
    }

    private static void run(CudaBackend backend, Device gpu, int n, int dim, boolean tf32) {
        backend.setTf32(tf32);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i / 4;
        }
        APLoss loss = new APLoss(20, -1, 1, false, true);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d;
            try (MemoryScope make = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                Tensor raw = Tensor.randn(new Random(n), n, dim).to(gpu);
                d = make.keep(NnOps.l2Normalize(raw, 1, 1e-12));
            }
            backend.synchronize();
            long before = inUse(backend);
            int warm = n > 16384 ? 1 : 3;
            int iters = n > 16384 ? 1 : 20;
            double lossValue = 0;
            for (int i = 0; i < warm; i++) {
                lossValue = step(loss, d, ids);
            }
            backend.synchronize();
            long t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) {
                step(loss, d, ids);
            }
            backend.synchronize();
            double ms = (System.nanoTime() - t0) / 1e6 / iters;
            double peak = (peakInUse(backend) - before) / (double) (1L << 30);
            System.out.printf("RESULT aploss N=%d %s: %.3f ms, peak %.3f GiB beyond inputs (loss %.6f, %d rows per "
                    + "block, %d timed of %d warm-up)%n", n, tf32 ? "tf32" : "strict", ms, peak, lossValue,
                    loss.blockRows(n, 4), iters, warm);
        }
    }

    private static double step(APLoss loss, Tensor d, int[] ids) {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor leaf = d.detach().requiresGrad(true);
            APLoss.Result r = loss.forwardBlocked(leaf, ids, null, loss.blockRows(ids.length, 4));
            r.loss().backward();
            return r.loss().item();
        }
    }

    private static long inUse(CudaBackend backend) {
        return backend.memoryStats().inUseBytes();
    }

    private static long peakInUse(CudaBackend backend) {
        return backend.memoryStats().peakInUseBytes();
    }
}
