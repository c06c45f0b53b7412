package dir4j.bench;

import dir4j.engine.Backend;
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
 * Training-mode batch norm on the CPU, float32, channels-last against NCHW on the same sizes:
 * {@code nhwcForward}/{@code nhwcBackward} are the CPU backend's NHWC kernels on x [N, H, W, C];
 * {@code nchwForward}/{@code nchwBackward} the NCHW kernels on x [N, C, H, W] (the reference);
 * {@code permutedForward}/{@code permutedBackward} what Backend's default NHWC methods do (the
 * path before the NHWC kernels): copy the operands to NCHW, run the NCHW kernel, copy the result
 * back. Shapes: ResNet-50's layer1 output at batch 4, 224² (4×56×56×256) and its layer4 output
 * (4×7×7×2048). The forward updates the running statistics (momentum 0.1), as in training.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx4g"})
public class BatchNormNhwcBench {
    /** N x H x W x C. */
    @Param({"4x56x56x256", "4x7x7x2048"})
    public String shape;

    Backend be;
    Tensor xl;
    Tensor dyl;
    Tensor yl;
    Tensor dxl;
    Tensor x;
    Tensor dy;
    Tensor y;
    Tensor dx;
    Tensor gamma;
    Tensor beta;
    Tensor runningMean;
    Tensor runningVar;
    Tensor mean;
    Tensor invStd;
    Tensor dgamma;
    Tensor dbeta;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("x");
        int n = Integer.parseInt(p[0]);
        int h = Integer.parseInt(p[1]);
        int w = Integer.parseInt(p[2]);
        int c = Integer.parseInt(p[3]);
        Random rng = new Random(1);
        xl = Tensor.uniform(rng, -1, 3, n, h, w, c);
        dyl = Tensor.uniform(rng, -1, 1, n, h, w, c);
        yl = Tensor.zeros(n, h, w, c);
        dxl = Tensor.zeros(n, h, w, c);
        x = Tensor.uniform(rng, -1, 3, n, c, h, w);
        dy = Tensor.uniform(rng, -1, 1, n, c, h, w);
        y = Tensor.zeros(n, c, h, w);
        dx = Tensor.zeros(n, c, h, w);
        gamma = Tensor.uniform(rng, 0.5, 1.5, c);
        beta = Tensor.uniform(rng, -0.5, 0.5, c);
        runningMean = Tensor.zeros(c);
        runningVar = Tensor.ones(c);
        mean = Tensor.zeros(c);
        invStd = Tensor.zeros(c);
        dgamma = Tensor.zeros(c);
        dbeta = Tensor.zeros(c);
        be = x.backend();
        be.batchNorm2dNhwc(xl, gamma, beta, runningMean, runningVar, true, 0.1, 1e-5, yl, mean, invStd);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {xl, dyl, yl, dxl, x, dy, y, dx, gamma, beta, runningMean, runningVar, mean,
            invStd, dgamma, dbeta}) {
            t.close();
        }
    }

    @Benchmark
    public Tensor nhwcForward() {
        be.batchNorm2dNhwc(xl, gamma, beta, runningMean, runningVar, true, 0.1, 1e-5, yl, mean, invStd);
        return yl;
    }

    @Benchmark
    public Tensor nhwcBackward() {
        be.batchNorm2dNhwcBackward(xl, dyl, gamma, mean, invStd, true, dxl, dgamma, dbeta);
        return dxl;
    }

    @Benchmark
    public Tensor nchwForward() {
        be.batchNorm2d(x, gamma, beta, runningMean, runningVar, true, 0.1, 1e-5, y, mean, invStd);
        return y;
    }

    @Benchmark
    public Tensor nchwBackward() {
        be.batchNorm2dBackward(x, dy, gamma, mean, invStd, true, dx, dgamma, dbeta);
        return dx;
    }

    /** Backend's default batchNorm2dNhwc: permuted copy in, NCHW kernel, permuted copy out. */
    @Benchmark
    public Tensor permutedForward() {
        be.copy(xl.permute(0, 3, 1, 2), x);
        be.batchNorm2d(x, gamma, beta, runningMean, runningVar, true, 0.1, 1e-5, y, mean, invStd);
        be.copy(y, yl.permute(0, 3, 1, 2));
        return yl;
    }

    /** Backend's default batchNorm2dNhwcBackward: x and dy copied to NCHW, dx copied back. */
    @Benchmark
    public Tensor permutedBackward() {
        be.copy(xl.permute(0, 3, 1, 2), x);
        be.copy(dyl.permute(0, 3, 1, 2), dy);
        be.batchNorm2dBackward(x, dy, gamma, mean, invStd, true, dx, dgamma, dbeta);
        be.copy(dx, dxl.permute(0, 3, 1, 2));
        return dxl;
    }
}
