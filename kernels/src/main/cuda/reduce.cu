// Reductions (sum, max, min) and cumulative sums.
//
// A reduction's output is contiguous in keep-dim form, so the output offset of a kept
// coordinate is its row-major linear index over the kept dimensions. The host
// (dir4j.engine.cuda.ReducePlan) picks one of three kernels:
//   reduce_rows     the reduced dimensions merge into one unit-stride run per output (a row):
//                   a warp or a block per row;
//   reduce_columns  many outputs whose innermost kept dimension has unit stride: a thread per
//                   output walking the reduced dimensions, adjacent threads reading adjacent
//                   memory;
//   reduce_blocks   anything else: a block per output (optionally split over gridDim.y into
//                   partial results, finished by reduce_rows over the partials).
// Sums accumulate in double (float data too); NaN propagates through max and min as on the CPU.
#include "common.cuh"

// Reductions accumulate in double: a wider sum for float32, and max/min stay exact.
template <typename T>
__device__ __forceinline__ double to_acc(T v) { return (double) v; }

// ------------------------------------------------------------------ rows

// One row per `threadsPerRow` threads (32: a warp per row; blockDim.x: the block per row).
// kept: shape of the kept dimensions, stride[0] = x's strides there. Row r reads
// x[offset(r) + j] for j < len and writes out[r].
template <typename T>
__device__ __forceinline__ void reduce_rows_body(const T* __restrict__ x, T* __restrict__ out, const Geometry& kept,
                                                 i64 rows, i64 len, int op, int threadsPerRow) {
    __shared__ double scratch[32];
    const int groups = blockDim.x / threadsPerRow;
    const int group = threadIdx.x / threadsPerRow;
    const int lane = threadIdx.x % threadsPerRow;
    for (i64 base = (i64) blockIdx.x * groups; base < rows; base += (i64) gridDim.x * groups) {
        const i64 row = base + group;
        double acc = reduce_identity<double>(op);
        if (row < rows) {
            u64 off[1];
            strided_offsets<1, u64>(kept, (u64) row, off);
            const T* xr = x + off[0];
            for (i64 j = lane; j < len; j += threadsPerRow) {
                acc = reduce_combine(op, acc, to_acc(xr[j]));
            }
        }
        if (threadsPerRow == 32) {
            acc = warp_reduce(op, acc);
            if (lane == 0 && row < rows) {
                out[row] = (T) acc;
            }
        } else {
            acc = block_reduce(op, acc, scratch);
            if (threadIdx.x == 0 && row < rows) {
                out[row] = (T) acc;
            }
        }
    }
}

extern "C" __global__ void reduce_rows_f32(const float* x, float* out, Geometry kept, i64 rows, i64 len, int op,
                                           int threadsPerRow) {
    reduce_rows_body<float>(x, out, kept, rows, len, op, threadsPerRow);
}

extern "C" __global__ void reduce_rows_f64(const double* x, double* out, Geometry kept, i64 rows, i64 len, int op,
                                           int threadsPerRow) {
    reduce_rows_body<double>(x, out, kept, rows, len, op, threadsPerRow);
}

// ------------------------------------------------------------------ columns

// Odometer over the reduced dimensions: the offset advances incrementally (no division per
// element). red: shape of the reduced dimensions, stride[0] = x's strides there.
template <typename T>
__device__ __forceinline__ double reduce_walk(const T* xb, const Geometry& red, i64 start, i64 end, int op) {
    double acc = reduce_identity<double>(op);
    if (start >= end) {
        return acc;
    }
    const int rank = (int) red.rank;
    i64 idx[DIR4J_MAX_RANK];
    i64 off = 0;
    // the coordinates of `start`
    i64 rem = start;
#pragma unroll
    for (int d = DIR4J_MAX_RANK - 1; d >= 0; --d) {
        idx[d] = 0;
        if (d < rank) {
            idx[d] = rem % red.shape[d];
            rem /= red.shape[d];
            off += idx[d] * red.stride[0][d];
        }
    }
    const int inner = rank - 1;
    for (i64 e = start; e < end; ++e) {
        acc = reduce_combine(op, acc, to_acc(xb[off]));
        // advance the innermost coordinate, carrying outward
        int d = inner;
        while (d >= 0) {
            off += red.stride[0][d];
            if (++idx[d] < red.shape[d]) {
                break;
            }
            off -= idx[d] * red.stride[0][d];
            idx[d] = 0;
            --d;
        }
    }
    return acc;
}

// A thread per output. kept: stride[0] = x's strides over the kept dimensions.
template <typename T>
__device__ __forceinline__ void reduce_columns_body(const T* __restrict__ x, T* __restrict__ out, const Geometry& kept,
                                                    const Geometry& red, int op) {
    const i64 nOut = kept.numel;
    const i64 nRed = red.numel;
    for (i64 o = global_thread<i64>(); o < nOut; o += grid_threads<i64>()) {
        u64 off[1];
        strided_offsets<1, u64>(kept, (u64) o, off);
        out[o] = (T) reduce_walk(x + off[0], red, 0, nRed, op);
    }
}

extern "C" __global__ void reduce_columns_f32(const float* x, float* out, Geometry kept, Geometry red, int op) {
    reduce_columns_body<float>(x, out, kept, red, op);
}

extern "C" __global__ void reduce_columns_f64(const double* x, double* out, Geometry kept, Geometry red, int op) {
    reduce_columns_body<double>(x, out, kept, red, op);
}

// ------------------------------------------------------------------ blocks

// A block per output (grid-stride over outputs in x), the reduced range split over gridDim.y.
// With one split the block writes out[o]; with more it writes partial[o * splits + split] and
// the host finishes with reduce_rows over the partials.
template <typename T>
__device__ __forceinline__ void reduce_blocks_body(const T* __restrict__ x, T* __restrict__ out, const Geometry& kept,
                                                   const Geometry& red, int op, T* __restrict__ partial) {
    __shared__ double scratch[32];
    const i64 nOut = kept.numel;
    const i64 nRed = red.numel;
    const i64 splits = gridDim.y;
    const i64 chunk = (nRed + splits - 1) / splits;
    const i64 start = (i64) blockIdx.y * chunk;
    const i64 end = min(nRed, start + chunk);
    for (i64 o = blockIdx.x; o < nOut; o += gridDim.x) {
        u64 off[1];
        strided_offsets<1, u64>(kept, (u64) o, off);
        const T* xb = x + off[0];
        double acc = reduce_identity<double>(op);
        for (i64 e = start + threadIdx.x; e < end; e += blockDim.x) {
            u64 ro[1];
            strided_offsets<1, u64>(red, (u64) e, ro);
            acc = reduce_combine(op, acc, to_acc(xb[ro[0]]));
        }
        acc = block_reduce(op, acc, scratch);
        if (threadIdx.x == 0) {
            if (splits == 1) {
                out[o] = (T) acc;
            } else {
                partial[o * splits + blockIdx.y] = (T) acc;
            }
        }
    }
}

extern "C" __global__ void reduce_blocks_f32(const float* x, float* out, Geometry kept, Geometry red, int op,
                                             float* partial) {
    reduce_blocks_body<float>(x, out, kept, red, op, partial);
}

extern "C" __global__ void reduce_blocks_f64(const double* x, double* out, Geometry kept, Geometry red, int op,
                                             double* partial) {
    reduce_blocks_body<double>(x, out, kept, red, op, partial);
}

// ------------------------------------------------------------------ cumulative sums

// A thread per line (short lines, many of them: the AP loss's [N, nq] bins). lines: the shape
// of the line starts (the scanned axis removed), stride[0] = x's strides, stride[1] = out's.
// Accumulates in double and stores each prefix, as the CPU backend does.
template <typename T>
__device__ __forceinline__ void cumsum_lines_body(const T* __restrict__ x, T* __restrict__ out, const Geometry& lines,
                                                  i64 n, i64 sx, i64 so, int reverse) {
    for (i64 l = global_thread<i64>(); l < lines.numel; l += grid_threads<i64>()) {
        u64 off[2];
        strided_offsets<2, u64>(lines, (u64) l, off);
        const T* xl = x + off[0];
        T* ol = out + off[1];
        double acc = 0;
        for (i64 j = 0; j < n; ++j) {
            const i64 k = reverse ? n - 1 - j : j;
            acc += (double) xl[k * sx];
            ol[k * so] = (T) acc;
        }
    }
}

extern "C" __global__ void cumsum_lines_f32(const float* x, float* out, Geometry lines, i64 n, i64 sx, i64 so,
                                            int reverse) {
    cumsum_lines_body<float>(x, out, lines, n, sx, so, reverse);
}

extern "C" __global__ void cumsum_lines_f64(const double* x, double* out, Geometry lines, i64 n, i64 sx, i64 so,
                                            int reverse) {
    cumsum_lines_body<double>(x, out, lines, n, sx, so, reverse);
}

// A block per line (long lines): chunks of blockDim.x elements, each an inclusive block scan
// (warp shuffles, then the warps' totals) plus the carry of the chunks before it.
template <typename T>
__device__ __forceinline__ void cumsum_block_body(const T* __restrict__ x, T* __restrict__ out, const Geometry& lines,
                                                  i64 n, i64 sx, i64 so, int reverse) {
    __shared__ double warpTotals[32];
    __shared__ double carryShared;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    for (i64 l = blockIdx.x; l < lines.numel; l += gridDim.x) {
        u64 off[2];
        strided_offsets<2, u64>(lines, (u64) l, off);
        const T* xl = x + off[0];
        T* ol = out + off[1];
        double carry = 0;
        for (i64 c0 = 0; c0 < n; c0 += blockDim.x) {
            const i64 j = c0 + threadIdx.x;
            const i64 k = reverse ? n - 1 - j : j;
            double v = j < n ? (double) xl[k * sx] : 0.0;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const double t = __shfl_up_sync(0xffffffffu, v, o);
                if (lane >= o) {
                    v += t;
                }
            }
            if (lane == 31) {
                warpTotals[warp] = v;
            }
            __syncthreads();
            if (warp == 0) {
                double w = lane < warps ? warpTotals[lane] : 0.0;
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const double t = __shfl_up_sync(0xffffffffu, w, o);
                    if (lane >= o) {
                        w += t;
                    }
                }
                if (lane < warps) {
                    warpTotals[lane] = w; // inclusive prefix of warp totals
                }
            }
            __syncthreads();
            const double before = warp > 0 ? warpTotals[warp - 1] : 0.0;
            if (j < n) {
                ol[k * so] = (T) (carry + before + v);
            }
            if (threadIdx.x == blockDim.x - 1) {
                carryShared = carry + before + v;
            }
            __syncthreads();
            carry = carryShared;
            __syncthreads();
        }
    }
}

// blockDim.x must be a multiple of 32 (at most 1024)
extern "C" __global__ void cumsum_block_f32(const float* x, float* out, Geometry lines, i64 n, i64 sx, i64 so,
                                            int reverse) {
    cumsum_block_body<float>(x, out, lines, n, sx, so, reverse);
}

extern "C" __global__ void cumsum_block_f64(const double* x, double* out, Geometry lines, i64 n, i64 sx, i64 so,
                                            int reverse) {
    cumsum_block_body<double>(x, out, lines, n, sx, so, reverse);
}
