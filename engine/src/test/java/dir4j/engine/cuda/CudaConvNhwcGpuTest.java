package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ACCUMULATED;
import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.TF32;
import static dir4j.engine.cuda.GpuParity.assertClose;
import static dir4j.engine.cuda.GpuParity.backend;
import static dir4j.engine.cuda.GpuParity.onGpu;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The channels-last inference ops on cuDNN (conv2dNhwc: cudnnConvolutionBiasActivationForward with
 * NHWC descriptors, or the forward and the backend's bias/residual/ReLU kernels without the ReLU) and pool.cu's
 * maxpool2d_nhwc_f32 against the CPU backend's reference (ChannelsLastOpsTest pins that to the
 * definition): every ResNet shape kind (1x1, 3x3, the 7x7/2 stem with 3 and 4 input channels,
 * strides 1 and 2), with and without the residual z and the ReLU; strict float32, and TF32.
 */
@Tag("gpu")
class CudaConvNhwcGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @AfterEach
    void tf32Default() {
        backend().setConvTf32(true);
    }

    private static final int[][] SHAPES = GpuParity.NHWC_CONV_SHAPES;

    @Test
    void fusedConvolutionMatchesTheCpuWithAndWithoutResidualAndRelu() {
        for (boolean tf32 : new boolean[] {false, true}) {
            backend().setConvTf32(tf32);
            for (int[] s : SHAPES) {
                for (boolean withZ : new boolean[] {false, true}) {
                    for (boolean relu : new boolean[] {false, true}) {
                        check(s, withZ, relu, tf32);
                    }
                }
            }
        }
    }

    private static void check(int[] s, boolean withZ, boolean relu, boolean tf32) {
        int k = s[0];
        int st = s[1];
        int p = s[2];
        int n = 3;
        int ho = (s[5] + 2 * p - k) / st + 1;
        int wo = (s[6] + 2 * p - k) / st + 1;
        long seed = 100L * k + 10L * st + s[3] + (withZ ? 1000 : 0);
        String what = "conv2dNhwc k" + k + " s" + st + " p" + p + " " + s[3] + "->" + s[4] + " " + s[5] + "x" + s[6]
                + " z=" + withZ + " relu=" + relu + " tf32=" + tf32;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = randn(seed, n, s[5], s[6], s[3]);
            Tensor w = randn(seed + 1, s[4], k, k, s[3]).mul(1.0 / Math.sqrt(k * k * s[3]));
            Tensor b = randn(seed + 2, s[4]);
            Tensor z = withZ ? randn(seed + 3, n, ho, wo, s[4]) : null;
            ConvParams cp = new ConvParams(st, st, p, p, 1, 1);
            Tensor cpu = Tensor.empty(DType.FLOAT32, dir4j.engine.Device.CPU, n, ho, wo, s[4]);
            cpu.backend().conv2dNhwc(x, w, b, z, relu, cp, cpu);
            Tensor gpu = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, n, ho, wo, s[4]);
            backend().conv2dNhwc(onGpu(x), onGpu(w), onGpu(b), z == null ? null : onGpu(z), relu, cp, gpu);
            assertClose(what, tf32 ? TF32 : ACCUMULATED, cpu, gpu);
        }
    }

    @Test
    void repeatedCallsWithTheChosenAlgorithmGiveTheSameResult() {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = onGpu(randn(1, 2, 14, 14, 64));
            Tensor w = onGpu(randn(2, 64, 3, 3, 64).mul(1.0 / 24));
            Tensor b = onGpu(randn(3, 64));
            Tensor z = onGpu(randn(4, 2, 14, 14, 64));
            ConvParams cp = new ConvParams(1, 1, 1, 1, 1, 1);
            Tensor first = Tensor.empty(DType.FLOAT32, GpuParity.GPU, 2, 14, 14, 64);
            Tensor again = Tensor.empty(DType.FLOAT32, GpuParity.GPU, 2, 14, 14, 64);
            backend().conv2dNhwc(x, w, b, z, true, cp, first);
            backend().conv2dNhwc(x, w, b, z, true, cp, again);
            assertClose("the second call (no search) equals the first", ELEMENTWISE, first.to(dir4j.engine.Device.CPU),
                    again);
            // without z, cuDNN gets y as z scaled by 0: y's old contents (NaN here) must not leak in
            backend().setConvTf32(false);
            Tensor nan = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, 2, 14, 14, 64);
            backend().conv2dNhwc(x, w, b, null, true, cp, nan);
            backend().conv2dNhwc(x, w, b, null, true, cp, fillNaN(nan));
            Tensor cpu = Tensor.empty(DType.FLOAT32, dir4j.engine.Device.CPU, 2, 14, 14, 64);
            cpu.backend().conv2dNhwc(x.to(dir4j.engine.Device.CPU), w.to(dir4j.engine.Device.CPU),
                    b.to(dir4j.engine.Device.CPU), null, true, cp, cpu);
            assertClose("no z, into a NaN-filled y after the algorithm was chosen", ACCUMULATED, cpu, nan);
            backend().setConvTf32(true);
            String choices = backend().convolutionChoices();
            assertTrue(choices.lines().anyMatch(l -> l.contains("n=2, c=64, h=14, w=14, k=64, kh=3, kw=3")
                    && l.contains("nhwc=true") && l.contains("FUSED_RELU algo")),
                    "cuDNN runs this shape's conv + bias + z + ReLU as one fused call:\n" + choices);
            System.out.println("cuDNN choices (channels-last):\n" + choices);
        }
    }

    private static Tensor fillNaN(Tensor t) {
        t.backend().fill(t, Double.NaN);
        return t;
    }

    @Test
    void maxPoolMatchesTheCpu() {
        try (MemoryScope scope = MemoryScope.open()) {
            for (int[] s : new int[][] {{2, 112, 112, 64}, {3, 9, 8, 6}, {1, 7, 7, 3}}) {
                Tensor x = randn(s[1], s);
                x.backend().fill(x.slice(1, 3, 4).slice(2, 3, 4).slice(3, 2, 3), Double.NaN);
                PoolParams p = new PoolParams(3, 3, 2, 2, 1, 1);
                int ho = (s[1] + 2 - 3) / 2 + 1;
                int wo = (s[2] + 2 - 3) / 2 + 1;
                Tensor cpu = Tensor.empty(DType.FLOAT32, dir4j.engine.Device.CPU, s[0], ho, wo, s[3]);
                cpu.backend().maxPool2dNhwc(x, p, cpu, null);
                Tensor gpu = Tensor.full(DType.FLOAT32, GpuParity.GPU, 7, s[0], ho, wo, s[3]);
                backend().maxPool2dNhwc(onGpu(x), p, gpu, null);
                assertClose("maxPool2dNhwc " + java.util.Arrays.toString(s), ELEMENTWISE, cpu, gpu);
            }
        }
    }
}
