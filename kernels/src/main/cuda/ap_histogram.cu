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
// requires M < 2^22 columns and labels in [0, 1]). ap_hist_accumulate_private_f32 is the same
// with a private copy of the bins per thread (no atomics inside the block: scores of random
// descriptors crowd into two or three bins, which serialises a warp's shared atomics).
//
// Labels come in two forms (Backend.ApLabels): a dense matrix (labels != null), or class numbers,
// y_ij = [rowIds[i] == colIds[j]] (labels == null), which never stores the N×M matrix.
#include "common.cuh"

// y of query row `row` at column j
struct ApLabelRow {
    const float* lr; // dense labels of the row, or null
    i64 lCol;
    float rowId;
    const float* colIds;

    __device__ __forceinline__ ApLabelRow(const float* labels, i64 lRow, i64 lCol_, const float* rowIds,
                                          const float* colIds_, i64 row)
        : lr(labels ? labels + row * lRow : nullptr), lCol(lCol_), rowId(labels ? 0.f : rowIds[row]),
          colIds(colIds_) {}

    __device__ __forceinline__ double at(i64 j) const {
        return lr ? (double) lr[j * lCol] : (colIds[j] == rowId ? 1.0 : 0.0);
    }
};

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

__device__ __forceinline__ u64 ap_fixed(double v) { return (u64) __double2ll_rn(v * AP_FIXED_ONE); }

__device__ __forceinline__ void ap_add(u64* bins, int nq, int k, double w, double y) {
    atomicAdd(bins + k, ap_fixed(w));
    if (y != 0.0) {
        atomicAdd(bins + nq + k, ap_fixed(y * w));
    }
}

// One row's scores at columns first, first + step, … < j1: each gives its bin weights to
// add(k, w, y) (the two bins of its interval, or the general path near a centre and outside
// (min, max)); the excluded diagonal is left out. Returns whether a NaN score was seen.
template <typename Add>
__device__ __forceinline__ bool ap_scan_row(const ApQuantizer& q, const float* __restrict__ sr, i64 sCol,
                                            const ApLabelRow& lab, i64 row, i64 excludedDiagonal, i64 first,
                                            i64 j1, int step, Add add) {
    bool sawNaN = false;
    for (i64 j = first; j < j1; j += step) {
        if (j == row + excludedDiagonal) {
            continue;
        }
        const double s = (double) sr[j * sCol];
        const double y = lab.at(j);
        if (s != s) {
            sawNaN = true;
            continue;
        }
        int k = q.interior_bin(s);
        if (k >= 0) {
            // strictly between the centres of bins k and k+1: only those two are non-zero
            add(k, q.w2(k) * s + q.b2(k), y);
            add(k + 1, q.w1(k + 1) * s + q.b1(k + 1), y);
            continue;
        }
        const int h = q.hi(s);
        for (k = q.lo(s); k <= h; ++k) {
            add(k, q.weight(k, s), y);
        }
    }
    return sawNaN;
}

// grid (N, splits); blockDim.x a multiple of 32; dynamic shared memory (blockDim.x/32)·2·nq·8
// bytes. acc [N, 2, nq] int64 zeroed by the host; nanRows [N] int zeroed by the host.
extern "C" __global__ void ap_hist_accumulate_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                  const float* __restrict__ labels, i64 lRow, i64 lCol,
                                                  const float* __restrict__ rowIds,
                                                  const float* __restrict__ colIds, i64 m,
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
    const ApLabelRow lab(labels, lRow, lCol, rowIds, colIds, row);
    const bool sawNaN = ap_scan_row(q, sr, sCol, lab, row, excludedDiagonal,
                                    j0 + threadIdx.x, j1, blockDim.x,
                                    [&](int k, double w, double y) { ap_add(bins, nq, k, w, y); });
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

// ap_hist_accumulate_f32 with a private copy of the 2·nq bins per thread: dynamic shared memory
// 2·nq·blockDim.x·8 bytes, laid out [bin][thread] (a warp's read-modify-writes of one bin hit
// consecutive words); the same fixed-point weights, so the same integer sums and the same
// histograms. Then each warp reduces whole bins over the block's threads (integer adds: exact,
// in any order) and adds them to the global accumulator.
extern "C" __global__ void ap_hist_accumulate_private_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                          const float* __restrict__ labels, i64 lRow, i64 lCol,
                                                          const float* __restrict__ rowIds,
                                                          const float* __restrict__ colIds, i64 m, int nq,
                                                          double min, double max, i64 excludedDiagonal,
                                                          i64 colsPerSplit, u64* __restrict__ acc,
                                                          int* __restrict__ nanRows) {
    extern __shared__ u64 threadBins[];
    const int threads = blockDim.x;
    const int width = 2 * nq;
    for (int t = threadIdx.x; t < width * threads; t += threads) {
        threadBins[t] = 0;
    }
    // no barrier needed here: each thread touches only its own column of threadBins until the
    // barrier before the reduction
    const ApQuantizer q(nq, min, max);
    u64* mine = threadBins + threadIdx.x;
    const i64 row = blockIdx.x;
    const i64 j0 = (i64) blockIdx.y * colsPerSplit;
    const i64 j1 = j0 + colsPerSplit < m ? j0 + colsPerSplit : m;
    const float* sr = scores + row * sRow;
    const ApLabelRow lab(labels, lRow, lCol, rowIds, colIds, row);
    const bool sawNaN = ap_scan_row(q, sr, sCol, lab, row, excludedDiagonal, j0 + threadIdx.x, j1, threads,
                                    [&](int k, double w, double y) {
                                        mine[(i64) k * threads] += ap_fixed(w);
                                        if (y != 0.0) {
                                            mine[(i64) (nq + k) * threads] += ap_fixed(y * w);
                                        }
                                    });
    if (sawNaN) {
        nanRows[row] = 1;
    }
    __syncthreads();
    const int warps = threads >> 5;
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    for (int b = warp; b < width; b += warps) {
        u64 total = 0;
        for (int t = lane; t < threads; t += 32) {
            total += threadBins[(i64) b * threads + t];
        }
        for (int off = 16; off > 0; off >>= 1) {
            total += __shfl_down_sync(0xffffffffu, total, off);
        }
        if (lane == 0 && total != 0) {
            atomicAdd(acc + row * width + b, total);
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
                                                const float* __restrict__ rowIds, const float* __restrict__ colIds,
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
    const ApLabelRow lab(labels, lRow, lCol, rowIds, colIds, row);
    float* out = gradScores + row * m;
    for (i64 j = j0 + threadIdx.x; j < j1; j += blockDim.x) {
        if (j == row + excludedDiagonal) {
            out[j] = 0.f;
            continue;
        }
        const double s = (double) sr[j * sCol];
        const double y = lab.at(j);
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


// bins of one of a tile's column queries: shared [2·nq][tileCols], this thread's column
struct ApColumnBins {
    const float* p; // colBins + threadIdx.x
    int stride;     // tileCols
    int nq;
    __device__ __forceinline__ double g(int k) const { return (double) p[k * stride]; }
    __device__ __forceinline__ double gp(int k) const { return (double) p[(nq + k) * stride]; }
};

struct ApRowBins {
    const float* p; // rowBins + r·2·nq
    int nq;
    __device__ __forceinline__ double g(int k) const { return (double) p[k]; }
    __device__ __forceinline__ double gp(int k) const { return (double) p[nq + k]; }
};

// The blocked AP loss's backward (Backend.apHistogramBackwardSymmetric): scores [R, M] are rows
// rowOffset … of a symmetric S; gradScores [R, M] contiguous gets, per score, the term of its row's
// query (row + rowOffset) plus the term of its column's query j, both at the same score, each in
// ap_hist_backward_f32's order of operations. Tiled: a block of tileCols threads (one column each)
// takes rowsPerTile rows; the bins of its tileCols column queries ([2·nq][tileCols + 1]) and of its
// rows' queries ([rowsPerTile][2·nq]) sit in shared memory, as float (the kernel reads each as
// double, the same values as reading gradHist). grid (⌈M / tileCols⌉, ⌈R / rowsPerTile⌉);
// dynamic shared memory 2·nq·(tileCols + 1 + rowsPerTile)·4 bytes.
extern "C" __global__ void ap_hist_backward_sym_f32(const float* __restrict__ scores, i64 sRow, i64 sCol,
                                                    const float* __restrict__ labels, i64 lRow, i64 lCol,
                                                    const float* __restrict__ rowIds,
                                                    const float* __restrict__ colIds,
                                                    const float* __restrict__ gradHist, i64 gRow, i64 gHalf,
                                                    i64 gBin, float* __restrict__ gradScores, i64 r, i64 m, int nq,
                                                    double min, double max, i64 rowOffset, i64 excludedDiagonal,
                                                    int rowsPerTile) {
    extern __shared__ float tileBins[];
    const int tileCols = blockDim.x;
    const int colStride = tileCols + 1; // odd: a bin's columns and a column's bins both spread over the banks
    const int width = 2 * nq;
    float* colBins = tileBins;                           // [width][colStride]
    float* rowBins = tileBins + (i64) width * colStride; // [rowsPerTile][width]
    const i64 jBase = (i64) blockIdx.x * tileCols;
    const i64 j = jBase + threadIdx.x;
    const i64 r0 = (i64) blockIdx.y * rowsPerTile;
    const i64 r1 = r0 + rowsPerTile < r ? r0 + rowsPerTile : r;
    // the tile's columns' bins, read in gradHist's order (coalesced when it is contiguous)
    const i64 cols = m - jBase < tileCols ? m - jBase : tileCols;
    for (i64 t = threadIdx.x; t < cols * width; t += tileCols) {
        const int c = (int) (t / width);
        const int b = (int) (t % width);
        const i64 at = b < nq ? (i64) b * gBin : gHalf + (i64) (b - nq) * gBin;
        colBins[b * colStride + c] = gradHist[(jBase + c) * gRow + at];
    }
    for (i64 t = threadIdx.x; t < (r1 - r0) * width; t += tileCols) {
        const i64 query = r0 + t / width + rowOffset;
        const int b = (int) (t % width);
        const i64 at = b < nq ? (i64) b * gBin : gHalf + (i64) (b - nq) * gBin;
        rowBins[t] = gradHist[query * gRow + at];
    }
    __syncthreads();
    if (j >= m) {
        return;
    }
    const ApQuantizer q(nq, min, max);
    const ApColumnBins other{colBins + threadIdx.x, colStride, nq};
    const float colId = labels ? 0.f : colIds[j];
    for (i64 row = r0; row < r1; ++row) {
        float* out = gradScores + row * m;
        if (j == row + excludedDiagonal) {
            out[j] = 0.f;
            continue;
        }
        const double s = (double) scores[row * sRow + j * sCol];
        const double y = labels ? (double) labels[row * lRow + j * lCol] : (rowIds[row] == colId ? 1.0 : 0.0);
        const ApRowBins own{rowBins + (row - r0) * width, nq};
        out[j] = (float) (ap_score_gradient(q, s, y, own) + ap_score_gradient(q, s, y, other));
    }
}

// The AP loss from its histograms (Backend.apLossFromHistogram, dir4j.engine.cpu.ApHistogramKernels
// .lossFromHistogram is the reference, followed operation by operation, in double): one thread per
// query; hist, gradHist [N, 2, nq], coef and ap [N], all contiguous; nq ≤ 100 (ApBins).
__device__ __forceinline__ void ap_loss_one_query(const float* __restrict__ hist, const float* __restrict__ coef,
                                                  float* __restrict__ ap, float* __restrict__ gradHist, i64 query,
                                                  int nq) {
    const float* c = hist + query * 2 * nq;
    const float* p = c + nq;
    float* gc = gradHist + query * 2 * nq;
    float* gp = gc + nq;
    double mass = 0;
    for (int k = 0; k < nq; ++k) {
        mass += (double) p[k];
    }
    const double m = mass == 0 ? 1.0 : mass;
    // the reverse pass needs every C_k + 1e-16 and P_k: kept in a small local array
    double cc[100];
    double pp[100];
    double sc = 0;
    double sp = 0;
    double value = 0;
    for (int k = 0; k < nq; ++k) {
        sc += (double) c[k];
        sp += (double) p[k];
        cc[k] = sc + 1e-16;
        pp[k] = sp;
        value += sp / cc[k] * ((double) p[k] / m);
    }
    ap[query] = (float) value;
    const double g = (double) coef[query];
    double tailP = 0;
    double tailC = 0;
    for (int k = nq - 1; k >= 0; --k) {
        const double rk = (double) p[k] / m;
        tailP += rk / cc[k];
        tailC += rk * pp[k] / (cc[k] * cc[k]);
        gp[k] = (float) (g * (tailP + (pp[k] / cc[k] - value) / m));
        gc[k] = (float) (-g * tailC);
    }
}

extern "C" __global__ void ap_loss_from_hist_f32(const float* __restrict__ hist, const float* __restrict__ coef,
                                                 float* __restrict__ ap, float* __restrict__ gradHist, i64 n,
                                                 int nq) {
    for (i64 query = global_thread<i64>(); query < n; query += grid_threads<i64>()) {
        ap_loss_one_query(hist, coef, ap, gradHist, query, nq);
    }
}
