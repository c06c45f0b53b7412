// Fused optimiser steps (Backend#sgdStep, #adamStep): one pass over param, grad and the state
// buffers, in place, a thread per element (grid-stride). The operations are those of
// dir4j.engine.cpu.OptimizerKernels one for one, with explicit roundings (the _rn intrinsics
// are never contracted into an fma; fma is written where it is meant), so that CUDA and the
// CPU give the same bits. The host passes every scalar in double; each is rounded once to T.
#include "common.cuh"

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// g = wd ≠ 0 ? fma(wd, p, ∇) : ∇; with momentum b = first ? g : fma(1 − d, g, μ·b),
// g = nesterov ? fma(μ, b, g) : b; p = fma(−lr, g, p). buf is null without momentum.
template <typename T>
__device__ void sgd_step(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf, i64 n, double lr,
                         double momentum, double dampening, double weightDecay, int nesterov, int first) {
    const T nlr = (T) -lr;
    const T mu = (T) momentum;
    const T damp1 = (T) (1 - dampening);
    const T decay = (T) weightDecay;
    const bool wd = weightDecay != 0;
    const bool hasMomentum = momentum != 0;
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        const T pv = p[i];
        T g = grad[i];
        if (wd) {
            g = d_fma(decay, pv, g);
        }
        if (hasMomentum) {
            const T b = first ? g : d_fma(damp1, g, mul_rn(mu, buf[i]));
            buf[i] = b;
            g = nesterov ? d_fma(mu, b, g) : b;
        }
        p[i] = d_fma(nlr, g, pv);
    }
}

extern "C" __global__ void sgd_step_f32(float* p, const float* grad, float* buf, i64 n, double lr, double momentum,
                                        double dampening, double weightDecay, int nesterov, int first) {
    sgd_step<float>(p, grad, buf, n, lr, momentum, dampening, weightDecay, nesterov, first);
}

extern "C" __global__ void sgd_step_f64(double* p, const double* grad, double* buf, i64 n, double lr,
                                        double momentum, double dampening, double weightDecay, int nesterov,
                                        int first) {
    sgd_step<double>(p, grad, buf, n, lr, momentum, dampening, weightDecay, nesterov, first);
}

// mode 0: no weight decay; 1: L2, g = fma(wd, p, ∇); 2: decoupled, p = p·(1 − lr·wd).
// m = fma(1 − β1, g, β1·m); v = fma(1 − β2, g·g, β2·v); denom = √v / √(1 − β2^t) + ε;
// p = fma(−lr/(1 − β1^t), m / denom, p).
template <typename T>
__device__ void adam_step(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v, i64 n,
                          double weightDecay, double decayFactor, double beta1, double oneMinusBeta1, double beta2,
                          double oneMinusBeta2, double bias2Sqrt, double eps, double negStepSize, int mode) {
    const T decay = (T) weightDecay;
    const T factor = (T) decayFactor;
    const T b1 = (T) beta1;
    const T omb1 = (T) oneMinusBeta1;
    const T b2 = (T) beta2;
    const T omb2 = (T) oneMinusBeta2;
    const T bc2 = (T) bias2Sqrt;
    const T epsT = (T) eps;
    const T nstep = (T) negStepSize;
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        T pv = p[i];
        T g = grad[i];
        if (mode == 2) {
            pv = mul_rn(pv, factor);
        } else if (mode == 1) {
            g = d_fma(decay, pv, g);
        }
        const T mv = d_fma(omb1, g, mul_rn(b1, m[i]));
        const T vv = d_fma(omb2, mul_rn(g, g), mul_rn(b2, v[i]));
        m[i] = mv;
        v[i] = vv;
        const T denom = add_rn(div_rn(sqrt_rn(vv), bc2), epsT);
        p[i] = d_fma(nstep, div_rn(mv, denom), pv);
    }
}

extern "C" __global__ void adam_step_f32(float* p, const float* grad, float* m, float* v, i64 n, double weightDecay,
                                         double decayFactor, double beta1, double oneMinusBeta1, double beta2,
                                         double oneMinusBeta2, double bias2Sqrt, double eps, double negStepSize,
                                         int mode) {
    adam_step<float>(p, grad, m, v, n, weightDecay, decayFactor, beta1, oneMinusBeta1, beta2, oneMinusBeta2,
                     bias2Sqrt, eps, negStepSize, mode);
}

extern "C" __global__ void adam_step_f64(double* p, const double* grad, double* m, double* v, i64 n,
                                         double weightDecay, double decayFactor, double beta1, double oneMinusBeta1,
                                         double beta2, double oneMinusBeta2, double bias2Sqrt, double eps,
                                         double negStepSize, int mode) {
    adam_step<double>(p, grad, m, v, n, weightDecay, decayFactor, beta1, oneMinusBeta1, beta2, oneMinusBeta2,
                      bias2Sqrt, eps, negStepSize, mode);
}
