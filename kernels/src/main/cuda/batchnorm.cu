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

// n elements of x [N, C, H, W] (hw = H·W); residual may be null; y may be x (in place).
// ReLU keeps NaN (max(v, 0) with NaN propagating, as the CPU's Math.max).
extern "C" __global__ void bn_apply_f32(const float* x, const float* __restrict__ scaleShift, const float* residual,
                                        float* y, i64 n, i64 hw, int c, int relu) {
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        const int ch = (int) ((i / hw) % c);
        float v = fmaf(x[i], scaleShift[ch], scaleShift[c + ch]);
        if (residual != nullptr) {
            v = __fadd_rn(v, residual[i]);
        }
        if (relu && v < 0.f) {
            v = 0.f;
        }
        y[i] = v;
    }
}
