package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetInference;
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
 * The ResNet feature trunk (torchvision's topology without avgpool and fc: conv1 … layer4, output
 * [1, 2048, H/32, W/32]) forward on the CPU, batch 1, eval mode, no grad, random weights
 * ({@code ResNet.of(depth, new Random(0))}). {@code size} is width×height: "1024x768" is an input
 * [1, 3, 768, 1024]. The same trunks run in bench/torch_cpu_resnet.py (PyTorch) and
 * {@link OnnxResNetBench} (ONNX Runtime); bench/resnet_cpu_side_by_side.sh runs all three.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g"})
public class ResNetForwardBench {
    @Param({"resnet50", "resnet101"})
    String depth;

    @Param({"224x224", "1024x768"})
    String size;

    ResNet net;
    ResNetInference compiled;
    Tensor image;

    @Setup(Level.Trial)
    public void setup() {
        net = ResNet.of(ResNet.Depth.parse(depth), new Random(0));
        net.eval();
        compiled = ResNetInference.of(net);
        int[] hw = heightWidth(size);
        image = Tensor.uniform(new Random(1), -2, 2, 1, 3, hw[0], hw[1]);
    }

    /** "W×H" → {H, W}. */
    static int[] heightWidth(String size) {
        String[] p = size.split("x");
        return new int[] {Integer.parseInt(p[1]), Integer.parseInt(p[0])};
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        image.close();
        net.close();
    }

    /** The module: im2col + SGEMM convolutions, batch norms fused with the adds and ReLUs (NCHW). */
    @Benchmark
    public double forward() {
        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
            return net.forward(image).numel();
        }
    }

    /**
     * The same trunk compiled by {@link ResNetInference} (what extraction runs on the CPU): batch
     * norms folded, channels-last direct convolutions with fused epilogues. Built once in setup.
     */
    @Benchmark
    public double forwardCompiled() {
        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
            return compiled.features(image).numel();
        }
    }
}
