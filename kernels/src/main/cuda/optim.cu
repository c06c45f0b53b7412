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
// The scalars of one SGD step, each rounded once to T.
template <typename T>
struct SgdScalars {
    T nlr, mu, damp1, decay;
    bool wd, hasMomentum;
    __device__ SgdScalars(double lr, double momentum, double dampening, double weightDecay)
        : nlr((T) -lr), mu((T) momentum), damp1((T) (1 - dampening)), decay((T) weightDecay),
          wd(weightDecay != 0), hasMomentum(momentum != 0) {}
};

// Element i of one parameter: the formula above.
template <typename T>
__device__ __forceinline__ void sgd_element(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf, i64 i,
                                            const SgdScalars<T>& s, int nesterov, int first) {
    const T pv = p[i];
    T g = grad[i];
    if (s.wd) {
        g = d_fma(s.decay, pv, g);
    }
    if (s.hasMomentum) {
        const T b = first ? g : d_fma(s.damp1, g, mul_rn(s.mu, buf[i]));
        buf[i] = b;
        g = nesterov ? d_fma(s.mu, b, g) : b;
    }
    p[i] = d_fma(s.nlr, g, pv);
}

template <typename T>
__device__ void sgd_step(T* __restrict__ p, const T* __restrict__ grad, T* __restrict__ buf, i64 n, double lr,
                         double momentum, double dampening, double weightDecay, int nesterov, int first) {
    const SgdScalars<T> s(lr, momentum, dampening, weightDecay);
    for (i64 i = global_thread<i64>(); i < n; i += grid_threads<i64>()) {
        sgd_element(p, grad, buf, i, s, nesterov, first);
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

// Elements per chunk of sgd_steps_f32 (CudaBackend.SGD_CHUNK).
#define SGD_CHUNK 4096

// One SGD step over many float32 parameters in one launch (Backend#sgdSteps), a block per chunk
// of SGD_CHUNK elements of one tensor, each element as sgd_step_f32 computes it. The table, built
// by the host: param, grad and momentum-buffer addresses (u64 × tensors each; buffer 0 without
// momentum), element counts (i64 × tensors), first-step flags (int × tensors), then per chunk its
// tensor (int × chunks) and its chunk number within the tensor (int × chunks).
extern "C" __global__ void sgd_steps_f32(const u64* __restrict__ table, int tensors, int chunks, double lr,
                                         double momentum, double dampening, double weightDecay, int nesterov) {
    const u64* params = table;
    const u64* grads = table + tensors;
    const u64* buffers = table + 2 * (i64) tensors;
    const i64* counts = reinterpret_cast<const i64*>(table + 3 * (i64) tensors);
    const int* firsts = reinterpret_cast<const int*>(table + 4 * (i64) tensors);
    const int* chunkTensor = firsts + tensors;
    const int* chunkLocal = chunkTensor + chunks;
    const SgdScalars<float> s(lr, momentum, dampening, weightDecay);
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) {
        const int t = chunkTensor[c];
        const i64 start = (i64) chunkLocal[c] * SGD_CHUNK;
        const i64 end = min(counts[t], start + SGD_CHUNK);
        float* p = reinterpret_cast<float*>(params[t]);
        const float* g = reinterpret_cast<const float*>(grads[t]);
        float* b = reinterpret_cast<float*>(buffers[t]);
        for (i64 i = start + threadIdx.x; i < end; i += blockDim.x) {
            sgd_element(p, g, b, i, s, nesterov, firsts[t]);
        }
    }
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
