// Generalized-mean pooling, fused (dir4j.engine.cpu.GemKernels is the reference):
//   forward   y = (mean_hw max(x, ε)^p)^(1/p) per (n, c) plane;
//   backward  with z = max(x, ε), m = mean z^p: dx = dy·y^(1−p)·z^(p−1)/HW where x ≥ ε (else 0),
//             and the plane's share of dL/dp, dy·y·(mean(z^p·ln z)/(p·m) − ln m / p²),
//             in the same single pass over x that writes dx.
// p is read from device memory (a learnable one-element tensor), so no host synchronisation.
//
// Two layouts of the work, the same arithmetic:
//   *_warp_f32   a warp per plane (the ResNet shapes: many planes of a few hundred to a few
//                thousand values): each lane issues 8 float4 loads before using any, so that
//                enough bytes are in flight per SM to run at copy bandwidth, and the plane's sums
//                are combined by warp shuffles (no shared memory, no barrier);
//   *_f32        a block per plane (grid-stride), for few large planes.
// The float4 path needs hw % 4 == 0 and x (and dx) 16-byte aligned; otherwise a scalar loop.
//
// Built without --use_fast_math, but z^p for a non-integer p is exp2(p·log2 z) with the
// hardware log2 (lg2.approx, relative error ~2^-22 on normal floats; z ≥ ε is never
// denormal) and the library exp2f: the accurate powf costs ~40 instructions an element, which
// kept the kernels compute-bound. The common exponents 1, 2, 3 stay multiplications (as on the
// CPU). Sums are float within one float4 and double across them; the results agree with the
// CPU backend within CudaMethodGpuTest's PLANE_SUM tolerance.
#include "common.cuh"

#define DIR4J_LN2 0.6931471805599453

// z^e for z > 0 given l2 = log2(z): the common exponents by multiplication
__device__ __forceinline__ float pow_l2(float z, float l2, float e) {
    if (e == 1.f) return z;
    if (e == 2.f) return z * z;
    if (e == 3.f) return z * z * z;
    return exp2f(e * l2);
}

__device__ __forceinline__ float pow_fast(float z, float e) {
    if (e == 1.f) return z;
    if (e == 2.f) return z * z;
    if (e == 3.f) return z * z * z;
    return exp2f(e * __log2f(z));
}

// max(v, eps) keeping NaN (the CPU's vector max propagates it)
__device__ __forceinline__ float clamp_low(float v, float eps) {
    return v != v ? v : fmaxf(v, eps);
}

__device__ __forceinline__ float pow4_sum(float4 v, float e, float p) {
    return (pow_fast(clamp_low(v.x, e), p) + pow_fast(clamp_low(v.y, e), p))
            + (pow_fast(clamp_low(v.z, e), p) + pow_fast(clamp_low(v.w, e), p));
}

// (m)^(1/p) in float where m is a normal float, in double otherwise (p·ln ε below float's range)
__device__ __forceinline__ float gem_root(double m, float p) {
    const float mf = (float) m;
    if (mf >= 1e-30f && mf <= 1e30f) {
        return powf(mf, 1.f / p);
    }
    return (float) pow(m, 1.0 / (double) p);
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

// Σ max(x, ε)^p over one plane by the 32 lanes of a warp (every lane gets the sum)
__device__ __forceinline__ double plane_pow_sum_warp(const float* __restrict__ xp, i64 hw, int vec4, float e,
                                                     float p, int lane) {
    double acc = 0;
    if (vec4) {
        const float4* x4 = reinterpret_cast<const float4*>(xp);
        const i64 n4 = hw >> 2;
        i64 i = lane;
        for (; i + 7 * 32 < n4; i += 8 * 32) {
            float4 v[8];
#pragma unroll
            for (int k = 0; k < 8; ++k) {
                v[k] = x4[i + k * 32];
            }
            float s = 0.f;
#pragma unroll
            for (int k = 0; k < 8; ++k) {
                s += pow4_sum(v[k], e, p);
            }
            acc += (double) s;
        }
        for (; i < n4; i += 32) {
            acc += (double) pow4_sum(x4[i], e, p);
        }
    } else {
        for (i64 i = lane; i < hw; i += 32) {
            acc += (double) pow_fast(clamp_low(xp[i], e), p);
        }
    }
    return warp_sum_d(acc);
}

// a warp per plane; block a multiple of 32 threads
extern "C" __global__ void gem_forward_warp_f32(const float* __restrict__ x, const float* __restrict__ pPtr,
                                                double eps, float* __restrict__ y, i64 planes, i64 hw, int vec4) {
    const float p = *pPtr;
    const float e = (float) eps;
    const int lane = threadIdx.x & 31;
    const i64 warps = ((i64) gridDim.x * blockDim.x) >> 5;
    for (i64 pl = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; pl < planes; pl += warps) {
        const double sum = plane_pow_sum_warp(x + pl * hw, hw, vec4, e, p, lane);
        if (lane == 0) {
            y[pl] = gem_root(sum / (double) hw, p);
        }
    }
}

// a block per plane (grid-stride over planes)
extern "C" __global__ void gem_forward_f32(const float* __restrict__ x, const float* __restrict__ pPtr, double eps,
                                           float* __restrict__ y, i64 planes, i64 hw, int vec4) {
    __shared__ double scratch[32];
    const float p = *pPtr;
    const float e = (float) eps;
    for (i64 pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float* xp = x + pl * hw;
        double acc = 0;
        if (vec4) {
            const float4* x4 = reinterpret_cast<const float4*>(xp);
            for (i64 i = threadIdx.x; i < (hw >> 2); i += blockDim.x) {
                acc += (double) pow4_sum(x4[i], e, p);
            }
        } else {
            for (i64 i = threadIdx.x; i < hw; i += blockDim.x) {
                acc += (double) pow_fast(clamp_low(xp[i], e), p);
            }
        }
        acc = block_sum(acc, scratch);
        if (threadIdx.x == 0) {
            y[pl] = gem_root(acc / (double) hw, p);
        }
    }
}

// ------------------------------------------------------------------ backward

// One element: writes its dx, adds z^p and z^p·log2 z to the running sums.
__device__ __forceinline__ float gem_dx(float v, float e, float pm1, float c, float& sZp, float& sZpL2) {
    const float z = clamp_low(v, e);
    const float l2 = __log2f(z);
    const float zpm1 = pow_l2(z, l2, pm1);
    const float zp = zpm1 * z;
    sZp += zp;
    sZpL2 += zp * l2;
    return v >= e ? c * zpm1 : 0.f;
}

__device__ __forceinline__ float4 gem_dx4(float4 v, float e, float pm1, float c, double& sumZp, double& sumZpL2) {
    float a = 0.f, b = 0.f;
    float4 d;
    d.x = gem_dx(v.x, e, pm1, c, a, b);
    d.y = gem_dx(v.y, e, pm1, c, a, b);
    d.z = gem_dx(v.z, e, pm1, c, a, b);
    d.w = gem_dx(v.w, e, pm1, c, a, b);
    sumZp += (double) a;
    sumZpL2 += (double) b;
    return d;
}

// dy·y^(1−p)/HW, the plane's factor of dx
__device__ __forceinline__ float gem_dx_scale(float yv, float g, float p, i64 hw) {
    return g * powf(yv, 1.f - p) / (float) hw;
}

// the plane's share of dL/dp from Σz^p and Σz^p·log2 z (lane or thread 0)
__device__ __forceinline__ float gem_dp(double sumZp, double sumZpL2, float yv, float g, float p, i64 hw) {
    const double pd = (double) p;
    const double m = sumZp / (double) hw;
    const double meanZpLog = sumZpL2 * DIR4J_LN2 / (double) hw;
    const double dydp = (double) yv * (meanZpLog / (pd * m) - log(m) / (pd * pd));
    return (float) ((double) g * dydp);
}

extern "C" __global__ void gem_backward_warp_f32(const float* __restrict__ x, const float* __restrict__ pPtr,
                                                 double eps, const float* __restrict__ y,
                                                 const float* __restrict__ dy, float* __restrict__ dx,
                                                 float* __restrict__ dpPartial, i64 planes, i64 hw, int vec4) {
    const float p = *pPtr;
    const float pm1 = p - 1.f;
    const float e = (float) eps;
    const int lane = threadIdx.x & 31;
    const i64 warps = ((i64) gridDim.x * blockDim.x) >> 5;
    for (i64 pl = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; pl < planes; pl += warps) {
        const float* xp = x + pl * hw;
        float* dp = dx + pl * hw;
        const float yv = y[pl];
        const float g = dy[pl];
        const float c = gem_dx_scale(yv, g, p, hw);
        double sumZp = 0;
        double sumZpL2 = 0;
        if (vec4) {
            const float4* x4 = reinterpret_cast<const float4*>(xp);
            float4* d4 = reinterpret_cast<float4*>(dp);
            const i64 n4 = hw >> 2;
            i64 i = lane;
            for (; i + 7 * 32 < n4; i += 8 * 32) {
                float4 v[8];
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    v[k] = x4[i + k * 32];
                }
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    d4[i + k * 32] = gem_dx4(v[k], e, pm1, c, sumZp, sumZpL2);
                }
            }
            for (; i < n4; i += 32) {
                d4[i] = gem_dx4(x4[i], e, pm1, c, sumZp, sumZpL2);
            }
        } else {
            for (i64 i = lane; i < hw; i += 32) {
                float a = 0.f, b = 0.f;
                dp[i] = gem_dx(xp[i], e, pm1, c, a, b);
                sumZp += (double) a;
                sumZpL2 += (double) b;
            }
        }
        sumZp = warp_sum_d(sumZp);
        sumZpL2 = warp_sum_d(sumZpL2);
        if (lane == 0) {
            dpPartial[pl] = gem_dp(sumZp, sumZpL2, yv, g, p, hw);
        }
    }
}

extern "C" __global__ void gem_backward_f32(const float* __restrict__ x, const float* __restrict__ pPtr, double eps,
                                            const float* __restrict__ y, const float* __restrict__ dy,
                                            float* __restrict__ dx, float* __restrict__ dpPartial, i64 planes, i64 hw,
                                            int vec4) {
    __shared__ double scratch[32];
    const float p = *pPtr;
    const float pm1 = p - 1.f;
    const float e = (float) eps;
    for (i64 pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float* xp = x + pl * hw;
        float* dp = dx + pl * hw;
        const float yv = y[pl];
        const float g = dy[pl];
        const float c = gem_dx_scale(yv, g, p, hw);
        double sumZp = 0;
        double sumZpL2 = 0;
        if (vec4) {
            const float4* x4 = reinterpret_cast<const float4*>(xp);
            float4* d4 = reinterpret_cast<float4*>(dp);
            for (i64 i = threadIdx.x; i < (hw >> 2); i += blockDim.x) {
                d4[i] = gem_dx4(x4[i], e, pm1, c, sumZp, sumZpL2);
            }
        } else {
            for (i64 i = threadIdx.x; i < hw; i += blockDim.x) {
                float a = 0.f, b = 0.f;
                dp[i] = gem_dx(xp[i], e, pm1, c, a, b);
                sumZp += (double) a;
                sumZpL2 += (double) b;
            }
        }
        sumZp = block_sum(sumZp, scratch);
        sumZpL2 = block_sum(sumZpL2, scratch);
        if (threadIdx.x == 0) {
            dpPartial[pl] = gem_dp(sumZp, sumZpL2, yv, g, p, hw);
        }
    }
}
