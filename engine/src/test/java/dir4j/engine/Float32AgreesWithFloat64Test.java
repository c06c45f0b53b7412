package dir4j.engine;

import dir4j.engine.Backend.ConvParams;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The float32 kernels (Vector API, packed GEMM, implicit-GEMM convolution, split across the worker
 * threads) against the float64 scalar reference loops, on shapes large enough to take the paths
 * the small PyTorch fixtures cannot reach: rows longer than a parallel chunk, reductions split
 * across threads, vector tails, GEMM blocks and multi-image convolutions. Outputs and input
 * gradients (for a random upstream gradient) must agree to float32 accuracy.
 */
class Float32AgreesWithFloat64Test {

    private static DynamicTest agree(String name, Function<Tensor[], Tensor> f, int[]... shapes) {
        return DynamicTest.dynamicTest(name, () -> {
            try (var scope = MemoryScope.open()) {
                Random rng = new Random(name.hashCode());
                Tensor[] f32 = new Tensor[shapes.length];
                Tensor[] f64 = new Tensor[shapes.length];
                for (int i = 0; i < shapes.length; i++) {
                    f32[i] = Tensor.randn(rng, shapes[i]).requiresGrad(true);
                    f64[i] = Ops.cast(f32[i].detach(), DType.FLOAT64).requiresGrad(true);
                }
                Tensor y32 = f.apply(f32);
                Tensor y64 = f.apply(f64);
                Closeness.ACCUMULATED.assertClose(name + " output", y64, y32);
                Tensor up = Tensor.randn(rng, y32.shape());
                y32.backward(up);
                y64.backward(Ops.cast(up, DType.FLOAT64));
                for (int i = 0; i < shapes.length; i++) {
                    Closeness.ACCUMULATED.assertClose(name + " gradient of input " + i, f64[i].grad(), f32[i].grad());
                }
            }
        });
    }

    private static int[] s(int... shape) {
        return shape;
    }

    @TestFactory
    Stream<DynamicTest> elementwiseAndReductionsOnLargeTensors() {
        return Stream.of(
                agree("add with broadcasting over 77k elements", x -> Ops.add(x[0], x[1]), s(301, 257), s(257)),
                agree("mul of a column-broadcast over 77k elements", x -> Ops.mul(x[0], x[1]), s(301, 257), s(301, 1)),
                agree("div of a transposed view", x -> Ops.div(x[0].t(), Ops.affine(Ops.exp(x[1]), 1, 0.5)),
                        s(257, 301), s(301, 257)),
                agree("exp, then log of its sum with a tail of 13", x -> Ops.log(Ops.affine(Ops.exp(x[0]), 1, 1)),
                        s(3, 1037)),
                agree("pow 2.5 of a positive tensor", x -> Ops.pow(Ops.affine(Ops.abs(x[0]), 1, 0.1), 2.5), s(1000, 7)),
                agree("sum of 200,000 values (split across threads)", x -> Ops.sum(x[0], null, false), s(200_000)),
                agree("max of 200,000 values", x -> Ops.max(x[0], null, false), s(200_000)),
                agree("min over axes 0 and 2 of a large tensor", x -> Ops.min(x[0], new int[] {0, 2}, false),
                        s(40, 3, 900)),
                agree("mean over the long axis of a transposed view", x -> Ops.mean(x[0].t(), new int[] {1}, true),
                        s(70_000, 2)),
                agree("cumsum along a long axis, reversed", x -> Ops.cumsum(x[0], 1, true), s(3, 40_000)),
                agree("cumsum along the first axis of a wide tensor", x -> Ops.cumsum(x[0], 0), s(40, 2000)));
    }

    @TestFactory
    Stream<DynamicTest> matrixProductsAndNeuralNetworkOpsOnRealisticShapes() {
        return Stream.of(
                agree("matmul 67x300 by 300x131", x -> Ops.matmul(x[0], x[1]), s(67, 300), s(300, 131)),
                agree("matmul by a transposed view", x -> Ops.matmul(x[0], x[1].t()), s(96, 200), s(130, 200)),
                agree("batched broadcast matmul", x -> Ops.matmul(x[0], x[1]), s(3, 1, 40, 50), s(4, 50, 33)),
                agree("gram of 70 descriptors of 300 dimensions (an AP loss batch)", x -> Ops.gram(x[0]), s(70, 300)),
                agree("gram of a transposed view", x -> Ops.gram(x[0].t()), s(130, 45)),
                agree("linear 2048 to 64 with bias", x -> NnOps.linear(x[0], x[1], x[2]), s(8, 2048), s(64, 2048),
                        s(64)),
                agree("conv2d 3x3 pad 1, 16 to 24 channels, 2 images",
                        x -> NnOps.conv2d(x[0], x[1], x[2], 1, 1, 1), s(2, 16, 20, 19), s(24, 16, 3, 3), s(24)),
                agree("conv2d 3x3 stride 2 pad 1", x -> NnOps.conv2d(x[0], x[1], null, 2, 1, 1), s(3, 8, 17, 18),
                        s(16, 8, 3, 3)),
                agree("conv2d 7x7 stride 2 pad 3 (ResNet stem)", x -> NnOps.conv2d(x[0], x[1], null, 2, 3, 1),
                        s(2, 3, 40, 38), s(16, 3, 7, 7)),
                agree("conv2d 1x1 projection", x -> NnOps.conv2d(x[0], x[1], null, 1, 0, 1), s(2, 64, 9, 9),
                        s(32, 64, 1, 1)),
                agree("conv2d 1x1 stride 2 downsample", x -> NnOps.conv2d(x[0], x[1], null, 2, 0, 1), s(2, 32, 14, 14),
                        s(64, 32, 1, 1)),
                agree("conv2d 3x3 dilation 2", x -> NnOps.conv2d(x[0], x[1], null, new ConvParams(1, 1, 2, 2, 2, 2)),
                        s(1, 12, 15, 16), s(10, 12, 3, 3)),
                agree("batchNorm2d training over 4x16x13x11",
                        x -> NnOps.batchNorm2d(x[0], x[1], x[2], null, null, true, 0.1, 1e-5), s(4, 16, 13, 11), s(16),
                        s(16)),
                agree("maxPool2d 3x3 stride 2 pad 1", x -> NnOps.maxPool2d(x[0], 3, 2, 1), s(2, 8, 33, 30)),
                agree("avgPool2d 3x3 stride 2 pad 1", x -> NnOps.avgPool2d(x[0], 3, 2, 1, false), s(2, 8, 33, 30)),
                agree("adaptiveAvgPool2d 30x31 to 7x7", x -> NnOps.adaptiveAvgPool2d(x[0], 7, 7), s(2, 8, 30, 31)),
                agree("l2Normalize 512-d rows", x -> NnOps.l2Normalize(x[0], 1, 1e-12), s(33, 512)));
    }

    /** Every other element along the last axis of x (a view with stride 2, offset {@code first}). */
    private static Tensor everyOther(Tensor x, int first) {
        int[] s = x.shape();
        int[] split = java.util.Arrays.copyOf(s, s.length + 1);
        split[s.length - 1] = s[s.length - 1] / 2;
        split[s.length] = 2;
        return Ops.select(Ops.reshape(x, split), s.length, first);
    }

    /**
     * The ops on views made in the graph (transposed, permuted NHWC ↔ NCHW, stepped, expanded with
     * stride 0) at sizes past the float32 kernels' thresholds (staging of transposed operands,
     * parallel chunks, GEMM blocks, the channels-last kernels); the gradients are the bases'. The
     * small PyTorch fixtures (view_* cases) pin the semantics; these the fast paths.
     */
    @TestFactory
    Stream<DynamicTest> opsOnViewsOfLargeTensors() {
        return Stream.of(
                agree("add of an expanded column and a transposed view (77k elements)",
                        x -> Ops.add(Ops.expand(x[0], 301, 257), x[1].t()), s(301, 1), s(257, 301)),
                agree("mul of every other column and a transposed view",
                        x -> Ops.mul(everyOther(x[0], 1), x[1].t()), s(301, 514), s(257, 301)),
                agree("relu of an NCHW view of an NHWC tensor", x -> Ops.relu(Ops.permute(x[0], 0, 3, 1, 2)),
                        s(2, 30, 31, 24)),
                agree("sum over axis 1 of a permuted view",
                        x -> Ops.sum(Ops.permute(x[0], 2, 0, 1), new int[] {1}, true), s(300, 40, 70)),
                agree("max over an expanded innermost axis", x -> Ops.max(Ops.expand(x[0], 500, 300), new int[] {1},
                        false), s(500, 1)),
                agree("sum of all of every other element", x -> Ops.sum(everyOther(x[0], 0), null, false), s(400_000)),
                agree("cumsum along the long axis of a transposed view", x -> Ops.cumsum(x[0].t(), 1), s(30_000, 3)),
                agree("matmul of expanded rows by every other column",
                        x -> Ops.matmul(Ops.expand(x[0], 67, 300), everyOther(x[1], 0)), s(1, 300), s(300, 262)),
                agree("batched matmul by an expanded (stride-0) batch",
                        x -> Ops.matmul(x[0], Ops.expand(x[1], 4, 50, 133)), s(4, 40, 50), s(50, 133)),
                agree("linear of a permuted batch, transposed weight",
                        x -> NnOps.linear(Ops.permute(x[0], 1, 0, 2), x[1].t(), x[2]), s(9, 7, 300), s(300, 64), s(64)),
                agree("conv2d of an NCHW view of NHWC input, channels-last weight",
                        x -> NnOps.conv2d(Ops.permute(x[0], 0, 3, 1, 2), Ops.permute(x[1], 0, 3, 1, 2), x[2], 1, 1, 1),
                        s(2, 20, 19, 16), s(24, 3, 3, 16), s(24)),
                agree("conv2dNhwc of NHWC views of NCHW input and OIHW weight",
                        x -> NnOps.conv2dNhwc(Ops.permute(x[0], 0, 2, 3, 1), Ops.permute(x[1], 0, 2, 3, 1),
                                new ConvParams(1, 1, 1, 1, 1, 1)), s(2, 16, 20, 19), s(24, 16, 3, 3)),
                agree("batchNorm2dNhwc training of an NHWC view (40k elements)",
                        x -> NnOps.batchNorm2dNhwc(Ops.permute(x[0], 0, 2, 3, 1), x[1], x[2], null, null, true, 0.1,
                                1e-5), s(4, 16, 25, 25), s(16), s(16)),
                agree("batchNorm2d training of a cropped view with an expanded residual and ReLU",
                        x -> NnOps.batchNorm2dAct(Ops.slice(x[0], 3, 1, 30), x[1], x[2], null, null, true, 0.1, 1e-5,
                                Ops.expand(x[3], 4, 16, 25, 29), true),
                        s(4, 16, 25, 31), s(16), s(16), s(1, 16, 25, 29)),
                agree("maxPool2dNhwc of an NHWC view", x -> NnOps.maxPool2dNhwc(Ops.permute(x[0], 0, 2, 3, 1), 3, 2, 1),
                        s(2, 16, 33, 30)),
                agree("avgPool2d of every other column", x -> NnOps.avgPool2d(everyOther(x[0], 1), 3, 2, 1, true),
                        s(2, 8, 33, 60)),
                agree("l2Normalize along axis 0 of a transposed view", x -> NnOps.l2Normalize(x[0].t(), 0, 1e-12),
                        s(33, 512)),
                agree("index_select along axis 1 of a transposed view",
                        x -> Ops.indexSelect(x[0].t(), 1, Tensor.ofInts(new int[] {7, 0, 299, 7, 150}, 5)),
                        s(300, 200)),
                agree("concat of a transposed, an expanded and a stepped view",
                        x -> Ops.concat(1, x[0].t(), Ops.expand(x[1], 200, 64), everyOther(x[2], 0)),
                        s(100, 200), s(200, 1), s(200, 300)));
    }
}
