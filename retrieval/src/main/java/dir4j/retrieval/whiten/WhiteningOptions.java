package dir4j.retrieval.whiten;

/**
 * How a PCA whitening is applied, the reference's {@code whitenp}, {@code whitenv} and
 * {@code whitenm} (dirtorch/utils/common.py {@code transform}): the projection onto the first
 * {@code components} axes is divided by {@code multiplier · variance^power}.
 *
 * @param power      whitenp: exponent of the explained variance; 0.5 is full whitening, 0 none;
 *                   dirtorch/test_dir.py's default is 0.25
 * @param components whitenv: number of leading components kept, like Python's {@code [:v]}
 *                   (more than there are keeps them all); {@link #ALL_COMPONENTS} for all
 * @param multiplier whitenm: a common divisor of every component; it cancels out when the result
 *                   is L2-normalised, as it is in the retrieval pipeline
 */
public record WhiteningOptions(double power, int components, double multiplier) {
    /** whitenv = None: keep every component. */
    public static final int ALL_COMPONENTS = Integer.MAX_VALUE;

    /** dirtorch/test_dir.py's defaults: whitenp 0.25, all components, whitenm 1.0. */
    public static final WhiteningOptions DEFAULTS = new WhiteningOptions(0.25, ALL_COMPONENTS, 1.0);

    public WhiteningOptions {
        if (components < 1) {
            throw new IllegalArgumentException("the number of whitening components must be positive, got "
                    + components);
        }
        if (!Double.isFinite(power) || !Double.isFinite(multiplier) || multiplier == 0) {
            throw new IllegalArgumentException("whitening power must be finite and multiplier finite and non-zero, got "
                    + power + ", " + multiplier);
        }
    }
}
