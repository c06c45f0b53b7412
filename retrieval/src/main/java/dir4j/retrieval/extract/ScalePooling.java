package dir4j.retrieval.extract;

/**
 * Combines one image's descriptors at several scales as the reference's
 * {@code dirtorch.utils.common.pool(descs, 'gem', gemp)} followed by {@code F.normalize}: a
 * generalized mean with sign, element by element,
 * {@code y = sympow(mean_s sympow(x_s, p), 1/p)} with
 * {@code sympow(x, p) = sign(x) · max(|x|, 1e-6)^p} (0 stays 0), then L2 normalisation
 * {@code y / max(‖y‖, 1e-12)}. One scale is returned normalised, unchanged otherwise.
 *
 * <p>As in the reference, the outer {@code sympow} clamps the mean's magnitude to 1e-6: an element
 * whose mean of p-th powers is smaller than that comes out as ±1e-6^(1/p) (±0.01 at p = 3) before
 * the normalisation, and one whose mean is within rounding of zero gets the sign rounding gives it.
 * This sums in double, the reference in float32, so such elements can differ in sign between the two
 * (about 1 in 2,000 of ResNet-101's elements over three scales were that close to zero in
 * bench/dirtorch_side_by_side.py; bench/RESULTS.md, session 21).
 */
public final class ScalePooling {
    private static final double EPS = 1e-6;
    private static final double NORM_EPS = 1e-12;

    private ScalePooling() {}

    /**
     * @param perScale descriptors of one image, [scales][D]
     * @param p        the generalized-mean exponent (the reference's {@code --gemp}, 3 by default)
     * @return the combined unit descriptor [D]
     */
    public static float[] combine(float[][] perScale, double p) {
        if (perScale.length == 0) {
            throw new IllegalArgumentException("no scale to combine");
        }
        int d = perScale[0].length;
        double[] acc = new double[d];
        if (perScale.length == 1) {
            for (int i = 0; i < d; i++) {
                acc[i] = perScale[0][i];
            }
        } else {
            if (!(p > 0) || Double.isInfinite(p)) {
                throw new IllegalArgumentException("the scale-pooling exponent must be positive and finite, got " + p);
            }
            for (float[] x : perScale) {
                if (x.length != d) {
                    throw new IllegalArgumentException("descriptors of different sizes: " + d + " and " + x.length);
                }
                for (int i = 0; i < d; i++) {
                    acc[i] += sympow(x[i], p);
                }
            }
            for (int i = 0; i < d; i++) {
                acc[i] = sympow(acc[i] / perScale.length, 1 / p);
            }
        }
        double norm = 0;
        for (double v : acc) {
            norm += v * v;
        }
        double scale = 1 / Math.max(Math.sqrt(norm), NORM_EPS);
        float[] out = new float[d];
        for (int i = 0; i < d; i++) {
            out[i] = (float) (acc[i] * scale);
        }
        return out;
    }

    /** {@code (x·s).clamp(min=eps).pow(p)·s} with {@code s = sign(x)}. */
    static double sympow(double x, double p) {
        double s = Math.signum(x);
        return Math.pow(Math.max(x * s, EPS), p) * s;
    }
}
