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
        // every parameter is checked and the failures listed together: the first alone (conv1,
        // where every later error arrives) does not say where a wrong gradient starts
        java.util.List<String> failures = new java.util.ArrayList<>();
        for (var e : cpu.namedParameters().entrySet()) {
            Tensor g = pg.get(e.getKey()).grad();
            org.junit.jupiter.api.Assertions.assertTrue(g != null, e.getKey() + ": no gradient on CUDA (" + what + ")");
            try {
                assertClose("grad " + e.getKey() + " (" + what + ")", gradient, e.getValue().grad(), g);
            } catch (AssertionError err) {
                failures.add(err.getMessage());
            }
        }
        if (!failures.isEmpty()) {
            fail(failures.size() + " parameter gradients differ, in the order of the parameters (first 12, the "
                    + "last one): " + String.join("; ", failures.subList(0, Math.min(12, failures.size())))
                    + (failures.size() > 12 ? "; ... " + failures.get(failures.size() - 1) : ""));
        }
        assertBuffersMatch(what, cpu, gpu, forward, batches);
    }

    /**
     * After one training step with batch statistics, each parameter's CUDA gradient within
     * {@code gradient} of the CPU's elementwise, or else within {@code relativeL2} of it in
     * Euclidean norm (|cuda − cpu| ≤ relativeL2·|cpu|). The second criterion is for deep networks
     * with batch norm over a few values per channel: a forward value that rounds to the other side
     * of zero on one device flips a ReLU's mask, which changes a batch-norm sum by a whole dy
     * element and moves earlier gradients by up to a few per cent in places. Measured on the CPU
     * for ResNetChannelsLastGpuTest's network (ResNet-50 at width 8, 4 images of 64²): conv
     * weights perturbed by 1e-6 relative (the size of one device's rounding against another's)
     * put all 159 of its parameter gradients beyond 2e-3 elementwise, the worst 2.5% off in norm;
     * by 1e-7, none. On the H200 (2026-11-30) 104 were beyond. A wrong gradient is off by about its
     * own norm. Every failure is listed and the largest relative error printed; buffers as
     * {@link #assertGradientsAndBuffersMatch}.
     */
    public static void assertGradientsClose(String what, Module cpu, Module gpu, Tol forward, Tol gradient,
                                            double relativeL2, double batches) {
        Map<String, Tensor> pg = gpu.namedParameters();
        java.util.List<String> failures = new java.util.ArrayList<>();
        double worstRelative = 0;
        for (var e : cpu.namedParameters().entrySet()) {
            Tensor g = pg.get(e.getKey()).grad();
            org.junit.jupiter.api.Assertions.assertTrue(g != null, e.getKey() + ": no gradient on CUDA (" + what + ")");
            double[] want = e.getValue().grad().toDoubleArray();
            double[] got = g.toDoubleArray();
            double norm = 0;
            double error = 0;
            for (int i = 0; i < want.length; i++) {
                norm += want[i] * want[i];
                error += (got[i] - want[i]) * (got[i] - want[i]);
            }
            double relative = Double.isNaN(error) ? Double.POSITIVE_INFINITY : Math.sqrt(error / Math.max(norm, 1e-300));
            worstRelative = Math.max(worstRelative, relative);
            try {
                assertClose("grad " + e.getKey() + " (" + what + ")", gradient, want, got);
            } catch (AssertionError err) {
                if (!(relative <= relativeL2)) {
                    failures.add(err.getMessage() + " (|cuda - cpu| / |cpu| = " + relative + ")");
                }
            }
        }
        System.out.println(what + ": largest |cuda - cpu| / |cpu| over the parameter gradients " + worstRelative);
        if (!failures.isEmpty()) {
            fail(failures.size() + " parameter gradients differ beyond rtol " + gradient.rtol() + " elementwise and "
                    + relativeL2 + " in norm, in the order of the parameters (first 12): "
                    + String.join("; ", failures.subList(0, Math.min(12, failures.size()))));
        }
        assertBuffersMatch(what, cpu, gpu, forward, batches);
    }

    /** Every buffer within {@code forward} of the CPU's, and {@code batches} counted by each batch norm. */
    private static void assertBuffersMatch(String what, Module cpu, Module gpu, Tol forward, double batches) {
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
