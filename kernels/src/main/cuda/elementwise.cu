// Elementwise kernels: unary and binary ops with broadcasting through stride-0 views, fill, and
// strided copy / dtype cast. The semantics are those of dir4j.engine.cpu.ScalarMath (NaN
// handling included). Each op has a contiguous float4 kernel (every operand contiguous and
// 16-byte aligned, no broadcast), binary ops a float4 kernel for one contiguous operand against
// a repeated vector (bias adds, per-channel scales), and strided kernels over a Geometry of up to rank 6, in 32-bit
// index arithmetic when the host proved it fits and 64-bit otherwise.
//
// Built without --use_fast_math: these kernels are bandwidth-bound, so approximate exp/log/div
// would buy no time and would cost agreement with the CPU backend.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common.cuh"

// Unary op codes: the ordinals of dir4j.engine.Backend.Unary.
enum UnaryOp {
    U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_SIGN, U_RECIPROCAL, U_RELU, U_POW, U_CLAMP, U_AFFINE, U_GREATER, U_IN_RANGE
};

// Binary op codes: the ordinals of dir4j.engine.Backend.Binary.
enum BinaryOp { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW, B_EQ, B_GT };

template <int OP, typename T>
__device__ __forceinline__ T unary_apply(T v, T a, T b) {
    if constexpr (OP == U_NEG) {
        return -v;
    } else if constexpr (OP == U_EXP) {
        return d_exp(v);
    } else if constexpr (OP == U_LOG) {
        return d_log(v);
    } else if constexpr (OP == U_SQRT) {
        return d_sqrt(v);
    } else if constexpr (OP == U_ABS) {
        return v < T(0) ? -v : (v == T(0) ? T(0) : v);
    } else if constexpr (OP == U_SIGN) {
        return v > T(0) ? T(1) : (v < T(0) ? T(-1) : (v == v ? T(0) : v));
    } else if constexpr (OP == U_RECIPROCAL) {
        return T(1) / v;
    } else if constexpr (OP == U_RELU) {
        return v > T(0) ? v : (v == v ? T(0) : v);
    } else if constexpr (OP == U_POW) {
        // the exponents the CPU backend does by multiplication, the rest by pow
        if (a == T(1)) return v;
        if (a == T(2)) return v * v;
        if (a == T(3)) return v * v * v;
        if (a == T(0.5)) return d_sqrt(v);
        if (a == T(-1)) return T(1) / v;
        return d_pow(v, a);
    } else if constexpr (OP == U_CLAMP) {
        if (v != v) return v;
        T r = v;
        if (a == a && r < a) r = a;
        if (b == b && r > b) r = b;
        return r;
    } else if constexpr (OP == U_AFFINE) {
        return d_fma(v, a, b);
    } else if constexpr (OP == U_GREATER) {
        return v > a ? T(1) : T(0);
    } else { // U_IN_RANGE: NaN bounds are absent; NaN x is outside
        return (v == v && (a != a || v >= a) && (b != b || v <= b)) ? T(1) : T(0);
    }
}

template <int OP, typename T>
__device__ __forceinline__ T binary_apply(T x, T y) {
    if constexpr (OP == B_ADD) {
        return x + y;
    } else if constexpr (OP == B_SUB) {
        return x - y;
    } else if constexpr (OP == B_MUL) {
        return x * y;
    } else if constexpr (OP == B_DIV) {
        return x / y;
    } else if constexpr (OP == B_MAX) {
        return nan_max(x, y);
    } else if constexpr (OP == B_MIN) {
        return nan_min(x, y);
    } else if constexpr (OP == B_POW) {
        return d_pow(x, y);
    } else if constexpr (OP == B_EQ) {
        return x == y ? T(1) : T(0);
    } else { // B_GT
        return x > y ? T(1) : T(0);
    }
}

#define DIR4J_UNARY_CASES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
#define DIR4J_BINARY_CASES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8)

// ------------------------------------------------------------------ unary

template <int OP>
__device__ __forceinline__ void unary_contig4_loop(const float* x, float* out, i64 n, float a, float b) {
    const i64 n4 = n >> 2;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* o4 = reinterpret_cast<float4*>(out);
    for (i64 i = global_thread<i64>(); i < n4; i += grid_threads<i64>()) {
        float4 v = x4[i];
        v.x = unary_apply<OP, float>(v.x, a, b);
        v.y = unary_apply<OP, float>(v.y, a, b);
        v.z = unary_apply<OP, float>(v.z, a, b);
        v.w = unary_apply<OP, float>(v.w, a, b);
        o4[i] = v;
    }
    for (i64 i = (n4 << 2) + global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        out[i] = unary_apply<OP, float>(x[i], a, b);
    }
}

// x and out contiguous, 16-byte aligned, n elements; out may be x (each element is read before it is written).
extern "C" __global__ void unary_contig4_f32(const float* x, float* out, i64 n, int op, double alpha, double beta) {
    const float a = (float) alpha;
    const float b = (float) beta;
    switch (op) {
#define DIR4J_CASE(K) case K: unary_contig4_loop<K>(x, out, n, a, b); break;
        DIR4J_UNARY_CASES(DIR4J_CASE)
#undef DIR4J_CASE
    }
}

template <int OP, typename T, typename I>
__device__ __forceinline__ void unary_strided_loop(const T* x, T* out, const Geometry& g, T a, T b) {
    const I n = (I) g.numel;
    for (I i = global_thread<I>(); i < n; i += grid_threads<I>()) {
        I off[2];
        strided_offsets<2, I>(g, i, off);
        out[off[1]] = unary_apply<OP, T>(x[off[0]], a, b);
    }
}

// operand 0 = x, operand 1 = out (in-place allowed: each element is read before it is written)
#define DIR4J_UNARY_STRIDED(NAME, T, I)                                                                    \
    extern "C" __global__ void NAME(const T* x, T* out, Geometry g, int op, double alpha, double beta) {   \
        const T a = (T) alpha;                                                                             \
        const T b = (T) beta;                                                                              \
        switch (op) {                                                                                      \
            DIR4J_UNARY_CASES(DIR4J_UNARY_STRIDED_CASE_##I##_##T)                                          \
        }                                                                                                  \
    }

#define DIR4J_UNARY_STRIDED_CASE_u32_float(K) case K: unary_strided_loop<K, float, unsigned>(x, out, g, a, b); break;
#define DIR4J_UNARY_STRIDED_CASE_u64_float(K) case K: unary_strided_loop<K, float, u64>(x, out, g, a, b); break;
#define DIR4J_UNARY_STRIDED_CASE_u32_double(K) case K: unary_strided_loop<K, double, unsigned>(x, out, g, a, b); break;
#define DIR4J_UNARY_STRIDED_CASE_u64_double(K) case K: unary_strided_loop<K, double, u64>(x, out, g, a, b); break;

DIR4J_UNARY_STRIDED(unary_strided_f32_i32, float, u32)
DIR4J_UNARY_STRIDED(unary_strided_f32_i64, float, u64)
DIR4J_UNARY_STRIDED(unary_strided_f64_i32, double, u32)
DIR4J_UNARY_STRIDED(unary_strided_f64_i64, double, u64)

// ------------------------------------------------------------------ binary

template <int OP>
__device__ __forceinline__ void binary_contig4_loop(const float* a, const float* b, float* out, i64 n) {
    const i64 n4 = n >> 2;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* o4 = reinterpret_cast<float4*>(out);
    for (i64 i = global_thread<i64>(); i < n4; i += grid_threads<i64>()) {
        const float4 x = a4[i];
        const float4 y = b4[i];
        float4 r;
        r.x = binary_apply<OP, float>(x.x, y.x);
        r.y = binary_apply<OP, float>(x.y, y.y);
        r.z = binary_apply<OP, float>(x.z, y.z);
        r.w = binary_apply<OP, float>(x.w, y.w);
        o4[i] = r;
    }
    for (i64 i = (n4 << 2) + global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        out[i] = binary_apply<OP, float>(a[i], b[i]);
    }
}

// a, b and out contiguous, 16-byte aligned, n elements. Not __restrict__ across operands: an
// in-place add (out == a) is legal, and each element is read before it is written.
extern "C" __global__ void binary_contig4_f32(const float* a, const float* b, float* out, i64 n, int op) {
    switch (op) {
#define DIR4J_CASE(K) case K: binary_contig4_loop<K>(a, b, out, n); break;
        DIR4J_BINARY_CASES(DIR4J_CASE)
#undef DIR4J_CASE
    }
}

// One operand contiguous (c), the other (r) a contiguous vector of `period` values repeated so
// that element i of the output pairs c[i] with r[(i / inner) % period]: a per-channel [1,C,1,1]
// against [N,C,H,W] (inner = H·W, period = C), a row vector [1,D] against [N,D] (inner = 1,
// period = D), a column [N,1] (inner = D, period = N), a scalar (period = 1). swap: r is the
// first operand (r op c), a uniform branch. c and out 16-byte aligned. 32-bit indices: the host proved n < 2^31.
//
// Each thread loads REPEAT_UNROLL float4s of c before it uses any (bytes in flight), then finds
// r's values by MODE: RM_RUN4 (inner % 4 == 0: one r value per float4), RM_ROW4 (inner == 1,
// period % 4 == 0, r 16-byte aligned: a float4 of r), RM_ANY (an index per element, stepped).
enum RepeatMode { RM_RUN4 = 0, RM_ROW4 = 1, RM_ANY = 2 };
#define REPEAT_UNROLL 4

// c op r, or r op c when swap (uniform across the launch)
template <int OP>
__device__ __forceinline__ float binary_pair(float c, float r, bool swap) {
    return swap ? binary_apply<OP, float>(r, c) : binary_apply<OP, float>(c, r);
}

template <int MODE>
__device__ __forceinline__ float4 repeated4(const float* __restrict__ r, unsigned e, unsigned inner, unsigned period) {
    if constexpr (MODE == RM_RUN4) {
        const float v = r[(e / inner) % period];
        return make_float4(v, v, v, v);
    } else if constexpr (MODE == RM_ROW4) {
        return reinterpret_cast<const float4*>(r)[(e % period) >> 2];
    } else {
        unsigned q = e / inner;
        unsigned rem = e - q * inner;
        unsigned j = q % period;
        float rv[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            if (k > 0 && ++rem == inner) { // the next element: carry into the run, then the period
                rem = 0;
                if (++j == period) {
                    j = 0;
                }
            }
            rv[k] = r[j];
        }
        return make_float4(rv[0], rv[1], rv[2], rv[3]);
    }
}

template <int OP, int MODE>
__device__ __forceinline__ void binary_repeat4_loop(const float* c, const float* __restrict__ r, float* out,
                                                    unsigned n, unsigned inner, unsigned period, bool swap) {
    const unsigned n4 = n >> 2;
    const float4* c4 = reinterpret_cast<const float4*>(c);
    float4* o4 = reinterpret_cast<float4*>(out);
    const unsigned tile = blockDim.x * REPEAT_UNROLL;
    for (unsigned base = blockIdx.x * tile + threadIdx.x; base < n4; base += gridDim.x * tile) {
        float4 x[REPEAT_UNROLL];
#pragma unroll
        for (int k = 0; k < REPEAT_UNROLL; ++k) {
            const unsigned i = base + k * blockDim.x;
            if (i < n4) {
                x[k] = c4[i];
            }
        }
#pragma unroll
        for (int k = 0; k < REPEAT_UNROLL; ++k) {
            const unsigned i = base + k * blockDim.x;
            if (i < n4) {
                const float4 y = repeated4<MODE>(r, i << 2, inner, period);
                float4 o;
                o.x = binary_pair<OP>(x[k].x, y.x, swap);
                o.y = binary_pair<OP>(x[k].y, y.y, swap);
                o.z = binary_pair<OP>(x[k].z, y.z, swap);
                o.w = binary_pair<OP>(x[k].w, y.w, swap);
                o4[i] = o;
            }
        }
    }
    for (unsigned i = (n4 << 2) + global_thread<unsigned>(); i < n; i += grid_threads<unsigned>()) {
        out[i] = binary_pair<OP>(c[i], r[(i / inner) % period], swap);
    }
}

template <int OP>
__device__ __forceinline__ void binary_repeat4_modes(const float* c, const float* r, float* out, unsigned n,
                                                     unsigned inner, unsigned period, bool swap, int mode) {
    if (mode == RM_RUN4) {
        binary_repeat4_loop<OP, RM_RUN4>(c, r, out, n, inner, period, swap);
    } else if (mode == RM_ROW4) {
        binary_repeat4_loop<OP, RM_ROW4>(c, r, out, n, inner, period, swap);
    } else {
        binary_repeat4_loop<OP, RM_ANY>(c, r, out, n, inner, period, swap);
    }
}

// operands: c contiguous (16-byte aligned), r the repeated vector, out contiguous (aligned; may
// be c, each element read before it is written; never r). op: add, sub, mul or div only (the
// bias and scale ops; the others take the strided kernel, which keeps this module small).
// mode: RepeatMode, chosen by the host.
extern "C" __global__ void binary_repeat4_f32(const float* c, const float* r, float* out, unsigned n, unsigned inner,
                                              unsigned period, int op, int swap, int mode) {
    switch (op) {
#define DIR4J_CASE(K) case K: binary_repeat4_modes<K>(c, r, out, n, inner, period, swap != 0, mode); break;
        DIR4J_CASE(B_ADD) DIR4J_CASE(B_SUB) DIR4J_CASE(B_MUL) DIR4J_CASE(B_DIV)
#undef DIR4J_CASE
    }
}

template <int OP, typename T, typename I>
__device__ __forceinline__ void binary_strided_loop(const T* a, const T* b, T* out, const Geometry& g) {
    const I n = (I) g.numel;
    for (I i = global_thread<I>(); i < n; i += grid_threads<I>()) {
        I off[3];
        strided_offsets<3, I>(g, i, off);
        out[off[2]] = binary_apply<OP, T>(a[off[0]], b[off[1]]);
    }
}

// operands 0 = a, 1 = b, 2 = out
#define DIR4J_BINARY_STRIDED(NAME, T, I)                                                   \
    extern "C" __global__ void NAME(const T* a, const T* b, T* out, Geometry g, int op) {   \
        switch (op) {                                                                      \
            DIR4J_BINARY_CASES(DIR4J_BINARY_STRIDED_CASE_##I##_##T)                        \
        }                                                                                  \
    }

#define DIR4J_BINARY_STRIDED_CASE_u32_float(K) case K: binary_strided_loop<K, float, unsigned>(a, b, out, g); break;
#define DIR4J_BINARY_STRIDED_CASE_u64_float(K) case K: binary_strided_loop<K, float, u64>(a, b, out, g); break;
#define DIR4J_BINARY_STRIDED_CASE_u32_double(K) case K: binary_strided_loop<K, double, unsigned>(a, b, out, g); break;
#define DIR4J_BINARY_STRIDED_CASE_u64_double(K) case K: binary_strided_loop<K, double, u64>(a, b, out, g); break;

DIR4J_BINARY_STRIDED(binary_strided_f32_i32, float, u32)
DIR4J_BINARY_STRIDED(binary_strided_f32_i64, float, u64)
DIR4J_BINARY_STRIDED(binary_strided_f64_i32, double, u32)
DIR4J_BINARY_STRIDED(binary_strided_f64_i64, double, u64)

// ------------------------------------------------------------------ fill and same-type copy

// Fills a strided view (operand 0) with a bit pattern of the element's width; the host encodes
// the value in the destination dtype (contiguous 2- and 4-byte fills use cuMemsetD16/D32).
template <typename W, typename I>
__device__ __forceinline__ void fill_loop(W* out, const Geometry& g, W bits) {
    const I n = (I) g.numel;
    for (I i = global_thread<I>(); i < n; i += grid_threads<I>()) {
        I off[1];
        strided_offsets<1, I>(g, i, off);
        out[off[0]] = bits;
    }
}

#define DIR4J_FILL(NAME, W, I) \
    extern "C" __global__ void NAME(W* out, Geometry g, u64 bits) { fill_loop<W, I>(out, g, (W) bits); }

DIR4J_FILL(fill_strided_b16_i32, unsigned short, unsigned)
DIR4J_FILL(fill_strided_b16_i64, unsigned short, u64)
DIR4J_FILL(fill_strided_b32_i32, unsigned, unsigned)
DIR4J_FILL(fill_strided_b32_i64, unsigned, u64)
DIR4J_FILL(fill_strided_b64_i32, u64, unsigned)
DIR4J_FILL(fill_strided_b64_i64, u64, u64)

// Moves elements of one width between two strided views (operand 0 = src, 1 = dst): a copy
// that does not convert is a move of bits whatever the dtype.
template <typename W, typename I>
__device__ __forceinline__ void copy_loop(const W* src, W* dst, const Geometry& g) {
    const I n = (I) g.numel;
    for (I i = global_thread<I>(); i < n; i += grid_threads<I>()) {
        I off[2];
        strided_offsets<2, I>(g, i, off);
        dst[off[1]] = src[off[0]];
    }
}

#define DIR4J_COPY(NAME, W, I) \
    extern "C" __global__ void NAME(const W* src, W* dst, Geometry g) { copy_loop<W, I>(src, dst, g); }

DIR4J_COPY(copy_strided_b16_i32, unsigned short, unsigned)
DIR4J_COPY(copy_strided_b16_i64, unsigned short, u64)
DIR4J_COPY(copy_strided_b32_i32, unsigned, unsigned)
DIR4J_COPY(copy_strided_b32_i64, unsigned, u64)
DIR4J_COPY(copy_strided_b64_i32, u64, unsigned)
DIR4J_COPY(copy_strided_b64_i64, u64, u64)

// ------------------------------------------------------------------ dtype cast

// dtype codes: the ordinals of dir4j.engine.DType
enum DTypeCode { T_FLOAT32 = 0, T_FLOAT64 = 1, T_INT32 = 2, T_BFLOAT16 = 3, T_FLOAT16 = 4 };

__device__ __forceinline__ double load_as_double(const void* p, i64 i, int type) {
    switch (type) {
        case T_FLOAT32: return (double) static_cast<const float*>(p)[i];
        case T_FLOAT64: return static_cast<const double*>(p)[i];
        case T_INT32: return (double) static_cast<const int*>(p)[i];
        case T_BFLOAT16: return (double) __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
        default: return (double) __half2float(static_cast<const __half*>(p)[i]);
    }
}

__device__ __forceinline__ void store_from_double(void* p, i64 i, int type, double v) {
    switch (type) {
        case T_FLOAT32: static_cast<float*>(p)[i] = (float) v; break;
        // Java's (int) cast: truncation toward zero, NaN to 0, saturation at the int range
        case T_INT32: static_cast<int*>(p)[i] = __double2int_rz(v); break;
        case T_FLOAT64: static_cast<double*>(p)[i] = v; break;
        // to 16-bit floats through float32, as the CPU path would round a float32
        case T_BFLOAT16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn((float) v); break;
        default: static_cast<__half*>(p)[i] = __float2half_rn((float) v); break;
    }
}

// Converting copy between strided views (operand 0 = src, 1 = dst) of any two dtypes; rare
// (dtype changes), so one kernel with a per-element switch and 64-bit indexing.
extern "C" __global__ void cast_strided(const void* src, int srcType, void* dst, int dstType, Geometry g) {
    const u64 n = (u64) g.numel;
    for (u64 i = global_thread<u64>(); i < n; i += grid_threads<u64>()) {
        u64 off[2];
        strided_offsets<2, u64>(g, i, off);
        store_from_double(dst, (i64) off[1], dstType, load_as_double(src, (i64) off[0], srcType));
    }
}
