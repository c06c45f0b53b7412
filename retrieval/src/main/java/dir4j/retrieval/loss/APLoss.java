package dir4j.retrieval.loss;

import dir4j.engine.Backend;
import dir4j.engine.Backend.ApBins;
import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.NnOps;
import dir4j.engine.Ops;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;

/**
 * The listwise AP loss of Revaud et al. (ICCV 2019), as in the reference implementation: each
 * row of an N×M score matrix is one query ranking M items; scores are soft-assigned to nq
 * triangular bins (width Δ = (max − min)/(nq − 1), centres from max down to min, the end bins
 * saturating), giving per query n_k and n⁺_k; precision P_k = cumsum(n⁺)_k / cumsum(n)_k,
 * recall increments r_k = n⁺_k / Σn⁺, AP = Σ_k P_k·r_k, and the loss is 1 − mean(AP·weight).
 *
 * <p>Differences from the reference, all documented: queries without any positive (whose AP is
 * 0/0 = NaN there) are excluded from the mean and counted in {@link Result#excluded()};
 * {@code excludeSelf} leaves out score (i, i) when queries are the database; the N×2nq×M
 * quantisation tensor is never formed (see {@link NnOps#apHistogram}).
 *
 * <p>For looking inside the loss: {@link Result} holds each query's histograms and quantised AP
 * beside the loss; the histograms alone come from {@link NnOps#apHistogram}(x, labels,
 * {@link #bins()}, {@link #excludesSelf()}), x being the scores after the distance map when
 * {@link #distance()}. Under {@link dir4j.engine.autograd.Autograd#noGrad()} nothing is recorded
 * for a backward. The loss runs on the device of its inputs (move them with
 * {@code Tensor.to(Device.cuda(0))} for CUDA). The quantiser, the reference's triangular bins, is
 * fixed (fused into the backends' kernels); a subclass can change the AP computed from the
 * histograms by overriding {@link #apFromHistogram}, as {@link TAPLoss} does.
 */
public class APLoss {
    /** Defaults of the reference: 25 bins over [0, 1]. */
    public static final int DEFAULT_NQ = 25;

    /** Default memory budget of the blocked path's per-block buffers: 512 MiB. */
    public static final long DEFAULT_BLOCK_BYTES = 512L << 20;
    /** {@link #forward(Tensor, int[], Tensor)} takes the blocked path above this N (and on CUDA). */
    public static final int DEFAULT_BLOCKED_ABOVE = 4096;

    private final ApBins bins;
    private final boolean distance;
    private final boolean excludeSelf;
    private long blockBytes = DEFAULT_BLOCK_BYTES;
    private int blockedAbove = DEFAULT_BLOCKED_ABOVE;
    private Boolean eagerGradient;

    /**
     * The reference's APLoss(nq, min, max): scores as they are, every score of a row in its ranking.
     *
     * @param nq  number of bins, 2 … 100 ({@link #DEFAULT_NQ} in the reference)
     * @param min centre of the lowest bin (finite; scores below it weigh fully in that bin)
     * @param max centre of the highest bin (finite, above min; scores above it weigh fully in that bin)
     * @throws IllegalArgumentException for nq outside [2, 100], min ≥ max, NaN or an infinite end
     */
    public APLoss(int nq, double min, double max) {
        this(nq, min, max, false, false);
    }

    /**
     * The AP loss with the distance variant and self-match exclusion.
     *
     * @param nq          number of bins, 2 … 100
     * @param min         centre of the lowest bin (finite), on the scale after the distance map if any
     * @param max         centre of the highest bin (finite, above min)
     * @param distance    score → 1 − √(2.001 − 2s) first (the reference's APLoss_dist)
     * @param excludeSelf leave out score (i, i): queries are the first N database items
     * @throws IllegalArgumentException for nq outside [2, 100], min ≥ max, NaN or an infinite end
     */
    public APLoss(int nq, double min, double max, boolean distance, boolean excludeSelf) {
        this.bins = new ApBins(nq, min, max);
        this.distance = distance;
        this.excludeSelf = excludeSelf;
    }

    /** The bins (nq, min, max): {@link NnOps#apHistogram} takes them to give the histograms alone. */
    public ApBins bins() {
        return bins;
    }

    /** Whether the distance variant (score → 1 − √(2.001 − 2s) before the bins) is used. */
    public boolean distance() {
        return distance;
    }

    /** Whether each query's match with itself is left out. */
    public boolean excludesSelf() {
        return excludeSelf;
    }

    /**
     * The memory budget of the blocked path: bytes for the R×N buffers of one block, the scores
     * and their gradient (labels are read from the class numbers), and the distance variant's
     * mapped scores; R = budget / (buffers·N·element size), at least 1. When R ≥ N the one
     * block's scores are kept from the forward for the backward (no recomputation).
     */
    public APLoss withBlockBudget(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("AP loss: block budget must be positive, got " + bytes);
        }
        this.blockBytes = bytes;
        return this;
    }

    /**
     * {@link #forward(Tensor, int[], Tensor)} takes the blocked path for N above this (default
     * {@value #DEFAULT_BLOCKED_ABOVE}); descriptors on a CUDA device always take it. 0: always.
     *
     * @throws IllegalArgumentException for a negative n
     */
    public APLoss withBlockedAbove(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("AP loss: the blocked-path threshold must be 0 (always) or more, got "
                    + n);
        }
        this.blockedAbove = n;
        return this;
    }

    /** Query rows per block of the blocked path for N descriptors of this element size. */
    public int blockRows(int n, int elementBytes) {
        long buffers = distance ? 3 : 2;
        long r = blockBytes / (buffers * Math.max(1, n) * elementBytes);
        return (int) Math.max(1, Math.min(n, r));
    }

    /**
     * The loss and its by-products.
     *
     * @param loss      1 − mean over included queries of AP·weight (a scalar in the graph)
     * @param ap        per-query AP [N] (NaN for excluded queries), detached
     * @param histogram [N, 2, nq]: n_k and n⁺_k, detached
     * @param excluded  queries left out for having no positive
     */
    public record Result(Tensor loss, Tensor ap, Tensor histogram, int excluded) {}

    /**
     * The loss of scores [N, M] (N queries, each ranking M items; N ≠ M allowed) against labels
     * [N, M] (1 = positive, 0 = negative; same dtype and device as the scores); queryWeights [N]
     * (finite, any sign; 0 keeps the query in the mean's count but not in its sum, as in the
     * reference) may be null. Differentiable in the scores; under
     * {@link dir4j.engine.autograd.Autograd#noGrad()} no graph is recorded. Runs where the
     * scores are (a CUDA tensor runs on its device).
     *
     * @throws IllegalArgumentException naming what is wrong: shapes that differ or are not N×M,
     *         N or M = 0, NaN or infinite scores or weights, labels other than 0 and 1, or no
     *         query with a positive
     */
    public Result forward(Tensor scores, Tensor labels, Tensor queryWeights) {
        return forwardScores(scores, labels, queryWeights, false);
    }

    /** {@link #forward(Tensor, Tensor, Tensor)}; fromDescriptors: the scores are D·Dᵀ with same-class labels. */
    private Result forwardScores(Tensor scores, Tensor labels, Tensor queryWeights, boolean fromDescriptors) {
        if (scores.rank() != 2 || !java.util.Arrays.equals(scores.shape(), labels.shape())) {
            throw new IllegalArgumentException("AP loss: scores " + Shape.str(scores.shape()) + " and labels "
                    + Shape.str(labels.shape()) + " must both be N×M");
        }
        requireFloating("scores", scores);
        if (labels.dtype() != scores.dtype()) {
            throw new IllegalArgumentException("AP loss: labels are " + labels.dtype() + " but the scores "
                    + scores.dtype() + "; convert the labels with .to(DType." + scores.dtype().name() + ")");
        }
        int n = scores.shape(0);
        if (n == 0 || scores.shape(1) == 0) {
            throw new IllegalArgumentException("AP loss: scores " + Shape.str(scores.shape()) + " hold "
                    + (n == 0 ? "no query (N = 0)" : "no item to rank (M = 0)"));
        }
        checkWeights(queryWeights, n);
        checkFinite(scores, fromDescriptors);
        if (!fromDescriptors) {
            checkLabels(labels);
        }
        Tensor x = distance ? Ops.affine(Ops.sqrt(Ops.affine(scores, -2, 2.001)), -1, 1) : scores;
        Tensor lab = labels;
        if (excludeSelf) {
            lab = labelsWithoutDiagonal(labels);
        }
        Tensor hist = NnOps.apHistogram(x, lab, bins, excludeSelf);
        Tensor positives = Ops.sum(lab, new int[] {1}, false);
        return fromHistogram(hist, positives, queryWeights, scores.dtype(), fromDescriptors);
    }

    /** The loss, AP and exclusions from histograms [N, 2, nq] and positive counts [N]. */
    private Result fromHistogram(Tensor hist, Tensor positives, Tensor queryWeights, DType dtype,
                                 boolean fromClasses) {
        int n = hist.shape(0);
        Tensor c = Ops.select(hist, 1, 0);
        Tensor cp = Ops.select(hist, 1, 1);
        // a query with no positive gets denominator 1 (finite, gradient 0), then is left out
        Tensor none = Ops.equal(positives, Tensor.zeros(positives.dtype(), positives.device()));
        Tensor ap = apFromHistogram(c, cp, Ops.add(positives, none));
        double[] noneMask = none.toDoubleArray();
        int[] keep = java.util.stream.IntStream.range(0, n).filter(i -> noneMask[i] == 0).toArray();
        if (keep.length == 0) {
            throw noPositive(n, fromClasses);
        }
        Tensor weighted = queryWeights == null ? ap : Ops.mul(ap, queryWeights);
        Tensor kept = keep.length == n ? weighted
                : Ops.indexSelect(weighted, 0, Tensor.ofInts(keep, keep.length).to(weighted.device()));
        Tensor loss = Ops.affine(Ops.mean(kept, null, false), -1, 1);
        double[] apv = ap.toDoubleArray();
        for (int i = 0; i < n; i++) {
            if (noneMask[i] != 0) {
                apv[i] = Double.NaN;
            }
        }
        Tensor apReport = dtype == DType.FLOAT64 ? Tensor.ofDoubles(apv, n) : Tensor.ofDoubles(apv, n).to(dtype);
        return new Result(loss, apReport, hist.detach(), n - keep.length);
    }

    /**
     * The loss of descriptors [N, D] (rows L2-normalised) with integer class ids: S = D·Dᵀ,
     * label (i, j) = [class_i == class_j]. Takes the blocked path ({@link #forwardBlocked}, the
     * same loss and dL/dD without the N×N matrices) when the descriptors are on a CUDA device or
     * N exceeds {@link #withBlockedAbove the threshold}; otherwise forms S and the labels.
     */
    public Result forward(Tensor descriptors, int[] classIds, Tensor queryWeights) {
        checkDescriptors(descriptors, classIds);
        int n = descriptors.shape(0);
        if (n > blockedAbove || descriptors.device().kind() == dir4j.engine.Device.Kind.CUDA) {
            return forwardBlocked(descriptors, classIds, queryWeights,
                    blockRows(n, descriptors.dtype() == DType.FLOAT64 ? 8 : 4));
        }
        // NaN or ±∞ descriptors are named by row, as on the blocked path
        Tensor sum;
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            sum = Ops.sum(descriptors, null, false);
        }
        requireFinite(sum, descriptors, true);
        Tensor scores = Ops.gram(descriptors);
        return forwardScores(scores, sameClass(classIds, descriptors.dtype()), queryWeights, true);
    }

    /**
     * The loss of descriptors [N, D] with class ids by blocks of {@code rows} query rows, never
     * storing an N×N matrix (memory O(rows·N + N·D)); the same loss, AP, histograms and dL/dD as
     * {@code forward(Ops.gram(D), sameClass(ids), weights)}.
     *
     * <p>Forward: per block, S_b = D_b·Dᵀ [R, N] (one GEMM) and the histograms of its queries,
     * labels read from the class numbers (the self-match of query r0 + r at column r0 + r). The
     * loss follows from the [N, 2, nq] histograms, and so does dL/dhist: for the AP loss in one
     * pass per query ({@link Backend#apLossFromHistogram}), for subclasses with their own
     * {@link #apFromHistogram} through its graph. Backward (run when the graph is
     * back-propagated): since S and the labels are symmetric, block b's rows of
     * dL/dD = (G + Gᵀ)·D are H_b·D with H_b = G[b, :] + G[:, b]ᵀ [R, N], both parts from S_b in
     * one pass ({@link Backend#apHistogramBackwardSymmetric}: each score gets its row query's and
     * its column query's term) and one GEMM; S_b is recomputed (one more GEMM), or kept from the
     * forward when one block covers all rows (two GEMMs in all, as the full path's gram). The
     * GEMMs run in the backend's precision: on CUDA strict float32 as PyTorch's default, TF32
     * tensor cores with {@code -Ddir4j.cuda.tf32=true} or CudaBackend.setTf32(true) (about 1e-3
     * relative error in the scores; {@code dir4j aploss --tf32}).
     *
     * <p>Query weights are taken as constants here (no gradient for them).
     */
    public Result forwardBlocked(Tensor descriptors, int[] classIds, Tensor queryWeights, int rows) {
        checkDescriptors(descriptors, classIds);
        int n = descriptors.shape(0);
        if (rows < 1) {
            throw new IllegalArgumentException("AP loss: block rows must be ≥ 1, got " + rows);
        }
        // the query weights, read now, before the blocks are queued (read after them, a device's
        // weights would wait for all of the blocks' work); the fused path takes them as coefficients
        double[] hostWeights = checkWeights(queryWeights, n);
        // NaN or ±∞ among the descriptors: summed on the device now and read where the APs are
        // read anyway (on CUDA one wait for the device per loss, not two)
        Tensor finite;
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            finite = Ops.sum(descriptors, null, false);
        }
        DType dtype = descriptors.dtype();
        dir4j.engine.Device device = descriptors.device();
        // dense class numbers (exact in float32 below 2^24) and positives per query
        double[] classOf = new double[n];
        int[] count = new int[n];
        denseClasses(classIds, classOf, count);
        double[] positives = new double[n];
        for (int i = 0; i < n; i++) {
            positives[i] = count[(int) classOf[i]] - (excludeSelf ? 1 : 0);
        }
        boolean grad = dir4j.engine.autograd.Autograd.isGradEnabled() && descriptors.requiresGrad();
        Tensor ids = onDevice(classOf, dtype, device);
        Tensor hist = Tensor.empty(dtype, device, n, 2, bins.nq());
        Tensor[] kept = null;
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            for (int r0 = 0; r0 < n; r0 += rows) {
                int r1 = Math.min(n, r0 + rows);
                try (MemoryScope block = MemoryScope.open()) {
                    Tensor x = blockScores(descriptors, r0, r1);
                    try (Tensor h = Ops.slice(hist, 0, r0, r1)) {
                        descriptors.backend().apHistogram(x, blockLabels(ids, r0, r1), bins, diagonal(r0), h);
                    }
                    if (grad && r1 - r0 == n) {
                        kept = new Tensor[] {block.keep(x)};
                    }
                }
            }
        }
        Tensor w = queryWeights == null ? null : queryWeights.detach();
        Tensor gradHist;
        Result small;
        if (fusedHistogramLoss()) {
            QueuedLoss queued = queueLossFromHistogram(hist, positives, hostWeights);
            if (grad && eagerGradient(device)) {
                return forwardEagerGradient(descriptors, ids, hist, positives, queued, finite, rows, kept);
            }
            try {
                small = readLoss(queued, hist, positives, finite, descriptors);
            } catch (RuntimeException e) {
                // NaN/∞ descriptors: the queued gradient and the kept scores go now, not with the caller's scope
                queued.gradHist().close();
                if (kept != null) {
                    kept[0].close();
                }
                throw e;
            }
            gradHist = queued.gradHist();
            if (!grad) {
                gradHist.close();
                return small;
            }
        } else {
            requireFinite(finite, descriptors, true);
            Tensor pos = onDevice(positives, dtype, device);
            if (!grad) {
                try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                    return fromHistogram(hist, pos, w, dtype, true);
                }
            }
            // the loss as a function of the histograms; its gradient is what the blocks need
            Tensor leaf = hist.detach().requiresGrad(true);
            small = fromHistogram(leaf, pos, w, dtype, true);
            dir4j.engine.autograd.Autograd.backward(small.loss(), null);
            gradHist = leaf.grad();
            small = new Result(Ops.cloneDetached(small.loss()), small.ap(), small.histogram(), small.excluded());
        }
        Tensor loss = small.loss();
        Tensor[] keptBlock = kept;
        Tensor gh0 = gradHist;
        dir4j.engine.autograd.Autograd.record("apLossBlocked", loss, new Tensor[] {descriptors}, g -> {
            try (Tensor gh = Ops.mul(gh0, g)) {
                return new Tensor[] {blockedGradient(descriptors, ids, gh, rows, keptBlock)};
            }
        });
        return new Result(loss, small.ap(), small.histogram(), small.excluded());
    }

    /**
     * The fused path with dL/dD computed before the APs are read back: the device runs the
     * forward and the backward without waiting for the host in between (on CUDA the read of the
     * APs waits for the device, and the host's work that followed it, the loss and the autograd
     * record, left the device idle before the backward's kernels were queued). The backward of
     * the graph then only scales dL/dD by the upstream gradient.
     */
    private Result forwardEagerGradient(Tensor descriptors, Tensor ids, Tensor hist, double[] positives,
                                        QueuedLoss queued, Tensor finite, int rows, Tensor[] kept) {
        Tensor dD;
        try (Tensor gradHist = queued.gradHist()) {
            dD = blockedGradient(descriptors, ids, gradHist, rows, kept);
        } catch (RuntimeException e) {
            queued.ap().close();
            throw e;
        } finally {
            if (kept != null) {
                kept[0].close();
            }
        }
        Result small;
        try {
            small = readLoss(queued, hist, positives, finite, descriptors); // waits for the device, dL/dD included
        } catch (RuntimeException e) {
            dD.close();
            throw e;
        }
        dir4j.engine.autograd.Autograd.record("apLossBlocked", small.loss(), new Tensor[] {descriptors},
                g -> new Tensor[] {Ops.mul(dD, g)});
        return small;
    }

    /**
     * Whether the fused blocked path computes dL/dD with the forward ({@link #withEagerGradient}):
     * the setting, or by default on devices whose work runs asynchronously to the host (CUDA).
     */
    private boolean eagerGradient(dir4j.engine.Device device) {
        return eagerGradient != null ? eagerGradient : device.kind() == dir4j.engine.Device.Kind.CUDA;
    }

    /**
     * Whether the blocked path of the AP loss computes dL/dD during the forward when the
     * descriptors require a gradient ({@code null}, the default: on CUDA devices only). On CUDA
     * the forward must read the APs back (to check the descriptors and report the APs), and
     * queueing the backward's kernels before that read keeps the device busy through it; the
     * graph's backward then scales the stored dL/dD by the upstream gradient. The cost: dL/dD
     * [N, D] is computed and held even if backward is never called. Same loss, APs and
     * gradients either way.
     */
    public APLoss withEagerGradient(Boolean eager) {
        this.eagerGradient = eager;
        return this;
    }

    /**
     * Whether {@link #forwardBlocked} takes the AP and dL/dhist from the backend's one-pass
     * {@link Backend#apLossFromHistogram} (this class's {@link #apFromHistogram}); a subclass
     * with its own AP formula goes through its graph.
     */
    protected boolean fusedHistogramLoss() {
        return getClass() == APLoss.class;
    }

    /**
     * What {@link #queueLossFromHistogram} left on the device: the APs [N] and dL/dhist [N, 2, nq]
     * for an upstream gradient of 1, with the per-query coefficients dL/dAP and the queries kept.
     */
    private record QueuedLoss(Tensor ap, Tensor gradHist, double[] coef, int kept) {}

    /**
     * Queues the AP and dL/dhist of histograms [N, 2, nq], one pass per query (see
     * {@link Backend#apLossFromHistogram}): dL/dAP_q = −w_q / (queries kept), 0 for the excluded
     * ones. Nothing is read back here.
     */
    private QueuedLoss queueLossFromHistogram(Tensor hist, double[] positives, double[] w) {
        int n = hist.shape(0);
        int keptQueries = 0;
        for (double p : positives) {
            keptQueries += p > 0 ? 1 : 0;
        }
        if (keptQueries == 0) {
            throw noPositive(n, true);
        }
        double[] coef = new double[n];
        for (int i = 0; i < n; i++) {
            coef[i] = positives[i] > 0 ? -(w == null ? 1 : w[i]) / keptQueries : 0;
        }
        DType dtype = hist.dtype();
        Tensor ap = Tensor.empty(dtype, hist.device(), n);
        Tensor g = Tensor.empty(dtype, hist.device(), n, 2, bins.nq());
        try (Tensor c = onDevice(coef, dtype, hist.device())) {
            hist.backend().apLossFromHistogram(hist, c, ap, g);
        }
        return new QueuedLoss(ap, g, coef, keptQueries);
    }

    /**
     * The loss, AP report and exclusions of a queued loss: reads the APs back (waiting for the
     * device), then checks {@code finite} (the descriptors' sum) and sums the loss in double.
     */
    private Result readLoss(QueuedLoss queued, Tensor hist, double[] positives, Tensor finite, Tensor descriptors) {
        int n = hist.shape(0);
        DType dtype = hist.dtype();
        double[] apv = queued.ap().toDoubleArray();
        queued.ap().close();
        requireFinite(finite, descriptors, true);
        // loss = 1 − Σ_kept w·AP / kept = 1 + Σ coef·AP, summed in double
        double value = 1;
        for (int i = 0; i < n; i++) {
            if (positives[i] > 0) {
                value += queued.coef()[i] * apv[i];
            } else {
                apv[i] = Double.NaN;
            }
        }
        Tensor loss = Tensor.ofDoubles(new double[] {value});
        loss = dtype == DType.FLOAT64 ? loss : loss.to(dtype);
        loss = hist.device().kind() == dir4j.engine.Device.Kind.CPU ? loss : loss.to(hist.device());
        Tensor apReport = dtype == DType.FLOAT64 ? Tensor.ofDoubles(apv, n) : Tensor.ofDoubles(apv, n).to(dtype);
        return new Result(loss, apReport, hist.detach(), n - queued.kept());
    }

    /**
     * Numbers the classes 0, 1, … in order of first appearance into classOf and counts their
     * images; through a table when the ids span a range of a few N (the common case, and no
     * boxing on the path that runs before the first kernel of every step), else a hash map.
     */
    static void denseClasses(int[] classIds, double[] classOf, int[] count) {
        int n = classIds.length;
        int lo = Integer.MAX_VALUE;
        int hi = Integer.MIN_VALUE;
        for (int id : classIds) {
            lo = Math.min(lo, id);
            hi = Math.max(hi, id);
        }
        if (n > 0 && (long) hi - lo < 4L * n + 1024) {
            int[] table = new int[hi - lo + 1];
            int next = 0;
            for (int i = 0; i < n; i++) {
                int slot = classIds[i] - lo;
                if (table[slot] == 0) {
                    table[slot] = ++next; // 0: not seen yet
                }
                int c = table[slot] - 1;
                classOf[i] = c;
                count[c]++;
            }
            return;
        }
        java.util.Map<Integer, Integer> dense = new java.util.HashMap<>();
        for (int i = 0; i < n; i++) {
            int c = dense.computeIfAbsent(classIds[i], k -> dense.size());
            classOf[i] = c;
            count[c]++;
        }
    }

    /** dL/dD [N, D] from dL/dhist [N, 2, nq], block by block (see {@link #forwardBlocked}). */
    private Tensor blockedGradient(Tensor d, Tensor ids, Tensor gradHist, int rows, Tensor[] kept) {
        int n = d.shape(0);
        int dim = d.shape(1);
        dir4j.engine.Backend be = d.backend();
        Tensor dD = Tensor.empty(d.dtype(), d.device(), n, dim);
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            for (int r0 = 0; r0 < n; r0 += rows) {
                int r1 = Math.min(n, r0 + rows);
                int r = r1 - r0;
                try (MemoryScope block = MemoryScope.open()) {
                    Tensor x = kept != null ? kept[0] : blockScores(d, r0, r1);
                    // H_b = G[b, :] + G[:, b]ᵀ [R, N], both at the scores S_b (S is symmetric)
                    Tensor h = Tensor.empty(d.dtype(), d.device(), r, n);
                    be.apHistogramBackwardSymmetric(x, blockLabels(ids, r0, r1), bins, r0, diagonal(r0), gradHist, h);
                    if (distance) {
                        // x = 1 − √(2.001 − 2s): dx/ds = 1/√(2.001 − 2s) = 1/(1 − x)
                        Tensor slope = Ops.reciprocal(Ops.affine(x, -1, 1));
                        be.binary(Backend.Binary.MUL, h, slope, h);
                    }
                    // dD[b] = H_b·D, written in place
                    Tensor hv = h.viewOf(new int[] {1, r, n}, new long[] {(long) r * n, n, 1}, h.offset());
                    Tensor dv = d.viewOf(new int[] {1, n, dim}, new long[] {(long) n * dim, d.stride(0), d.stride(1)},
                            d.offset());
                    Tensor out = dD.viewOf(new int[] {1, r, dim}, new long[] {(long) r * dim, dim, 1},
                            dD.offset() + (long) r0 * dim);
                    be.matmul(hv, dv, out);
                }
            }
        }
        return dD;
    }

    /** The block's scores S[r0:r1, :] = D[r0:r1]·Dᵀ, through the distance map when asked. */
    private Tensor blockScores(Tensor d, int r0, int r1) {
        Tensor s = Ops.matmul(Ops.slice(d, 0, r0, r1), Ops.transpose(d, 0, 1));
        return distance ? Ops.affine(Ops.sqrt(Ops.affine(s, -2, 2.001)), -1, 1) : s;
    }

    /** Labels [class_i == class_j] of rows r0..r1 against all N, read from the dense class numbers. */
    private static Backend.ApLabels blockLabels(Tensor ids, int r0, int r1) {
        return Backend.ApLabels.sameClass(Ops.slice(ids, 0, r0, r1), ids);
    }

    private int diagonal(int r0) {
        return excludeSelf ? r0 : Backend.AP_KEEP_ALL;
    }

    private static Tensor onDevice(double[] v, DType dtype, dir4j.engine.Device device) {
        Tensor t = Tensor.ofDoubles(v, v.length);
        Tensor c = dtype == DType.FLOAT64 ? t : t.to(dtype);
        return device.kind() == dir4j.engine.Device.Kind.CPU ? c : c.to(device);
    }

    private static void checkDescriptors(Tensor descriptors, int[] classIds) {
        if (descriptors.rank() != 2 || descriptors.shape(0) != classIds.length) {
            throw new IllegalArgumentException("AP loss: descriptors " + Shape.str(descriptors.shape()) + " and "
                    + classIds.length + " class ids must agree in N");
        }
        requireFloating("descriptors", descriptors);
        if (classIds.length == 0) {
            throw new IllegalArgumentException("AP loss: descriptors " + Shape.str(descriptors.shape())
                    + " hold no query (N = 0)");
        }
    }

    private static void requireFloating(String what, Tensor t) {
        if (t.dtype() != DType.FLOAT32 && t.dtype() != DType.FLOAT64) {
            throw new IllegalArgumentException("AP loss: " + what + " must be float32 or float64, got "
                    + Shape.str(t.shape()) + " " + t.dtype());
        }
    }

    /**
     * Checks the query weights' shape ([n]) and that they are finite, naming the first that is
     * not; returns them read on the host (null for none).
     */
    private static double[] checkWeights(Tensor queryWeights, int n) {
        if (queryWeights == null) {
            return null;
        }
        if (queryWeights.rank() != 1 || queryWeights.shape(0) != n) {
            throw new IllegalArgumentException("AP loss: query weights " + Shape.str(queryWeights.shape())
                    + " must be [" + n + "]");
        }
        double[] w = queryWeights.toDoubleArray();
        for (int i = 0; i < n; i++) {
            if (!Double.isFinite(w[i])) {
                throw new IllegalArgumentException("AP loss: query weight " + i + " (of " + n + ", counting from 0) is "
                        + w[i] + "; weights must be finite");
            }
        }
        return w;
    }

    /** Refuses labels other than 0 and 1 (NaN included), naming the first. */
    private static void checkLabels(Tensor labels) {
        double value;
        // the N×M temporaries go with this scope
        try (var ng = dir4j.engine.autograd.Autograd.noGrad(); MemoryScope scope = MemoryScope.open()) {
            // y·(y − 1) is 0 for 0 and 1 only; |·| keeps values of both signs from cancelling
            value = Ops.sum(Ops.abs(Ops.mul(labels, Ops.affine(labels, 1, -1))), null, false).item();
        }
        if (value == 0) {
            return;
        }
        double[] y = labels.toDoubleArray();
        int m = labels.shape(1);
        for (int k = 0; k < y.length; k++) {
            if (y[k] != 0 && y[k] != 1) {
                throw new IllegalArgumentException("AP loss: labels must be 0 (negative) or 1 (positive), got " + y[k]
                        + " at (" + k / m + ", " + k % m + ") of " + Shape.str(labels.shape()));
            }
        }
    }

    /** No query kept: what to check, for class ids (fromClasses) or a label matrix. */
    private IllegalArgumentException noPositive(int n, boolean fromClasses) {
        String why = fromClasses
                ? "check the labels (classes need at least two images" + (excludeSelf ? ", as each query's match "
                        + "with itself is left out)" : ")")
                : "every row of the labels is 0" + (excludeSelf ? " once each query's match (i, i) with itself is "
                        + "left out" : "");
        return new IllegalArgumentException("AP loss: none of the " + n + " queries has a positive; " + why);
    }

    /** The N×N 0/1 matrix [class_i == class_j]. */
    public static Tensor sameClass(int[] classIds, DType dtype) {
        int n = classIds.length;
        if (dtype == DType.FLOAT64) {
            double[] y = new double[n * n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    y[i * n + j] = classIds[i] == classIds[j] ? 1 : 0;
                }
            }
            return Tensor.ofDoubles(y, n, n);
        }
        float[] y = new float[n * n];
        dir4j.engine.cpu.CpuThreads.parallelFor(n, i -> {
            for (int j = 0; j < n; j++) {
                y[i * n + j] = classIds[i] == classIds[j] ? 1f : 0f;
            }
        });
        Tensor t = Tensor.of(y, n, n);
        if (dtype == DType.FLOAT32) {
            return t;
        }
        Tensor c = t.to(dtype);
        t.close();
        return c;
    }

    /** AP per query from the histograms (c = n_k, cp = n⁺_k, [N, nq]) and positive counts [N]. */
    protected Tensor apFromHistogram(Tensor c, Tensor cp, Tensor positives) {
        Tensor prec = Ops.div(Ops.cumsum(cp, 1), Ops.affine(Ops.cumsum(c, 1), 1, 1e-16));
        // normalised by Σ_k n⁺_k as the reference (equal to the positive count, but its gradient
        // is not zero at the bins' kinks); `positives` only guards queries with none
        Tensor mass = Ops.sum(cp, new int[] {1}, true);
        Tensor none = Ops.equal(mass, Tensor.zeros(mass.dtype(), mass.device()));
        Tensor rec = Ops.div(cp, Ops.add(mass, none));
        return Ops.sum(Ops.mul(prec, rec), new int[] {1}, false);
    }

    private Tensor labelsWithoutDiagonal(Tensor labels) {
        int n = labels.shape(0);
        int m = labels.shape(1);
        if (n > m) {
            throw new IllegalArgumentException("AP loss: excludeSelf needs N ≤ M, got " + Shape.str(labels.shape()));
        }
        double[] mask = new double[n * m];
        java.util.Arrays.fill(mask, 1);
        for (int i = 0; i < n; i++) {
            mask[i * m + i] = 0;
        }
        Tensor mk = Tensor.ofDoubles(mask, n, m);
        Tensor mt = (labels.dtype() == DType.FLOAT64 ? mk : mk.to(labels.dtype())).to(labels.device());
        return Ops.mul(labels, mt);
    }

    private static void checkFinite(Tensor scores, boolean fromDescriptors) {
        // NaN and ±∞ survive a sum (accumulated in double, so finite scores cannot overflow it)
        Tensor s;
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            s = Ops.sum(scores, null, false);
        }
        requireFinite(s, scores, false, fromDescriptors);
    }

    /** {@link #requireFinite(Tensor, Tensor, boolean, boolean)} with the descriptors' hint where they are given. */
    private static void requireFinite(Tensor sum, Tensor source, boolean descriptors) {
        requireFinite(sum, source, descriptors, descriptors);
    }

    /**
     * Throws when {@code sum} (of {@code source}, scores [N, M] or descriptors [N, D]; closed
     * here) is NaN or infinite, naming the first such entry (read on the host, on failure only).
     */
    private static void requireFinite(Tensor sum, Tensor source, boolean descriptors, boolean hint) {
        double value;
        try (sum) {
            value = sum.item();
        }
        if (Double.isFinite(value)) {
            return;
        }
        double[] v = source.toDoubleArray();
        int cols = source.shape(1);
        String where = "";
        for (int k = 0; k < v.length; k++) {
            if (!Double.isFinite(v[k])) {
                where = descriptors ? ", first in row " + k / cols + " (" + v[k] + ")"
                        : ", first at (" + k / cols + ", " + k % cols + ") (" + v[k] + ")";
                break;
            }
        }
        throw new IllegalArgumentException("AP loss: " + (descriptors ? "descriptors " : "scores ")
                + Shape.str(source.shape()) + " contain NaN or infinite values" + where
                + (hint ? "; check the descriptors (an all-zero row normalises to NaN)" : ""));
    }
}
