// The AP loss's soft histograms (dir4j.engine.cpu.ApHistogramKernels is the reference, and
// this file follows it operation by operation):
//   q_k(s) = max(0, min(w1_k·s + b1_k, w2_k·s + b2_k)), a = (nq−1)/(max−min),
//   w1 = −a, b1 = a·min + nq − k, w2 = a, b2 = 2 − nq + k − a·min, the end bins' outer lines
//   replaced by the constant 1; n_k = Σ_j q_k(s_ij), n⁺_k = Σ_j y_ij·q_k(s_ij).
// The backward gives each score Σ_k (G_k + y·G⁺_k)·q_k'(s), with PyTorch's conventions at
// kinks: ties of the min split the slope evenly, the clamp at 0 passes no gradient.
//
// Bitwise agreement of the bin weights with the CPU backend matters at ties (a score exactly at
// a bin centre picks the averaged slope), so the quantiser runs in double, in the CPU's order of
// operations, and this file is built with --fmad=false (no fused multiply-add contraction).
//
// Forward: a block per (query row, column split); each warp accumulates its own copy of the
// row's 2·nq bins in shared memory, in 64-bit fixed point (weights · 2^40, rounded): integer
// sums do not depend on the order of the atomic adds, so the histograms are deterministic.
// The block adds its bins to a global int64 accumulator [N, 2, nq] (atomically, across column
// splits); ap_hist_finalize converts it to float. Exact while Σ|y·q| < 2^23 per bin (the host
// requires M < 2^22 columns and labels in [0, 1]).
#include "common.cuh"

#define AP_FIXED_ONE 1099511627776.0 /* 2^40 */

struct ApQuantizer {
    int nq;
    double min;
    double max;
    double a;

    __device__ ApQuantizer(int nq_, double min_, double max_)
        : nq(nq_), min(min_), max(max_), a((double) (nq_ - 1) / (max_ - min_)) {}

    __device__ __forceinline__ double w1(int k) const { return k == 0 ? 0.0 : -a; }
    __device__ __forceinline__ double b1(int k) const { return k == 0 ? 1.0 : a * min + nq - k; }
    __device__ __forceinline__ double w2(int k) const { return k == nq - 1 ? 0.0 : a; }
    __device__ __forceinline__ double b2(int k) const { return k == nq - 1 ? 1.0 : 2 - nq + k - a * min; }

    // k when s lies strictly between the centres of bins k+1 and k (with a margin against
    // rounding), else −1
    __device__ __forceinline__ int interior_bin(double s) const {
        const double t = (max - s) * a;
        if (!(t > 1e-6 && t < nq - 1 - 1e-6)) {
            return -1;
        }
        const int k = (int) t;
        const double f = t - k;
        return f > 1e-6 && f < 1 - 1e-6 ? k : -1;
    }

    // Java's (int) Math.floor(t) (NaN → 0, saturating) followed by int arithmetic that wraps:
    // for ±∞ scores the CPU's lo > hi and the score adds nothing; so here too
    __device__ __forceinline__ int clampk(int k) const { return k < 0 ? 0 : (k > nq - 1 ? nq - 1 : k); }
    __device__ __forceinline__ int lo(double s) const {
        return clampk((int) ((unsigned) __double2int_rd((max - s) * a) - 1u));
    }
    __device__ __forceinline__ int hi(double s) const {
        return clampk((int) ((unsigned) __double2int_rd((max - s) * a) + 2u));
    }

    // for finite s (NaN scores are handled by the callers)
    __device__ __forceinline__ double weight(int k, double s) const {
        const double l1 = w1(k) * s + b1(k);
        const double l2 = w2(k) * s + b2(k);
        const double m = l1 < l2 ? l1 : l2;
        return m > 0.0 ? m : 0.0;
    }

    __device__ __forceinline__ double slope(int k, double s) const {
        const double l1 = w1(k) * s + b1(k);
        const double l2 = w2(k) * s + b2(k);
        const double m = (l1 != l1 || l2 != l2) ? l1 + l2 : (l1 < l2 ? l1 : l2);
        if (m < 0 || m != m) {
            return 0;
        }
        return l1 < l2 ? w1(k) : (l2 < l1 ? w2(k) : (w1(k) + w2(k)) / 2);
    }
};

__device__ __forceinline__ void ap_add(u64* bins, int nq, int k, double w, double y) {
    atomicAdd(bins + k, (u64) __double2ll_rn(w * AP_FIXED_ONE));
    if (y != 0.0) {
        atomicAdd(bins + nq + k, (u64) __double2ll_rn(y * w * AP_FIXED_ONE));
    }
}

// grid (N, splits); blockDim.x a multiple of 32; dynamic shared memory (blockDim.x/32)·2·nq·8
// bytes. acc [N, 2, nq] int64 zeroed by the host; nanRows [N] int zeroed by the host.
extern "C" __global__ void ap_hist_accumulate_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                  const float* __restrict__ labels, i64 lRow, i64 lCol, i64 m,
                                                  int nq, double min, double max, i64 excludedDiagonal,
                                                  i64 colsPerSplit, u64* __restrict__ acc,
                                                  int* __restrict__ nanRows) {
    extern __shared__ u64 warpBins[];
    const int warps = blockDim.x >> 5;
    const int width = 2 * nq;
    for (int t = threadIdx.x; t < warps * width; t += blockDim.x) {
        warpBins[t] = 0;
    }
    __syncthreads();
    const ApQuantizer q(nq, min, max);
    u64* bins = warpBins + (threadIdx.x >> 5) * width;
    const i64 row = blockIdx.x;
    const i64 j0 = (i64) blockIdx.y * colsPerSplit;
    const i64 j1 = j0 + colsPerSplit < m ? j0 + colsPerSplit : m;
    const float* sr = scores + row * sRow;
    const float* lr = labels + row * lRow;
    bool sawNaN = false;
    for (i64 j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        if (j == row + excludedDiagonal) {
            continue;
        }
        const double s = (double) sr[j * sCol];
        const double y = (double) lr[j * lCol];
        if (s != s) {
            sawNaN = true;
            continue;
        }
        int k = q.interior_bin(s);
        if (k >= 0) {
            // strictly between the centres of bins k and k+1: only those two are non-zero
            ap_add(bins, nq, k, q.w2(k) * s + q.b2(k), y);
            ap_add(bins, nq, k + 1, q.w1(k + 1) * s + q.b1(k + 1), y);
            continue;
        }
        const int h = q.hi(s);
        for (k = q.lo(s); k <= h; ++k) {
            ap_add(bins, nq, k, q.weight(k, s), y);
        }
    }
    if (sawNaN) {
        nanRows[row] = 1;
    }
    __syncthreads();
    for (int t = threadIdx.x; t < width; t += blockDim.x) {
        u64 total = 0;
        for (int w = 0; w < warps; ++w) {
            total += warpBins[w * width + t];
        }
        if (total != 0) {
            atomicAdd(acc + row * width + t, total);
        }
    }
}

// hist [N, 2, nq] contiguous float from the fixed-point accumulator. A NaN score makes bins
// 0..2 of its row NaN, as the CPU's general path does (floor(NaN) → 0, bins lo = 0 .. hi = 2).
extern "C" __global__ void ap_hist_finalize_f32(const u64* __restrict__ acc, const int* __restrict__ nanRows,
                                                float* __restrict__ hist, i64 n, int nq) {
    const i64 width = 2 * nq;
    const i64 total = n * width;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 row = t / width;
        const int k = (int) ((t % width) % nq);
        double v = (double) (long long) acc[t] / AP_FIXED_ONE;
        if (nanRows[row] && k <= 2) {
            v = quiet_nan<double>();
        }
        hist[t] = (float) v;
    }
}

// gradScores [N, M] contiguous from gradHist (strides gRow, gHalf between n and n⁺, gBin).
// grid (N, splits); dynamic shared memory 2·nq·8 bytes.
extern "C" __global__ void ap_hist_backward_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                const float* __restrict__ labels, i64 lRow, i64 lCol,
                                                const float* __restrict__ gradHist, i64 gRow, i64 gHalf, i64 gBin,
                                                float* __restrict__ gradScores, i64 m, int nq, double min, double max,
                                                i64 excludedDiagonal, i64 colsPerSplit) {
    extern __shared__ double gBins[]; // [0, nq): G, [nq, 2nq): G⁺
    const i64 row = blockIdx.x;
    for (int t = threadIdx.x; t < nq; t += blockDim.x) {
        gBins[t] = (double) gradHist[row * gRow + t * gBin];
        gBins[nq + t] = (double) gradHist[row * gRow + gHalf + t * gBin];
    }
    __syncthreads();
    const ApQuantizer q(nq, min, max);
    const i64 j0 = (i64) blockIdx.y * colsPerSplit;
    const i64 j1 = j0 + colsPerSplit < m ? j0 + colsPerSplit : m;
    const float* sr = scores + row * sRow;
    const float* lr = labels + row * lRow;
    float* out = gradScores + row * m;
    for (i64 j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        if (j == row + excludedDiagonal) {
            out[j] = 0.f;
            continue;
        }
        const double s = (double) sr[j * sCol];
        const double y = (double) lr[j * lCol];
        double d = 0;
        int k = q.interior_bin(s);
        if (k >= 0) {
            // dq_k/ds = w2(k) = a and dq_{k+1}/ds = w1(k+1) = −a; the other bins are flat here
            d = (gBins[k] + y * gBins[nq + k] - gBins[k + 1] - y * gBins[nq + k + 1]) * q.a;
        } else {
            const int h = q.hi(s);
            for (k = q.lo(s); k <= h; ++k) {
                d += (gBins[k] + y * gBins[nq + k]) * q.slope(k, s);
            }
        }
        out[j] = (float) d;
    }
}

// Σ_k (G_k + y·G⁺_k)·q_k'(s) for one query's gradient bins, in ap_hist_backward_f32's order of
// operations (Bins: g(k) = G_k, gp(k) = G⁺_k as double)
template <typename Bins>
__device__ __forceinline__ double ap_score_gradient(const ApQuantizer& q, double s, double y, const Bins& b) {
    int k = q.interior_bin(s);
    if (k >= 0) {
        return (b.g(k) + y * b.gp(k) - b.g(k + 1) - y * b.gp(k + 1)) * q.a;
    }
    double d = 0;
    const int h = q.hi(s);
    for (k = q.lo(s); k <= h; ++k) {
        d += (b.g(k) + y * b.gp(k)) * q.slope(k, s);
    }
    return d;
}

struct ApSharedBins {
    const double* p;
    int nq;
    __device__ __forceinline__ double g(int k) const { return p[k]; }
    __device__ __forceinline__ double gp(int k) const { return p[nq + k]; }
};

struct ApGlobalBins {
    const float* p; // gradHist + j·gRow
    i64 half;
    i64 bin;
    __device__ __forceinline__ double g(int k) const { return (double) p[k * bin]; }
    __device__ __forceinline__ double gp(int k) const { return (double) p[half + k * bin]; }
};

// The blocked AP loss's backward (Backend.apHistogramBackwardSymmetric): scores [R, M] are rows
// rowOffset … of a symmetric S; gradScores [R, M] contiguous gets, per score, the term of its row's
// query (row + rowOffset, bins in shared memory) plus the term of its column's query j (bins read
// from gradHist [M, 2, nq], cached), both at the same score. grid (R, splits); dynamic shared
// memory 2·nq·8 bytes.
extern "C" __global__ void ap_hist_backward_sym_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                    const float* __restrict__ labels, i64 lRow, i64 lCol,
                                                    const float* __restrict__ gradHist, i64 gRow, i64 gHalf,
                                                    i64 gBin, float* __restrict__ gradScores, i64 m, int nq,
                                                    double min, double max, i64 rowOffset, i64 excludedDiagonal,
                                                    i64 colsPerSplit) {
    extern __shared__ double gBins[]; // [0, nq): G, [nq, 2nq): G⁺ of query row + rowOffset
    const i64 row = blockIdx.x;
    const i64 query = row + rowOffset;
    for (int t = threadIdx.x; t < nq; t += blockDim.x) {
        gBins[t] = (double) gradHist[query * gRow + t * gBin];
        gBins[nq + t] = (double) gradHist[query * gRow + gHalf + t * gBin];
    }
    __syncthreads();
    const ApQuantizer q(nq, min, max);
    const ApSharedBins own{gBins, nq};
    const i64 j0 = (i64) blockIdx.y * colsPerSplit;
    const i64 j1 = j0 + colsPerSplit < m ? j0 + colsPerSplit : m;
    const float* sr = scores + row * sRow;
    const float* lr = labels + row * lRow;
    float* out = gradScores + row * m;
    for (i64 j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        if (j == row + excludedDiagonal) {
            out[j] = 0.f;
            continue;
        }
        const double s = (double) sr[j * sCol];
        const double y = (double) lr[j * lCol];
        const ApGlobalBins other{gradHist + j * gRow, gHalf, gBin};
        out[j] = (float) (ap_score_gradient(q, s, y, own) + ap_score_gradient(q, s, y, other));
    }
}
