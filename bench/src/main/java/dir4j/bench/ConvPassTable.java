package dir4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import dir4j.engine.cpu.Conv2dGeometry;
import dir4j.engine.cpu.Conv2dKernels;

/**
 * Where a ResNet-50 training step's convolution time goes on the CPU: every distinct convolution
 * of the trunk at the given batch and image size, each pass (forward, backward-data,
 * backward-filter) timed through {@link Conv2dKernels} as the NCHW training path calls it, with
 * its count in the network, its share of the total and its GFLOP/s.
 * {@code args: [batch=4] [size=224] [seconds per pass=1.0] [only convolutions whose name contains this]}. Run it with one active processor for
 * per-core figures, which are steadier on a shared machine:
 *
 * <pre>
 * java -XX:ActiveProcessorCount=1 --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 -cp bench/target/benchmarks.jar dir4j.bench.ConvPassTable 4 224
 * </pre>
 */
public final class ConvPassTable {
    private ConvPassTable() {}

    /** One distinct convolution and how many times the trunk runs it. */
    record Shape(String name, Conv2dGeometry g, int count) {}

    static List<Shape> resnet50(int n, int size) {
        List<Shape> s = new ArrayList<>();
        s.add(new Shape("stem 7x7/2 3-64", Conv2dGeometry.of(n, 3, size, size, 64, 7, 2, 3, 1), 1));
        int hw = size / 4;
        int[] blocks = {3, 4, 6, 3};
        int in = 64;
        for (int stage = 0; stage < 4; stage++) {
            int mid = 64 << stage;
            int out = mid * 4;
            int stride = stage == 0 ? 1 : 2;
            int ohw = hw / stride;
            String l = "layer" + (stage + 1) + " ";
            s.add(new Shape(l + "1x1 " + in + "-" + mid + " (first)", Conv2dGeometry.of(n, in, hw, hw, mid, 1, 1, 0, 1), 1));
            s.add(new Shape(l + "3x3/" + stride + " " + mid + " (first)", Conv2dGeometry.of(n, mid, hw, hw, mid, 3, stride, 1, 1), 1));
            s.add(new Shape(l + "downsample 1x1/" + stride + " " + in + "-" + out,
                    Conv2dGeometry.of(n, in, hw, hw, out, 1, stride, 0, 1), 1));
            s.add(new Shape(l + "1x1 " + mid + "-" + out, Conv2dGeometry.of(n, mid, ohw, ohw, out, 1, 1, 0, 1), blocks[stage]));
            if (blocks[stage] > 1) {
                s.add(new Shape(l + "1x1 " + out + "-" + mid, Conv2dGeometry.of(n, out, ohw, ohw, mid, 1, 1, 0, 1), blocks[stage] - 1));
                s.add(new Shape(l + "3x3 " + mid, Conv2dGeometry.of(n, mid, ohw, ohw, mid, 3, 1, 1, 1), blocks[stage] - 1));
            }
            in = out;
            hw = ohw;
        }
        return s;
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 4;
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 224;
        double seconds = args.length > 2 ? Double.parseDouble(args[2]) : 1.0;
        String only = args.length > 3 ? args[3] : "";
        List<Shape> shapes = resnet50(n, size).stream().filter(s -> s.name().contains(only)).toList();
        String[] passes = {"forward", "bwd-data", "bwd-filter"};
        double[][] ms = new double[shapes.size()][3];
        double total = 0;
        try (Arena arena = Arena.ofShared()) {
            for (int i = 0; i < shapes.size(); i++) {
                Conv2dGeometry g = shapes.get(i).g();
                MemorySegment x = Conv2dBench.random(arena, g.inputSize(), 1);
                MemorySegment w = Conv2dBench.random(arena, g.weightSize(), 2);
                MemorySegment y = Conv2dBench.random(arena, g.outputSize(), 3);
                MemorySegment dx = Conv2dBench.random(arena, g.inputSize(), 4);
                MemorySegment dw = Conv2dBench.random(arena, g.weightSize(), 5);
                for (int p = 0; p < 3; p++) {
                    if (p == 1 && shapes.get(i).name().startsWith("stem")) {
                        continue; // the stem's input needs no gradient
                    }
                    int pass = p;
                    Runnable run = switch (pass) {
                        case 0 -> () -> Conv2dKernels.forward(g, x, 0, w, 0, y, 0);
                        case 1 -> () -> Conv2dKernels.backwardData(g, y, 0, w, 0, dx, 0);
                        default -> () -> Conv2dKernels.backwardFilter(g, x, 0, y, 0, dw, 0);
                    };
                    ms[i][p] = medianMs(run, seconds);
                    total += ms[i][p] * shapes.get(i).count();
                }
            }
        }
        System.out.printf("ResNet-50 convolutions%s, batch %d at %dx%d, %d thread(s): %.1f ms per step in all%n",
                only.isEmpty() ? "" : " named *" + only + "*", n, size, size, dir4j.engine.cpu.CpuThreads.threads(),
                total);
        System.out.printf("%-34s %5s %-10s %9s %9s %7s %7s%n", "convolution", "count", "pass", "ms", "ms x count",
                "share", "GFLOP/s");
        for (int i = 0; i < shapes.size(); i++) {
            Shape s = shapes.get(i);
            for (int p = 0; p < 3; p++) {
                if (ms[i][p] == 0) {
                    continue;
                }
                System.out.printf("%-34s %5d %-10s %9.2f %9.2f %6.1f%% %7.1f%n", s.name(), s.count(), passes[p],
                        ms[i][p], ms[i][p] * s.count(), 100 * ms[i][p] * s.count() / total,
                        2e-6 * s.g().macs() / ms[i][p]);
            }
        }
    }

    /**
     * The median of repeated runs over about {@code seconds}, after a warm-up of at least a third as
     * long that lasts (up to 5 s) until the median of the last 5 calls is within 10 % of that of the
     * 5 before: a code path's first pass otherwise included its JIT compiles (the first stride-1
     * 3×3's backward-filter read 8x its steady time).
     */
    static double medianMs(Runnable run, double seconds) {
        long start = System.nanoTime();
        long warm = start + (long) (seconds / 3 * 1e9);
        long cap = start + 5_000_000_000L;
        double[] recent = new double[10];
        int calls = 0;
        while (System.nanoTime() < cap) {
            long t0 = System.nanoTime();
            run.run();
            recent[calls++ % 10] = (System.nanoTime() - t0) * 1e-6;
            if (calls >= 10 && System.nanoTime() >= warm) {
                double[] older = new double[5];
                double[] newer = new double[5];
                for (int i = 0; i < 5; i++) {
                    older[i] = recent[(calls + i) % 10];
                    newer[i] = recent[(calls + 5 + i) % 10];
                }
                Arrays.sort(older);
                Arrays.sort(newer);
                if (Math.abs(newer[2] - older[2]) <= 0.1 * older[2]) {
                    break;
                }
            }
        }
        double[] t = new double[1000];
        int k = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        do {
            long t0 = System.nanoTime();
            run.run();
            t[k++] = (System.nanoTime() - t0) * 1e-6;
        } while (k < t.length && (System.nanoTime() < end || k < 3));
        double[] d = Arrays.copyOf(t, k);
        Arrays.sort(d);
        return d[k / 2];
    }
}
