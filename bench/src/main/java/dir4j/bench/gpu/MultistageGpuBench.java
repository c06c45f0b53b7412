package dir4j.bench.gpu;

import dir4j.engine.Backend;
import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.CudaBackend;
import dir4j.nn.optim.Adam;
import dir4j.nn.optim.Optimizer;
import dir4j.retrieval.loss.APLoss;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.train.MultistageBackprop;
import java.util.Locale;
import java.util.Random;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * One multistage training step of ResNet-101-GeM-FC on the GPU, the paper's recipe at full size:
 * a batch of N synthetic 512×512 images (default 4096, in classes of 4), sub-batches of 64, AP
 * loss with nq = 20, frozen batch norm, Adam, TF32 on. Images come from a pool of one
 * sub-batch of random images made once on the host and copied to the device; sub-batch i is the
 * pool scaled by (1 + i/N) on the device (one elementwise op), so stage 1 and stage 3 see the same
 * images and generation costs nothing beside the network.
 *
 * <p>Prints per step the seconds of stage 1 (descriptors without graphs), stage 2 (loss and dL/dD),
 * stage 3 (recompute + backward) and the optimiser step, then
 * {@code RESULT multistage resnet101 512 N=4096: <img/s> img/s} over the timed steps and the
 * allocator's peak memory.
 *
 * <p>The warm-up steps (cuDNN algorithm search, kernel loading, allocator growth) run on
 * --warmup-n images (default 4 sub-batches): the sub-batch shapes are those of the timed step.
 *
 * <p>As the Trainer: stage 1 runs {@code RetrievalNet.inference()} (the compiled backbone where
 * there is one for the device; {@code --stage1 module} runs the plain module), and the loss takes
 * the descriptors with class ids ({@code APLoss.forward(D, ids)}, the blocked path on CUDA).
 *
 * <p>{@code --channels-last} runs stage 3 channels-last ({@code RetrievalNet.channelsLast(true)}, as
 * {@code dir4j train --channels-last}).
 *
 * <p>Flags: --n N, --size PIXELS, --sub-batch B, --steps S (timed), --warmup W, --warmup-n N, --arch NAME,
 * --no-tf32, --device cuda:K, --stage1 inference|module, --channels-last.
 */
public final class MultistageGpuBench {
    private MultistageGpuBench() {}

    public static void main(String[] args) throws Exception {
        int n = 4096;
        int size = 512;
        int sub = 64;
        int steps = 1;
        int warmup = 1;
        int warmupN = -1;
        String arch = "resnet101";
        boolean tf32 = true;
        boolean stage1Module = false;
        boolean channelsLast = false;
        Device dev = Device.cuda(0);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--n" -> n = Integer.parseInt(args[++i]);
                case "--size" -> size = Integer.parseInt(args[++i]);
                case "--sub-batch" -> sub = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--warmup-n" -> warmupN = Integer.parseInt(args[++i]);
                case "--arch" -> arch = args[++i];
                case "--no-tf32" -> tf32 = false;
                case "--stage1" -> stage1Module = switch (args[++i]) {
                    case "module" -> true;
                    case "inference" -> false;
                    default -> throw new IllegalArgumentException("--stage1 takes inference or module, got " + args[i]);
                };
                case "--device" -> dev = Device.parse(args[++i]);
                case "--channels-last" -> channelsLast = true;
                default -> throw new IllegalArgumentException("unknown flag " + args[i]
                        + " (known: --n --size --sub-batch --steps --warmup --warmup-n --arch --no-tf32 --device "
                        + "--stage1 --channels-last)");
            }
        }
        if (n % 4 != 0 || n % sub != 0) {
            throw new IllegalArgumentException("--n must be a multiple of 4 and of --sub-batch, got " + n);
        }
        Backend backend = Backends.of(dev);
        // --device cpu runs the same recipe (at a tiny --size) to check the bench itself without a GPU
        CudaBackend cuda = backend instanceof CudaBackend c ? c : null;
        Runnable sync = cuda == null ? () -> { } : cuda::synchronize;
        if (cuda != null) {
            cuda.setTf32(tf32);
        }
        System.out.println("device: " + (cuda == null ? dev : cuda.describe()) + "; TF32 " + (tf32 && cuda != null
                ? "on" : "off"));

        if (warmupN < 0) {
            warmupN = Math.min(n, 4 * sub);
        }
        if (warmupN % 4 != 0 || warmupN % sub != 0) {
            throw new IllegalArgumentException("--warmup-n must be a multiple of 4 and of --sub-batch, got " + warmupN);
        }
        final int parts = n / sub;
        final int nImages = n;
        final Device device = dev;
        RetrievalNet.Options options = new RetrievalNet.Options(arch, 2048, "gem", 3, false, false, 64);
        RetrievalNet net = MemoryScope.detached(() -> new RetrievalNet(options, new Random(0)));
        Tensor pool = null;
        try {
            net.to(dev);
            MultistageBackprop.freezeBatchNorm(net, true);
            net.train(true);
            net.channelsLast(channelsLast);
            Tensor hostPool = Tensor.randn(new Random(1), sub, 3, size, size);
            pool = device.equals(Device.CPU) ? hostPool : MemoryScope.detached(() -> hostPool.to(device));
            if (pool != hostPool) {
                hostPool.close();
            }
            final Tensor images = pool;
            IntFunction<Tensor> subBatch = i -> Ops.affine(images, 1 + (double) i / nImages, 0);
            System.out.printf(Locale.ROOT, "%s-GeM-FC %,d parameters; N=%d %dx%d, sub-batch %d (%d per stage), "
                    + "AP nq=20, Adam, frozen BN%s%n", arch, net.parameterCount(), n, size, size, sub, parts,
                    channelsLast ? ", stage 3 channels-last" : "");
            double timedSeconds = 0;
            try (Optimizer opt = Adam.adam(net.parameters(), 1e-6, 1e-6)) {
                for (int step = 0; step < warmup + steps; step++) {
                    boolean isWarmup = step < warmup;
                    int stepN = isWarmup ? warmupN : n;
                    int[] classes = new int[stepN];
                    for (int i = 0; i < stepN; i++) {
                        classes[i] = i / 4;
                    }
                    double[] marks = new double[4];
                    long[] stage = {0};
                    sync.run();
                    long t0 = System.nanoTime();
                    IntFunction<Tensor> timed = i -> {
                        if (stage[0] == 1) { // first sub-batch of stage 3: stage 2 is done
                            sync.run();
                            marks[1] = (System.nanoTime() - t0) / 1e9;
                            stage[0] = 2;
                        }
                        return subBatch.apply(i);
                    };
                    Function<Tensor, Tensor> loss = d -> {
                        sync.run();
                        marks[0] = (System.nanoTime() - t0) / 1e9;
                        stage[0] = 1;
                        return new APLoss(20, -1, 1, false, true).forward(d, classes, null).loss();
                    };
                    MultistageBackprop.Outcome o;
                    // the compiled backbone is a snapshot of this step's weights: one per step, closed after it
                    try (RetrievalNet.Inference inference = stage1Module ? null : net.inference()) {
                        if (step == 0) {
                            System.out.println("stage 1: " + (inference == null ? "the module (--stage1 module)"
                                    : inference.compiled() ? "the compiled backbone (RetrievalNet.inference())"
                                    : "the module (no compiled backbone for this device)"));
                        }
                        Function<Tensor, Tensor> stage1 = inference == null ? net::forward : inference::describe;
                        o = MultistageBackprop.accumulateGradients(net, stepN / sub, timed, loss, stage1);
                    }
                    sync.run();
                    marks[2] = (System.nanoTime() - t0) / 1e9;
                    opt.step();
                    opt.zeroGrad();
                    sync.run();
                    marks[3] = (System.nanoTime() - t0) / 1e9;
                    System.out.printf(Locale.ROOT, "%s step %d (N=%d): loss %.5f; stage 1 %.2f s, stage 2 %.3f s, stage 3 "
                            + "%.2f s, optimiser %.3f s; total %.2f s (%.1f img/s)%n", isWarmup ? "warm-up" : "timed",
                            step + 1, stepN, o.loss(), marks[0], marks[1] - marks[0], marks[2] - marks[1],
                            marks[3] - marks[2], marks[3], stepN / marks[3]);
                    if (!isWarmup) {
                        timedSeconds += marks[3];
                    }
                }
            }
            double ips = steps * (double) n / timedSeconds;
            System.out.printf(Locale.ROOT, "RESULT multistage %s %d N=%d%s: %.1f img/s%n", arch, size, n,
                    channelsLast ? " channels-last" : "", ips);
            if (cuda != null) {
                System.out.printf(Locale.ROOT, "peak GPU memory (dir4j allocator, in use): %.2f GiB%n",
                        peakBytes(cuda) / (double) (1L << 30));
            }
        } finally {
            if (pool != null) {
                pool.close();
            }
            net.close();
        }
    }

    /** The caching allocator's peak of bytes in use (its Stats record is internal to the engine). */
    static long peakBytes(CudaBackend cuda) {
        try {
            Object stats = CudaBackend.class.getMethod("memoryStats").invoke(cuda);
            var m = stats.getClass().getDeclaredMethod("peakInUseBytes");
            m.setAccessible(true);
            return (Long) m.invoke(stats);
        } catch (ReflectiveOperationException e) {
            return -1;
        }
    }
}
