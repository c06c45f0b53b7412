package dir4j.bench;

import dir4j.engine.Backend;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.NhwcConv;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The training path of max pooling on the CPU, float32 NCHW: ResNet-50's stem pool (3×3, stride
 * 2, padding 1) over x [4, 64, 112, 112], as in a batch-4 224² training step. {@code forward}
 * is the kernel with the argmax indices (what a recorded graph runs); {@code backward} allocates
 * the zeroed dx as NnOps' backward does and routes dy [4, 64, 56, 56] through the indices;
 * {@code backwardScatterOnly} is that routing alone, into a dx kept across calls; {@code
 * forwardValuesOnly} is inference's kernel without the indices, for comparison; {@code channelsLast}
 * is the compiled inference's pool ({@link NhwcConv#maxPool}) over the same values channels-last.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx4g"})
public class MaxPoolBench {
    private static final PoolParams STEM = new PoolParams(3, 3, 2, 2, 1, 1);

    Backend be;
    Tensor x;
    Tensor y;
    Tensor indices;
    Tensor dy;
    Tensor dxAcc;
    NhwcConv.Activation xLast;
    NhwcConv.Activation yLast;

    @Setup(Level.Trial)
    public void setup() {
        Random rng = new Random(1);
        x = Tensor.uniform(rng, -1, 1, 4, 64, 112, 112);
        y = Tensor.zeros(4, 64, 56, 56);
        indices = Tensor.zeros(DType.INT32, Device.CPU, 4, 64, 56, 56);
        dy = Tensor.uniform(rng, -1, 1, 4, 64, 56, 56);
        dxAcc = Tensor.zeros(4, 64, 112, 112);
        be = x.backend();
        be.maxPool2d(x, STEM, y, indices);
        xLast = NhwcConv.fromNchw(x.segment(), x.offset(), 4, 64, 112, 112, 0);
        yLast = NhwcConv.Activation.allocate(4, 56, 56, 64, 0);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        x.close();
        y.close();
        indices.close();
        dy.close();
        dxAcc.close();
    }

    @Benchmark
    public Tensor forward() {
        be.maxPool2d(x, STEM, y, indices);
        return y;
    }

    /** The same pool without the argmax (inference's kernel), for the cost of the indices. */
    @Benchmark
    public Tensor forwardValuesOnly() {
        be.maxPool2d(x, STEM, y, null);
        return y;
    }

    @Benchmark
    public long backward() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor dx = Tensor.zeros(4, 64, 112, 112);
            be.maxPool2dBackward(dy, indices, STEM, dx);
            return dx.numel();
        }
    }

    /** The backward's scatter alone: dy added into a dx kept across calls (never zeroed). */
    @Benchmark
    public Tensor backwardScatterOnly() {
        be.maxPool2dBackward(dy, indices, STEM, dxAcc);
        return dxAcc;
    }

    @Benchmark
    public NhwcConv.Activation channelsLast() {
        NhwcConv.maxPool(xLast, 3, 2, 1, yLast);
        return yLast;
    }
}
