package dir4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

import dir4j.engine.cpu.NhwcConv;
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
 * The layout copies around a direct convolution in NCHW training: {@code fromNchw} (NCHW tensor →
 * padded channels-last activation) and {@code toNchw} (back), on ResNet-50 activations at batch 4,
 * 224×224 input ({@code shape}: channels-height). All CPU threads.
 *
 * <p>Both copy into buffers allocated once in setup, as training does (its convolutions borrow
 * them from a per-thread pool): {@code fromNchw} is {@link NhwcConv#fromNchwInto} into an activation
 * padded by 1 whose zero ring it leaves alone, not {@link NhwcConv#fromNchw}, which would add
 * allocating and zeroing a new array of up to 3.4 MB to each call (before session 26's review it
 * did: its figures in bench/RESULTS.md include that).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
public class LayoutCopyBench {
    @Param({"64-56", "128-28", "256-14", "512-7"})
    String shape;

    static final int BATCH = 4;
    int channels;
    int size;
    Arena arena;
    MemorySegment nchw;
    /** The unpadded activation {@code toNchw} reads. */
    NhwcConv.Activation nhwc;
    /** The activation padded by 1 that {@code fromNchw} writes, reused across calls. */
    NhwcConv.Activation padded;

    @Setup(Level.Trial)
    public void setup() {
        String[] f = shape.split("-");
        channels = Integer.parseInt(f[0]);
        size = Integer.parseInt(f[1]);
        arena = Arena.ofShared();
        nchw = Conv2dBench.random(arena, (long) BATCH * channels * size * size, 1);
        nhwc = NhwcConv.fromNchw(nchw, 0, BATCH, channels, size, size, 0);
        padded = NhwcConv.Activation.allocate(BATCH, size, size, channels, 1);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** NCHW → the padded channels-last activation kept across calls (its interior only). */
    @Benchmark
    public NhwcConv.Activation fromNchw() {
        NhwcConv.fromNchwInto(nchw, 0, padded);
        return padded;
    }

    @Benchmark
    public void toNchw() {
        NhwcConv.toNchw(nhwc, nchw, 0);
    }
}
