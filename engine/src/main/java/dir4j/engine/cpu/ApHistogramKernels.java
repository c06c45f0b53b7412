package dir4j.engine.cpu;

import dir4j.engine.Backend.ApBins;
import dir4j.engine.Backend.ApLabels;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The AP loss's soft histograms, fused: per query row, each score adds its (at most two)
 * triangular bin weights to n_k and y·weight to n⁺_k in one pass; the backward gives each score
 * its gradient Σ_k (G_k + y·G⁺_k)·q_k'(s) in one pass. The N×nq×M quantisation tensor of the
 * reference is never formed. Parallel over query rows.
 */
final class ApHistogramKernels {
    private ApHistogramKernels() {}

    /**
     * The reference's quantiser (a 1×1 conv with 2·nq lines then min and clamp at 0):
     * q_k(s) = max(0, min(w1_k·s + b1_k, w2_k·s + b2_k)), with a = (nq−1)/(max−min),
     * w1 = −a, b1 = a·min + nq − k, w2 = a, b2 = 2 − nq + k − a·min, and the end bins'
     * outer lines replaced by the constant 1 (k = 0: line 1; k = nq−1: line 2).
     */
    record Quantizer(int nq, double min, double max, double a) {
        Quantizer(ApBins b) {
            this(b.nq(), b.min(), b.max(), (b.nq() - 1) / (b.max() - b.min()));
        }

        double w1(int k) {
            return k == 0 ? 0 : -a;
        }

        double b1(int k) {
            return k == 0 ? 1 : a * min + nq - k;
        }

        double w2(int k) {
            return k == nq - 1 ? 0 : a;
        }

        double b2(int k) {
            return k == nq - 1 ? 1 : 2 - nq + k - a * min;
        }

        /**
         * k when s lies strictly between the centres of bins k+1 and k with a margin against
         * rounding (there q_k = w2·s + b2, q_{k+1} = w1·s + b1 and no other bin is non-zero or
         * has a slope); −1 near a centre or outside (min, max), where the general path decides.
         */
        int interiorBin(double s) {
            double t = (max - s) * a;
            if (!(t > 1e-6 && t < nq - 1 - 1e-6)) {
                return -1;
            }
            int k = (int) t;
            double f = t - k;
            return f > 1e-6 && f < 1 - 1e-6 ? k : -1;
        }

        /** First and last bin that can be non-zero (or have a non-zero slope) at s. */
        int lo(double s) {
            return clamp((int) Math.floor((max - s) * a) - 1);
        }

        int hi(double s) {
            return clamp((int) Math.floor((max - s) * a) + 2);
        }

        private int clamp(int k) {
            return Math.max(0, Math.min(nq - 1, k));
        }

        double weight(int k, double s) {
            return Math.max(0, Math.min(w1(k) * s + b1(k), w2(k) * s + b2(k)));
        }

        /** dq_k/ds with PyTorch's conventions: ties of the min split evenly, clamp passes at 0. */
        double slope(int k, double s) {
            double l1 = w1(k) * s + b1(k);
            double l2 = w2(k) * s + b2(k);
            double m = Math.min(l1, l2);
            if (m < 0 || Double.isNaN(m)) {
                return 0;
            }
            return l1 < l2 ? w1(k) : l2 < l1 ? w2(k) : (w1(k) + w2(k)) / 2;
        }
    }

    /** Label y_ij of one query row i. */
    @FunctionalInterface
    interface RowLabels {
        double at(long j);
    }

    /** Row i's labels: from the dense matrix, or [rowIds[i] == colIds[j]]. */
    static RowLabels row(ApLabels labels, long i) {
        Tensor d = labels.dense();
        if (d != null) {
            MemorySegment ls = d.segment();
            DType t = d.dtype();
            long base = d.offset() + i * d.stride(0);
            long step = d.stride(1);
            return j -> CpuBackend.load(ls, t, base + j * step);
        }
        Tensor r = labels.rowIds();
        Tensor c = labels.colIds();
        double own = CpuBackend.load(r.segment(), r.dtype(), r.offset() + i * r.stride(0));
        MemorySegment cs = c.segment();
        DType t = c.dtype();
        long base = c.offset();
        long step = c.stride(0);
        return j -> CpuBackend.load(cs, t, base + j * step) == own ? 1 : 0;
    }

    static void forward(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor hist) {
        int n = scores.shape(0);
        int m = scores.shape(1);
        int nq = bins.nq();
        Quantizer q = new Quantizer(bins);
        MemorySegment ss = scores.segment();
        MemorySegment hs = hist.segment();
        DType t = scores.dtype();
        long[] sst = scores.strides();
        CpuThreads.parallelFor(n, i -> {
            RowLabels lab = row(labels, i);
            double[] nb = new double[nq];
            double[] np = new double[nq];
            for (int j = 0; j < m; j++) {
                if (j == i + (long) excludedDiagonal) {
                    continue;
                }
                double s = CpuBackend.load(ss, t, scores.offset() + i * sst[0] + j * sst[1]);
                double y = lab.at(j);
                int k = q.interiorBin(s);
                if (k >= 0) {
                    // strictly between the centres of bins k and k+1: only those two are non-zero
                    double wk = q.w2(k) * s + q.b2(k);
                    double wk1 = q.w1(k + 1) * s + q.b1(k + 1);
                    nb[k] += wk;
                    np[k] += y * wk;
                    nb[k + 1] += wk1;
                    np[k + 1] += y * wk1;
                    continue;
                }
                for (k = q.lo(s); k <= q.hi(s); k++) {
                    double w = q.weight(k, s);
                    nb[k] += w;
                    np[k] += y * w;
                }
            }
            long base = hist.offset() + (long) i * 2 * nq;
            for (int k = 0; k < nq; k++) {
                CpuBackend.store(hs, t, base + k, nb[k]);
                CpuBackend.store(hs, t, base + nq + k, np[k]);
            }
        });
    }

    static void backward(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor gradHist,
                         Tensor gradScores) {
        int n = scores.shape(0);
        int m = scores.shape(1);
        int nq = bins.nq();
        Quantizer q = new Quantizer(bins);
        MemorySegment ss = scores.segment();
        MemorySegment gs = gradHist.segment();
        MemorySegment os = gradScores.segment();
        DType t = scores.dtype();
        long[] sst = scores.strides();
        long[] gst = gradHist.strides();
        CpuThreads.parallelFor(n, i -> {
            RowLabels lab = row(labels, i);
            double[] g = new double[2 * nq]; // G then G⁺ of query i
            for (int k = 0; k < nq; k++) {
                g[k] = CpuBackend.load(gs, t, gradHist.offset() + i * gst[0] + k * gst[2]);
                g[nq + k] = CpuBackend.load(gs, t, gradHist.offset() + i * gst[0] + gst[1] + k * gst[2]);
            }
            long ob = gradScores.offset() + (long) i * m;
            for (int j = 0; j < m; j++) {
                if (j == i + (long) excludedDiagonal) {
                    CpuBackend.store(os, t, ob + j, 0);
                    continue;
                }
                double s = CpuBackend.load(ss, t, scores.offset() + i * sst[0] + j * sst[1]);
                CpuBackend.store(os, t, ob + j, scoreGradient(q, s, lab.at(j), g, 0));
            }
        });
    }

    /**
     * See {@code Backend.apHistogramBackwardSymmetric}: per score, the row query's term plus the
     * column query's term, each as in {@link #backward}.
     */
    static void backwardSymmetric(Tensor scores, ApLabels labels, ApBins bins, int rowOffset, int excludedDiagonal,
                                  Tensor gradHist, Tensor gradScores) {
        int n = scores.shape(0);
        int m = scores.shape(1);
        int nq = bins.nq();
        Quantizer q = new Quantizer(bins);
        MemorySegment ss = scores.segment();
        MemorySegment gs = gradHist.segment();
        MemorySegment os = gradScores.segment();
        DType t = scores.dtype();
        long[] sst = scores.strides();
        long[] gst = gradHist.strides();
        if (gradHist.shape(0) != m || rowOffset < 0 || rowOffset + (long) n > m) {
            throw new IllegalArgumentException("apHistogramBackwardSymmetric: rows " + rowOffset + " … "
                    + (rowOffset + n - 1) + " of " + m + " queries, gradient " + dir4j.engine.Shape.str(gradHist.shape()));
        }
        // every query's (G, G⁺), [M][2·nq]
        double[] all = new double[m * 2 * nq];
        for (int j = 0; j < m; j++) {
            for (int k = 0; k < nq; k++) {
                all[j * 2 * nq + k] = CpuBackend.load(gs, t, gradHist.offset() + j * gst[0] + k * gst[2]);
                all[j * 2 * nq + nq + k] = CpuBackend.load(gs, t, gradHist.offset() + j * gst[0] + gst[1] + k * gst[2]);
            }
        }
        CpuThreads.parallelFor(n, i -> {
            RowLabels lab = row(labels, i);
            int own = (i + rowOffset) * 2 * nq;
            long ob = gradScores.offset() + (long) i * m;
            for (int j = 0; j < m; j++) {
                if (j == i + (long) excludedDiagonal) {
                    CpuBackend.store(os, t, ob + j, 0);
                    continue;
                }
                double s = CpuBackend.load(ss, t, scores.offset() + i * sst[0] + j * sst[1]);
                double y = lab.at(j);
                double d = scoreGradient(q, s, y, all, own) + scoreGradient(q, s, y, all, j * 2 * nq);
                CpuBackend.store(os, t, ob + j, d);
            }
        });
    }

    /**
     * See {@code Backend.apLossFromHistogram}: per query, AP from its bins and coef·∂AP/∂hist by
     * one forward and one reverse pass over the bins (in double). With C_k, P_k the cumulative
     * n and n⁺, e_k = C_k + 1e−16, P_k/e_k the precision, r_k = n⁺_k/M (M = Σ n⁺ or 1 when 0):
     * ∂AP/∂n⁺_j = Σ_{k≥j} r_k/e_k + (P_j/e_j − AP)/M and ∂AP/∂n_j = −Σ_{k≥j} r_k·P_k/e_k².
     */
    static void lossFromHistogram(Tensor hist, Tensor coef, Tensor ap, Tensor gradHist) {
        int n = hist.shape(0);
        int nq = hist.shape(2);
        DType t = hist.dtype();
        MemorySegment hs = hist.segment();
        MemorySegment cs = coef.segment();
        MemorySegment as = ap.segment();
        MemorySegment gs = gradHist.segment();
        CpuThreads.parallelFor(n, q -> {
            long base = hist.offset() + (long) q * 2 * nq;
            double[] c = new double[nq];
            double[] p = new double[nq];
            double mass = 0;
            for (int k = 0; k < nq; k++) {
                c[k] = CpuBackend.load(hs, t, base + k);
                p[k] = CpuBackend.load(hs, t, base + nq + k);
                mass += p[k];
            }
            double m = mass == 0 ? 1 : mass;
            double[] cc = new double[nq];
            double[] pp = new double[nq];
            double sc = 0;
            double sp = 0;
            double value = 0;
            for (int k = 0; k < nq; k++) {
                sc += c[k];
                sp += p[k];
                cc[k] = sc + 1e-16;
                pp[k] = sp;
                value += sp / cc[k] * (p[k] / m);
            }
            double g = CpuBackend.load(cs, coef.dtype(), coef.offset() + q);
            CpuBackend.store(as, ap.dtype(), ap.offset() + q, value);
            long gb = gradHist.offset() + (long) q * 2 * nq;
            double tailP = 0;
            double tailC = 0;
            for (int k = nq - 1; k >= 0; k--) {
                double r = p[k] / m;
                tailP += r / cc[k];
                tailC += r * pp[k] / (cc[k] * cc[k]);
                CpuBackend.store(gs, t, gb + nq + k, g * (tailP + (pp[k] / cc[k] - value) / m));
                CpuBackend.store(gs, t, gb + k, -g * tailC);
            }
        });
    }

    /**
     * Σ_k (G_k + y·G⁺_k)·q_k'(s) with G at g[at …] and G⁺ at g[at + nq …]. Inside an interior bin
     * only two weights move: dq_k/ds = w2(k) = a and dq_{k+1}/ds = w1(k+1) = −a.
     */
    private static double scoreGradient(Quantizer q, double s, double y, double[] g, int at) {
        int nq = q.nq();
        int k = q.interiorBin(s);
        if (k >= 0) {
            return (g[at + k] + y * g[at + nq + k] - g[at + k + 1] - y * g[at + nq + k + 1]) * q.a();
        }
        double d = 0;
        for (k = q.lo(s); k <= q.hi(s); k++) {
            d += (g[at + k] + y * g[at + nq + k]) * q.slope(k, s);
        }
        return d;
    }
}
