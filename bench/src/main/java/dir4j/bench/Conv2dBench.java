package dir4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import dir4j.engine.cpu.Conv2dGeometry;
import dir4j.engine.cpu.Conv2dKernels;
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
 * The NCHW training convolutions ({@code Conv2dKernels}) on two of ResNet-50's shapes, batch 8, all
 * CPU threads: the 1×1 on the implicit GEMM, the 3×3's three passes by Winograd ({@code WinogradConv};
 * {@code -jvmArgsPrepend -Ddir4j.winograd=false} for the direct kernel and the GEMM's backward-filter,
 * {@code -Ddir4j.cpu.directConv=false} for the implicit GEMM throughout):
 * <ul>
 *   <li>{@code 3x3}: 256→256 channels, 3×3 pad 1, 56×56 (the layer1-sized 3×3 at 256 wide):
 *       2·8·256·256·9·56·56 = 29.6 GFLOP per call;
 *   <li>{@code 1x1}: 1024→256 channels, 1×1, 14×14 (layer3's reducing 1×1): 2·8·1024·256·196 =
 *       0.822 GFLOP per call.
 * </ul>
 * Each of forward, backward-data and backward-filter costs the same flops, so GFLOP/s =
 * {@code flops / (ms per op · 1e6)}; the per-shape flops are printed at setup.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
public class Conv2dBench {
    @Param({"3x3", "1x1"})
    String shape;

    Conv2dGeometry g;
    Arena arena;
    MemorySegment x;
    MemorySegment w;
    MemorySegment y;
    MemorySegment dy;
    MemorySegment dx;
    MemorySegment dw;

    @Setup(Level.Trial)
    public void setup() {
        g = switch (shape) {
            case "3x3" -> Conv2dGeometry.of(8, 256, 56, 56, 256, 3, 1, 1, 1);
            case "1x1" -> Conv2dGeometry.of(8, 1024, 14, 14, 256, 1, 1, 0, 1);
            default -> throw new IllegalArgumentException("unknown shape " + shape);
        };
        arena = Arena.ofShared();
        x = random(g.inputSize(), 1);
        w = random(g.weightSize(), 2);
        y = random(g.outputSize(), 3);
        dy = random(g.outputSize(), 4);
        dx = random(g.inputSize(), 5);
        dw = random(g.weightSize(), 6);
        System.out.printf("%n%s: %s, %.3f GFLOP per call%n", shape, g, 2e-9 * g.macs());
    }

    private MemorySegment random(long count, long seed) {
        return random(arena, count, seed);
    }

    /** count floats uniform in [-1, 1) from the seed, 64-byte aligned in the arena (NhwcConvBench too). */
    static MemorySegment random(Arena arena, long count, long seed) {
        MemorySegment s = arena.allocate(count * Float.BYTES, 64);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        }
        return s;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** y = conv(x, w). */
    @Benchmark
    public MemorySegment forward() {
        Conv2dKernels.forward(g, x, 0, w, 0, y, 0);
        return y;
    }

    /** dx = conv_transpose(dy, w). */
    @Benchmark
    public MemorySegment backwardData() {
        Conv2dKernels.backwardData(g, dy, 0, w, 0, dx, 0);
        return dx;
    }

    /** dw = Σ over the batch of x ⋆ dy. */
    @Benchmark
    public MemorySegment backwardFilter() {
        Conv2dKernels.backwardFilter(g, x, 0, dy, 0, dw, 0);
        return dw;
    }
}
