package dir4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import dir4j.engine.cpu.Sgemm;
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
 * One square SGEMM C = A·B (row-major, alpha 1, beta 0) per operation, on all CPU threads.
 * An operation is 2·size³ flops, so GFLOP/s = ops/s · 2·size³ / 1e9 (at 2048: ops/s × 17.18).
 * Reference: bench/numpy_sgemm.py runs numpy's matmul at the same sizes; run both back to back.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
public class SgemmBench {
    @Param({"256", "512", "1024", "2048"})
    int size;

    Arena arena;
    MemorySegment a;
    MemorySegment b;
    MemorySegment c;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        long bytes = (long) size * size * Float.BYTES;
        a = arena.allocate(bytes, 64);
        b = arena.allocate(bytes, 64);
        c = arena.allocate(bytes, 64);
        SplittableRandom rnd = new SplittableRandom(1);
        for (long i = 0; i < (long) size * size; i++) {
            a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public MemorySegment matmul() {
        Sgemm.sgemm(size, size, size, 1f, a, 0, size, 1, b, 0, size, 1, 0f, c, 0, size);
        return c;
    }
}
