package dir4j.bench;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.resnet.ResNet;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Where a ResNet forward's time goes: replays {@link ResNet#forward} (eval, no grad, batch 1) op by
 * op from the network's own state dict, timing each op, and checks that the replay gives the
 * network's output. Prints the time per op kind (conv, batch norm, ReLU, residual add, max pool)
 * against the whole forward, and each convolution shape's count, time and GFLOP/s.
 *
 * <p>Two replays: {@code unfused} is the op sequence a module-by-module forward runs without the
 * fused inference ops (batch norm, then ReLU, then add, each into a new tensor; max pool with
 * argmax indices); {@code fused} is what {@link ResNet#forward} runs in no-grad mode now (batch
 * norm + [residual add] + ReLU in one pass over the convolution's output, in place; max pool
 * without indices).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 -cp bench/target/benchmarks.jar \
 *      dir4j.bench.ResNetForwardProfile [resnet101] [224x224] [reps 20]
 * </pre>
 */
public final class ResNetForwardProfile {
    private final Map<String, Tensor> params;
    private final Map<String, long[]> byKind = new LinkedHashMap<>();   // kind → {calls, nanos}
    private final Map<String, double[]> byConv = new TreeMap<>();       // shape → {calls, nanos, flops}
    private boolean fused;

    private ResNetForwardProfile(ResNet net) {
        this.params = net.stateDict();
    }

    public static void main(String[] args) {
        String depth = args.length > 0 ? args[0] : "resnet101";
        String size = args.length > 1 ? args[1] : "224x224";
        int reps = args.length > 2 ? Integer.parseInt(args[2]) : 20;
        int[] hw = ResNetForwardBench.heightWidth(size);
        try (ResNet net = ResNet.of(ResNet.Depth.parse(depth), new Random(0));
             Tensor image = Tensor.uniform(new Random(1), -2, 2, 1, 3, hw[0], hw[1])) {
            net.eval();
            ResNetForwardProfile p = new ResNetForwardProfile(net);
            System.out.printf("%s %s, batch 1, eval, no grad; %d timed runs each, medians%n", depth, size, reps);
            double whole = median(reps, () -> {
                try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
                    net.forward(image);
                }
            });
            System.out.printf("ResNet.forward: %.2f ms%n", whole);
            for (boolean f : new boolean[] {false, true}) {
                p.fused = f;
                p.check(net, image);
                p.byKind.clear();
                p.byConv.clear();
                double replay = median(reps, () -> {
                    try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
                        p.features(image);
                    }
                });
                p.report(f ? "fused" : "unfused", replay, reps);
            }
        }
    }

    /** The replay must compute what the network computes. */
    private void check(ResNet net, Tensor image) {
        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
            float[] want = net.forward(image).toFloatArray();
            float[] got = features(image).toFloatArray();
            double maxRel = 0;
            double scale = 0;
            for (float v : want) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < want.length; i++) {
                maxRel = Math.max(maxRel, Math.abs(want[i] - got[i]) / scale);
            }
            if (maxRel > 1e-5) {
                throw new IllegalStateException("replay differs from ResNet.forward: max error " + maxRel
                        + " of the output's range");
            }
        }
    }

    private static double median(int reps, Runnable r) {
        for (int i = 0; i < 3; i++) {
            r.run();
        }
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            r.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return t[reps / 2];
    }

    private void report(String name, double replayMs, int reps) {
        int runs = reps + 3; // the warm-up runs are counted too; per-run averages below
        double sum = 0;
        for (long[] v : byKind.values()) {
            sum += v[1] / 1e6 / runs;
        }
        System.out.printf("%n[%s] replay %.2f ms (median); per op kind, mean per forward:%n", name, replayMs);
        System.out.printf("  %-22s %6s %9s %7s%n", "op", "calls", "ms", "share");
        for (var e : byKind.entrySet()) {
            double ms = e.getValue()[1] / 1e6 / runs;
            System.out.printf("  %-22s %6d %9.2f %6.1f%%%n", e.getKey(), e.getValue()[0] / runs, ms, 100 * ms / sum);
        }
        System.out.printf("  %-22s %6s %9.2f%n", "sum of ops", "", sum);
        System.out.printf("  per convolution shape (x → w, stride; all calls of that shape):%n");
        System.out.printf("  %-44s %5s %8s %8s %8s%n", "shape", "calls", "ms", "GFLOP", "GFLOP/s");
        double convMs = 0;
        double convFlops = 0;
        List<Map.Entry<String, double[]>> rows = new ArrayList<>(byConv.entrySet());
        rows.sort((a, b) -> Double.compare(b.getValue()[1], a.getValue()[1]));
        for (var e : rows) {
            double[] v = e.getValue();
            double ms = v[1] / 1e6 / runs;
            double gflop = v[2] / runs / 1e9;
            convMs += ms;
            convFlops += gflop;
            System.out.printf("  %-44s %5d %8.2f %8.3f %8.1f%n", e.getKey(), (long) v[0] / runs, ms, gflop,
                    gflop / (ms / 1e3));
        }
        System.out.printf("  %-44s %5s %8.2f %8.3f %8.1f%n", "all convolutions", "", convMs, convFlops,
                convFlops / (convMs / 1e3));
    }

    private Tensor timed(String kind, java.util.function.Supplier<Tensor> op) {
        long t0 = System.nanoTime();
        Tensor y = op.get();
        long dt = System.nanoTime() - t0;
        long[] v = byKind.computeIfAbsent(kind, k -> new long[2]);
        v[0]++;
        v[1] += dt;
        return y;
    }

    private Tensor conv(String name, Tensor x, int stride, int pad) {
        Tensor w = params.get(name + ".weight");
        ConvParams p = new ConvParams(stride, stride, pad, pad, 1, 1);
        long t0 = System.nanoTime();
        Tensor y = NnOps.conv2d(x, w, null, p);
        long dt = System.nanoTime() - t0;
        long[] v = byKind.computeIfAbsent("conv", k -> new long[2]);
        v[0]++;
        v[1] += dt;
        String shape = String.format("%4d×%3d×%3d → %4d×%d×%d /%d", x.shape(1), x.shape(2), x.shape(3), w.shape(0),
                w.shape(2), w.shape(3), stride);
        double[] c = byConv.computeIfAbsent(shape, k -> new double[3]);
        c[0]++;
        c[1] += dt;
        c[2] += 2.0 * y.numel() * w.shape(1) * w.shape(2) * w.shape(3);
        return y;
    }

    /** bn(x) [+ residual] [then ReLU], as the blocks run it. */
    private Tensor bn(String name, Tensor x, Tensor residual, boolean relu) {
        Tensor g = params.get(name + ".weight");
        Tensor b = params.get(name + ".bias");
        Tensor m = params.get(name + ".running_mean");
        Tensor v = params.get(name + ".running_var");
        if (fused) {
            String kind = "bn" + (residual != null ? "+add" : "") + (relu ? "+relu" : "") + " (fused)";
            return timed(kind, () -> NnOps.batchNorm2dInference(x, g, b, m, v, 1e-5, residual, relu, true));
        }
        Tensor y = timed("batch norm", () -> NnOps.batchNorm2d(x, g, b, m, v, false, 0.1, 1e-5));
        if (residual != null) {
            Tensor y0 = y;
            y = timed("residual add", () -> y0.add(residual));
        }
        if (relu) {
            Tensor y1 = y;
            y = timed("relu", y1::relu);
        }
        return y;
    }

    /** In the fused replay, frees what the forward no longer reads, as the blocks do. */
    private void free(Tensor t) {
        if (fused) {
            timed("free", () -> {
                t.close();
                return null;
            });
        }
    }

    private Tensor features(Tensor x) {
        Tensor stem = bn("bn1", conv("conv1", x, 2, 3), null, true);
        Tensor y = timed("max pool", () -> NnOps.maxPool2d(stem, 3, 2, 1));
        free(stem);
        int[] blocks = params.containsKey("layer3.22.conv1.weight") ? new int[] {3, 4, 23, 3}
                : params.containsKey("layer3.5.conv1.weight") ? new int[] {3, 4, 6, 3} : null;
        if (blocks == null || !params.containsKey("layer1.0.conv3.weight")) {
            throw new IllegalArgumentException("the profile replays ResNet-50 and ResNet-101 only");
        }
        for (int s = 0; s < 4; s++) {
            for (int b = 0; b < blocks[s]; b++) {
                String p = "layer" + (s + 1) + "." + b + ".";
                int stride = s > 0 && b == 0 ? 2 : 1;
                Tensor out = bn(p + "bn1", conv(p + "conv1", y, 1, 0), null, true);
                Tensor next = bn(p + "bn2", conv(p + "conv2", out, stride, 1), null, true);
                free(out);
                out = conv(p + "conv3", next, 1, 0);
                free(next);
                Tensor identity = b == 0 ? bn(p + "downsample.1", conv(p + "downsample.0", y, stride, 0), null, false)
                        : y;
                out = bn(p + "bn3", out, identity, true);
                if (identity != y) {
                    free(identity);
                }
                free(y);
                y = out;
            }
        }
        return y;
    }
}
