package dir4j.bench;

import dir4j.engine.cpu.Conv2dGeometry;
import dir4j.engine.cpu.Conv2dKernels;
import dir4j.engine.cpu.NhwcConv;
import dir4j.engine.cpu.NhwcConv.Activation;
import dir4j.engine.cpu.NhwcConv.Weights;
import dir4j.engine.cpu.WinogradConv;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One convolution of ResNet-101 at 224², batch 1, three ways: {@code direct} is the channels-last
 * kernel of the compiled inference path ({@link NhwcConv}, bias + ReLU fused, weights packed in
 * setup); {@code im2col} is the module's implicit-GEMM forward ({@link Conv2dKernels}, NCHW, no
 * bias or ReLU); {@code winograd} is {@link WinogradConv} (F(2×2, 3×3)) on the stride-1 3×3 shapes.
 * Shapes as {@code cin-cout-kernel-stride-size}: layer3's three (they are 2/3 of ResNet-101's flops),
 * layer1's, layer2's and layer4's 3×3, a strided 3×3, and the 7×7/2 stem on RGB ({@code fewChannels}:
 * {@link NhwcConv#forwardFewChannels}, the kernel the compiled inference runs it with). GFLOP/s =
 * 2·cin·cout·k²·OH·OW / time (printed at setup).
 *
 * <p>{@code winograd} runs on the stride-1 3×3 shapes only and {@code fewChannels} on the stem
 * only; on the others they stop with a message naming why (JMH cannot give one method its own
 * shapes). Run them on their own shapes: {@code 'NhwcConvBench.winograd' -p
 * shape=256-256-3-1-14,64-64-3-1-56,512-512-3-1-7,128-128-3-1-28}, {@code
 * 'NhwcConvBench.fewChannels' -p shape=3-64-7-2-224}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
public class NhwcConvBench {
    @Param({"256-256-3-1-14", "1024-256-1-1-14", "256-1024-1-1-14", "64-64-3-1-56", "512-512-3-1-7",
            "256-256-3-2-28", "128-128-3-1-28", "3-64-7-2-224"})
    String shape;

    Conv2dGeometry g;
    Arena arena;
    MemorySegment x;
    MemorySegment w;
    MemorySegment y;
    Activation xa;
    Weights packed;
    WinogradConv.Weights winograd;
    Activation out;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("-");
        int cin = Integer.parseInt(p[0]);
        int cout = Integer.parseInt(p[1]);
        int k = Integer.parseInt(p[2]);
        int stride = Integer.parseInt(p[3]);
        int size = Integer.parseInt(p[4]);
        int pad = k / 2;
        g = Conv2dGeometry.of(1, cin, size, size, cout, k, stride, pad, 1);
        arena = Arena.ofShared();
        x = Conv2dBench.random(arena, g.inputSize(), 1);
        w = Conv2dBench.random(arena, g.weightSize(), 2);
        y = arena.allocate(g.outputSize() * Float.BYTES, 64);
        xa = NhwcConv.fromNchw(x, 0, 1, cin, size, size, pad);
        packed = Weights.pack(w.toArray(ValueLayout.JAVA_FLOAT), new float[cout], cout, cin, k, stride, pad);
        winograd = k == 3 && stride == 1
                ? WinogradConv.Weights.pack(w.toArray(ValueLayout.JAVA_FLOAT), new float[cout], cout, cin, pad) : null;
        int o = packed.outSize(size);
        out = Activation.allocate(1, o, o, cout, 0);
        System.out.printf("%n%s: %.3f GFLOP per call%n", shape, 2e-9 * g.macs());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public Activation direct() {
        NhwcConv.forward(xa, packed, out, null, true);
        return out;
    }

    /** Winograd F(2x2, 3x3) ({@link WinogradConv}) on the same input; 3x3 stride-1 shapes only. */
    @Benchmark
    public Activation winograd() {
        if (winograd == null) {
            throw new IllegalStateException(shape + " is not a stride-1 3x3: winograd does not apply");
        }
        WinogradConv.forward(xa, winograd, out, null, true);
        return out;
    }

    /** The few-channel kernel ({@link NhwcConv#forwardFewChannels}); shapes with fewer than 16 input channels only. */
    @Benchmark
    public Activation fewChannels() {
        if (!NhwcConv.fewChannels(g.inChannels(), g.kernelH())) {
            throw new IllegalStateException(shape + " has too many input channels for the few-channel kernel");
        }
        NhwcConv.forwardFewChannels(xa, packed, out, null, true);
        return out;
    }

    /**
     * Packed copies of one convolution's weights, {@link #BYTES} in all, so that each call of
     * {@link #directColdWeights} finds its weights in memory rather than in a cache, as a batch-1
     * forward does, which streams every layer's weights once (ResNet-50: some 100 MB) between two
     * uses of the same layer. Set up only for that benchmark.
     */
    @State(Scope.Benchmark)
    public static class ColdWeights {
        /** Bytes of weight copies cycled through: beyond this machine's share of any cache. */
        static final long BYTES = 512L << 20;

        Weights[] copies;
        int next;

        @Setup(Level.Trial)
        public void setup(NhwcConvBench b) {
            float[] w = b.w.toArray(ValueLayout.JAVA_FLOAT);
            int n = (int) Math.max(2, BYTES / ((long) w.length * Float.BYTES));
            copies = new Weights[n];
            for (int i = 0; i < n; i++) {
                copies[i] = Weights.pack(w, new float[b.g.outChannels()], b.g.outChannels(), b.g.inChannels(),
                        b.g.kernelH(), b.g.strideH(), b.g.padH());
            }
            System.out.printf("%n%d copies of %.1f MB of weights%n", n, w.length * 4e-6);
        }
    }

    /**
     * {@link #direct} with its weights taken from memory ({@link ColdWeights}): the difference from
     * {@code direct} is what streaming the weights costs where the kernel does not overlap it with
     * its arithmetic (the activations stay in cache in both).
     */
    @Benchmark
    public Activation directColdWeights(ColdWeights cold) {
        Weights w = cold.copies[cold.next];
        cold.next = (cold.next + 1) % cold.copies.length;
        NhwcConv.forward(xa, w, out, null, true);
        return out;
    }

    @Benchmark
    public MemorySegment im2col() {
        Conv2dKernels.forward(g, x, 0, w, 0, y, 0);
        return y;
    }
}
