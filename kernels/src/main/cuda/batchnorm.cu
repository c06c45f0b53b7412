// Inference batch norm fused with the residual add and ReLU that end a ResNet block
// (Backend#batchNorm2dInference), as the CPU backend computes it (BatchNormKernels.inference):
// per channel scale = γ/√(σ² + eps) and shift = β − μ·scale in double, each rounded once to
// float; then y = relu?(fma(x, scale, shift) [+ residual]) over a contiguous NCHW tensor.
#include "common.cuh"

// scaleShift[0, c) = scale, scaleShift[c, 2c) = shift.
extern "C" __global__ void bn_scale_shift_f32(const float* __restrict__ gamma, const float* __restrict__ beta,
                                              const float* __restrict__ mean, const float* __restrict__ var,
                                              double eps, int c, float* __restrict__ scaleShift) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < c; i += gridDim.x * blockDim.x) {
        const double inv = 1.0 / sqrt((double) var[i] + eps);
        const double s = (double) gamma[i] * inv;
        scaleShift[i] = (float) s;
        scaleShift[c + i] = (float) ((double) beta[i] - (double) mean[i] * s);
    }
}

// relu?(fma(x, scale, shift) [+ r]), r added when hasResidual: the apply kernels' epilogue.
// ReLU keeps NaN (max(v, 0) with NaN propagating, as the CPU's Math.max).
__device__ __forceinline__ float bn_epilogue(float x, float scale, float shift, bool hasResidual, float r,
                                             int relu) {
    float v = fmaf(x, scale, shift);
    if (hasResidual) {
        v = __fadd_rn(v, r);
    }
    if (relu && v < 0.f) {
        v = 0.f;
    }
    return v;
}

// n elements of x [N, C, H, W] (hw = H·W); residual may be null; y may be x (in place).
extern "C" __global__ void bn_apply_f32(const float* x, const float* __restrict__ scaleShift, const float* residual,
                                        float* y, i64 n, i64 hw, int c, int relu) {
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        const int ch = (int) ((i / hw) % c);
        y[i] = bn_epilogue(x[i], scaleShift[ch], scaleShift[c + ch], residual != nullptr,
                           residual != nullptr ? residual[i] : 0.f, relu);
    }
}

// ------------------------------------------------------------------ channels-last
// Batch norm over a contiguous channels-last x [M, C] (M = N·H·W), with batch statistics (training)
// or the running ones (eval), as the CPU backend computes it (BatchNormKernels#forward, #backward,
// #backwardAct): statistics per channel in double, y = relu?(fma(x, scale, shift) [+ residual]),
// dx = fma(dz, a, fma(x, b, cc)). In training each direction is three launches (eval skips the
// forward's partial sums): bn_nhwc_partial_f32 sums a chunk of rows per block into
// partial[chunk][2][C] (double), bn_nhwc_finalize_f32 / bn_nhwc_backward_finalize_f32 combine the
// chunks of a channel in chunk order (deterministic) and form the per-channel coefficients, and
// bn_nhwc_apply_f32 / bn_nhwc_backward_apply_f32 make one pass over the elements.

// dz of a ReLU'd output: dy·(y > 0 ? 1 : 0) with relu (as the CPU's reluMasked), else dy
__device__ __forceinline__ float bn_masked(float dy, float y, int relu) {
    return relu ? dy * (y > 0.f ? 1.f : 0.f) : dy;
}

#define BN_TILE_C 32   // channels per block of the partial sums: a warp reads 32 consecutive floats of a row
#define BN_ROW_LANES 8 // warps per block, each on every 8th row of the chunk

// Forward (dy == nullptr): s0 = Σ (x − k), s1 = Σ (x − k)² with k = x[0, ch], a shift that keeps
// Σ(x − μ)² = s1 − s0²/M accurate when |μ| is large against the spread.
// Backward: s0 = Σ dz, s1 = Σ dz·(x − mean[ch]) with dz = dy, or dy·(y > 0 ? 1 : 0) when relu.
// Block: 256 threads (lane: a channel of the tile, warp: a row lane); grid (⌈C/32⌉, chunks).
extern "C" __global__ void bn_nhwc_partial_f32(const float* __restrict__ x, const float* __restrict__ y,
                                               const float* __restrict__ dy, const float* __restrict__ mean,
                                               i64 m, int c, i64 rowsPerChunk, int relu,
                                               double* __restrict__ partial) {
    __shared__ double laneSum[BN_ROW_LANES * BN_TILE_C];
    __shared__ double laneSecond[BN_ROW_LANES * BN_TILE_C];
    const int lane = threadIdx.x % BN_TILE_C;
    const int row = threadIdx.x / BN_TILE_C;
    const int ch = blockIdx.x * BN_TILE_C + lane;
    const i64 r0 = (i64) blockIdx.y * rowsPerChunk;
    const i64 r1 = min(m, r0 + rowsPerChunk);
    double s0 = 0.0;
    double s1 = 0.0;
    if (ch < c) {
        // four rows a step, loads first: several loads in flight per warp, not one
        constexpr int STEP = 4 * BN_ROW_LANES;
        i64 r = r0 + row;
        if (dy == nullptr) {
            const double k = (double) x[ch];
            for (; r + 3 * BN_ROW_LANES < r1; r += STEP) {
                float v[4];
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    v[u] = x[(r + u * BN_ROW_LANES) * c + ch];
                }
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const double d = (double) v[u] - k;
                    s0 += d;
                    s1 += d * d;
                }
            }
            for (; r < r1; r += BN_ROW_LANES) {
                const double d = (double) x[r * c + ch] - k;
                s0 += d;
                s1 += d * d;
            }
        } else {
            const float mu = mean[ch];
            for (; r + 3 * BN_ROW_LANES < r1; r += STEP) {
                float g[4];
                float xv[4];
                float yv[4];
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const i64 i = (r + u * BN_ROW_LANES) * c + ch;
                    g[u] = dy[i];
                    xv[u] = x[i];
                    yv[u] = relu ? y[i] : 1.f;
                }
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    const float d = bn_masked(g[u], yv[u], relu);
                    s0 += (double) d;
                    s1 += (double) d * (double) (xv[u] - mu);
                }
            }
            for (; r < r1; r += BN_ROW_LANES) {
                const i64 i = r * c + ch;
                const float d = bn_masked(dy[i], relu ? y[i] : 1.f, relu);
                s0 += (double) d;
                s1 += (double) d * (double) (x[i] - mu);
            }
        }
    }
    laneSum[threadIdx.x] = s0;
    laneSecond[threadIdx.x] = s1;
    __syncthreads();
    if (row == 0 && ch < c) {
        double t0 = 0.0;
        double t1 = 0.0;
        for (int j = 0; j < BN_ROW_LANES; ++j) {
            t0 += laneSum[j * BN_TILE_C + lane];
            t1 += laneSecond[j * BN_TILE_C + lane];
        }
        partial[(2 * (i64) blockIdx.y) * c + ch] = t0;
        partial[(2 * (i64) blockIdx.y + 1) * c + ch] = t1;
    }
}

// Per channel, training: mean and biased variance from the chunks' sums, the running statistics
// (when not null) updated with momentum and the unbiased variance; eval (partial unused): the
// running statistics. Then 1/√(var + eps) and the mean into saveMean / saveInvStd, and
// scaleShift[0, C) = γ·invStd, scaleShift[C, 2C) = β − mean·scale (double, rounded once).
extern "C" __global__ void bn_nhwc_finalize_f32(const double* __restrict__ partial, int chunks, i64 m, int c,
                                                const float* __restrict__ x, const float* __restrict__ gamma,
                                                const float* __restrict__ beta, float* runningMean,
                                                float* runningVar, double momentum, double eps, int training,
                                                float* __restrict__ saveMean, float* __restrict__ saveInvStd,
                                                float* __restrict__ scaleShift) {
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        if (!training) {
            const double inv = 1.0 / sqrt((double) runningVar[ch] + eps);
            const double s = (double) gamma[ch] * inv;
            saveMean[ch] = runningMean[ch];
            saveInvStd[ch] = (float) inv;
            scaleShift[ch] = (float) s;
            scaleShift[c + ch] = (float) ((double) beta[ch] - (double) runningMean[ch] * s);
            continue;
        }
        double s0 = 0.0;
        double s1 = 0.0;
        for (int k = 0; k < chunks; ++k) {
            s0 += partial[(2 * (i64) k) * c + ch];
            s1 += partial[(2 * (i64) k + 1) * c + ch];
        }
        const double d = s0 / (double) m;
        const double mu = (double) x[ch] + d;
        double ss = s1 - s0 * d; // Σ (x − μ)²
        if (ss < 0.0) {
            ss = 0.0;
        }
        const double var = ss / (double) m;
        if (runningMean != nullptr) {
            runningMean[ch] = (float) ((1.0 - momentum) * (double) runningMean[ch] + momentum * mu);
        }
        if (runningVar != nullptr) {
            const double unbiased = m > 1 ? ss / (double) (m - 1) : var;
            runningVar[ch] = (float) ((1.0 - momentum) * (double) runningVar[ch] + momentum * unbiased);
        }
        // the saved statistics are float, as the CPU's; scale and shift from the double values
        const double inv = 1.0 / sqrt(var + eps);
        saveMean[ch] = (float) mu;
        saveInvStd[ch] = (float) inv;
        const double s = (double) gamma[ch] * inv;
        scaleShift[ch] = (float) s;
        scaleShift[c + ch] = (float) ((double) beta[ch] - mu * s);
    }
}

// y = relu?(fma(x, scale, shift) [+ residual]) over n elements of [M, C]; residual may be null;
// float4 when vec4 (the host sets it when C is a multiple of 4 and the pointers are 16-byte aligned).
extern "C" __global__ void bn_nhwc_apply_f32(const float* __restrict__ x, const float* __restrict__ scaleShift,
                                             const float* __restrict__ residual, float* __restrict__ y, i64 n, int c,
                                             int relu, int vec4) {
    if (vec4) {
        const i64 n4 = n / 4;
        for (i64 j = global_thread<i64>(); j < n4; j += grid_threads<i64>()) {
            const int ch = (int) ((j * 4) % c);
            const float4 v = reinterpret_cast<const float4*>(x)[j];
            const bool res = residual != nullptr;
            const float4 r = res ? reinterpret_cast<const float4*>(residual)[j] : make_float4(0.f, 0.f, 0.f, 0.f);
            reinterpret_cast<float4*>(y)[j] = make_float4(
                    bn_epilogue(v.x, scaleShift[ch], scaleShift[c + ch], res, r.x, relu),
                    bn_epilogue(v.y, scaleShift[ch + 1], scaleShift[c + ch + 1], res, r.y, relu),
                    bn_epilogue(v.z, scaleShift[ch + 2], scaleShift[c + ch + 2], res, r.z, relu),
                    bn_epilogue(v.w, scaleShift[ch + 3], scaleShift[c + ch + 3], res, r.w, relu));
        }
        return;
    }
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        const int ch = (int) (i % c);
        y[i] = bn_epilogue(x[i], scaleShift[ch], scaleShift[c + ch], residual != nullptr,
                           residual != nullptr ? residual[i] : 0.f, relu);
    }
}

// Per channel from the backward sums: dβ = Σ dz, dγ = Σ dz·(x − μ)·invStd, and the coefficients of
// dx = fma(dz, a, fma(x, b, cc)): a = γ·invStd, and in training b = −γ·invStd³·Σdz(x − μ)/M,
// cc = −a·Σdz/M − b·μ (the batch statistics' share), in eval b = cc = 0
// (coef[0, C) = a, [C, 2C) = b, [2C, 3C) = cc).
extern "C" __global__ void bn_nhwc_backward_finalize_f32(const double* __restrict__ partial, int chunks, i64 m,
                                                         int c, const float* __restrict__ gamma,
                                                         const float* __restrict__ saveMean,
                                                         const float* __restrict__ saveInvStd, int training,
                                                         float* __restrict__ dgamma, float* __restrict__ dbeta,
                                                         float* __restrict__ coef) {
    for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
        double sumDy = 0.0;
        double sumDyXc = 0.0;
        for (int k = 0; k < chunks; ++k) {
            sumDy += partial[(2 * (i64) k) * c + ch];
            sumDyXc += partial[(2 * (i64) k + 1) * c + ch];
        }
        const double mu = (double) saveMean[ch];
        const double inv = (double) saveInvStd[ch];
        const double g = (double) gamma[ch];
        dbeta[ch] = (float) sumDy;
        dgamma[ch] = (float) (sumDyXc * inv);
        const double a = g * inv;
        const double b = training ? -g * inv * inv * inv * sumDyXc / (double) m : 0.0;
        coef[ch] = (float) a;
        coef[c + ch] = (float) b;
        coef[2 * c + ch] = (float) (training ? -a * sumDy / (double) m - b * mu : 0.0);
    }
}

// dx = fma(dz, a, fma(x, b, cc)) with dz = dy, or dy·(y > 0 ? 1 : 0) when relu; dz also into
// dresidual when not null (the gradient of a residual added before the ReLU). The same arithmetic
// per element on float4s when vec4 (the host sets it when C is a multiple of 4 and every pointer is
// 16-byte aligned), and 32-bit index arithmetic when n < 2^31 (a 64-bit modulo per element cost
// about a third of the kernel's time in a ResNet-101 training step on the H200).
template <typename I>
__device__ __forceinline__ void bn_nhwc_backward_apply(const float* __restrict__ x, const float* __restrict__ y,
                                                       const float* __restrict__ dy, const float* __restrict__ coef,
                                                       float* __restrict__ dx, float* __restrict__ dresidual, I n,
                                                       I c, int relu, int vec4) {
    if (vec4) {
        const I n4 = n / 4;
        for (I j = global_thread<I>(); j < n4; j += grid_threads<I>()) {
            const I ch = (j * 4) % c;
            const float4 g = reinterpret_cast<const float4*>(dy)[j];
            const float4 xv = reinterpret_cast<const float4*>(x)[j];
            const float4 yv = relu ? reinterpret_cast<const float4*>(y)[j] : make_float4(1.f, 1.f, 1.f, 1.f);
            const float4 a = *reinterpret_cast<const float4*>(coef + ch);
            const float4 b = *reinterpret_cast<const float4*>(coef + c + ch);
            const float4 cc = *reinterpret_cast<const float4*>(coef + 2 * c + ch);
            const float4 d = make_float4(bn_masked(g.x, yv.x, relu), bn_masked(g.y, yv.y, relu),
                                         bn_masked(g.z, yv.z, relu), bn_masked(g.w, yv.w, relu));
            reinterpret_cast<float4*>(dx)[j] = make_float4(fmaf(d.x, a.x, fmaf(xv.x, b.x, cc.x)),
                                                           fmaf(d.y, a.y, fmaf(xv.y, b.y, cc.y)),
                                                           fmaf(d.z, a.z, fmaf(xv.z, b.z, cc.z)),
                                                           fmaf(d.w, a.w, fmaf(xv.w, b.w, cc.w)));
            if (dresidual != nullptr) {
                reinterpret_cast<float4*>(dresidual)[j] = d;
            }
        }
        return;
    }
    for (I i = global_thread<I>(); i < n; i += grid_threads<I>()) {
        const I ch = i % c;
        const float d = bn_masked(dy[i], relu ? y[i] : 1.f, relu);
        dx[i] = fmaf(d, coef[ch], fmaf(x[i], coef[c + ch], coef[2 * c + ch]));
        if (dresidual != nullptr) {
            dresidual[i] = d;
        }
    }
}

extern "C" __global__ void bn_nhwc_backward_apply_f32(const float* __restrict__ x, const float* __restrict__ y,
                                                      const float* __restrict__ dy, const float* __restrict__ coef,
                                                      float* __restrict__ dx, float* __restrict__ dresidual, i64 n,
                                                      int c, int relu, int vec4) {
    // the grid-stride index stays below n + grid threads, far below 2^32 when n < 2^31
    if (n < (i64) 1 << 31) {
        bn_nhwc_backward_apply<unsigned>(x, y, dy, coef, dx, dresidual, (unsigned) n, (unsigned) c, relu, vec4);
    } else {
        bn_nhwc_backward_apply<unsigned long long>(x, y, dy, coef, dx, dresidual, (unsigned long long) n,
                                                   (unsigned long long) c, relu, vec4);
    }
}
