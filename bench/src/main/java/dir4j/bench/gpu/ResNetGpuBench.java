package dir4j.bench.gpu;

import dir4j.engine.Backend;
import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.EngineInfo;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.cuda.CudaBackend;
import dir4j.nn.optim.Sgd;
import dir4j.retrieval.net.RetrievalNet;
import java.util.Locale;
import java.util.Random;

/**
 * ResNet-101-GeM-FC (the retrieval network: ResNet-101 trunk, GeM p = 3, FC 2048→2048 with bias,
 * L2 norm) on cuda:0 with TF32 for convolutions and matrix products, five workloads:
 * <ul>
 * <li>inference: batch 32 at 224×224, eval mode, no graph, the module's forward (NCHW); images per
 * second;</li>
 * <li>compiled inference: the same through {@code RetrievalNet.inference()}, the trunk compiled by
 * ResNetDeviceInference (batch norms folded, cuDNN channels-last convolutions with the bias,
 * residual and ReLU fused); images per second, and the largest difference of its descriptors from
 * the module's on the same batch;</li>
 * <li>the same with the trunk's forward recorded as a CUDA graph and replayed
 * ({@code Inference.graphs(true)}: one launch a batch instead of ~100 host calls);</li>
 * <li>a training step: batch 16 at 512×512, train mode (batch statistics), loss = sum of the
 * descriptors, backward, SGD (momentum 0.9, weight decay 1e-4); images per second;</li>
 * <li>the same training step channels-last ({@code RetrievalNet.channelsLast(true)}: NHWC
 * activations, cuDNN's channels-last convolutions and dir4j's fused channels-last batch norms in
 * both directions); images per second, and before timing the largest difference of its eval-mode
 * descriptors from the NCHW module's on the same batch. Target (issue #5): ≥ 340 img/s.</li>
 * <li>the channels-last training step recorded as a CUDA graph and replayed (a diagnosis of the
 * host's share, see {@link #graphTraining}); images per second.</li>
 * </ul>
 * Each runs warm-up iterations (the first also picks cuDNN algorithms), then the timed ones
 * between two device synchronisations. Prints {@code RESULT <workload>: <value> img/s} and the
 * caching allocator's peak ({@code RESULT <workload> peak memory: <GiB> GiB}), each workload's own
 * (the peak is reset before it). PyTorch 2.11 on the H200 (DESIGN.md): train 338.5 img/s,
 * inference 4,544 img/s (channels_last, TF32); the compiled inference's target is ≥ 4,600.
 *
 * <p>After each workload's timing, {@code --profile-steps} more steps (default 2; 0: none) run with
 * the device profiler on ({@code CudaBackend.profile}) and print where the device time went: by
 * category (convolution direction, batch norm, kernels, products, copies), then the 25 longest
 * operations.
 *
 * <p>Warm-up runs at least {@code --warmup} iterations and {@code --warmup-seconds} (the JIT compiles
 * the host side of ~100 launches per batch only after some hundreds of batches). The timed loop
 * prints, beside the time per batch or step, the host's enqueue time (the loop's time before the
 * final synchronisation: close to the total when the host, not the GPU, sets the pace) and the
 * time per iteration of each half of the loop.
 *
 * <p>Arguments (all optional): {@code --train-steps 20 --infer-steps 40 --warmup 3 --warmup-seconds 3
 * --train-batch 16 --train-size 512 --infer-batch 32 --infer-size 224 --skip-train --skip-infer
 * --skip-compiled --skip-channels-last --skip-train-graph --profile-steps 2 --host-profile-steps 0
 * --strict-fp32}.
 *
 * <p>{@code --strict-fp32} turns TF32 off (strict float32 convolutions and products; cuDNN may lack
 * channels-last float32 kernels for some shapes, and says so): the workloads' names end in
 * {@code _fp32} instead of {@code _tf32}.
 *
 * <p>{@code --host-profile-steps N} runs N more steps of each workload with the host's stack
 * sampled every 200 µs ({@link dir4j.bench.HostSampler}) and prints the most frequent frames, for
 * a host-bound workload (enqueue time close to the total).
 */
public final class ResNetGpuBench {
    private ResNetGpuBench() {}

    /** Steps (batches) run once more with the device profiler on after each workload's timing; 0: none. */
    private static int profileSteps = 2;
    /** Steps run once more with the host sampler on after each workload's timing; 0 (the default): none. */
    private static int hostProfileSteps;

    /** Warm-up lasts at least this long as well as {@code --warmup} iterations. */
    private static double warmupSeconds = 3;

    /**
     * Runs body, synchronising after each, at least {@code warmup} times and for at least
     * {@link #warmupSeconds}; prints the first run's time (the algorithm search) and the count.
     */
    private static void warmUp(CudaBackend be, String label, int warmup, Runnable body) {
        long first = System.nanoTime();
        int runs = 0;
        while (runs < warmup || System.nanoTime() - first < warmupSeconds * 1e9) {
            body.run();
            be.synchronize();
            if (runs == 0) {
                System.out.printf(Locale.ROOT, "%s: first run (with algorithm search) %.2f s%n", label,
                        (System.nanoTime() - first) / 1e9);
            }
            runs++;
        }
        System.out.printf(Locale.ROOT, "%s: warmed up with %d runs in %.1f s%n", label, runs,
                (System.nanoTime() - first) / 1e9);
    }

    /**
     * Times {@code steps} runs of body between two device synchronisations (and one after the
     * first half); prints the time per run, the host's enqueue time per run and each half's time
     * per run. Returns the total seconds.
     */
    private static double timed(CudaBackend be, String label, int steps, int batch, Runnable body) {
        be.synchronize();
        int half = Math.max(1, steps / 2);
        long t = System.nanoTime();
        long halfDone = t;
        long hostBusy = 0;
        long mark = t;
        for (int i = 0; i < steps; i++) {
            body.run();
            if (i == half - 1 && half < steps) {
                hostBusy += System.nanoTime() - mark;
                be.synchronize();
                halfDone = System.nanoTime();
                mark = halfDone;
            }
        }
        hostBusy += System.nanoTime() - mark;
        be.synchronize();
        long end = System.nanoTime();
        double s = (end - t) / 1e9;
        double first = (halfDone - t) / 1e6 / half;
        double second = half < steps ? (end - halfDone) / 1e6 / (steps - half) : first;
        System.out.printf(Locale.ROOT, "%s: %d runs of %d in %.3f s (%.2f ms each; host enqueue %.2f ms each; "
                + "halves %.2f / %.2f ms each)%n", label, steps, batch, s, s * 1e3 / steps, hostBusy / 1e6 / steps,
                first, second);
        return s;
    }

    /**
     * Runs {@code body} {@link #profileSteps} times with the profiler on and prints where the device
     * time went; then {@link #hostProfileSteps} times with the host sampler on and prints where the
     * host's time went.
     */
    private static void profiled(CudaBackend be, String label, Runnable body) {
        hostProfiled(be, label, body);
        if (profileSteps <= 0) {
            return;
        }
        be.synchronize();
        be.profileEntries(); // start afresh
        be.profile(true);
        try {
            for (int i = 0; i < profileSteps; i++) {
                body.run();
            }
        } finally {
            be.profile(false);
        }
        System.out.println("profile of " + label + " (" + profileSteps + " steps, device time by operation):\n"
                + be.profileReport(25));
    }

    /**
     * Runs {@code body} {@link #hostProfileSteps} times with {@link dir4j.bench.HostSampler} taking
     * the host thread's stack every 200 µs, and prints the most frequent frames: which calls (cuDNN,
     * kernel launches, allocations, waits for the device) take the host's enqueue time.
     */
    private static void hostProfiled(CudaBackend be, String label, Runnable body) {
        if (hostProfileSteps <= 0) {
            return;
        }
        be.synchronize();
        long t = System.nanoTime();
        try (dir4j.bench.HostSampler sampler = new dir4j.bench.HostSampler(Thread.currentThread(), 200)) {
            sampler.start();
            for (int i = 0; i < hostProfileSteps; i++) {
                body.run();
            }
            sampler.stop();
            double ms = (System.nanoTime() - t) / 1e6 / hostProfileSteps;
            be.synchronize();
            System.out.printf(Locale.ROOT, "host profile of %s (%d steps, %.2f ms of host time each, sampled):%n%s",
                    label, hostProfileSteps, ms, sampler.report(30));
        }
    }

    public static void main(String[] args) {
        int trainSteps = 20;
        int inferSteps = 40;
        int warmup = 3;
        int trainBatch = 16;
        int trainSize = 512;
        int inferBatch = 32;
        int inferSize = 224;
        boolean train = true;
        boolean infer = true;
        boolean compiled = true;
        boolean channelsLast = true;
        boolean trainGraph = true;
        boolean tf32 = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--train-steps" -> trainSteps = Integer.parseInt(args[++i]);
                case "--infer-steps" -> inferSteps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--warmup-seconds" -> warmupSeconds = Double.parseDouble(args[++i]);
                case "--train-batch" -> trainBatch = Integer.parseInt(args[++i]);
                case "--train-size" -> trainSize = Integer.parseInt(args[++i]);
                case "--infer-batch" -> inferBatch = Integer.parseInt(args[++i]);
                case "--infer-size" -> inferSize = Integer.parseInt(args[++i]);
                case "--skip-train" -> train = false;
                case "--skip-infer" -> infer = false;
                case "--skip-compiled" -> compiled = false;
                case "--skip-channels-last" -> channelsLast = false;
                case "--skip-train-graph" -> trainGraph = false;
                case "--strict-fp32" -> tf32 = false;
                case "--profile-steps" -> profileSteps = Integer.parseInt(args[++i]);
                case "--host-profile-steps" -> hostProfileSteps = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; see the Javadoc of dir4j.bench.gpu.ResNetGpuBench");
            }
        }
        Device gpu = Device.cuda(0);
        System.out.println("cuda: " + EngineInfo.cudaStatus());
        CudaBackend be = (CudaBackend) Backends.of(gpu);
        be.setTf32(tf32);
        String precision = tf32 ? "_tf32" : "_fp32";
        long t0 = System.nanoTime();
        try (RetrievalNet net = new RetrievalNet(RetrievalNet.Options.apGem("resnet101"), new Random(0))) {
            System.out.printf(Locale.ROOT, "built ResNet-101-GeM-FC (%d parameters) in %.1f s%n", net.parameterCount(),
                    (System.nanoTime() - t0) / 1e9);
            t0 = System.nanoTime();
            net.to(gpu);
            be.synchronize();
            System.out.printf(Locale.ROOT, "moved to %s in %.1f s%n", gpu, (System.nanoTime() - t0) / 1e9);
            String inferName = "resnet101_gem_fc_infer_b" + inferBatch + "_" + inferSize + precision;
            String compiledName = "resnet101_gem_fc_infer_compiled_b" + inferBatch + "_" + inferSize + precision;
            String graphName = "resnet101_gem_fc_infer_compiled_graph_b" + inferBatch + "_" + inferSize + precision;
            String trainName = "resnet101_gem_fc_train_b" + trainBatch + "_" + trainSize + precision;
            String channelsLastName = "resnet101_gem_fc_train_channels_last_b" + trainBatch + "_" + trainSize
                    + precision;
            if (infer) {
                be.resetPeakMemory();
                double ips = inference(be, net, gpu, inferBatch, inferSize, warmup, inferSteps);
                result(inferName, ips, be.peakMemoryBytes());
            }
            if (compiled) {
                for (boolean graphs : new boolean[] {false, true}) {
                    be.resetPeakMemory();
                    double ips = compiledInference(be, net, gpu, inferBatch, inferSize, warmup, inferSteps, graphs);
                    result(graphs ? graphName : compiledName, ips, be.peakMemoryBytes());
                }
            }
            if (train) {
                be.resetPeakMemory();
                double ips = training(be, net, gpu, trainBatch, trainSize, warmup, trainSteps);
                result(trainName, ips, be.peakMemoryBytes());
            }
            if (channelsLast) {
                compareChannelsLast(net, gpu, trainBatch, trainSize);
                net.channelsLast(true);
                be.resetPeakMemory();
                double ips = training(be, net, gpu, trainBatch, trainSize, warmup, trainSteps);
                result(channelsLastName, ips, be.peakMemoryBytes());
                if (trainGraph) {
                    try {
                        double gips = graphTraining(be, net, gpu, trainBatch, trainSize, warmup, trainSteps);
                        // no peak: the allocator counts the graph's blocks as free, and its peak would
                        // be the eager steps' before the recording
                        result(channelsLastName.replace("_channels_last_", "_channels_last_graph_"), gips, -1);
                    } catch (RuntimeException e) {
                        // a diagnosis: its failure must not cost the figures after it
                        System.out.println("RESULT training step as a CUDA graph failed: " + e);
                        e.printStackTrace(System.out);
                    }
                }
                net.channelsLast(false);
            }
        }
        System.out.println("cuDNN choices:\n" + be.convolutionChoices());
    }

    /** A workload's RESULT lines; no peak line when {@code peakBytes} is negative (not measured). */
    private static void result(String workload, double imagesPerSecond, long peakBytes) {
        System.out.printf(Locale.ROOT, "RESULT %s: %.1f img/s%n", workload, imagesPerSecond);
        if (peakBytes >= 0) {
            System.out.printf(Locale.ROOT, "RESULT %s peak memory: %.2f GiB%n", workload,
                    peakBytes / (double) (1L << 30));
        }
    }

    private static Tensor images(Device gpu, int batch, int size, long seed) {
        try (Tensor cpu = Tensor.randn(new Random(seed), batch, 3, size, size)) {
            return MemoryScope.detached(() -> cpu.to(gpu));
        }
    }

    private static double inference(CudaBackend be, RetrievalNet net, Device gpu, int batch, int size, int warmup,
                                    int steps) {
        net.eval();
        try (Tensor x = images(gpu, batch, size, 1)) {
            warmUp(be, "inference", warmup, () -> inferOnce(net, x));
            double s = timed(be, "inference", steps, batch, () -> inferOnce(net, x));
            profiled(be, "inference (module)", () -> inferOnce(net, x));
            return (double) steps * batch / s;
        }
    }

    /**
     * The compiled trunk: the plan is built once (folding reads the weights back to the host), then
     * timed as {@link #inference}; before timing, its descriptors are compared with the module's.
     */
    private static double compiledInference(CudaBackend be, RetrievalNet net, Device gpu, int batch, int size,
                                            int warmup, int steps, boolean graphs) {
        net.eval();
        long built = System.nanoTime();
        try (Tensor x = images(gpu, batch, size, 1); RetrievalNet.Inference plan = net.inference().graphs(graphs)) {
            if (!plan.compiled()) {
                throw new IllegalStateException("RetrievalNet.inference() did not compile the backbone on " + gpu
                        + " (is -Ddir4j.compiledInference=false set?)");
            }
            be.synchronize();
            System.out.printf(Locale.ROOT, "compiled inference: plan built in %.2f s%n", (System.nanoTime() - built) / 1e9);
            String label = graphs ? "compiled inference, CUDA graph" : "compiled inference";
            warmUp(be, label, warmup, () -> describeOnce(plan, x));
            if (!plan.compiled()) {
                throw new IllegalStateException("the compiled backbone fell back to the module (stderr says why)");
            }
            if (graphs && !plan.replaying()) {
                throw new IllegalStateException("the compiled backbone did not record a CUDA graph (stderr says why)");
            }
            try (MemoryScope scope = MemoryScope.open(); var noGrad = Autograd.noGrad()) {
                float[] module = net.forward(x).toFloatArray();
                float[] fused = plan.describe(x).toFloatArray();
                double worst = 0;
                for (int i = 0; i < module.length; i++) {
                    worst = Math.max(worst, Math.abs(module[i] - fused[i]));
                }
                System.out.printf(Locale.ROOT, "%s: max |descriptor - module's| = %.3g (unit descriptors, %s "
                        + "both)%n", label, worst, be.convTf32() ? "TF32" : "strict float32");
            }
            double s = timed(be, label, steps, batch, () -> describeOnce(plan, x));
            if (!graphs) {
                profiled(be, label, () -> describeOnce(plan, x)); // (a replay is one launch to the profiler)
            }
            return (double) steps * batch / s;
        }
    }

    private static void describeOnce(RetrievalNet.Inference plan, Tensor x) {
        try (MemoryScope scope = MemoryScope.open(); var noGrad = Autograd.noGrad()) {
            plan.describe(x);
        }
    }

    private static void inferOnce(RetrievalNet net, Tensor x) {
        try (MemoryScope scope = MemoryScope.open(); var noGrad = Autograd.noGrad()) {
            net.forward(x);
        }
    }

    private static double training(CudaBackend be, RetrievalNet net, Device gpu, int batch, int size, int warmup,
                                   int steps) {
        net.train(true);
        try (Tensor x = images(gpu, batch, size, 2);
             Sgd opt = new Sgd(net.parameters(), 1e-6, 0.9, 1e-4, false)) {
            String label = "training" + (net.channelsLast() ? " (channels-last)" : " (NCHW)");
            warmUp(be, label, warmup, () -> trainOnce(net, opt, x));
            double s = timed(be, label, steps, batch, () -> trainOnce(net, opt, x));
            profiled(be, label, () -> trainOnce(net, opt, x));
            return (double) steps * batch / s;
        }
    }

    /**
     * The channels-last training step recorded once as a CUDA graph ({@code Backend.record}) and
     * replayed: the same kernels without the host's per-op cost, which tells how much of the
     * step's time the host takes (a diagnosis: the learning rate and the other arguments are
     * fixed at the recording, and batch norm's host counter does not advance in replays). Two
     * eager steps first (algorithms chosen, momentum buffers made, first-step flags spent); then,
     * from the same parameters and momentum, one eager step against one replay, compared tensor by
     * tensor ({@link #compareReplay}). Then timed like {@link #training}.
     */
    private static double graphTraining(CudaBackend be, RetrievalNet net, Device gpu, int batch, int size,
                                        int warmup, int steps) {
        net.train(true);
        String label = "training (channels-last, CUDA graph)";
        try (Tensor x = images(gpu, batch, size, 2);
             Sgd opt = new Sgd(net.parameters(), 1e-6, 0.9, 1e-4, false);
             MemoryScope scope = MemoryScope.open()) {
            trainOnce(net, opt, x);
            trainOnce(net, opt, x);
            java.util.List<Tensor> state = new java.util.ArrayList<>(net.parameters());
            for (Tensor p : net.parameters()) {
                state.add(opt.state(p).get("momentum_buffer"));
            }
            java.util.List<Tensor> saved = new java.util.ArrayList<>();
            for (Tensor t : state) {
                saved.add(dir4j.engine.Ops.cloneLayoutLike(t, t));
            }
            trainOnce(net, opt, x);
            // the eager step's parameters and momentum, and where the parameters started
            int params = net.parameters().size();
            java.util.List<float[]> eager = new java.util.ArrayList<>();
            java.util.List<float[]> start = new java.util.ArrayList<>();
            for (int i = 0; i < state.size(); i++) {
                eager.add(state.get(i).toFloatArray());
                if (i < params) {
                    start.add(saved.get(i).toFloatArray());
                }
            }
            for (int i = 0; i < state.size(); i++) {
                be.copy(saved.get(i), state.get(i));
            }
            long t0 = System.nanoTime();
            try (Backend.Recording graph = be.record(() -> trainOnce(net, opt, x))) {
                System.out.printf(Locale.ROOT, "%s: recorded in %.2f s%n", label, (System.nanoTime() - t0) / 1e9);
                graph.replay();
                compareReplay(label, state, eager, start, params);
                warmUp(be, label, warmup, graph::replay);
                return (double) steps * batch / timed(be, label, steps, batch, graph::replay);
            }
        }
    }

    /**
     * One replay against one eager step from the same state, tensor by tensor: a parameter's
     * largest difference over the largest change the eager step made to it (at this learning rate
     * most parameters move by a few float steps, so the parameters alone cannot tell a wrong graph
     * from a right one), and a momentum buffer's over its largest value (the momentum holds the
     * step's gradient at full size: a gradient the replay got wrong shows there). cuDNN's backward
     * is not bit-reproducible run to run, so small ratios are expected; a wrong graph gives ratios
     * of order one.
     */
    private static void compareReplay(String label, java.util.List<Tensor> state, java.util.List<float[]> eager,
                                      java.util.List<float[]> start, int params) {
        double worstParam = 0;
        double worstMomentum = 0;
        int whereParam = -1;
        int whereMomentum = -1;
        for (int i = 0; i < state.size(); i++) {
            float[] r = state.get(i).toFloatArray();
            float[] e = eager.get(i);
            float[] b = i < params ? start.get(i) : null;
            double diff = 0;
            double scale = 0;
            for (int j = 0; j < r.length; j++) {
                diff = Math.max(diff, Math.abs((double) r[j] - e[j]));
                scale = Math.max(scale, b != null ? Math.abs((double) e[j] - b[j]) : Math.abs(e[j]));
            }
            double ratio = diff == 0 ? 0 : scale == 0 ? Double.POSITIVE_INFINITY : diff / scale;
            if (i < params) {
                if (whereParam < 0 || ratio > worstParam) {
                    worstParam = ratio;
                    whereParam = i;
                }
            } else if (whereMomentum < 0 || ratio > worstMomentum) {
                worstMomentum = ratio;
                whereMomentum = i - params;
            }
        }
        System.out.printf(Locale.ROOT, "%s: one replay against one eager step from the same state: worst parameter "
                + "|difference| / |eager update| %.3g (parameter %d), worst momentum |difference| / max|momentum| "
                + "%.3g (parameter %d)%n", label, worstParam, whereParam, worstMomentum, whereMomentum);
    }

    /** The eval-mode descriptors of one batch, NCHW and channels-last: their largest difference. */
    private static void compareChannelsLast(RetrievalNet net, Device gpu, int batch, int size) {
        net.eval();
        try (Tensor x = images(gpu, batch, size, 2); MemoryScope scope = MemoryScope.open();
             var noGrad = Autograd.noGrad()) {
            net.channelsLast(false);
            float[] nchw = net.forward(x).toFloatArray();
            net.channelsLast(true);
            float[] nhwc = net.forward(x).toFloatArray();
            double worst = 0;
            for (int i = 0; i < nchw.length; i++) {
                worst = Math.max(worst, Math.abs(nchw[i] - nhwc[i]));
            }
            System.out.printf(Locale.ROOT, "channels-last: max |descriptor - NCHW module's| = %.3g (eval, unit "
                    + "descriptors, %s both)%n", worst, ((CudaBackend) Backends.of(gpu)).convTf32() ? "TF32" : "strict float32");
        } finally {
            net.channelsLast(false);
        }
    }

    private static void trainOnce(RetrievalNet net, Sgd opt, Tensor x) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = net.forward(x);
            d.sum().backward();
        }
        opt.step();
        opt.zeroGrad();
    }
}
