package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import dir4j.retrieval.loss.APLoss;
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
 * The AP loss on the CPU, forward and backward including S = D·Dᵀ and dL/dD: n descriptors of
 * 2048 dimensions in 4-image classes, nq = 20 (the DESIGN anchor's workload). Reference:
 * bench/torch_cpu_method.py (the reference's conv1d quantiser formulation in PyTorch).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g"})
public class ApLossBench {
    @Param({"1024", "4096"})
    int n;

    Tensor d;
    int[] classes;

    @Setup(Level.Trial)
    public void setup() {
        Random rng = new Random(1);
        Tensor unit;
        try (MemoryScope s = MemoryScope.open()) {
            unit = s.keep(NnOps.l2Normalize(Tensor.randn(rng, n, 2048), 1, 1e-12));
        }
        d = unit.detach().requiresGrad(true); // a leaf view created outside the scope
        unit.close();
        classes = new int[n];
        for (int i = 0; i < n; i++) {
            classes[i] = i / 4;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        d.close();
    }

    @Benchmark
    public double forwardBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            APLoss.Result r = new APLoss(20, -1, 1, false, false).forward(d, classes, null);
            r.loss().backward();
            double v = r.loss().item();
            d.zeroGrad();
            return v;
        }
    }
}
