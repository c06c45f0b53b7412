package dir4j.retrieval.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.data.LabelledImageList;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.loss.APLoss;
import dir4j.engine.Ops;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.synth.SyntheticLandmarks;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training and extraction on CUDA against the CPU at tiny size, strict float32 (TF32 off):
 * one multistage gradient, a few training steps, and an extraction. Tolerances: the two devices
 * sum in different orders (cuDNN's algorithms, the GEMM's blocking), so values agree to float32
 * accumulation error, ≈1e-5 relative per reduction, growing through the layers; the bounds below
 * leave a factor of ~10 above that.
 */
@Tag("gpu")
class TrainingGpuTest {
    static final Device GPU = Device.cuda(0);
    static final RetrievalNet.Options NET = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 8);

    @TempDir
    static Path data;
    static List<Path> images = new ArrayList<>();
    static List<ImageRef> refs;
    static int[] labels;

    @BeforeAll
    static void setUp() throws IOException {
        dir4j.retrieval.Gpu.require().setTf32(false);
        Path dir = SyntheticLandmarks.generate(data, new SyntheticLandmarks.Config(3, 48, 4, 3, 1, 1, 1, 1, 0, 1), null);
        LabelledImageList list = LabelledImageList.read(dir.resolve("train.txt"), dir, true);
        refs = list.images();
        refs.forEach(r -> images.add(r.path()));
        labels = list.classIndex();
    }

    /** |a − e| ≤ rtol·|e| + atol·max(1, max|e|), with the worst element named. */
    static void assertClose(String what, double rtol, double atol, double[] e, double[] a) {
        assertEquals(e.length, a.length, what + ": sizes");
        double scale = 1;
        for (double v : e) {
            scale = Math.max(scale, Math.abs(v));
        }
        int worst = -1;
        double excess = 0;
        for (int i = 0; i < e.length; i++) {
            double d = Math.abs(a[i] - e[i]) - (rtol * Math.abs(e[i]) + atol * scale);
            if (!(d <= excess) || Double.isNaN(a[i])) {
                excess = Double.isNaN(a[i]) ? Double.POSITIVE_INFINITY : d;
                worst = i;
            }
        }
        if (worst >= 0) {
            fail(what + ": element " + worst + " is " + a[worst] + " on CUDA, " + e[worst] + " on the CPU (rtol "
                    + rtol + ", atol " + atol + " × " + scale + ")");
        }
    }

    static Map<String, double[]> weights(RetrievalNet net) {
        Map<String, double[]> m = new LinkedHashMap<>();
        net.stateDict().forEach((k, v) -> m.put(k, v.toDoubleArray()));
        return m;
    }

    @Test
    void multistageGradientOnCudaMatchesTheCpu() {
        Random rng = new Random(2);
        int n = 12;
        float[][] parts = new float[3][4 * 3 * 32 * 32];
        for (float[] p : parts) {
            for (int i = 0; i < p.length; i++) {
                p[i] = (float) rng.nextGaussian();
            }
        }
        int[] cls = {0, 0, 1, 1, 2, 2, 0, 1, 2, 3, 3, 3};
        Map<String, double[]> cpuGrad = new LinkedHashMap<>();
        Map<String, double[]> gpuGrad = new LinkedHashMap<>();
        double[] losses = new double[2];
        for (int run = 0; run < 2; run++) {
            Device dev = run == 0 ? Device.CPU : GPU;
            try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
                net.to(dev);
                MultistageBackprop.freezeBatchNorm(net, true);
                net.train(true);
                MultistageBackprop.Outcome o = MultistageBackprop.accumulateGradients(net, 3, i -> {
                    Tensor t = Tensor.of(parts[i], 4, 3, 32, 32);
                    return dev.equals(Device.CPU) ? t : t.to(dev);
                }, d -> {
                    Tensor y = APLoss.sameClass(cls, d.dtype());
                    return new APLoss(20, -1, 1, false, true).forward(Ops.gram(d), dev.equals(Device.CPU) ? y
                            : y.to(dev), null).loss();
                });
                assertEquals(n, o.images());
                losses[run] = o.loss();
                Map<String, double[]> into = run == 0 ? cpuGrad : gpuGrad;
                net.namedParameters().forEach((k, p) -> {
                    try (MemoryScope s = MemoryScope.open()) {
                        into.put(k, p.grad().to(Device.CPU).toDoubleArray());
                    }
                });
            }
        }
        assertEquals(losses[0], losses[1], 1e-5 * Math.abs(losses[0]) + 1e-6, "AP loss CPU vs CUDA");
        for (String k : cpuGrad.keySet()) {
            assertClose("dL/d" + k, 1e-3, 1e-4, cpuGrad.get(k), gpuGrad.get(k));
        }
    }

    @Test
    void threeTrainingStepsOnCudaMatchTheCpu(@TempDir Path out) throws IOException {
        // channels-last on the device, as `dir4j train --device cuda` runs by default: its k x k weights
        // stored channels-last, stepped in place, and saved in PyTorch's order
        threeStepsMatch(out.resolve("ap"), "ap", true);
    }

    @Test
    void trainingStepsLeaveNoDeviceMemoryBehind(@TempDir Path out) throws IOException {
        TrainConfig cfg = TrainerTest.config(4).with(Map.of("frozenBatchNorm", "true", "checkpointEvery", "100"));
        dir4j.engine.cuda.CudaBackend be = dir4j.retrieval.Gpu.require();
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            net.to(GPU);
            long[] inUse = new long[3];
            for (int run = 0; run < 3; run++) {
                // 1, 2 and 4 steps: what is in use afterwards must not grow with the steps taken
                new Trainer(net, images, labels, cfg, out.resolve("r" + run), GPU).run(false, null, null,
                        run == 2 ? 4 : run + 1);
                be.synchronize();
                inUse[run] = be.memoryStats().inUseBytes();
            }
            assertEquals(inUse[0], inUse[1], "device bytes in use after 1 and 2 steps");
            assertEquals(inUse[0], inUse[2], "device bytes in use after 1 and 4 steps");
        }
    }

    @Test
    void threeTripletStepsOnCudaMatchTheCpu(@TempDir Path out) throws IOException {
        // the triplet loss gathers rows on the device (indexSelect) and scatters back (indexAdd)
        threeStepsMatch(out.resolve("triplet"), "triplet", false);
    }

    private static void threeStepsMatch(Path out, String loss, boolean channelsLast) throws IOException {
        TrainConfig cfg = TrainerTest.config(3).with(Map.of("optimizer", "sgd", "lr", "0.01", "momentum", "0.9",
                "frozenBatchNorm", "true", "schedule", "constant", "loss", loss));
        Map<String, double[]> cpu;
        Trainer.History hc;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            hc = new Trainer(net, images, labels, cfg, out.resolve("cpu"), Device.CPU).run(false, null, null);
            cpu = weights(net);
        }
        Map<String, double[]> gpu = new LinkedHashMap<>();
        Trainer.History hg;
        try (RetrievalNet net = new RetrievalNet(NET, new Random(9))) {
            net.channelsLast(channelsLast); // on the CPU, before the trainer moves it (TrainCommand's order)
            Trainer t = new Trainer(net, images, labels, cfg, out.resolve("gpu"), GPU);
            hg = t.run(false, null, null);
            assertEquals(GPU, net.device(), "the trainer moved the network to the GPU");
            net.stateDict().forEach((k, v) -> {
                try (MemoryScope s = MemoryScope.open()) {
                    gpu.put(k, v.to(Device.CPU).toDoubleArray());
                }
            });
        }
        for (int i = 0; i < 3; i++) {
            assertEquals(hc.losses().get(i), hg.losses().get(i), 1e-4 * Math.abs(hc.losses().get(i)) + 1e-5,
                    "loss at step " + (i + 1));
        }
        for (String k : cpu.keySet()) {
            assertClose(k + " after 3 SGD steps", 1e-4, 1e-5, cpu.get(k), gpu.get(k));
        }
        // the checkpoint holds the weights in PyTorch's order whatever their layout on the device
        try (dir4j.nn.io.Safetensors.Contents saved =
                dir4j.nn.io.Safetensors.read(out.resolve("gpu").resolve("checkpoint.safetensors"))) {
            for (var e : gpu.entrySet()) {
                Tensor t = saved.tensors().get("model." + e.getKey());
                assertTrue(t != null, "model." + e.getKey() + " in the checkpoint");
                assertClose(e.getKey() + " as saved", 0, 0, e.getValue(), t.toDoubleArray());
            }
        }
    }

    @Test
    void extractionOnCudaMatchesTheCpu() throws IOException {
        ExtractionOptions opt = ExtractionOptions.defaults().withPreprocessing(Preprocessing.imagenet(48))
                .withScales(1, 0.7071).withBatchSize(4).withQuiet(true);
        double[] cpu;
        double[] gpu;
        PrintStream quiet = new PrintStream(java.io.OutputStream.nullOutputStream());
        try (RetrievalNet net = new RetrievalNet(NET, new Random(4))) {
            net.eval();
            try (FeatureExtractor.Result r = new FeatureExtractor(net, opt, quiet).extract(refs, "cpu")) {
                cpu = r.descriptors().toDoubleArray();
            }
            net.to(GPU);
            try (FeatureExtractor.Result r = new FeatureExtractor(net, opt, quiet).extract(refs, "gpu")) {
                assertEquals(Device.CPU, r.descriptors().device(), "descriptors come back to the host");
                gpu = r.descriptors().toDoubleArray();
            }
        }
        assertEquals(refs.size() * NET.outDim(), cpu.length);
        // unit descriptors: absolute error
        assertClose("descriptors", 0, 1e-4, cpu, gpu);
    }
}
