package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
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
 * GeM pooling on the CPU, fused kernels: x [batch, 2048, size, size] with size 32 (ResNet-101's
 * last stage on a 1024² image) or 7 (ResNet's layer4 at 224², the training step), p learnable,
 * at 3 (multiplications only) or 2.7 (a learned p: exp and ln). {@code forward} runs without
 * autograd; {@code forwardBackward} includes dL/dx and dL/dp. Reference: bench/torch_cpu_method.py
 * runs PyTorch's clamp-pow-avgpool-pow formulation on the 32×32 shape ({@code --p} for p).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g"})
public class GemBench {
    @Param({"8"})
    int batch;

    @Param({"3.0", "2.7"})
    double p;

    /** Side of the feature map: 32 (the workload), 7 (ResNet's layer4 at 224x224, the training step). */
    @Param({"32", "7"})
    int size;

    Tensor x;
    Tensor pt;
    Tensor upstream;

    @Setup(Level.Trial)
    public void setup() {
        Random rng = new Random(1);
        x = Tensor.uniform(rng, 0, 1, batch, 2048, size, size).requiresGrad(true);
        pt = Tensor.of(new float[] {(float) p}, 1).requiresGrad(true);
        upstream = Tensor.uniform(rng, -1, 1, batch, 2048);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        x.close();
        pt.close();
        upstream.close();
    }

    @Benchmark
    public double forward() {
        try (MemoryScope s = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            return NnOps.gem(x, pt, 1e-6).numel();
        }
    }

    @Benchmark
    public double forwardBackward() {
        try (MemoryScope s = MemoryScope.open()) {
            NnOps.gem(x, pt, 1e-6).backward(upstream);
            x.zeroGrad();
            pt.zeroGrad();
            return 0;
        }
    }
}
