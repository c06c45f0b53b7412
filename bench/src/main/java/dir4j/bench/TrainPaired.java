package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.optim.Sgd;
import dir4j.retrieval.net.RetrievalNet;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

/**
 * The JVM half of bench/train_paired.py: one warm JVM holding a retrieval network
 * ({@code args: arch batch size outDim [frozen-bn]}: the ResNet trunk, GeM p = 3, FC to outDim, L2
 * norm) in training mode (batch statistics, or with {@code frozen-bn} the running ones, as the
 * method's recipe trains), an SGD optimiser (momentum 0.9, weight decay 1e-4) and one
 * batch of random images. A training step is zeroing the gradients, the forward, the loss (the sum
 * of the descriptors), the backward and the optimiser step. Reads lines "step seconds" and answers
 * with the median milliseconds of the steps run in that burst; the script alternates these bursts
 * with PyTorch's running the same step on the same network.
 */
public final class TrainPaired {
    private TrainPaired() {}

    /** One training step (bench/jfr_by_op.py counts the samples under this method). */
    static void step(RetrievalNet net, Sgd opt, Tensor images) {
        try (MemoryScope s = MemoryScope.open()) {
            opt.zeroGrad();
            net.forward(images).sum().backward();
            opt.step();
        }
    }

    public static void main(String[] args) throws Exception {
        String arch = args[0];
        int batch = Integer.parseInt(args[1]);
        int size = Integer.parseInt(args[2]);
        int outDim = Integer.parseInt(args[3]);
        try (RetrievalNet net = new RetrievalNet(new RetrievalNet.Options(arch, outDim, "gem", 3, false, false, 64),
                new Random(0))) {
            net.train(true);
            if (args.length > 4) {
                if (!args[4].equals("frozen-bn")) {
                    throw new IllegalArgumentException("the fifth argument may only be frozen-bn, got " + args[4]);
                }
                dir4j.retrieval.train.MultistageBackprop.freezeBatchNorm(net, true);
            }
            Sgd opt = new Sgd(net.parameters(), 1e-4, 0.9, 1e-4, false);
            Tensor images = Tensor.uniform(new Random(1), -2, 2, batch, 3, size, size);
            var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                String[] f = line.trim().split("\\s+");
                if (!f[0].equals("step")) {
                    throw new IllegalArgumentException("expected 'step SECONDS', got " + line);
                }
                long budget = (long) (Double.parseDouble(f[1]) * 1e9);
                double[] ms = new double[4096];
                int n = 0;
                long start = System.nanoTime();
                do {
                    long t0 = System.nanoTime();
                    step(net, opt, images);
                    ms[n++] = (System.nanoTime() - t0) / 1e6;
                } while (System.nanoTime() - start < budget && n < ms.length);
                Arrays.sort(ms, 0, n);
                System.out.printf(java.util.Locale.ROOT, "%.3f%n", ms[n / 2]);
                System.out.flush();
            }
        }
    }
}
