package dir4j.retrieval.whiten;

/**
 * A PCA as the fields of a fitted {@code sklearn.decomposition.PCA} hold it, which is how the
 * reference's checkpoints store their whitening (the {@code pca} entry, one PCA per training
 * set): the checkpoint reader hands these arrays over unchanged.
 *
 * @param mean              {@code mean_}, length D
 * @param components        {@code components_}, K x D row-major: the principal axes, by
 *                          decreasing variance
 * @param explainedVariance {@code explained_variance_}, length K: the variance along each axis
 * @param whiten            {@code whiten}: whether the projection is divided by the variances'
 *                          power (the reference's PCAs are fitted with whiten=True)
 */
public record PcaParameters(double[] mean, double[] components, double[] explainedVariance, boolean whiten) {
    public PcaParameters {
        if (mean.length == 0) {
            throw new IllegalArgumentException("PCA mean_ is empty");
        }
        if ((long) explainedVariance.length * mean.length != components.length) {
            throw new IllegalArgumentException("PCA components_ has " + components.length + " values, not "
                    + explainedVariance.length + " components (explained_variance_) x " + mean.length
                    + " dimensions (mean_)");
        }
        mean = mean.clone();
        components = components.clone();
        explainedVariance = explainedVariance.clone();
    }

    /** Descriptor dimension D. */
    public int dimension() {
        return mean.length;
    }

    /** Number of components K. */
    public int componentCount() {
        return explainedVariance.length;
    }

    @Override
    public double[] mean() {
        return mean.clone();
    }

    @Override
    public double[] components() {
        return components.clone();
    }

    @Override
    public double[] explainedVariance() {
        return explainedVariance.clone();
    }
}
