// Max and average pooling of contiguous NCHW tensors (dir4j.engine.cpu.PoolKernels is the
// reference, and every kernel here reproduces its bits): max pooling pads with −∞, floor mode,
// NaN wins its window, argmax as the flat h·W + w index within the plane.
#include "common.cuh"

// The max of output (i, j)'s window (clipped to the image) of one channel plane whose element
// (a, q) is xp[(a·w + q)·step], scanned in row-major order: the first maximum wins, a NaN wins at
// once; *arg gets its a·w + q (the window's first element when all are −∞).
__device__ __forceinline__ float maxpool_window(const float* __restrict__ xp, i64 step, int i, int j, int h, int w,
                                                int kh, int kw, int sh, int sw, int ph, int pw, int* arg) {
    int h0 = i * sh - ph;
    const int h1 = min(h0 + kh, h);
    h0 = max(h0, 0);
    int w0 = j * sw - pw;
    const int w1 = min(w0 + kw, w);
    w0 = max(w0, 0);
    float best = -pos_inf<float>();
    *arg = h0 * w + w0;
    for (int a = h0; a < h1; ++a) {
        for (int q = w0; q < w1; ++q) {
            const float v = xp[((i64) a * w + q) * step];
            if (v > best || v != v) {
                best = v;
                *arg = a * w + q;
                if (v != v) {
                    return best;
                }
            }
        }
    }
    return best;
}

// a thread per output element; indices may be null (inference)
extern "C" __global__ void maxpool2d_forward_f32(const float* __restrict__ x, float* __restrict__ y,
                                                 int* __restrict__ indices, i64 planes, int h, int w, int ho, int wo,
                                                 int kh, int kw, int sh, int sw, int ph, int pw) {
    const i64 total = planes * ho * wo;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / ((i64) ho * wo);
        const int r = (int) (t % ((i64) ho * wo));
        int arg;
        y[t] = maxpool_window(x + pl * h * w, 1, r / wo, r % wo, h, w, kh, kw, sh, sw, ph, pw, &arg);
        if (indices != nullptr) {
            indices[t] = arg;
        }
    }
}

// max pooling of a contiguous channels-last x [n, h, w, c] into y [n, ho, wo, c], with
// maxpool2d_forward_f32's semantics: a thread per output, channels fastest so that neighbouring
// threads read neighbouring floats; the window is scanned in the same row-major order, so the
// first maximum (or the first NaN) wins as there. indices [n, ho, wo, c] receives the argmax as
// the flat a·w + q index within the channel's plane (as the NCHW kernel's), or is null (inference).
extern "C" __global__ void maxpool2d_nhwc_f32(const float* __restrict__ x, float* __restrict__ y,
                                              int* __restrict__ indices, i64 n, int h, int w, int c, int ho, int wo,
                                              int kh, int kw, int sh, int sw, int ph, int pw) {
    const i64 total = n * ho * wo * c;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const int ch = (int) (t % c);
        const i64 pix = t / c;
        const int j = (int) (pix % wo);
        const int i = (int) ((pix / wo) % ho);
        const i64 b = pix / ((i64) wo * ho);
        int arg;
        y[t] = maxpool_window(x + b * h * w * c + ch, c, i, j, h, w, kh, kw, sh, sw, ph, pw, &arg);
        if (indices != nullptr) {
            indices[t] = arg;
        }
    }
}

// Input element (a, b) of one channel plane (flat r = a·w + b) gathers the gradients of the
// outputs whose window covers it and whose argmax is r: outputs (i, j) with
// i·sh − ph ≤ a < i·sh − ph + kh (likewise columns), in row-major output order, output o at
// dyp[o·step] / ip[o·step]; added to acc in double, rounded to float after each add (the CPU's order).
__device__ __forceinline__ float maxpool_route(const float* __restrict__ dyp, const int* __restrict__ ip, i64 step,
                                               int a, int b, int w, int ho, int wo, int kh, int kw, int sh, int sw,
                                               int ph, int pw, float acc) {
    const int r = a * w + b;
    // first output row whose window reaches a: ceil((a + ph − kh + 1) / sh), at least 0
    const int na = a + ph - kh + 1;
    const int i0 = na <= 0 ? 0 : (na + sh - 1) / sh;
    const int i1 = min((a + ph) / sh, ho - 1);
    const int nb = b + pw - kw + 1;
    const int j0 = nb <= 0 ? 0 : (nb + sw - 1) / sw;
    const int j1 = min((b + pw) / sw, wo - 1);
    for (int i = i0; i <= i1; ++i) {
        for (int j = j0; j <= j1; ++j) {
            const i64 o = ((i64) i * wo + j) * step;
            if (ip[o] == r) {
                acc = (float) ((double) acc + (double) dyp[o]);
            }
        }
    }
    return acc;
}

// dx [n, h, w, c] += dy [n, ho, wo, c] routed through maxpool2d_nhwc_f32's indices, as
// maxpool2d_backward_f32 does it (a thread per input element, here channels fastest, gathering the
// outputs whose window covers it in row-major output order, adding in double and rounding to float
// after each add): the CPU's bits on every run.
extern "C" __global__ void maxpool2d_nhwc_backward_f32(const float* __restrict__ dy, const int* __restrict__ indices,
                                                       float* __restrict__ dx, i64 n, int h, int w, int c, int ho,
                                                       int wo, int kh, int kw, int sh, int sw, int ph, int pw) {
    const i64 total = n * h * w * c;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const int ch = (int) (t % c);
        const i64 pix = t / c;
        const int b = (int) (pix % w);
        const int a = (int) ((pix / w) % h);
        const i64 base = pix / ((i64) w * h) * ho * wo * c + ch;
        dx[t] = maxpool_route(dy + base, indices + base, c, a, b, w, ho, wo, kh, kw, sh, sw, ph, pw, dx[t]);
    }
}

// dx += dy routed through the argmax indices, deterministically: a thread per input element
// gathers over the outputs whose window covers it (rows i with i·sh − ph ≤ a < i·sh − ph + kh,
// likewise columns), in row-major output order, the order of the CPU's scan, adding in double
// and rounding to float after each add as the CPU does; so dx has the CPU's bits on every run,
// with overlapping windows too (ResNet's 3×3 stride-2 stem). The forward's argmax always lies in
// its own window, so no other output can route to this input.
extern "C" __global__ void maxpool2d_backward_f32(const float* __restrict__ dy, const int* __restrict__ indices,
                                                  float* __restrict__ dx, i64 planes, int h, int w, int ho, int wo,
                                                  int kh, int kw, int sh, int sw, int ph, int pw) {
    const i64 total = planes * h * w;
    const i64 outPlane = (i64) ho * wo;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / ((i64) h * w);
        const int r = (int) (t % ((i64) h * w));
        dx[t] = maxpool_route(dy + pl * outPlane, indices + pl * outPlane, 1, r / w, r % w, w, ho, wo, kh, kw, sh,
                              sw, ph, pw, dx[t]);
    }
}

// ------------------------------------------------------------------ average pooling over explicit windows
//
// win holds, as int32: hStart[ho], hEnd[ho], wStart[wo], wEnd[wo] (Backend#avgPool2d: windows
// clipped to the input here, the divisor the unclipped size when divisorFromWindow, else the
// clipped size); the backward appends rowPtr[h + 1], colPtr[w + 1], then rowList and colList:
// the output rows whose window covers input row a are rowList[rowPtr[a] .. rowPtr[a + 1]) in
// ascending order (columns likewise), built by the host.

__device__ __forceinline__ double avg_divisor(const int* win, int ho, int wo, int h, int w, int i, int j,
                                              int divisorFromWindow) {
    const int hs = win[i], he = win[ho + i], ws = win[2 * ho + j], we = win[2 * ho + wo + j];
    if (divisorFromWindow) {
        return (double) (he - hs) * (double) (we - ws);
    }
    return (double) (min(he, h) - max(hs, 0)) * (double) (min(we, w) - max(ws, 0));
}

// a thread per output: the window's sum in double, divided in double, rounded once (the CPU's way)
template <typename T>
__device__ void avgpool2d_forward(const T* __restrict__ x, T* __restrict__ y, const int* __restrict__ win,
                                  i64 planes, int h, int w, int ho, int wo, int divisorFromWindow) {
    const i64 total = planes * ho * wo;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / ((i64) ho * wo);
        const int r = (int) (t % ((i64) ho * wo));
        const int i = r / wo;
        const int j = r % wo;
        const int h0 = max(win[i], 0), h1 = min(win[ho + i], h);
        const int w0 = max(win[2 * ho + j], 0), w1 = min(win[2 * ho + wo + j], w);
        const T* xp = x + pl * h * w;
        double s = 0;
        for (int a = h0; a < h1; ++a) {
            for (int b = w0; b < w1; ++b) {
                s += (double) xp[a * w + b];
            }
        }
        y[t] = (T) (s / avg_divisor(win, ho, wo, h, w, i, j, divisorFromWindow));
    }
}

// dx += the adjoint, deterministically: a thread per input element gathers dy/divisor over the
// outputs covering it in row-major output order, rounding after each add as the CPU's scatter does
template <typename T>
__device__ void avgpool2d_backward(const T* __restrict__ dy, T* __restrict__ dx, const int* __restrict__ win,
                                   i64 planes, int h, int w, int ho, int wo, int divisorFromWindow) {
    const int* rowPtr = win + 2 * ho + 2 * wo;
    const int* colPtr = rowPtr + h + 1;
    const int* rowList = colPtr + w + 1;
    const int* colList = rowList + rowPtr[h];
    const i64 total = planes * h * w;
    for (i64 t = global_thread<i64>(); t < total; t += grid_threads<i64>()) {
        const i64 pl = t / ((i64) h * w);
        const int r = (int) (t % ((i64) h * w));
        const int a = r / w;
        const int b = r % w;
        const T* dyp = dy + pl * ho * wo;
        T acc = dx[t];
        for (int ri = rowPtr[a]; ri < rowPtr[a + 1]; ++ri) {
            const int i = rowList[ri];
            for (int ci = colPtr[b]; ci < colPtr[b + 1]; ++ci) {
                const int j = colList[ci];
                const double g = (double) dyp[i * wo + j] / avg_divisor(win, ho, wo, h, w, i, j, divisorFromWindow);
                acc = (T) ((double) acc + g);
            }
        }
        dx[t] = acc;
    }
}

extern "C" __global__ void avgpool2d_forward_f32(const float* x, float* y, const int* win, i64 planes, int h, int w,
                                                 int ho, int wo, int divisorFromWindow) {
    avgpool2d_forward<float>(x, y, win, planes, h, w, ho, wo, divisorFromWindow);
}

extern "C" __global__ void avgpool2d_forward_f64(const double* x, double* y, const int* win, i64 planes, int h, int w,
                                                 int ho, int wo, int divisorFromWindow) {
    avgpool2d_forward<double>(x, y, win, planes, h, w, ho, wo, divisorFromWindow);
}

extern "C" __global__ void avgpool2d_backward_f32(const float* dy, float* dx, const int* win, i64 planes, int h,
                                                  int w, int ho, int wo, int divisorFromWindow) {
    avgpool2d_backward<float>(dy, dx, win, planes, h, w, ho, wo, divisorFromWindow);
}

extern "C" __global__ void avgpool2d_backward_f64(const double* dy, double* dx, const int* win, i64 planes, int h,
                                                  int w, int ho, int wo, int divisorFromWindow) {
    avgpool2d_backward<double>(dy, dx, win, planes, h, w, ho, wo, divisorFromWindow);
}
