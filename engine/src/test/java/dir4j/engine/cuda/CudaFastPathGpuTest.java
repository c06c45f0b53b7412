package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.assertClose;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The fast paths of the hot kernels against the CPU backend: GeM with a warp per plane (float4
 * loads unrolled by 8, their tails, odd planes, unaligned views), and binary ops with one
 * operand a repeated vector (per-channel, row, column, scalar; either side; tails) beside the
 * strided kernels they fall back to.
 */
@Tag("gpu")
class CudaFastPathGpuTest {
    /** Plane sums in double on both sides (CudaMethodGpuTest's tolerance for GeM). */
    private static final GpuParity.Tol PLANE_SUM = new GpuParity.Tol(2e-5, 1e-6, true);

    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    private static Tensor relu(long seed, int... shape) {
        // exact zeros (below eps) and values at eps: the clamp and its zero gradient
        return randn(seed, shape).relu().add(0).detach().requiresGrad(true);
    }

    /** The same values as x, as a contiguous view that starts one element into its storage (not 16-byte aligned). */
    private static Tensor offsetByOne(Tensor x) {
        int n = (int) x.numel();
        Tensor flat = x.reshape(n);
        return Ops.reshape(Ops.concat(0, flat.slice(0, 0, 1), flat).slice(0, 1, n + 1), x.shape());
    }

    @Test
    void gemWithAWarpPerPlaneMatchesTheCpuOnEveryLoadPath() {
        int sms = GpuParity.backend().multiprocessors();
        int channels = sms * 8 / 2 + 5; // 2 images: just over the warp-per-plane threshold
        try (MemoryScope s = MemoryScope.open()) {
            Object[][] cases = {
                    // name, x: the unrolled float4 loop (hw 2304 = 576 float4: one full round of 8 loads per
                    // lane, a partial second round, then the tail), 32x32 (exactly one round), 8x8 (fewer
                    // float4s than lanes), 7x7 (odd: the scalar loop)
                    {"48x48 float4 unrolled + tail", relu(21, 2, channels, 48, 48)},
                    {"32x32 float4", relu(22, 2, channels, 32, 32)},
                    {"8x8 float4, idle lanes", relu(23, 2, channels, 8, 8)},
                    {"7x7 scalar", relu(24, 2, channels, 7, 7)},
            };
            for (double p : new double[] {3, 2.5, 4.75}) {
                for (Object[] c : cases) {
                    Tensor pt = Tensor.of(new float[] {(float) p}, 1).requiresGrad(true);
                    check("gem warp p=" + p + " " + c[0], PLANE_SUM, PLANE_SUM,
                            in -> NnOps.gem(in[0], in[1], 1e-6), (Tensor) c[1], pt);
                }
            }
            // a view 4 bytes into its storage: the warp kernel's scalar loop although hw % 4 == 0
            Tensor pt = Tensor.of(new float[] {2.5f}, 1).requiresGrad(true);
            check("gem warp unaligned 16x16", PLANE_SUM, PLANE_SUM, in -> NnOps.gem(offsetByOne(in[0]), in[1], 1e-6),
                    relu(25, 2, channels, 16, 16), pt);
            // few large planes: the block-per-plane kernel with the same fast pow
            check("gem block per plane 64x64", PLANE_SUM, PLANE_SUM, in -> NnOps.gem(in[0], in[1], 1e-6),
                    relu(26, 1, 40, 64, 64), pt);
        }
    }

    @Test
    void gemOfAConstantPlaneIsTheConstantAndItsGradientIsUniform() {
        // hand-derived: y = c, dy/dx = 1/HW everywhere, dy/dp = c·(ln c / p − ln c / p) = 0
        int sms = GpuParity.backend().multiprocessors();
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = Tensor.full(dir4j.engine.DType.FLOAT32, GPU, 1.5, 1, sms * 8, 32, 32).requiresGrad(true);
            Tensor p = Tensor.full(dir4j.engine.DType.FLOAT32, GPU, 2.5, 1).requiresGrad(true);
            Tensor y = NnOps.gem(x, p, 1e-6);
            y.sum().backward();
            for (float v : y.toFloatArray()) {
                assertEquals(1.5f, v, 5e-6f);
            }
            for (float v : x.grad().slice(1, 0, 2).toFloatArray()) {
                assertEquals(1f / 1024, v, 1e-8f);
            }
            assertEquals(0, p.grad().item(), 1e-3);
        }
    }

    private static void binaryCases(String what, Tensor big, Tensor small) {
        Tensor bigPositive = Ops.abs(big).add(0.5).detach().requiresGrad(true);
        Tensor smallPositive = Ops.abs(small).add(0.5).detach().requiresGrad(true);
        String shapes = dir4j.engine.Shape.str(big.shape()) + " and " + dir4j.engine.Shape.str(small.shape());
        Function<Tensor[], Tensor> add = in -> in[0].add(in[1]);
        check(what + " add " + shapes, ELEMENTWISE, GpuParity.ACCUMULATED, add, big, small);
        check(what + " add, broadcast operand first", ELEMENTWISE, GpuParity.ACCUMULATED, add, small, big);
        check(what + " sub, broadcast operand first", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].sub(in[1]), small,
                big);
        check(what + " mul", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].mul(in[1]), big, small);
        check(what + " div", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].div(in[1]), big, smallPositive);
        check(what + " div, broadcast operand first", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].div(in[1]), small,
                bigPositive);
        check(what + " maximum", ELEMENTWISE, GpuParity.ACCUMULATED, in -> Ops.maximum(in[0], in[1]), big, small);
        check(what + " pow", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].pow(in[1]), bigPositive, small);
        check(what + " greater, broadcast first", ELEMENTWISE, null, in -> Ops.greater(in[0], in[1]), small, big);
        // the fall-backs: the contiguous operand 4 bytes off alignment, and a transposed one
        check(what + " add, unaligned contiguous operand", ELEMENTWISE, GpuParity.ACCUMULATED,
                in -> offsetByOne(in[0]).add(in[1]), big, small);
    }

    @Test
    void binaryOpsWithARepeatedVectorMatchTheCpu() {
        try (MemoryScope s = MemoryScope.open()) {
            // per-channel [1,C,1,1]: runs of 16 (one value per float4) and of 35 (runs end inside a float4)
            binaryCases("per-channel", randn(31, 3, 8, 4, 4).requiresGrad(true), randn(32, 1, 8, 1, 1).requiresGrad(true));
            binaryCases("per-channel odd", randn(33, 2, 6, 5, 7).requiresGrad(true), randn(34, 1, 6, 1, 1)
                    .requiresGrad(true));
            // row vector (runs of 1) with a tail of 3 (35 elements), column vector, scalar
            binaryCases("row", randn(35, 5, 7).requiresGrad(true), randn(36, 7).requiresGrad(true));
            // a row of a multiple of 4 values: read as float4s of the row; and the same row unaligned
            binaryCases("row4", randn(49, 6, 12).requiresGrad(true), randn(50, 12).requiresGrad(true));
            check("row4 unaligned row", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].add(offsetByOne(in[1])),
                    randn(51, 6, 12).requiresGrad(true), randn(52, 12).requiresGrad(true));
            binaryCases("column", randn(37, 5, 7).requiresGrad(true), randn(38, 5, 1).requiresGrad(true));
            binaryCases("scalar", randn(39, 4099).requiresGrad(true), randn(40, 1).requiresGrad(true));
            // a [1,C,H,1] vector over [N,C,H,W] (two vector dims merge), and [C,1,1] over [N,C,H,W]
            binaryCases("two vector dims", randn(41, 2, 3, 4, 8).requiresGrad(true), randn(42, 1, 3, 4, 1)
                    .requiresGrad(true));
            binaryCases("rank-3 bias", randn(43, 2, 3, 4, 8).requiresGrad(true), randn(44, 3, 1, 1).requiresGrad(true));
            // more float4s than one launch covers in a round (grid-stride), per-channel runs of 9216
            check("per-channel add, several grid-stride rounds", ELEMENTWISE, GpuParity.ACCUMULATED,
                    in -> in[0].add(in[1]), randn(53, 8, 256, 96, 96).requiresGrad(true),
                    randn(54, 1, 256, 1, 1).requiresGrad(true));
            // a transposed operand: the strided kernel
            Tensor a = randn(45, 6, 10).requiresGrad(true);
            Tensor r = randn(46, 6).requiresGrad(true);
            check("transposed + row (strided)", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].t().add(in[1]), a, r);
        }
    }

    @Test
    void anInPlacePerChannelAddUsesTheRepeatKernelSafely() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(47, 4, 16, 9, 9);
            Tensor bias = randn(48, 1, 16, 1, 1);
            Tensor gx = x.to(GPU);
            Ops.addInPlace(x, bias);
            Ops.addInPlace(gx, bias.to(GPU));
            assertClose("in-place per-channel add", ELEMENTWISE, x, gx);
        }
    }

    @Test
    void theRepeatedVectorAnalysisAgreesWithTheBroadcastViewsOpsMakes() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor bias = Tensor.zeros(dir4j.engine.DType.FLOAT32, GPU, 1, 2048, 1, 1).expand(64, 2048, 32, 32);
            long[] rep = RepeatedVector.of(bias.shape(), bias.strides());
            assertTrue(rep != null && rep[0] == 1024 && rep[1] == 2048, "per-channel bias view: inner 1024, period 2048");
        }
    }
}
