package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ACCUMULATED;
import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.TF32;
import static dir4j.engine.cuda.GpuParity.assertClose;
import static dir4j.engine.cuda.GpuParity.backend;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.onGpu;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The channels-last training ops on CUDA against the CPU backend's reference
 * (ChannelsLastTrainingOpsTest pins that to the NCHW ops and to finite differences): cuDNN's
 * forward, backward data and backward filter on NHWC descriptors for every ResNet shape kind
 * (strict float32 and TF32); batchnorm.cu's channels-last batch norm in training (output, saved
 * statistics, running averages) and eval, with and without the fused residual add and ReLU,
 * forward and backward, on maps of a few rows to a few chunks; pool.cu's channels-last max
 * pooling with argmax and its deterministic backward; and the NnOps ops' autograd end to end.
 */
@Tag("gpu")
class CudaChannelsLastTrainingGpuTest {
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
    void convolutionDirectionsMatchTheCpu() {
        for (boolean tf32 : new boolean[] {false, true}) {
            backend().setConvTf32(tf32);
            for (int[] s : SHAPES) {
                int k = s[0];
                int st = s[1];
                int p = s[2];
                int n = 3;
                int ho = (s[5] + 2 * p - k) / st + 1;
                int wo = (s[6] + 2 * p - k) / st + 1;
                ConvParams cp = new ConvParams(st, st, p, p, 1, 1);
                String what = "k" + k + " s" + st + " p" + p + " " + s[3] + "->" + s[4] + " " + s[5] + "x" + s[6]
                        + " tf32=" + tf32;
                GpuParity.Tol tol = tf32 ? TF32 : ACCUMULATED;
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor x = randn(k * 100L + s[3], n, s[5], s[6], s[3]);
                    Tensor w = randn(k * 100L + s[4], s[4], k, k, s[3]).mul(0.1);
                    Tensor dy = randn(k * 100L + 7, n, ho, wo, s[4]);
                    Tensor y = Tensor.zeros(n, ho, wo, s[4]);
                    Tensor dx = Tensor.zeros(n, s[5], s[6], s[3]);
                    Tensor dw = Tensor.zeros(s[4], k, k, s[3]);
                    x.backend().conv2dNhwc(x, w, null, null, false, cp, y);
                    x.backend().conv2dNhwcBackwardData(dy, w, cp, dx);
                    x.backend().conv2dNhwcBackwardFilter(x, dy, cp, dw);
                    Tensor yg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, y.shape());
                    Tensor dxg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, dx.shape());
                    Tensor dwg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, dw.shape());
                    Tensor xg = onGpu(x);
                    Tensor wg = onGpu(w);
                    Tensor dyg = onGpu(dy);
                    backend().conv2dNhwc(xg, wg, null, null, false, cp, yg);
                    backend().conv2dNhwcBackwardData(dyg, wg, cp, dxg);
                    backend().conv2dNhwcBackwardFilter(xg, dyg, cp, dwg);
                    assertClose("conv2dNhwc forward " + what, tol, y, yg);
                    assertClose("conv2dNhwcBackwardData " + what, tol, dx, dxg);
                    assertClose("conv2dNhwcBackwardFilter " + what, tol, dw, dwg);
                }
            }
        }
        String choices = backend().convolutionChoices();
        assertTrue(choices.lines().anyMatch(l -> l.contains("nhwc=true") && l.contains("BACKWARD_DATA algo")
                && l.contains("BACKWARD_FILTER algo")), "channels-last plans searched both backward directions:\n"
                + choices);
        System.out.println("cuDNN choices (channels-last training):\n" + choices);
    }

    @Test
    void batchNormMatchesTheCpuInTrainingAndEval() {
        // small maps, a partial channel tile, odd channel counts (no float4), and maps of thousands
        // of rows split into several chunks (the ResNet stem's 4x32x32x8 of the network test, a
        // 512² stage-1 map cut to 4 images)
        int[][] shapes = {{4, 7, 9, 16}, {2, 5, 5, 64}, {3, 4, 6, 3}, {4, 32, 32, 8}, {2, 33, 31, 36},
            {4, 128, 128, 64}};
        for (int[] s : shapes) {
            for (int mode = 0; mode < 8; mode++) {
                boolean training = (mode & 1) == 0;
                boolean residual = (mode & 2) != 0;
                boolean relu = (mode & 4) != 0;
                String what = "batchNorm2dNhwcAct " + java.util.Arrays.toString(s) + " training=" + training
                        + " residual=" + residual + " relu=" + relu;
                int c = s[3];
                try (MemoryScope scope = MemoryScope.open()) {
                    Tensor x = randn(s[3] * 10L + 1, s).mul(1.5).add(0.3);
                    Tensor gamma = randn(2, c);
                    Tensor beta = randn(3, c);
                    Tensor dy = randn(4, s);
                    Tensor res = residual ? randn(7, s) : null;
                    Tensor rm = randn(5, c).mul(0.2);
                    Tensor rv = Tensor.uniform(new java.util.Random(6), 0.5, 1.5, c);
                    Tensor rmg = onGpu(rm);
                    Tensor rvg = onGpu(rv);
                    Tensor y = Tensor.zeros(s);
                    Tensor mean = Tensor.zeros(c);
                    Tensor inv = Tensor.zeros(c);
                    x.backend().batchNorm2dNhwcAct(x, gamma, beta, rm, rv, training, 0.1, 1e-5, res, relu, y, mean,
                            inv);
                    Tensor dx = Tensor.zeros(s);
                    Tensor dg = Tensor.zeros(c);
                    Tensor db = Tensor.zeros(c);
                    Tensor dr = residual ? Tensor.zeros(s) : null;
                    x.backend().batchNorm2dNhwcActBackward(x, y, dy, gamma, mean, inv, training, relu, dx, dg, db, dr);

                    Tensor xg = onGpu(x);
                    Tensor gg = onGpu(gamma);
                    Tensor yg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, s);
                    Tensor meang = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, c);
                    Tensor invg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, c);
                    backend().batchNorm2dNhwcAct(xg, gg, onGpu(beta), rmg, rvg, training, 0.1, 1e-5,
                            residual ? onGpu(res) : null, relu, yg, meang, invg);
                    Tensor dxg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, s);
                    Tensor dgg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, c);
                    Tensor dbg = Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, c);
                    Tensor drg = residual ? Tensor.full(DType.FLOAT32, GpuParity.GPU, Double.NaN, s) : null;
                    backend().batchNorm2dNhwcActBackward(xg, yg, onGpu(dy), gg, meang, invg, training, relu, dxg, dgg,
                            dbg, drg);

                    assertClose(what + " y", ACCUMULATED, y, yg);
                    assertClose(what + " saved mean", ACCUMULATED, mean, meang);
                    assertClose(what + " saved 1/std", ACCUMULATED, inv, invg);
                    assertClose(what + " running mean", ACCUMULATED, rm, rmg);
                    assertClose(what + " running var", ACCUMULATED, rv, rvg);
                    assertClose(what + " dx", ACCUMULATED, dx, dxg);
                    assertClose(what + " dgamma", ACCUMULATED, dg, dgg);
                    assertClose(what + " dbeta", ACCUMULATED, db, dbg);
                    if (residual) {
                        assertClose(what + " dresidual", ELEMENTWISE, dr, drg);
                    }
                }
            }
        }
    }

    @Test
    void maxPoolWithArgmaxAndItsBackwardMatchTheCpu() {
        int[][] shapes = {{2, 112, 112, 64}, {3, 9, 8, 6}, {1, 7, 7, 3}};
        for (int[] s : shapes) {
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor x = randn(s[1], s);
                // ties across overlapping windows: the first maximum in scan order wins on both
                x.backend().fill(x.slice(1, 1, 4).slice(2, 1, 4), 4.0);
                PoolParams p = new PoolParams(3, 3, 2, 2, 1, 1);
                int ho = (s[1] + 2 - 3) / 2 + 1;
                int wo = (s[2] + 2 - 3) / 2 + 1;
                Tensor dy = randn(s[2] + 1L, s[0], ho, wo, s[3]);
                Tensor y = Tensor.zeros(s[0], ho, wo, s[3]);
                Tensor idx = Tensor.zeros(DType.INT32, Device.CPU, s[0], ho, wo, s[3]);
                x.backend().maxPool2dNhwc(x, p, y, idx);
                Tensor dx = Tensor.zeros(s);
                x.backend().maxPool2dNhwcBackward(dy, idx, p, dx);

                Tensor yg = Tensor.full(DType.FLOAT32, GpuParity.GPU, 7, s[0], ho, wo, s[3]);
                Tensor idxg = Tensor.zeros(DType.INT32, GpuParity.GPU, s[0], ho, wo, s[3]);
                backend().maxPool2dNhwc(onGpu(x), p, yg, idxg);
                Tensor dxg = Tensor.zeros(DType.FLOAT32, GpuParity.GPU, s);
                backend().maxPool2dNhwcBackward(onGpu(dy), idxg, p, dxg);
                String what = "maxPool2dNhwc " + java.util.Arrays.toString(s);
                assertClose(what + " y", ELEMENTWISE, y, yg);
                assertArrayEquals(idx.toIntArray(), idxg.toIntArray(), what + " argmax");
                assertArrayEquals(dx.toFloatArray(), dxg.toFloatArray(), what + " dx (the CPU's bits)");
            }
        }
    }

    @Test
    void nnOpsAutogradMatchesTheCpu() {
        backend().setConvTf32(false);
        ConvParams cp = new ConvParams(2, 2, 1, 1, 1, 1);
        Tensor x = randn(31, 2, 17, 15, 8).requiresGrad(true);
        Tensor w = randn(32, 16, 8, 3, 3).mul(0.2).requiresGrad(true);
        Tensor g = randn(33, 16).requiresGrad(true);
        Tensor b = randn(34, 16).requiresGrad(true);
        // the weight is OIHW, seen as [Co, kh, kw, Ci] in the graph as the channels-last ResNet does
        check("conv2dNhwc + batchNorm2dNhwc (training) + relu + maxPool2dNhwc", ACCUMULATED, ACCUMULATED,
                in -> NnOps.maxPool2dNhwc(NnOps.batchNorm2dNhwc(NnOps.conv2dNhwc(in[0], in[1].permute(0, 2, 3, 1),
                        cp), in[2], in[3], null, null, true, 0.1, 1e-5).relu(), 3, 2, 1), x, w, g, b);
    }
}
