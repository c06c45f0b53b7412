package dir4j.bench.gpu;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.retrieval.net.RetrievalNet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Describing images of many sizes one at a time, as {@code dir4j extract} does with photos resized
 * to a longest side (the revisited Oxford and Paris images come in dozens of sizes): each new input
 * shape makes new convolution plans on a GPU, each direction chosen by cuDNN's measured search
 * ({@code -Ddir4j.cuda.cudnn.search=find}, the default) or by its heuristics ({@code =heuristic}).
 * The bench describes {@code --count} images of distinct sizes (the longest side {@code --max-side},
 * the other drawn between half and all of it, either orientation) through
 * {@link RetrievalNet#inference()}, then the same sizes again, and prints the time per image the
 * first time a size is seen and the time once its plans exist:
 * {@code RESULT describe <arch> new sizes ...: <ms> ms per image (median; mean ...)} and
 * {@code RESULT describe <arch> seen sizes ...}. Run it once per search setting (a JVM each: the
 * setting is read once).
 *
 * <p>Arguments (all optional): {@code --arch resnet101 --count 24 --max-side 1024 --device cuda
 * --seed 1}; {@code --device cpu} (with a small {@code --arch} and {@code --max-side}) checks the
 * bench without a GPU.
 */
public final class DescribeSizesGpuBench {
    private DescribeSizesGpuBench() {}

    /** The two medians and means (ms per image), new sizes first; what {@link #main} prints. */
    record Result(double newMedian, double newMean, double seenMedian, double seenMean) {}

    public static void main(String[] args) {
        String arch = "resnet101";
        int count = 24;
        int maxSide = 1024;
        String device = "cuda";
        long seed = 1;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--arch" -> arch = args[++i];
                case "--count" -> count = Integer.parseInt(args[++i]);
                case "--max-side" -> maxSide = Integer.parseInt(args[++i]);
                case "--device" -> device = args[++i];
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; see the Javadoc of dir4j.bench.gpu.DescribeSizesGpuBench");
            }
        }
        Device dev = device.equals("cpu") ? Device.CPU : Device.parse(device);
        Result r = run(arch, count, maxSide, dev, seed);
        String what = String.format(Locale.ROOT, "describe %s %d sizes up to %d on %s (cudnn search %s)", arch, count,
                maxSide, dev, System.getProperty("dir4j.cuda.cudnn.search", "find"));
        System.out.printf(Locale.ROOT, "RESULT %s, new sizes: %.1f ms per image (median; mean %.1f)%n", what,
                r.newMedian(), r.newMean());
        System.out.printf(Locale.ROOT, "RESULT %s, seen sizes: %.1f ms per image (median; mean %.1f)%n", what,
                r.seenMedian(), r.seenMean());
    }

    /** {@code count} distinct sizes, longest side {@code maxSide}, the other in [maxSide/2, maxSide]. */
    static List<int[]> sizes(int count, int maxSide, long seed) {
        Random rng = new Random(seed);
        List<int[]> out = new ArrayList<>();
        java.util.Set<List<Integer>> seen = new java.util.HashSet<>();
        int range = maxSide - maxSide / 2 + 1;
        if (count > 2 * range - 1) { // both orientations of each, the square once
            throw new IllegalArgumentException(count + " distinct sizes do not exist with a longest side of " + maxSide);
        }
        while (out.size() < count) {
            int other = maxSide / 2 + rng.nextInt(range);
            boolean landscape = rng.nextBoolean();
            int h = landscape ? other : maxSide;
            int w = landscape ? maxSide : other;
            if (seen.add(List.of(h, w))) {
                out.add(new int[] {h, w});
            }
        }
        return out;
    }

    static Result run(String arch, int count, int maxSide, Device dev, long seed) {
        List<int[]> sizes = sizes(count, maxSide, seed);
        try (RetrievalNet net = new RetrievalNet(RetrievalNet.Options.apGem(arch), new Random(0))) {
            net.eval();
            if (!dev.equals(Device.CPU)) {
                net.to(dev);
            }
            try (RetrievalNet.Inference inference = net.inference()) {
                // one image first, of a size outside the set: library start-up is not counted
                describe(inference, dev, maxSide / 2 - 1, maxSide / 2 - 1, seed);
                double[] first = new double[count];
                double[] again = new double[count];
                for (int pass = 0; pass < 2; pass++) {
                    for (int i = 0; i < count; i++) {
                        double ms = describe(inference, dev, sizes.get(i)[0], sizes.get(i)[1], seed + i);
                        (pass == 0 ? first : again)[i] = ms;
                    }
                }
                return new Result(median(first), mean(first), median(again), mean(again));
            }
        }
    }

    /** Milliseconds to describe one random image of h x w, its descriptor back in host memory. */
    private static double describe(RetrievalNet.Inference inference, Device dev, int h, int w, long seed) {
        try (MemoryScope scope = MemoryScope.open(); Tensor cpu = Tensor.randn(new Random(seed), 1, 3, h, w)) {
            Tensor x = dev.equals(Device.CPU) ? cpu : cpu.to(dev);
            long t0 = System.nanoTime();
            float[] d = inference.describe(x).toFloatArray(); // waits for the device
            double ms = (System.nanoTime() - t0) / 1e6;
            if (d.length == 0 || !Float.isFinite(d[0])) {
                throw new IllegalStateException("describe gave " + Arrays.toString(Arrays.copyOf(d, 4)));
            }
            return ms;
        }
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(Double.NaN);
    }
}
