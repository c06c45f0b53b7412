// Max pooling of contiguous NCHW float32 tensors (dir4j.engine.cpu.PoolKernels is the
// reference): padding with −∞, floor mode, NaN wins its window, argmax as the flat h·W + w
// index within the plane.
#include "common.cuh"

// a thread per output element; indices may be null (inference)
extern "C" __global__ void maxpool2d_forward_f32(const float* __restrict__ x, float* __restrict__ y,
                                                 int* __restrict__ indices, i64 planes, int h, int w, int ho, int wo,
                                                 int kh, int kw, int sh, int sw, int ph, int pw) {
    const i64 total = planes * ho * wo;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / ((i64) ho * wo);
        const int r = (int) (t % ((i64) ho * wo));
        const int i = r / wo;
        const int j = r % wo;
        int h0 = i * sh - ph;
        const int h1 = min(h0 + kh, h);
        h0 = max(h0, 0);
        int w0 = j * sw - pw;
        const int w1 = min(w0 + kw, w);
        w0 = max(w0, 0);
        const float* xp = x + pl * h * w;
        float best = -pos_inf<float>();
        int arg = h0 * w + w0;
        bool nan = false;
        for (int a = h0; a < h1 && !nan; ++a) {
            for (int b = w0; b < w1; ++b) {
                const float v = xp[a * w + b];
                if (v > best || v != v) {
                    best = v;
                    arg = a * w + b;
                    if (v != v) {
                        nan = true;
                        break;
                    }
                }
            }
        }
        y[t] = best;
        if (indices != nullptr) {
            indices[t] = arg;
        }
    }
}

// dx += dy routed through the argmax indices (dx zeroed by the caller): a thread per output,
// atomic adds. Where windows overlap (ResNet's 3×3 stride-2 stem) an input can receive several
// adds in any order, so dx may differ from the CPU's in the last bits from run to run. A
// deterministic gather (a thread per input, over the outputs whose window covers it) needs the
// window geometry, which Backend#maxPool2dBackward does not pass yet.
extern "C" __global__ void maxpool2d_backward_f32(const float* __restrict__ dy, const int* __restrict__ indices,
                                                  float* __restrict__ dx, i64 planes, i64 inPlane, i64 outPlane) {
    const i64 total = planes * outPlane;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / outPlane;
        atomicAdd(dx + pl * inPlane + indices[t], dy[t]);
    }
}
