package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Properties;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GeM pooling against PyTorch (tests/fixtures/make_method_fixtures.py writes fixtures/gem/*),
 * in float64 (the scalar path) and float32 (the vectorised kernels), forward and gradients for
 * x and p; plus a finite-difference check of dL/dp.
 */
class GemFixtureTest {
    static final List<String> CASES = List.of("p3_relu_activations", "p2_5_relu_activations", "p1_is_average",
            "p6_negative_inputs_clamped", "p3_single_pixel");

    static Tensor read(String c, String stem) {
        try (InputStream in = GemFixtureTest.class.getResourceAsStream("/fixtures/gem/" + c + "/" + stem + ".npy")) {
            if (in == null) {
                throw new IllegalStateException("missing fixture gem/" + c + "/" + stem
                        + ".npy; run /usr/bin/python3 tests/fixtures/make_method_fixtures.py");
            }
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static double eps(String c) {
        Properties p = new Properties();
        try (InputStream in = GemFixtureTest.class.getResourceAsStream("/fixtures/gem/" + c + "/case.properties")) {
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Double.parseDouble(p.getProperty("eps"));
    }

    private static void check(String c, DType dtype, Closeness tol) {
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = read(c, "x").to(dtype).detach().requiresGrad(true);
            Tensor p = read(c, "p").to(dtype).detach().requiresGrad(true);
            Tensor y = NnOps.gem(x, p, eps(c));
            tol.assertClose(c + " out", read(c, "out"), y);
            y.backward(read(c, "grad_out").to(dtype));
            tol.assertClose(c + " grad x", read(c, "grad_x"), x.grad());
            tol.assertClose(c + " grad p", read(c, "grad_p"), p.grad());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"p3_relu_activations", "p2_5_relu_activations", "p1_is_average",
        "p6_negative_inputs_clamped", "p3_single_pixel"})
    void gemMatchesPyTorchInFloat64(String c) {
        check(c, DType.FLOAT64, new Closeness(1e-10, 1e-12, true));
    }

    @ParameterizedTest
    @ValueSource(strings = {"p3_relu_activations", "p2_5_relu_activations", "p1_is_average",
        "p6_negative_inputs_clamped", "p3_single_pixel"})
    void gemVectorKernelsMatchPyTorchInFloat32(String c) {
        check(c, DType.FLOAT32, new Closeness(2e-4, 2e-5, true));
    }

    @Test
    void gemGradientOfPMatchesFiniteDifferences() {
        Random rng = new Random(3);
        double[] xv = new double[2 * 3 * 9 * 17]; // 153 per plane: exercises vector body and tail
        for (int i = 0; i < xv.length; i++) {
            xv[i] = Math.abs(rng.nextGaussian()) + 0.05;
        }
        double p0 = 2.7;
        double h = 1e-6;
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.ofDoubles(xv, 2, 3, 9, 17);
            Tensor p = Tensor.ofDoubles(new double[] {p0}, 1).requiresGrad(true);
            NnOps.gem(x, p, 1e-6).sum().backward();
            double analytic = p.grad().item();
            double up = NnOps.gem(x, Tensor.ofDoubles(new double[] {p0 + h}, 1), 1e-6).sum().item();
            double down = NnOps.gem(x, Tensor.ofDoubles(new double[] {p0 - h}, 1), 1e-6).sum().item();
            assertEquals((up - down) / (2 * h), analytic, 1e-7 * Math.max(1, Math.abs(analytic)));
            // the float32 kernels on the same data agree with the float64 path
            Tensor xf = x.to(DType.FLOAT32);
            Tensor pf = Tensor.of(new float[] {(float) p0}, 1).requiresGrad(true);
            NnOps.gem(xf, pf, 1e-6).sum().backward();
            assertEquals(analytic, pf.grad().item(), 1e-3 * Math.abs(analytic));
        }
    }
}
