package dir4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import dir4j.engine.cpu.Conv2dGeometry;
import dir4j.engine.cpu.Conv2dKernels;

/**
 * One convolution pass in a loop, for profiling it ({@code bench/perf_conv_pass.sh} records a
 * {@code perf} profile of its steady state): prints the median milliseconds and GFLOP/s of each
 * second. {@code args: pass (forward | bwd-data | bwd-filter) batch cin size cout kernel stride pad seconds},
 * e.g. {@code bwd-data 4 512 7 512 3 1 1 15} for ResNet-50's layer4 3×3 at batch 4, 224².
 */
public final class ConvPassLoop {
    private ConvPassLoop() {}

    public static void main(String[] args) {
        if (args.length != 9) {
            throw new IllegalArgumentException(
                    "args: pass (forward|bwd-data|bwd-filter) batch cin size cout kernel stride pad seconds");
        }
        int[] v = new int[7];
        for (int i = 0; i < 7; i++) {
            v[i] = Integer.parseInt(args[i + 1]);
        }
        double seconds = Double.parseDouble(args[8]);
        Conv2dGeometry g = Conv2dGeometry.of(v[0], v[1], v[2], v[2], v[3], v[4], v[5], v[6], 1);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = Conv2dBench.random(arena, g.inputSize(), 1);
            MemorySegment w = Conv2dBench.random(arena, g.weightSize(), 2);
            MemorySegment y = Conv2dBench.random(arena, g.outputSize(), 3);
            MemorySegment dx = Conv2dBench.random(arena, g.inputSize(), 4);
            MemorySegment dw = Conv2dBench.random(arena, g.weightSize(), 5);
            Runnable run = switch (args[0]) {
                case "forward" -> () -> Conv2dKernels.forward(g, x, 0, w, 0, y, 0);
                case "bwd-data" -> () -> Conv2dKernels.backwardData(g, y, 0, w, 0, dx, 0);
                case "bwd-filter" -> () -> Conv2dKernels.backwardFilter(g, x, 0, y, 0, dw, 0);
                default -> throw new IllegalArgumentException("pass must be forward, bwd-data or bwd-filter: " + args[0]);
            };
            long end = System.nanoTime() + (long) (seconds * 1e9);
            for (int second = 0; System.nanoTime() < end; second++) {
                double[] ms = new double[100_000];
                int calls = 0;
                long start = System.nanoTime();
                while (System.nanoTime() - start < 1_000_000_000L && calls < ms.length) {
                    long t0 = System.nanoTime();
                    run.run();
                    ms[calls++] = (System.nanoTime() - t0) * 1e-6;
                }
                java.util.Arrays.sort(ms, 0, calls);
                double median = ms[calls / 2];
                System.out.printf(java.util.Locale.ROOT, "second %d: %d calls, median %.2f ms, %.1f GFLOP/s%n", second,
                        calls, median, 2e-6 * g.macs() / median);
            }
        }
    }
}
