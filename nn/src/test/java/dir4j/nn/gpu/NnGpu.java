package dir4j.nn.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.EngineInfo;
import dir4j.engine.Tensor;
import dir4j.engine.cuda.CudaBackend;
import dir4j.nn.Module;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;

/**
 * GPU-parity helpers for network tests (the nn copy of the engine's GpuParity): skip or fail
 * when CUDA is unusable, compare CPU and CUDA tensors within stated tolerances, give batch norms
 * non-trivial statistics.
 */
public final class NnGpu {
    public static final Device GPU = Device.cuda(0);

    private NnGpu() {}

    /** |actual − expected| ≤ rtol·|expected| + atol·max(1, max|expected|). */
    public record Tol(double rtol, double atol) {}

    /**
     * Skips (or, with -Ddir4j.gpu.required=true as the GPU check script sets, fails) when CUDA
     * is not usable here, naming why.
     */
    public static void requireGpu() {
        String status;
        try {
            status = EngineInfo.cudaStatus();
        } catch (RuntimeException | LinkageError e) {
            status = "status failed: " + e;
        }
        if (!status.startsWith("usable")) {
            String why = "CUDA is not usable here: " + status;
            if (Boolean.getBoolean("dir4j.gpu.required")) {
                fail(why);
            }
            Assumptions.abort(why);
        }
    }

    public static CudaBackend backend() {
        return (CudaBackend) Backends.of(GPU);
    }

    /** Strict float32 on the GPU (TF32 off for convolutions and matrix products), for parity with the CPU. */
    public static void strictFloat32() {
        backend().setTf32(false);
    }

    public static void assertClose(String what, Tol tol, double[] expected, double[] actual) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double scale = 1;
        for (double e : expected) {
            if (Double.isFinite(e)) {
                scale = Math.max(scale, Math.abs(e));
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

    /**
     * After one training forward and backward of the same network on the CPU and on CUDA: every
     * parameter has a gradient on CUDA within {@code gradient} of the CPU's, and every buffer
     * (running statistics) within {@code forward}, with {@code batches} counted by each batch norm.
     */
    public static void assertGradientsAndBuffersMatch(String what, Module cpu, Module gpu, Tol forward, Tol gradient,
                                                      double batches) {
        Map<String, Tensor> pg = gpu.namedParameters();
        for (var e : cpu.namedParameters().entrySet()) {
            Tensor g = pg.get(e.getKey()).grad();
            org.junit.jupiter.api.Assertions.assertTrue(g != null, e.getKey() + ": no gradient on CUDA (" + what + ")");
            assertClose("grad " + e.getKey() + " (" + what + ")", gradient, e.getValue().grad(), g);
        }
        Map<String, Tensor> bg = gpu.namedBuffers();
        for (var e : cpu.namedBuffers().entrySet()) {
            if (e.getKey().endsWith("num_batches_tracked")) {
                org.junit.jupiter.api.Assertions.assertEquals(batches, bg.get(e.getKey()).item(),
                        e.getKey() + " (" + what + ")");
            } else {
                assertClose(e.getKey() + " after one training forward (" + what + ")", forward, e.getValue(),
                        bg.get(e.getKey()));
            }
        }
    }

    public static void assertClose(String what, Tol tol, Tensor cpu, Tensor gpu) {
        assertArrayEquals(cpu.shape(), gpu.shape(), what + ": shape");
        if (gpu.device().kind() != Device.Kind.CUDA) {
            fail(what + ": the CUDA result is on " + gpu.device());
        }
        assertClose(what, tol, cpu.toDoubleArray(), gpu.toDoubleArray());
    }

    /**
     * Random batch-norm affine parameters and running statistics (mean N(0, 0.2²), variance and
     * weight in [0.5, 1.5), bias N(0, 0.1²)), the same for the same seed, written in place.
     */
    public static void randomiseBatchNorms(Module net, long seed) {
        Random rng = new Random(seed);
        for (Map.Entry<String, Tensor> e : net.stateDict().entrySet()) {
            String k = e.getKey();
            Tensor t = e.getValue();
            boolean bn = k.contains("bn") || k.contains("downsample.1");
            if (!bn || t.dtype() != dir4j.engine.DType.FLOAT32) {
                continue;
            }
            float[] v = new float[(int) t.numel()];
            for (int i = 0; i < v.length; i++) {
                double g = rng.nextGaussian();
                double u = rng.nextDouble();
                v[i] = (float) (k.endsWith("running_mean") ? 0.2 * g
                        : k.endsWith("bias") ? 0.1 * g : 0.5 + u);
            }
            try (Tensor src = Tensor.of(v, t.shape())) {
                t.backend().copy(src, t);
            }
        }
    }
}
