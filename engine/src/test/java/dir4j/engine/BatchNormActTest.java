package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * {@link NnOps#batchNorm2dAct}, the training-time batch norm with the residual add and ReLU of a
 * ResNet block fused (one graph node; on the CPU one normalising pass and a backward that applies
 * the ReLU's mask inside batch norm's passes): its output, running statistics and every gradient
 * must be exactly, bit for bit, those of the three ops in turn ({@link NnOps#batchNorm2d},
 * {@link Ops#add}, {@link Ops#relu}), which are checked against PyTorch and finite differences
 * elsewhere. Float32 runs the CPU's fused kernels; float64 the Backend's default composition (the
 * path other backends take). GradientCheckTest checks the fused op against central differences.
 */
class BatchNormActTest {

    /** One case's tensors: the input, the affine parameters, running statistics, a residual, dy. */
    private record Case(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor residual,
                        Tensor upstream) {
        static Case random(long seed, DType dtype, boolean withResidual, int... shape) {
            Random r = new Random(seed);
            int c = shape[1];
            Tensor x = Tensor.randn(r, shape).mul(1.7).add(0.3).to(dtype);
            return new Case(x, Tensor.uniform(r, 0.5, 1.5, c).to(dtype), Tensor.uniform(r, -1, 1, c).to(dtype),
                    Tensor.uniform(r, -0.5, 0.5, c).to(dtype), Tensor.uniform(r, 0.5, 2, c).to(dtype),
                    withResidual ? Tensor.randn(r, shape).to(dtype) : null, Tensor.randn(r, shape).to(dtype));
        }

        /** Fresh leaves requiring grad (and fresh running statistics), so two runs never share state. */
        Tensor[] leaves() {
            return new Tensor[] {copy(x).requiresGrad(true), copy(gamma).requiresGrad(true),
                copy(beta).requiresGrad(true), copy(runningMean), copy(runningVar),
                residual == null ? null : copy(residual).requiresGrad(true)};
        }

        private static Tensor copy(Tensor t) {
            return Ops.cloneDetached(t);
        }
    }

    /** Output, running mean and variance after the forward, then the gradients of x, γ, β, residual. */
    private static double[][] run(Case k, boolean training, boolean relu, boolean fused) {
        Tensor[] l = k.leaves();
        Tensor y;
        if (fused) {
            y = NnOps.batchNorm2dAct(l[0], l[1], l[2], l[3], l[4], training, 0.1, 1e-5, l[5], relu);
        } else {
            y = NnOps.batchNorm2d(l[0], l[1], l[2], l[3], l[4], training, 0.1, 1e-5);
            if (l[5] != null) {
                y = Ops.add(y, l[5]);
            }
            if (relu) {
                y = Ops.relu(y);
            }
        }
        y.backward(k.upstream);
        return new double[][] {y.toDoubleArray(), l[3].toDoubleArray(), l[4].toDoubleArray(),
            l[0].grad().toDoubleArray(), l[1].grad().toDoubleArray(), l[2].grad().toDoubleArray(),
            l[5] == null ? new double[0] : l[5].grad().toDoubleArray()};
    }

    private static final String[] PARTS = {"output", "running mean", "running var", "dx", "dgamma", "dbeta",
        "dresidual"};

    @ParameterizedTest(name = "{0}, training {1}, residual {2}, relu {3}, shape {4}")
    @CsvSource({
        // planes of 63 values: two 16-lane vector pairs, a single vector and a scalar tail
        "FLOAT32, true, true, true, 3x5x7x9", "FLOAT32, true, false, true, 3x5x7x9",
        "FLOAT32, true, true, false, 3x5x7x9", "FLOAT32, true, false, false, 3x5x7x9",
        // whole vectors only, and planes shorter than a vector
        "FLOAT32, true, true, true, 2x4x16x16", "FLOAT32, true, true, true, 4x3x3x3",
        // frozen batch norm (the reference's training recipe) with a graph
        "FLOAT32, false, true, true, 3x5x7x9", "FLOAT32, false, false, true, 2x4x16x16",
        // the Backend's default composition (float64 on the CPU)
        "FLOAT64, true, true, true, 3x5x7x9", "FLOAT64, true, false, false, 3x5x7x9",
        "FLOAT64, false, true, true, 3x5x7x9"})
    void fusedEqualsTheThreeOpsBitForBit(DType dtype, boolean training, boolean withResidual, boolean relu,
                                         String shape) {
        String[] dims = shape.split("x");
        int[] s = new int[dims.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = Integer.parseInt(dims[i]);
        }
        try (MemoryScope scope = MemoryScope.open()) {
            Case k = Case.random(11 + s[3], dtype, withResidual, s);
            double[][] want = run(k, training, relu, false);
            double[][] got = run(k, training, relu, true);
            for (int i = 0; i < PARTS.length; i++) {
                assertArrayEquals(want[i], got[i], PARTS[i]);
            }
            if (relu) {
                long zeros = java.util.Arrays.stream(got[0]).filter(v -> v == 0).count();
                assertTrue(zeros > got[0].length / 10 && zeros < got[0].length * 9 / 10,
                        "the case must exercise both sides of the ReLU's kink: " + zeros + " zeros of " + got[0].length);
            }
        }
    }

    @Test
    void nanAndInfinityInTheUpstreamGradientFollowTheReluProduct() {
        // the ReLU's backward is a product with the mask (as Backend.reluBackward), so a NaN dy
        // where the output is 0 still gives NaN: the fused backward must keep that, not select
        try (MemoryScope scope = MemoryScope.open()) {
            Case k = Case.random(5, DType.FLOAT32, true, 2, 3, 5, 7);
            double[] dy = k.upstream.toDoubleArray();
            dy[3] = Double.NaN;
            dy[40] = Double.POSITIVE_INFINITY;
            dy[41] = Double.NEGATIVE_INFINITY;
            Case nan = new Case(k.x, k.gamma, k.beta, k.runningMean, k.runningVar, k.residual,
                    Tensor.ofDoubles(dy, k.upstream.shape()).to(DType.FLOAT32));
            double[][] want = run(nan, true, true, false);
            double[][] got = run(nan, true, true, true);
            for (int i = 0; i < PARTS.length; i++) {
                assertArrayEquals(want[i], got[i], PARTS[i]);
            }
            assertTrue(Double.isNaN(got[6][3]), "a NaN upstream gradient reaches the residual");
        }
    }

    @Test
    void withoutGradTheResultIsTheSameAndNoGraphIsKept() {
        try (MemoryScope scope = MemoryScope.open();
             var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            Case k = Case.random(3, DType.FLOAT32, true, 2, 4, 6, 6);
            Tensor y = NnOps.batchNorm2dAct(k.x, k.gamma, k.beta, null, null, true, 0.1, 1e-5, k.residual, true);
            Tensor want = Ops.relu(Ops.add(NnOps.batchNorm2d(k.x, k.gamma, k.beta, null, null, true, 0.1, 1e-5),
                    k.residual));
            assertArrayEquals(want.toFloatArray(), y.toFloatArray());
            assertNull(y.gradFn());
        }
    }

    @Test
    void badOperandsAreRefusedWithTheirShapes() {
        try (MemoryScope scope = MemoryScope.open()) {
            Case k = Case.random(1, DType.FLOAT32, false, 1, 2, 3, 3);
            Tensor wrong = Tensor.zeros(1, 2, 3, 1);
            String m = assertThrows(IllegalArgumentException.class, () -> NnOps.batchNorm2dAct(k.x, k.gamma, k.beta,
                    null, null, true, 0.1, 1e-5, wrong, true)).getMessage();
            assertTrue(m.contains("residual [1, 2, 3, 1]") && m.contains("[1, 2, 3, 3]"), m);
            Tensor one = Tensor.zeros(1, 2, 1, 1);
            m = assertThrows(IllegalArgumentException.class, () -> NnOps.batchNorm2dAct(one, null, null, null, null,
                    true, 0.1, 1e-5, null, true)).getMessage();
            assertTrue(m.contains("more than one value per channel"), m);
            m = assertThrows(IllegalArgumentException.class, () -> NnOps.batchNorm2dAct(k.x, k.gamma, k.beta, null,
                    null, false, 0.1, 1e-5, null, true)).getMessage();
            assertTrue(m.contains("running mean and variance"), m);
            assertEquals(4, k.x.rank());
        }
    }
}
