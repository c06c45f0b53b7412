package dir4j.bench;

import dir4j.engine.Backend.AdamStep;
import dir4j.engine.Backend.SgdStep;
import dir4j.engine.Tensor;
import java.util.Random;
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
 * The CPU optimiser updates over one flat parameter of {@code numel} floats (default: ResNet-50's
 * 25,557,032, the trunk a training step updates), all CPU threads. Both are memory-bound: SGD with
 * momentum and weight decay reads the parameter, gradient and momentum and writes two of them
 * (5 × 4 bytes per element), Adam reads four and writes three (7 × 4). The reference in the same
 * run is {@code copy}: the backend copying 2.5 × numel floats, the same 20 bytes per element of
 * SGD as one read and one write stream. GB/s = bytes per element × numel / (ms · 1e6).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g"})
public class OptimizerBench {
    @Param({"25557032"})
    int numel;

    Tensor param;
    Tensor grad;
    Tensor momentum;
    Tensor expAvgSq;
    Tensor copySrc;
    Tensor copyDst;
    long step;

    @Setup(Level.Trial)
    public void setup() {
        Random rng = new Random(1);
        param = Tensor.uniform(rng, -0.1, 0.1, numel);
        grad = Tensor.uniform(rng, -1e-3, 1e-3, numel);
        momentum = Tensor.uniform(rng, -1e-3, 1e-3, numel);
        expAvgSq = Tensor.uniform(rng, 0, 1e-6, numel);
        copySrc = Tensor.uniform(rng, -1, 1, numel * 5 / 2);
        copyDst = Tensor.zeros(numel * 5 / 2);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {param, grad, momentum, expAvgSq, copySrc, copyDst}) {
            t.close();
        }
    }

    /** torch.optim.SGD(lr=1e-4, momentum=0.9, weight_decay=1e-4), a step after the first. */
    @Benchmark
    public Tensor sgdMomentumWeightDecay() {
        param.backend().sgdStep(param, grad, momentum, false, new SgdStep(1e-4, 0.9, 0, 1e-4, false));
        return param;
    }

    /** torch.optim.AdamW(lr=1e-4, weight_decay=1e-2). */
    @Benchmark
    public Tensor adamW() {
        param.backend().adamStep(param, grad, momentum, expAvgSq,
                new AdamStep(1e-4, 0.9, 0.999, 1e-8, 1e-2, true, ++step));
        return param;
    }

    /** The memory-bandwidth reference: 20 bytes per parameter element as one read and one write stream. */
    @Benchmark
    public Tensor copy() {
        copySrc.backend().copy(copySrc, copyDst);
        return copyDst;
    }
}
