package dir4j.nn.optim;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_. */
public final class GradClip {
    private GradClip() {}

    /**
     * Scales every gradient by min(1, maxNorm / (‖g‖₂ + 1e−6)) where ‖g‖₂ is the norm of all
     * gradients together; returns that norm (before clipping). NaN/∞ norms are an error naming
     * the first non-finite parameter index.
     *
     * <p>Each gradient's sum of squares is reduced where the gradient is; the sums of one device
     * come back to the host together, so clipping a network on a GPU waits for the device once,
     * not once per parameter.
     */
    public static double clipNorm(List<Tensor> params, double maxNorm) {
        double[] squares = new double[params.size()];
        try (MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            Map<Device, List<Integer>> byDevice = new LinkedHashMap<>();
            Map<Device, List<Tensor>> sums = new LinkedHashMap<>();
            for (int i = 0; i < params.size(); i++) {
                Tensor g = params.get(i).grad();
                if (g == null) {
                    continue;
                }
                byDevice.computeIfAbsent(g.device(), d -> new ArrayList<>()).add(i);
                // squares in float64: a float32 gradient of 1e20 has a finite norm. The cast and the
                // squares (16 bytes a parameter) are freed at once, only the sum is kept
                try (MemoryScope one = MemoryScope.open()) {
                    Tensor g64 = g.dtype() == DType.FLOAT64 ? g : Ops.cast(g, DType.FLOAT64);
                    sums.computeIfAbsent(g.device(), d -> new ArrayList<>())
                            .add(one.keep(Ops.reshape(Ops.sum(Ops.mul(g64, g64), null, false), 1)));
                }
            }
            for (var e : sums.entrySet()) {
                double[] got = Ops.concat(0, e.getValue().toArray(Tensor[]::new)).toDoubleArray();
                List<Integer> index = byDevice.get(e.getKey());
                for (int j = 0; j < got.length; j++) {
                    squares[index.get(j)] = got[j];
                }
            }
        }
        double sq = 0;
        for (int i = 0; i < params.size(); i++) {
            if (!Double.isFinite(squares[i])) {
                throw new ArithmeticException("clipNorm: gradient of parameter " + i + " " + params.get(i).grad()
                        + " is not finite");
            }
            sq += squares[i];
        }
        double norm = Math.sqrt(sq);
        double coef = maxNorm / (norm + 1e-6);
        if (coef < 1) {
            for (Tensor p : params) {
                Tensor g = p.grad();
                if (g != null) {
                    g.backend().unary(Backend.Unary.AFFINE, g, coef, 0, g);
                }
            }
        }
        return norm;
    }
}
