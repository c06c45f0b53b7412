package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backends;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs one function of tensors on the CPU and on cuda:0 with the same inputs and compares the
 * outputs and, for an upstream gradient, the gradients of every floating input.
 */
final class GpuParity {
    static final Device GPU = Device.cuda(0);

    /**
     * Channels-last convolution shapes {k, s, p, ci, co, h, w} covering every ResNet kind (1×1,
     * 3×3, the 7×7/2 stem with 3 and 4 input channels, strides 1 and 2) and odd channel counts.
     */
    static final int[][] NHWC_CONV_SHAPES = {
        {1, 1, 0, 64, 256, 14, 14}, {1, 2, 0, 64, 128, 15, 15}, {3, 1, 1, 32, 64, 9, 11}, {3, 2, 1, 16, 48, 13, 12},
        {7, 2, 3, 3, 64, 37, 33}, {7, 2, 3, 4, 64, 30, 30}, {3, 1, 1, 5, 7, 6, 6}};

    /** Elementwise results (one rounding each): 1e-5 relative, 1e-6 absolute. */
    static final Tol ELEMENTWISE = new Tol(1e-5, 1e-6, false);
    /** Sums over many float32 terms: 1e-4 relative, 1e-5 absolute scaled by the largest |expected|. */
    static final Tol ACCUMULATED = new Tol(1e-4, 1e-5, true);
    /** TF32 tensor-core products (10-bit mantissas). */
    static final Tol TF32 = new Tol(5e-3, 5e-3, true);
    /** float64 against float64. */
    static final Tol DOUBLE = new Tol(1e-11, 1e-12, true);

    private GpuParity() {}

    /** |actual − expected| ≤ rtol·|expected| + atol (atol × max(1, max|expected|) when scaled). */
    record Tol(double rtol, double atol, boolean scaled) {}

    /**
     * Skips (or, with -Ddir4j.gpu.required=true as the GPU check script sets, fails) when CUDA
     * is not usable here, naming why.
     */
    static void requireGpu() {
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.usable()) {
            String why = "CUDA is not usable here: " + a.reason();
            if (Boolean.getBoolean("dir4j.gpu.required")) {
                fail(why);
            }
            Assumptions.abort(why);
        }
    }

    static CudaBackend backend() {
        return (CudaBackend) Backends.of(GPU);
    }

    static Tensor randn(long seed, int... shape) {
        return Tensor.randn(new Random(seed), shape);
    }

    static void assertClose(String what, Tol tol, double[] expected, double[] actual) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double scale = 1;
        if (tol.scaled()) {
            for (double e : expected) {
                if (Double.isFinite(e)) {
                    scale = Math.max(scale, Math.abs(e));
                }
            }
        }
        double atol = tol.atol() * scale;
        int bad = 0;
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double v = actual[i];
            boolean ok = Double.isNaN(e) ? Double.isNaN(v) : e == v || Math.abs(v - e) <= tol.rtol() * Math.abs(e) + atol;
            if (!ok) {
                bad++;
                double excess = Double.isNaN(v) ? Double.POSITIVE_INFINITY : Math.abs(v - e) / (tol.rtol() * Math.abs(e) + atol);
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + expected.length + " values differ beyond rtol " + tol.rtol() + ", atol "
                    + atol + "; worst at flat index " + worst + ": cuda " + actual[worst] + ", cpu " + expected[worst]);
        }
    }

    static void assertClose(String what, Tol tol, Tensor cpu, Tensor gpu) {
        assertArrayEquals(cpu.shape(), gpu.shape(), what + ": shape");
        if (gpu.device().kind() != Device.Kind.CUDA) {
            fail(what + ": the CUDA result is on " + gpu.device());
        }
        assertClose(what, tol, cpu.toDoubleArray(), gpu.toDoubleArray());
    }

    /** The same values on cuda:0 as a fresh leaf (requiring grad when the CPU one does). */
    static Tensor onGpu(Tensor cpu) {
        Tensor g;
        try (Tensor d = cpu.detach()) {
            g = d.to(GPU);
        }
        return cpu.requiresGrad() ? g.requiresGrad(true) : g;
    }

    /**
     * f on CPU leaves and on their GPU copies: the outputs agree within {@code forward}, and
     * after back-propagating the same random upstream gradient, so do the gradients of every
     * input that requires grad (within {@code backward}; null skips the backward).
     */
    static void check(String name, Tol forward, Tol backward, Function<Tensor[], Tensor> f, Tensor... cpuInputs) {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor[] gpuInputs = new Tensor[cpuInputs.length];
            for (int i = 0; i < cpuInputs.length; i++) {
                gpuInputs[i] = onGpu(cpuInputs[i]);
            }
            Tensor yc = f.apply(cpuInputs);
            Tensor yg = f.apply(gpuInputs);
            assertClose(name + " forward", forward, yc, yg);
            if (backward == null || !yc.requiresGrad()) {
                return;
            }
            Tensor up = yc.dtype() == DType.FLOAT64
                    ? Tensor.ofDoubles(randn(99, yc.shape()).toDoubleArray(), yc.shape()) : randn(99, yc.shape());
            yc.backward(up);
            yg.backward(onGpu(up));
            for (int i = 0; i < cpuInputs.length; i++) {
                if (cpuInputs[i].requiresGrad()) {
                    if (cpuInputs[i].grad() == null || gpuInputs[i].grad() == null) {
                        fail(name + " backward: input " + i + " got no gradient on " + (cpuInputs[i].grad() == null
                                ? "the CPU" : "CUDA"));
                    }
                    assertClose(name + " backward, input " + i, backward, cpuInputs[i].grad(), gpuInputs[i].grad());
                }
            }
        } finally {
            for (Tensor t : cpuInputs) {
                t.zeroGrad();
            }
        }
    }
}
