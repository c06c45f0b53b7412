// Shared definitions of dir4j's CUDA kernels.
//
// The Geometry struct is packed on the host by dir4j.engine.cuda.StridedGeometry#pack as 26
// int64 words in this order; change both together. Every kernel takes element offsets already
// applied to its pointers (the host adds a view's offset), strides in elements, and loops
// grid-stride so that any launch size covers any problem size.
#pragma once

#define DIR4J_MAX_RANK 6
#define DIR4J_MAX_OPERANDS 3

typedef long long i64;
typedef unsigned long long u64;

// Up to three operands viewed with one shape (row-major, innermost dimension last).
struct Geometry {
    i64 rank;
    i64 numel;
    i64 shape[DIR4J_MAX_RANK];
    i64 stride[DIR4J_MAX_OPERANDS][DIR4J_MAX_RANK];
};

// Element offsets of NOPS operands at row-major linear index i of g's shape. The loops unroll
// over the fixed maximum rank so that g stays in the parameter bank (no local-memory copy).
template <int NOPS, typename I>
__device__ __forceinline__ void strided_offsets(const Geometry& g, I i, I (&off)[NOPS]) {
#pragma unroll
    for (int k = 0; k < NOPS; ++k) {
        off[k] = 0;
    }
    const int rank = (int) g.rank;
#pragma unroll
    for (int d = DIR4J_MAX_RANK - 1; d >= 0; --d) {
        if (d < rank) {
            I c;
            if (d == 0) {
                c = i; // the outermost coordinate needs no modulo
            } else {
                const I size = (I) g.shape[d];
                c = i % size;
                i = i / size;
            }
#pragma unroll
            for (int k = 0; k < NOPS; ++k) {
                off[k] += c * (I) g.stride[k][d];
            }
        }
    }
}

// Grid-stride loop bounds in index type I (unsigned int when the host proved every offset and
// the element count below 2^31, else unsigned long long).
template <typename I>
__device__ __forceinline__ I global_thread() {
    return (I) blockIdx.x * (I) blockDim.x + (I) threadIdx.x;
}

template <typename I>
__device__ __forceinline__ I grid_threads() {
    return (I) gridDim.x * (I) blockDim.x;
}

// ------------------------------------------------------------------ numeric helpers

template <typename T> __device__ __forceinline__ T pos_inf();
template <> __device__ __forceinline__ float pos_inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double pos_inf<double>() { return __longlong_as_double(0x7ff0000000000000LL); }

template <typename T> __device__ __forceinline__ T quiet_nan();
template <> __device__ __forceinline__ float quiet_nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double quiet_nan<double>() { return __longlong_as_double(0x7ff8000000000000LL); }

__device__ __forceinline__ float d_exp(float v) { return expf(v); }
__device__ __forceinline__ double d_exp(double v) { return exp(v); }
__device__ __forceinline__ float d_log(float v) { return logf(v); }
__device__ __forceinline__ double d_log(double v) { return log(v); }
__device__ __forceinline__ float d_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double d_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float d_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double d_pow(double a, double b) { return pow(a, b); }
__device__ __forceinline__ float d_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double d_fma(double a, double b, double c) { return fma(a, b, c); }

// max/min that propagate NaN (torch.maximum, Java's Math.max), unlike fmax/fmin.
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
    return (a != a || b != b) ? a + b : (a > b ? a : b);
}

template <typename T>
__device__ __forceinline__ T nan_min(T a, T b) {
    return (a != a || b != b) ? a + b : (a < b ? a : b);
}

// ------------------------------------------------------------------ reductions

// Reduction op codes: the ordinals of dir4j.engine.Backend.Reduce.
enum ReduceOp { R_SUM = 0, R_MAX = 1, R_MIN = 2 };

template <typename A>
__device__ __forceinline__ A reduce_identity(int op) {
    return op == R_SUM ? A(0) : (op == R_MAX ? -pos_inf<A>() : pos_inf<A>());
}

template <typename A>
__device__ __forceinline__ A reduce_combine(int op, A a, A b) {
    return op == R_SUM ? a + b : (op == R_MAX ? nan_max(a, b) : nan_min(a, b));
}

// Combines v across the 32 lanes of a warp; the result is in lane 0.
template <typename A>
__device__ __forceinline__ A warp_reduce(int op, A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v = reduce_combine(op, v, __shfl_down_sync(0xffffffffu, v, o));
    }
    return v;
}

// Combines v across the block; the result is in thread 0. `scratch` holds 32 values; the
// function ends with a barrier, so scratch may be reused right after.
template <typename A>
__device__ __forceinline__ A block_reduce(int op, A v, A* scratch) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    v = warp_reduce(op, v);
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? scratch[lane] : reduce_identity<A>(op);
        v = warp_reduce(op, v);
    }
    __syncthreads();
    return v;
}

// Sum of v over the block, the result in thread 0 (double accumulation for float data).
template <typename A>
__device__ __forceinline__ A block_sum(A v, A* scratch) {
    return block_reduce(R_SUM, v, scratch);
}
