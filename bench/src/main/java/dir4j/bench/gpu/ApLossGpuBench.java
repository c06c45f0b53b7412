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
 * the case minus those in use before it (the descriptors), the peak reset at the start of each
 * case. At N = 4096 the case runs a second time with dL/dD computed at the backward ({@code APLoss.withEagerGradient(false)}; the default on CUDA computes
 * it with the forward, ahead of the read of the APs), then (TF32) a device profile of two steps and
 * a sample of the host thread over 2 s of steps, then its parts are timed one by one.
 * Warm-up: at least 3 steps and {@code -Dwarmup.seconds} (default 2) of them, so that the host
 * path is compiled by the JIT before it is timed. Arguments: none (N = 4096 and 8192 strict and
 * TF32, 65,536 TF32 once), or pairs {@code N strict|tf32}.
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
            run(backend, gpu, n, 2048, tf32, null);
            if (n == 4096) {
                run(backend, gpu, n, 2048, tf32, false);
                if (tf32) {
                    profiles(backend, gpu, n, 2048);
                }
                try {
                    parts(backend, gpu, n, 2048, tf32);
                } catch (RuntimeException e) {
                    // the breakdown is a diagnosis: its failure must not cost the other cases
                    System.out.println("RESULT aploss N=" + n + " parts failed: " + e);
                    e.printStackTrace(System.out);
                }
            }
        }
    }

    /**
     * Where the time of one block (N = 4096) goes: each piece of the blocked path timed on its own
     * (median of 10, synchronised): the scores' GEMM, the histogram with labels from class
     * numbers (per-thread bins, then the per-warp atomic kernel for comparison), the AP and
     * dL/dhist from the histograms, the tiled symmetric backward, the dL/dD GEMM, and for
     * comparison the earlier composition of the backward (row kernel with a dense label matrix,
     * then G + Gᵀ).
     */
    private static void parts(CudaBackend be, Device gpu, int n, int dim, boolean tf32) {
        be.setTf32(tf32);
        dir4j.engine.Backend.ApBins bins = new dir4j.engine.Backend.ApBins(20, -1, 1);
        try (MemoryScope scope = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            Tensor d = NnOps.l2Normalize(Tensor.randn(new Random(n), n, dim).to(gpu), 1, 1e-12);
            double[] cls = new double[n];
            double[] coefs = new double[n];
            for (int i = 0; i < n; i++) {
                cls[i] = i / 4;
                coefs[i] = -1.0 / n;
            }
            Tensor ids = Tensor.ofDoubles(cls, n).to(dir4j.engine.DType.FLOAT32).to(gpu);
            Tensor coef = Tensor.ofDoubles(coefs, n).to(dir4j.engine.DType.FLOAT32).to(gpu);
            dir4j.engine.Backend.ApLabels byClass = dir4j.engine.Backend.ApLabels.sameClass(ids, ids);
            Tensor dense = dir4j.engine.Ops.equal(dir4j.engine.Ops.reshape(ids, n, 1), dir4j.engine.Ops.reshape(ids, 1, n));
            Tensor s = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n, n);
            Tensor hist = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n, 2, 20);
            Tensor ap = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n);
            Tensor gradHist = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n, 2, 20);
            Tensor g = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n, n);
            Tensor h = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, n, n);
            Tensor dd = Tensor.empty(dir4j.engine.DType.FLOAT32, gpu, 1, n, dim);
            Tensor s3 = s.viewOf(new int[] {1, n, n}, new long[] {(long) n * n, n, 1}, 0);
            Tensor h3 = h.viewOf(new int[] {1, n, n}, new long[] {(long) n * n, n, 1}, 0);
            Tensor d3 = d.viewOf(new int[] {1, n, dim}, new long[] {(long) n * dim, dim, 1}, d.offset());
            Tensor dt3 = d.viewOf(new int[] {1, dim, n}, new long[] {(long) n * dim, 1, dim}, d.offset());
            double gemm = millis(be, () -> be.matmul(d3, dt3, s3));
            double histogram = millis(be, () -> be.apHistogram(s, byClass, bins, 0, hist));
            be.setApHistogramAtomic(true);
            double atomic = millis(be, () -> be.apHistogram(s, byClass, bins, 0, hist));
            be.setApHistogramAtomic(false);
            double fromHist = millis(be, () -> be.apLossFromHistogram(hist, coef, ap, gradHist));
            double symmetric = millis(be, () -> be.apHistogramBackwardSymmetric(s, byClass, bins, 0, 0, gradHist, h));
            double dGemm = millis(be, () -> be.matmul(h3, d3, dd));
            double rowBackward = millis(be, () -> be.apHistogramBackward(s, dense, bins, 0, gradHist, g));
            double transposeAdd = millis(be, () -> be.binary(dir4j.engine.Backend.Binary.ADD, g,
                    dir4j.engine.Ops.transpose(g, 0, 1), h));
            System.out.printf("RESULT aploss N=%d %s parts (ms): S GEMM %.3f, histogram %.3f (atomic kernel %.3f), "
                    + "AP + dL/dhist %.3f, symmetric backward %.3f, dL/dD GEMM %.3f; sum %.3f; earlier backward: "
                    + "row kernel %.3f + G+Gt %.3f%n", n, tf32 ? "tf32" : "strict", gemm, histogram, atomic, fromHist,
                    symmetric, dGemm, gemm + histogram + fromHist + symmetric + dGemm, rowBackward, transposeAdd);
        }
    }

    /**
     * Where one whole step's time goes (N = 4096, TF32, the default path): the device profiler's
     * table of two steps (every kernel, product and copy, with memsets and finalize kernels the
     * parts leave out), then the host thread sampled over 2 s of steps ({@link dir4j.bench.HostSampler}):
     * which host calls take the time between the device's work.
     */
    private static void profiles(CudaBackend be, Device gpu, int n, int dim) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i / 4;
        }
        APLoss loss = new APLoss(20, -1, 1, false, true);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d;
            try (MemoryScope make = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                d = make.keep(NnOps.l2Normalize(Tensor.randn(new Random(n), n, dim).to(gpu), 1, 1e-12));
            }
            for (int i = 0; i < 5; i++) {
                step(loss, d, ids);
            }
            be.synchronize();
            be.profileEntries(); // start afresh
            be.profile(true);
            try {
                step(loss, d, ids);
                step(loss, d, ids);
            } finally {
                be.profile(false);
            }
            System.out.println("RESULT aploss N=" + n + " tf32 device profile (2 steps):\n" + be.profileReport(20));
            try (dir4j.bench.HostSampler sampler = new dir4j.bench.HostSampler(Thread.currentThread(), 100)) {
                int steps = 0;
                sampler.start();
                long t0 = System.nanoTime();
                while (System.nanoTime() - t0 < 2_000_000_000L) {
                    step(loss, d, ids);
                    steps++;
                }
                sampler.stop();
                System.out.printf("RESULT aploss N=%d tf32 host profile (%d steps, %.3f ms each, sampled):%n%s", n, steps,
                        (System.nanoTime() - t0) / 1e6 / steps, sampler.report(20));
            }
        } catch (RuntimeException e) {
            // a diagnosis: its failure must not cost the other cases
            System.out.println("RESULT aploss N=" + n + " profiles failed: " + e);
        }
    }

    /** Median of 10 synchronised runs after 2 warm-ups, ms. */
    private static double millis(CudaBackend be, Runnable body) {
        double[] t = new double[10];
        for (int i = -2; i < t.length; i++) {
            be.synchronize();
            long t0 = System.nanoTime();
            body.run();
            be.synchronize();
            if (i >= 0) {
                t[i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        java.util.Arrays.sort(t);
        return t[t.length / 2];
    }

    private static void run(CudaBackend backend, Device gpu, int n, int dim, boolean tf32, Boolean eager) {
        backend.setTf32(tf32);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i / 4;
        }
        APLoss loss = new APLoss(20, -1, 1, false, true).withEagerGradient(eager);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d;
            try (MemoryScope make = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                Tensor raw = Tensor.randn(new Random(n), n, dim).to(gpu);
                d = make.keep(NnOps.l2Normalize(raw, 1, 1e-12));
            }
            backend.synchronize();
            long before = inUse(backend);
            // this case's peak only (the parts timed before a TF32 case held more than it does)
            backend.resetPeakMemory();
            int iters = n > 16384 ? 1 : 20;
            long warmNanos = n > 16384 ? 0 : (long) (Double.parseDouble(System.getProperty("warmup.seconds", "2")) * 1e9);
            double lossValue = 0;
            int warm = 0;
            for (long w0 = System.nanoTime(); warm < (n > 16384 ? 1 : 3) || System.nanoTime() - w0 < warmNanos; warm++) {
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
            System.out.printf("RESULT aploss N=%d %s%s: %.3f ms, peak %.3f GiB beyond inputs (loss %.6f, %d rows per "
                    + "block, %d timed after %d warm-up)%n", n, tf32 ? "tf32" : "strict",
                    eager == null ? "" : eager ? " (dL/dD with the forward)" : " (dL/dD at the backward)", ms, peak, lossValue,
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
