package dir4j.retrieval.whiten;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.CpuThreads;
import dir4j.engine.cpu.CpuVectors;
import dir4j.engine.cpu.Sgemm;
import dir4j.retrieval.search.DescriptorMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * PCA whitening of descriptors, as the reference applies it (dirtorch/utils/common.py
 * {@code transform} and {@code whiten_features}):
 *
 * <pre>
 *   y = (x − mean) · components[:v]ᵀ / (m · variance[:v]^p),   then y / ‖y‖
 * </pre>
 *
 * with p, v, m from {@link WhiteningOptions}. A whitening is either imported from a reference
 * checkpoint's sklearn PCA ({@link #of(PcaParameters)}) or learned from descriptors
 * ({@link #learn}), which yields the fields sklearn's {@code PCA(whiten=True).fit} would.
 *
 * <p>Precision: the mean is float64; the covariance is accumulated in float64 from float32
 * SGEMM products of 256-row blocks of centred descriptors. Applying is float32: rows centred on
 * the mean, one SGEMM with the components already divided by their m · variance^p (made once per
 * setting and kept), then each row scaled to unit length.
 */
public final class PcaWhitening {
    private static final int LEARN_BLOCK = 256;
    private static final int APPLY_BLOCK = 4096;

    private static final VectorSpecies<Float> SPECIES = CpuVectors.FLOAT;
    /** Doubles of the same vector width as {@link #SPECIES}. */
    private static final VectorSpecies<Double> DOUBLES = VectorSpecies.of(double.class,
            jdk.incubator.vector.VectorShape.forBitSize(SPECIES.vectorBitSize()));

    private final PcaParameters pca;
    private final int rank;
    /** The operands of the last setting applied (immutable; a race makes them twice at worst). */
    private volatile Projection projection;

    private PcaWhitening(PcaParameters pca, int rank) {
        this.pca = pca;
        this.rank = rank;
    }

    /** A whitening from the fields of a fitted sklearn PCA (the reference's checkpoint entry). */
    public static PcaWhitening of(PcaParameters pca) {
        return new PcaWhitening(pca, usableComponents(pca));
    }

    /**
     * Learns a PCA from N x D descriptors (N ≥ 2): the mean, the eigenvectors of the covariance
     * Σ(x − mean)ᵀ(x − mean) / (N − 1) by decreasing eigenvalue ({@link SymmetricEigen}:
     * LAPACK's dsyevd where installed, else EJML), min(N, D) of them as sklearn keeps, each signed so its entry of largest
     * magnitude is positive (sklearn ≥ 1.5's rule); the eigenvalues are the explained variances.
     * Beyond the span of the rows (one fewer than the distinct rows, {@link #rankBound}) the
     * variances are set to exactly zero (sklearn's are rounding's), and whitening along those axes
     * would divide by zero: keep fewer components ({@link WhiteningOptions#components}).
     * Cost: one D x D eigendecomposition (for D = 2048 on two cores about 1 s with LAPACK, 10 s
     * with EJML), after the covariance's products.
     */
    public static PcaWhitening learn(Tensor descriptors) {
        DescriptorMatrix x = DescriptorMatrix.of(descriptors);
        int n = x.rows();
        int d = x.cols();
        if (n < 2) {
            throw new IllegalArgumentException("learning a PCA needs at least 2 descriptors, got " + n);
        }
        double[] mean = columnMeans(x);
        SymmetricEigen.Decomposition eig = SymmetricEigen.of(covariance(x, mean), d);
        double[] values = eig.values();
        double[] vectors = eig.vectors();
        Integer[] order = IntStream.range(0, d).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -values[i]));
        int kept = Math.min(n, d);
        int rank = rankBound(descriptors);
        double[] components = new double[kept * d];
        double[] variance = new double[kept];
        for (int c = 0; c < kept; c++) {
            int i = order[c];
            // beyond the rows' span the eigenvalues are rounding (of float32 products: up to ~1e-7 of the largest,
            // either sign); they are zero
            variance[c] = c < rank ? Math.max(0, values[i]) : 0;
            int v = i * d;
            int largest = 0;
            for (int j = 1; j < d; j++) {
                if (Math.abs(vectors[v + j]) > Math.abs(vectors[v + largest])) {
                    largest = j;
                }
            }
            double sign = vectors[v + largest] < 0 ? -1 : 1;
            double norm = 0;
            for (int j = 0; j < d; j++) {
                norm += vectors[v + j] * vectors[v + j];
            }
            double scale = sign / Math.sqrt(norm);
            for (int j = 0; j < d; j++) {
                components[c * d + j] = vectors[v + j] * scale;
            }
        }
        return new PcaWhitening(new PcaParameters(mean, components, variance, true), rank);
    }

    /**
     * How many components a PCA learned from {@code descriptors} can whiten: the number of
     * distinct rows less one (the centred rows span no more), at most the dimension. Beyond it
     * the learned variances are zero up to rounding, and dividing by them makes noise, or NaN,
     * of every descriptor (N ≤ D, or repeated descriptors).
     */
    public static int rankBound(Tensor descriptors) {
        DescriptorMatrix x = DescriptorMatrix.of(descriptors);
        float[] v = x.data();
        int d = x.cols();
        // rows by the hash of their bits (FloatBuffer's hash truncates each value to an int: every unit row
        // would share one bucket), equal rows found by comparing within a bucket
        java.util.Map<Integer, java.util.List<Integer>> buckets = new java.util.HashMap<>();
        int distinct = 0;
        for (int r = 0; r < x.rows(); r++) {
            int h = 1;
            for (int j = r * d, end = j + d; j < end; j++) {
                h = 31 * h + Float.floatToIntBits(v[j]);
            }
            java.util.List<Integer> same = buckets.computeIfAbsent(h, k -> new java.util.ArrayList<>(1));
            boolean seen = false;
            for (int o : same) {
                if (java.util.Arrays.equals(v, o * d, o * d + d, v, r * d, r * d + d)) {
                    seen = true;
                    break;
                }
            }
            if (!seen) {
                same.add(r);
                distinct++;
            }
        }
        return Math.min(d, Math.max(0, distinct - 1));
    }

    /**
     * The leading components whose variance is positive and finite: whitening divides by
     * variance^p, so a component of zero variance (a PCA fitted to fewer distinct descriptors than
     * its components) turns every descriptor into NaN or noise.
     */
    public static int usableComponents(PcaParameters pca) {
        double[] variance = pca.explainedVariance();
        int usable = 0;
        while (usable < variance.length && variance[usable] > 0 && Double.isFinite(variance[usable])) {
            usable++;
        }
        return usable;
    }

    /**
     * The components this whitening can whiten along: for a learned one the span of the rows it
     * was learned from ({@link #rankBound}, found once, when learning); for one given as a PCA its
     * leading components with variance ({@link #usableComponents}).
     */
    public int rank() {
        return rank;
    }

    /** The PCA's fields (sklearn's layout), e.g. to store a learned whitening. */
    public PcaParameters parameters() {
        return pca;
    }

    /** Whitens and L2-normalises each row: the reference's {@code whiten_features} (l2norm=True). */
    public Tensor apply(Tensor descriptors, WhiteningOptions options) {
        return transform(descriptors, options, true);
    }

    /** The whitened projection without normalisation: the reference's {@code transform}. */
    public Tensor project(Tensor descriptors, WhiteningOptions options) {
        return transform(descriptors, options, false);
    }

    private Tensor transform(Tensor descriptors, WhiteningOptions options, boolean normalise) {
        int d = pca.dimension();
        if (descriptors.rank() != 2 || descriptors.shape(1) != d) {
            throw new IllegalArgumentException("descriptors of shape " + Shape.str(descriptors.shape())
                    + " do not match a whitening of dimension " + d + " (expected N x " + d + ")");
        }
        Projection p = projection(options);
        int n = descriptors.shape(0);
        int v = p.components();
        boolean direct = descriptors.dtype() == DType.FLOAT32 && descriptors.device().equals(Device.CPU)
                && descriptors.isContiguous();
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = direct ? descriptors : DescriptorMatrix.of(descriptors).toTensor();
            Tensor out = Tensor.empty(DType.FLOAT32, Device.CPU, n, v); // freed with the scope unless returned
            MemorySegment in = x.segment();
            long inOff = x.offset();
            MemorySegment dst = out.segment();
            long outOff = out.offset();
            int blockRows = Math.min(APPLY_BLOCK, Math.max(1, n));
            MemorySegment centred = MemorySegment.ofArray(new float[blockRows * d]);
            MemorySegment axes = MemorySegment.ofArray(p.axes());
            for (int r0 = 0; r0 < n; r0 += APPLY_BLOCK) {
                int rn = Math.min(APPLY_BLOCK, n - r0);
                int first = r0;
                CpuThreads.parallelRange(rn, 64, (from, to) -> {
                    for (long r = from; r < to; r++) {
                        centre(in, (inOff + (first + r) * d) * Float.BYTES, p.mean(), centred, r * d * Float.BYTES);
                    }
                });
                // y = (x - mean) . (components / divisor)^T: B is the axes' transpose (element (j, c) at c*d + j)
                Sgemm.sgemm(rn, v, d, 1f, centred, 0, d, 1, axes, 0, 1, d,
                        0f, dst, outOff + (long) r0 * v, v);
                if (normalise) {
                    CpuThreads.parallelRange(rn, 64, (from, to) -> {
                        for (long r = from; r < to; r++) {
                            normalise(dst, (outOff + (first + r) * v) * Float.BYTES, v);
                        }
                    });
                }
            }
            return scope.keep(out);
        }
    }

    /** dst[0, d) = src[0, d) - mean, for float rows at the given byte offsets. */
    private static void centre(MemorySegment src, long srcByte, float[] mean, MemorySegment dst, long dstByte) {
        int d = mean.length;
        int j = 0;
        for (int upper = SPECIES.loopBound(d); j < upper; j += SPECIES.length()) {
            FloatVector.fromMemorySegment(SPECIES, src, srcByte + (long) j * Float.BYTES, ByteOrder.nativeOrder())
                    .sub(FloatVector.fromArray(SPECIES, mean, j))
                    .intoMemorySegment(dst, dstByte + (long) j * Float.BYTES, ByteOrder.nativeOrder());
        }
        for (; j < d; j++) {
            dst.set(ValueLayout.JAVA_FLOAT, dstByte + (long) j * Float.BYTES,
                    src.get(ValueLayout.JAVA_FLOAT, srcByte + (long) j * Float.BYTES) - mean[j]);
        }
    }

    /**
     * Scales the float row of v values at {@code byteOffset} to unit length (its squares summed
     * in float64; a row of zeros becomes NaN, which callers report, as the reference's division by
     * a zero norm would).
     */
    private static void normalise(MemorySegment row, long byteOffset, int v) {
        // squares summed in float64 lanes: a float32 sum overflows for rows beyond ~1.8e19 (a strong whitening of a
        // near-zero-variance component), which would make the row zeros instead of normalising it
        DoubleVector acc = DoubleVector.zero(DOUBLES);
        int c = 0;
        int upper = SPECIES.loopBound(v);
        for (; c < upper; c += SPECIES.length()) {
            FloatVector y = FloatVector.fromMemorySegment(SPECIES, row, byteOffset + (long) c * Float.BYTES,
                    ByteOrder.nativeOrder());
            for (int part = 0; part < SPECIES.length() / DOUBLES.length(); part++) {
                DoubleVector d = (DoubleVector) y.convertShape(VectorOperators.F2D, DOUBLES, part);
                acc = d.fma(d, acc);
            }
        }
        double norm = acc.reduceLanes(VectorOperators.ADD);
        for (int k = c; k < v; k++) {
            double y = row.get(ValueLayout.JAVA_FLOAT, byteOffset + (long) k * Float.BYTES);
            norm += y * y;
        }
        float inv = (float) (1 / Math.sqrt(norm));
        for (c = 0; c < upper; c += SPECIES.length()) {
            long at = byteOffset + (long) c * Float.BYTES;
            FloatVector.fromMemorySegment(SPECIES, row, at, ByteOrder.nativeOrder()).mul(inv)
                    .intoMemorySegment(row, at, ByteOrder.nativeOrder());
        }
        for (int k = c; k < v; k++) {
            long at = byteOffset + (long) k * Float.BYTES;
            row.set(ValueLayout.JAVA_FLOAT, at, row.get(ValueLayout.JAVA_FLOAT, at) * inv);
        }
    }

    /**
     * The whitening's float32 operands for one setting, made once and kept: the mean, and the
     * first v components each divided by its m * variance^p (1 for a PCA without whitening), v x D
     * row-major.
     */
    private record Projection(WhiteningOptions options, float[] mean, float[] axes, int components) {}

    private Projection projection(WhiteningOptions options) {
        Projection p = projection;
        if (p != null && p.options().equals(options)) {
            return p;
        }
        int d = pca.dimension();
        int v = Math.min(options.components(), pca.componentCount());
        double[] variance = pca.explainedVariance();
        double[] components = pca.components();
        float[] axes = new float[v * d];
        for (int c = 0; c < v; c++) {
            double divisor = pca.whiten() ? options.multiplier() * Math.pow(variance[c], options.power()) : 1;
            for (int j = 0; j < d; j++) {
                axes[c * d + j] = (float) (components[c * d + j] / divisor);
            }
        }
        float[] mean = new float[d];
        double[] m = pca.mean();
        for (int j = 0; j < d; j++) {
            mean[j] = (float) m[j];
        }
        p = new Projection(options, mean, axes, v);
        projection = p;
        return p;
    }

    private static double[] columnMeans(DescriptorMatrix x) {
        int d = x.cols();
        double[] mean = new double[d];
        for (int r = 0; r < x.rows(); r++) {
            for (int j = 0; j < d; j++) {
                mean[j] += x.get(r, j);
            }
        }
        for (int j = 0; j < d; j++) {
            mean[j] /= x.rows();
        }
        return mean;
    }

    /** Σ(x − mean)ᵀ(x − mean) / (N − 1), as float32 SGEMMs of row blocks summed in float64. */
    private static double[] covariance(DescriptorMatrix x, double[] mean) {
        int n = x.rows();
        int d = x.cols();
        double[] sum = new double[d * d];
        float[] product = new float[d * d];
        for (int r0 = 0; r0 < n; r0 += LEARN_BLOCK) {
            int rn = Math.min(LEARN_BLOCK, n - r0);
            float[] centred = new float[rn * d];
            for (int r = 0; r < rn; r++) {
                for (int j = 0; j < d; j++) {
                    centred[r * d + j] = (float) (x.get(r0 + r, j) - mean[j]);
                }
            }
            try (MemoryScope block = MemoryScope.open()) {
                Tensor c = Tensor.of(centred, rn, d);
                Tensor p = Ops.matmul(c.t(), c);
                MemorySegment.copy(p.segment(), ValueLayout.JAVA_FLOAT, p.offset() * Float.BYTES, product, 0, d * d);
            }
            for (int i = 0; i < sum.length; i++) {
                sum[i] += product[i];
            }
        }
        double[] cov = new double[d * d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++) {
                // symmetrise: the two triangles of a float32 product may differ in the last bit
                cov[i * d + j] = (sum[i * d + j] + sum[j * d + i]) / (2.0 * (n - 1));
            }
        }
        return cov;
    }
}
