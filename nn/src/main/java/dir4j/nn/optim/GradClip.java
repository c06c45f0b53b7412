package dir4j.nn.optim;

import dir4j.engine.Backend;
import dir4j.engine.Tensor;
import java.util.List;

/** Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_. */
public final class GradClip {
    private GradClip() {}

    /**
     * Scales every gradient by min(1, maxNorm / (‖g‖₂ + 1e−6)) where ‖g‖₂ is the norm of all
     * gradients together; returns that norm (before clipping). NaN/∞ norms are an error naming
     * the first non-finite parameter index.
     */
    public static double clipNorm(List<Tensor> params, double maxNorm) {
        double sq = 0;
        for (int i = 0; i < params.size(); i++) {
            Tensor g = params.get(i).grad();
            if (g == null) {
                continue;
            }
            double s = 0;
            for (double v : g.toDoubleArray()) {
                s += v * v;
            }
            if (!Double.isFinite(s)) {
                throw new ArithmeticException("clipNorm: gradient of parameter " + i + " " + g
                        + " is not finite");
            }
            sq += s;
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
