package dir4j.engine;

import static dir4j.engine.GradCheck.awayFrom;
import static dir4j.engine.GradCheck.distinct;
import static dir4j.engine.GradCheck.randn;
import static dir4j.engine.GradCheck.transposedLayout;
import static dir4j.engine.GradCheck.uniform;

import dir4j.engine.Backend.ConvParams;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every differentiable op's backward rule against central finite differences, in float64 (the
 * CPU backend's scalar reference path), with inputs kept away from kinks: no relu/abs input
 * near 0, no clamp input near a bound, no ties for max/min/maximum/max-pooling.
 */
class GradientCheckTest {

    private static DynamicTest gc(String name, Function<Random, Tensor[]> inputs, Function<Tensor[], Tensor> f) {
        return DynamicTest.dynamicTest(name, () -> {
            try (MemoryScope scope = MemoryScope.open()) {
                GradCheck.check(name, f, inputs.apply(new Random(name.hashCode())));
            }
        });
    }

    private static Tensor[] of(Tensor... ts) {
        return ts;
    }

    /** a, and b = a ± (0.05 … 1) broadcast-compatible (b's shape is a suffix of a's): no ties. */
    private static Tensor[] separated(Random rng, int[] aShape, int[] bShape) {
        Tensor b = randn(rng, bShape);
        double[] bv = b.toDoubleArray();
        double[] av = new double[(int) Shape.numel(aShape)];
        for (int i = 0; i < av.length; i++) {
            av[i] = bv[i % bv.length] + (rng.nextBoolean() ? 1 : -1) * (0.05 + rng.nextDouble());
        }
        return of(Tensor.ofDoubles(av, aShape), b);
    }

    @TestFactory
    Stream<DynamicTest> elementwiseBinaryOpsWithBroadcasting() {
        return Stream.of(
                gc("add [3,4] + [4]", r -> of(randn(r, 3, 4), randn(r, 4)), x -> Ops.add(x[0], x[1])),
                gc("add [2,1,3] + [4,1]", r -> of(randn(r, 2, 1, 3), randn(r, 4, 1)), x -> Ops.add(x[0], x[1])),
                gc("sub [3,1] - [1,4]", r -> of(randn(r, 3, 1), randn(r, 1, 4)), x -> Ops.sub(x[0], x[1])),
                gc("mul [2,3,4] * [3,1]", r -> of(randn(r, 2, 3, 4), randn(r, 3, 1)), x -> Ops.mul(x[0], x[1])),
                gc("mul of an input by itself", r -> of(randn(r, 3, 4)), x -> Ops.mul(x[0], x[0])),
                gc("div [3,4] / [4]", r -> of(randn(r, 3, 4), awayFrom(r, 0.5, new double[] {0}, 4)),
                        x -> Ops.div(x[0], x[1])),
                gc("maximum [3,4] with [4]", r -> separated(r, new int[] {3, 4}, new int[] {4}),
                        x -> Ops.maximum(x[0], x[1])),
                gc("minimum [2,5] with [2,5]", r -> separated(r, new int[] {2, 5}, new int[] {2, 5}),
                        x -> Ops.minimum(x[0], x[1])),
                gc("pow [3,4] ^ [4]", r -> of(uniform(r, 0.5, 2, 3, 4), randn(r, 4)), x -> Ops.pow(x[0], x[1])),
                gc("an intermediate used by two ops: exp(x)*exp(x) + exp(x)", r -> of(randn(r, 2, 3)), x -> {
                    Tensor e = Ops.exp(x[0]);
                    return Ops.add(Ops.mul(e, e), e);
                }),
                gc("a graph reusing its inputs: x*x + exp(x)*y - x/(y*y+1)", r -> of(randn(r, 3, 4), randn(r, 4)),
                        x -> Ops.sub(Ops.add(Ops.mul(x[0], x[0]), Ops.mul(Ops.exp(x[0]), x[1])),
                                Ops.div(x[0], Ops.affine(Ops.mul(x[1], x[1]), 1, 1)))));
    }

    @TestFactory
    Stream<DynamicTest> elementwiseUnaryOps() {
        double[] zero = {0};
        return Stream.of(
                gc("neg", r -> of(randn(r, 3, 4)), x -> Ops.neg(x[0])),
                gc("affine -1.5 x + 0.25", r -> of(randn(r, 3, 4)), x -> Ops.affine(x[0], -1.5, 0.25)),
                gc("exp", r -> of(randn(r, 3, 4)), x -> Ops.exp(x[0])),
                gc("log", r -> of(uniform(r, 0.2, 3, 3, 4)), x -> Ops.log(x[0])),
                gc("sqrt", r -> of(uniform(r, 0.2, 3, 3, 4)), x -> Ops.sqrt(x[0])),
                gc("abs away from 0", r -> of(awayFrom(r, 0.01, zero, 3, 5)), x -> Ops.abs(x[0])),
                gc("reciprocal", r -> of(awayFrom(r, 0.3, zero, 3, 4)), x -> Ops.reciprocal(x[0])),
                gc("pow x^2", r -> of(randn(r, 3, 4)), x -> Ops.pow(x[0], 2)),
                gc("pow x^3", r -> of(randn(r, 3, 4)), x -> Ops.pow(x[0], 3)),
                gc("pow x^0.5", r -> of(uniform(r, 0.2, 3, 3, 4)), x -> Ops.pow(x[0], 0.5)),
                gc("pow x^-1", r -> of(awayFrom(r, 0.3, zero, 3, 4)), x -> Ops.pow(x[0], -1)),
                gc("pow x^2.5", r -> of(uniform(r, 0.2, 3, 3, 4)), x -> Ops.pow(x[0], 2.5)),
                gc("relu away from 0", r -> of(awayFrom(r, 0.01, zero, 4, 5)), x -> Ops.relu(x[0])),
                gc("clamp to [-0.5, 0.5] away from the bounds", r -> of(awayFrom(r, 0.01, new double[] {-0.5, 0.5}, 4, 5)),
                        x -> Ops.clamp(x[0], -0.5, 0.5)),
                gc("clamp with min only", r -> of(awayFrom(r, 0.01, new double[] {0.1}, 4, 5)),
                        x -> Ops.clamp(x[0], 0.1, Double.NaN)),
                gc("clamp with max only", r -> of(awayFrom(r, 0.01, new double[] {-0.2}, 4, 5)),
                        x -> Ops.clamp(x[0], Double.NaN, -0.2)));
    }

    @TestFactory
    Stream<DynamicTest> reductionsAndCumulativeSums() {
        return Stream.of(
                gc("sum of all", r -> of(randn(r, 2, 3, 4)), x -> Ops.sum(x[0], null, false)),
                gc("sum over axes 0 and 2, keep dims", r -> of(randn(r, 2, 3, 4)),
                        x -> Ops.sum(x[0], new int[] {0, 2}, true)),
                gc("sum over a transposed view", r -> of(transposedLayout(randn(r, 4, 3))),
                        x -> Ops.sum(x[0], new int[] {1}, false)),
                gc("mean over axis 1", r -> of(randn(r, 2, 3, 4)), x -> Ops.mean(x[0], new int[] {1}, false)),
                gc("mean of all", r -> of(randn(r, 3, 5)), x -> Ops.mean(x[0], null, false)),
                gc("max over axis 1", r -> of(distinct(r, 3, 5)), x -> Ops.max(x[0], new int[] {1}, false)),
                gc("max over axes 0 and 2, keep dims", r -> of(distinct(r, 3, 2, 4)),
                        x -> Ops.max(x[0], new int[] {0, 2}, true)),
                gc("min of all", r -> of(distinct(r, 3, 4)), x -> Ops.min(x[0], null, false)),
                gc("min over the last axis", r -> of(distinct(r, 2, 3, 4)), x -> Ops.min(x[0], new int[] {-1}, true)),
                gc("cumsum along axis 0", r -> of(randn(r, 4, 3)), x -> Ops.cumsum(x[0], 0)),
                gc("cumsum along axis 1, reversed", r -> of(randn(r, 3, 5)), x -> Ops.cumsum(x[0], 1, true)),
                gc("cumsum along the last axis of a 3-d view", r -> of(transposedLayout(randn(r, 4, 3, 2))),
                        x -> Ops.cumsum(x[0], -1)));
    }

    @TestFactory
    Stream<DynamicTest> matrixProducts() {
        return Stream.of(
                gc("matmul [4,5] x [5,3]", r -> of(randn(r, 4, 5), randn(r, 5, 3)), x -> Ops.matmul(x[0], x[1])),
                gc("matmul of column-major views", r -> of(transposedLayout(randn(r, 4, 5)), transposedLayout(randn(r, 5, 3))),
                        x -> Ops.matmul(x[0], x[1])),
                gc("matmul batched [3,2,4] x [3,4,2]", r -> of(randn(r, 3, 2, 4), randn(r, 3, 4, 2)),
                        x -> Ops.matmul(x[0], x[1])),
                gc("matmul broadcast [2,1,3,4] x [3,4,2]", r -> of(randn(r, 2, 1, 3, 4), randn(r, 3, 4, 2)),
                        x -> Ops.matmul(x[0], x[1])),
                gc("matmul of permuted 4-d views whose batch dimensions cannot merge",
                        r -> of(randn(r, 3, 2, 2, 4), randn(r, 2, 3, 4, 3)),
                        x -> Ops.matmul(Ops.permute(x[0], 1, 0, 2, 3), x[1])),
                gc("matmul matrix [3,4] x batch [2,4,2]", r -> of(randn(r, 3, 4), randn(r, 2, 4, 2)),
                        x -> Ops.matmul(x[0], x[1])));
    }

    @TestFactory
    Stream<DynamicTest> viewsAndShapeOps() {
        return Stream.of(
                gc("reshape of a non-contiguous view", r -> of(transposedLayout(randn(r, 3, 4))),
                        x -> Ops.reshape(x[0], 2, 6)),
                gc("flatten from axis 1", r -> of(randn(r, 2, 3, 2)), x -> Ops.flatten(x[0], 1)),
                gc("unsqueeze then squeeze", r -> of(randn(r, 3, 4)),
                        x -> Ops.mul(Ops.unsqueeze(x[0], 1), Ops.squeeze(Ops.unsqueeze(x[0], 0), 0))),
                gc("permute", r -> of(randn(r, 2, 3, 4)), x -> Ops.permute(x[0], 2, 0, 1)),
                gc("transpose", r -> of(randn(r, 2, 3, 4)), x -> Ops.transpose(x[0], 0, 2)),
                gc("slice", r -> of(randn(r, 3, 6)), x -> Ops.slice(x[0], 1, 2, 5)),
                gc("select", r -> of(randn(r, 3, 4, 2)), x -> Ops.select(x[0], 1, 2)),
                gc("expand", r -> of(randn(r, 3, 1)), x -> Ops.expand(x[0], 2, 3, 4)),
                gc("contiguous of a transposed view", r -> of(transposedLayout(randn(r, 3, 4))),
                        x -> Ops.contiguous(x[0])),
                gc("concat of three along axis 1", r -> of(randn(r, 2, 1, 3), randn(r, 2, 2, 3), randn(r, 2, 3, 3)),
                        x -> Ops.concat(1, x)),
                gc("concat of a tensor with itself", r -> of(randn(r, 2, 3)), x -> Ops.concat(0, x[0], x[0])),
                gc("indexSelect with repeated indices", r -> of(randn(r, 4, 3)),
                        x -> Ops.indexSelect(x[0], 0, Tensor.ofInts(new int[] {3, 0, 3, 1, 3}, 5))),
                gc("indexSelect along axis 1", r -> of(randn(r, 2, 5)),
                        x -> Ops.indexSelect(x[0], 1, Tensor.ofInts(new int[] {4, 4, 0}, 3))),
                gc("copyTo the same device", r -> of(randn(r, 3, 4)), x -> Ops.mul(Ops.copyTo(x[0], Device.CPU), x[0])),
                gc("cast float64 to float64", r -> of(randn(r, 3, 4)), x -> Ops.exp(Ops.cast(x[0], DType.FLOAT64))));
    }

    @TestFactory
    Stream<DynamicTest> linearAndConvolution() {
        return Stream.of(
                gc("linear with bias", r -> of(randn(r, 3, 4), randn(r, 2, 4), randn(r, 2)),
                        x -> NnOps.linear(x[0], x[1], x[2])),
                gc("linear without bias on a 3-d input", r -> of(randn(r, 2, 3, 4), randn(r, 2, 4)),
                        x -> NnOps.linear(x[0], x[1], null)),
                gc("conv2d 3x3 pad 1 with bias", r -> of(randn(r, 2, 2, 5, 4), randn(r, 3, 2, 3, 3), randn(r, 3)),
                        x -> NnOps.conv2d(x[0], x[1], x[2], 1, 1, 1)),
                gc("conv2d 3x3 stride 2 pad 1", r -> of(randn(r, 1, 2, 7, 6), randn(r, 2, 2, 3, 3)),
                        x -> NnOps.conv2d(x[0], x[1], null, 2, 1, 1)),
                gc("conv2d 3x3 dilation 2 pad 2", r -> of(randn(r, 1, 2, 7, 7), randn(r, 2, 2, 3, 3), randn(r, 2)),
                        x -> NnOps.conv2d(x[0], x[1], x[2], 1, 2, 2)),
                gc("conv2d 7x7 stride 2 pad 3 (ResNet stem)", r -> of(randn(r, 1, 2, 11, 10), randn(r, 2, 2, 7, 7)),
                        x -> NnOps.conv2d(x[0], x[1], null, 2, 3, 1)),
                gc("conv2d 1x1 stride 2", r -> of(randn(r, 2, 3, 5, 5), randn(r, 2, 3, 1, 1)),
                        x -> NnOps.conv2d(x[0], x[1], null, 2, 0, 1)),
                gc("conv2d asymmetric stride, padding and dilation", r -> of(randn(r, 1, 2, 7, 6),
                                randn(r, 2, 2, 3, 2), randn(r, 2)),
                        x -> NnOps.conv2d(x[0], x[1], x[2], new ConvParams(2, 1, 1, 0, 1, 2))),
                gc("conv2d of a non-contiguous input", r -> of(transposedLayout(randn(r, 1, 2, 4, 5)),
                                randn(r, 2, 2, 3, 3)),
                        x -> NnOps.conv2d(x[0], x[1], null, 1, 1, 1)));
    }

    @TestFactory
    Stream<DynamicTest> batchNormPoolingAndNormalisation() {
        return Stream.of(
                gc("batchNorm2d training", r -> of(randn(r, 3, 2, 2, 3), uniform(r, 0.5, 1.5, 2), randn(r, 2)),
                        x -> NnOps.batchNorm2d(x[0], x[1], x[2], null, null, true, 0.1, 1e-5)),
                gc("batchNorm2d training without affine", r -> of(randn(r, 2, 3, 2, 2)),
                        x -> NnOps.batchNorm2d(x[0], null, null, null, null, true, 0.1, 1e-5)),
                gc("batchNorm2d eval", r -> of(randn(r, 2, 2, 2, 3), uniform(r, 0.5, 1.5, 2), randn(r, 2)),
                        x -> NnOps.batchNorm2d(x[0], x[1], x[2], Tensor.ofDoubles(new double[] {0.3, -0.2}, 2),
                                Tensor.ofDoubles(new double[] {1.5, 0.7}, 2), false, 0.1, 1e-5)),
                gc("batchNorm2dAct training with residual and relu", r -> of(randn(r, 3, 2, 2, 3),
                        uniform(r, 0.5, 1.5, 2), randn(r, 2), randn(r, 3, 2, 2, 3)),
                        x -> NnOps.batchNorm2dAct(x[0], x[1], x[2], null, null, true, 0.1, 1e-5, x[3], true)),
                gc("batchNorm2dAct eval with relu", r -> of(randn(r, 2, 2, 2, 3), uniform(r, 0.5, 1.5, 2),
                        randn(r, 2)), x -> NnOps.batchNorm2dAct(x[0], x[1], x[2],
                        Tensor.ofDoubles(new double[] {0.3, -0.2}, 2), Tensor.ofDoubles(new double[] {1.5, 0.7}, 2),
                        false, 0.1, 1e-5, null, true)),
                gc("maxPool2d 3x3 stride 2 pad 1", r -> of(distinct(r, 1, 2, 7, 6)), x -> NnOps.maxPool2d(x[0], 3, 2, 1)),
                gc("maxPool2d 2x2 stride 2", r -> of(distinct(r, 2, 1, 4, 5)), x -> NnOps.maxPool2d(x[0], 2, 2, 0)),
                gc("avgPool2d 3x3 stride 2 pad 1 counting padding", r -> of(randn(r, 1, 2, 7, 6)),
                        x -> NnOps.avgPool2d(x[0], 3, 2, 1, true)),
                gc("avgPool2d 3x3 stride 2 pad 1 excluding padding", r -> of(randn(r, 1, 2, 7, 6)),
                        x -> NnOps.avgPool2d(x[0], 3, 2, 1, false)),
                gc("adaptiveAvgPool2d 7x7 to 3x3", r -> of(randn(r, 1, 2, 7, 7)), x -> NnOps.adaptiveAvgPool2d(x[0], 3, 3)),
                gc("adaptiveAvgPool2d 5x7 to 3x2", r -> of(randn(r, 2, 1, 5, 7)), x -> NnOps.adaptiveAvgPool2d(x[0], 3, 2)),
                gc("adaptiveAvgPool2d 3x4 up to 5x6", r -> of(randn(r, 1, 1, 3, 4)),
                        x -> NnOps.adaptiveAvgPool2d(x[0], 5, 6)),
                gc("l2Normalize rows", r -> of(randn(r, 3, 5)), x -> NnOps.l2Normalize(x[0], 1, 1e-12)),
                gc("l2Normalize along axis 0", r -> of(randn(r, 4, 2, 3)), x -> NnOps.l2Normalize(x[0], 0, 1e-12)));
    }
}
