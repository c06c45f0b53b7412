// Generalized-mean pooling, fused (dir4j.engine.cpu.GemKernels is the reference):
//   forward   y = (mean_hw max(x, ε)^p)^(1/p) per (n, c) plane;
//   backward  with z = max(x, ε), m = mean z^p: dx = dy·y^(1−p)·z^(p−1)/HW where x ≥ ε (else 0),
//             and the plane's share of dL/dp, dy·y·(mean(z^p·ln z)/(p·m) − ln m / p²),
//             in one pass over x.
// A block per plane (grid-stride over planes), a shared-memory reduction in double. p is read
// from device memory (a learnable one-element tensor), so no host synchronisation is needed.
//
// Built without --use_fast_math: ln and pow feed dL/dp, which must match the CPU backend.
#include "common.cuh"

// z^e for z > 0, the common exponents by multiplication (as the CPU kernel does)
__device__ __forceinline__ float pow_common(float z, float e) {
    if (e == 1.f) return z;
    if (e == 2.f) return z * z;
    if (e == 3.f) return z * z * z;
    return powf(z, e);
}

// max(v, eps) keeping NaN (the CPU's vector max propagates it)
__device__ __forceinline__ float clamp_low(float v, float eps) {
    return v != v ? v : fmaxf(v, eps);
}

// planes of hw contiguous values; vec4: hw % 4 == 0 and x 16-byte aligned
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
                const float4 v = x4[i];
                acc += (double) (pow_common(clamp_low(v.x, e), p) + pow_common(clamp_low(v.y, e), p))
                        + (double) (pow_common(clamp_low(v.z, e), p) + pow_common(clamp_low(v.w, e), p));
            }
        } else {
            for (i64 i = threadIdx.x; i < hw; i += blockDim.x) {
                acc += (double) pow_common(clamp_low(xp[i], e), p);
            }
        }
        acc = block_sum(acc, scratch);
        if (threadIdx.x == 0) {
            y[pl] = (float) pow(acc / (double) hw, 1.0 / (double) p);
        }
    }
}

extern "C" __global__ void gem_backward_f32(const float* __restrict__ x, const float* __restrict__ pPtr, double eps,
                                            const float* __restrict__ y, const float* __restrict__ dy,
                                            float* __restrict__ dx, float* __restrict__ dpPartial, i64 planes, i64 hw,
                                            int vec4) {
    __shared__ double scratch[32];
    const float p = *pPtr;
    const double pd = (double) p;
    const float pm1 = p - 1.f;
    const float e = (float) eps;
    for (i64 pl = blockIdx.x; pl < planes; pl += gridDim.x) {
        const float* xp = x + pl * hw;
        float* dp = dx + pl * hw;
        const double yv = (double) y[pl];
        const double g = (double) dy[pl];
        const float c = (float) (g * pow(yv, 1.0 - pd) / (double) hw);
        double sumZp = 0;
        double sumZpLog = 0;
        if (vec4) {
            const float4* x4 = reinterpret_cast<const float4*>(xp);
            float4* d4 = reinterpret_cast<float4*>(dp);
            for (i64 i = threadIdx.x; i < (hw >> 2); i += blockDim.x) {
                const float4 v = x4[i];
                float4 d;
                float vs[4] = {v.x, v.y, v.z, v.w};
                float ds[4];
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    const float z = clamp_low(vs[k], e);
                    const float zpm1 = pow_common(z, pm1);
                    const float zp = zpm1 * z;
                    sumZp += (double) zp;
                    sumZpLog += (double) (zp * logf(z));
                    ds[k] = vs[k] >= e ? c * zpm1 : 0.f;
                }
                d.x = ds[0];
                d.y = ds[1];
                d.z = ds[2];
                d.w = ds[3];
                d4[i] = d;
            }
        } else {
            for (i64 i = threadIdx.x; i < hw; i += blockDim.x) {
                const float v = xp[i];
                const float z = clamp_low(v, e);
                const float zpm1 = pow_common(z, pm1);
                const float zp = zpm1 * z;
                sumZp += (double) zp;
                sumZpLog += (double) (zp * logf(z));
                dp[i] = v >= e ? c * zpm1 : 0.f;
            }
        }
        sumZp = block_sum(sumZp, scratch);
        sumZpLog = block_sum(sumZpLog, scratch);
        if (threadIdx.x == 0) {
            const double m = sumZp / (double) hw;
            const double dydp = yv * (sumZpLog / (double) hw / (pd * m) - log(m) / (pd * pd));
            dpPartial[pl] = (float) (g * dydp);
        }
    }
}
