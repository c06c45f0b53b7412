// Max and average pooling of contiguous NCHW tensors (dir4j.engine.cpu.PoolKernels is the
// reference, and every kernel here reproduces its bits): max pooling pads with −∞, floor mode,
// NaN wins its window, argmax as the flat h·W + w index within the plane.
#include "common.cuh"

// The input span [*lo, *hi) of output o's window along one axis of n inputs: o·s − p onwards, k
// long, clipped to [0, n).
__device__ __forceinline__ void maxpool_span(int o, int n, int k, int s, int p, int* lo, int* hi) {
    const int start = o * s - p;
    *hi = min(start + k, n);
    *lo = max(start, 0);
}

// The outputs [*first, *last] along one axis of no outputs whose windows (k long, s apart, from −p)
// cover input a: first = ceil((a + p − k + 1) / s), at least 0; last = (a + p) / s, at most no − 1.
__device__ __forceinline__ void maxpool_cover(int a, int no, int k, int s, int p, int* first, int* last) {
    const int na = a + p - k + 1;
    *first = na <= 0 ? 0 : (na + s - 1) / s;
    *last = min((a + p) / s, no - 1);
}

// The max of output (i, j)'s window (clipped to the image) of one channel plane whose element
// (a, q) is xp[(a·w + q)·step], scanned in row-major order: the first maximum wins, a NaN wins at
// once; *arg gets its a·w + q (the window's first element when all are −∞).
__device__ __forceinline__ float maxpool_window(const float* __restrict__ xp, i64 step, int i, int j, int h, int w,
                                                int kh, int kw, int sh, int sw, int ph, int pw, int* arg) {
    int h0, h1, w0, w1;
    maxpool_span(i, h, kh, sh, ph, &h0, &h1);
    maxpool_span(j, w, kw, sw, pw, &w0, &w1);
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

// One channel's running max of maxpool_window, for four channels scanned side by side: the first
// maximum wins, a NaN wins and ends the channel's scan (done).
__device__ __forceinline__ void maxpool_lane(float v, int r, float* best, int* arg, bool* done) {
    if (!*done && (v > *best || v != v)) {
        *best = v;
        *arg = r;
        *done = v != v;
    }
}

// Where grid-stride index t falls in a channels-last [n, rows, cols, c] array walked a channel (or,
// with vec4, four channels) at a time: the pixel (flat over n·rows·cols), its first channel, column,
// row and image.
template <typename I>
struct NhwcPlace {
    I pix;
    int ch;
    int col;
    int row;
    I image;
};

template <typename I>
__device__ __forceinline__ NhwcPlace<I> nhwc_place(I t, int c, int vec4, int rows, int cols) {
    const I groups = vec4 ? (I) c / 4 : (I) c;
    NhwcPlace<I> p;
    p.pix = t / groups;
    p.ch = (int) (t - p.pix * groups) * (vec4 ? 4 : 1);
    p.col = (int) (p.pix % (I) cols);
    const I rest = p.pix / (I) cols;
    p.row = (int) (rest % (I) rows);
    p.image = rest / (I) rows;
    return p;
}

// max pooling of a contiguous channels-last x [n, h, w, c] into y [n, ho, wo, c], with
// maxpool2d_forward_f32's semantics: a thread per output (per four outputs of neighbouring channels
// when vec4: the host sets it when c is a multiple of 4 and x, y and indices are 16-byte aligned),
// channels fastest so that neighbouring threads read neighbouring floats; the window is scanned in
// the same row-major order, so the first maximum (or the first NaN) wins as there. indices
// [n, ho, wo, c] receives the argmax as the flat a·w + q index within the channel's plane (as the
// NCHW kernel's), or is null (inference). Index arithmetic in 32 bits when every offset is below
// 2^31 (a 64-bit division costs tens of instructions: the stem's pooling took 0.32 ms on the H200
// for a 0.27 GB input).
template <typename I>
__device__ __forceinline__ void maxpool2d_nhwc(const float* __restrict__ x, float* __restrict__ y,
                                               int* __restrict__ indices, I n, int h, int w, int c, int ho, int wo,
                                               int kh, int kw, int sh, int sw, int ph, int pw, int vec4) {
    const I total = n * ho * wo * (vec4 ? (I) c / 4 : (I) c);
    for (I t = global_thread<I>(); t < total; t += grid_threads<I>()) {
        const NhwcPlace<I> at = nhwc_place<I>(t, c, vec4, ho, wo);
        const int ch = at.ch;
        const float* xb = x + at.image * h * w * c + ch;
        const I o = at.pix * c + ch;
        if (!vec4) {
            int arg;
            y[o] = maxpool_window(xb, c, at.row, at.col, h, w, kh, kw, sh, sw, ph, pw, &arg);
            if (indices != nullptr) {
                indices[o] = arg;
            }
            continue;
        }
        int h0, h1, w0, w1;
        maxpool_span(at.row, h, kh, sh, ph, &h0, &h1);
        maxpool_span(at.col, w, kw, sw, pw, &w0, &w1);
        float best[4] = {-pos_inf<float>(), -pos_inf<float>(), -pos_inf<float>(), -pos_inf<float>()};
        const int first = h0 * w + w0;
        int arg[4] = {first, first, first, first};
        bool done[4] = {false, false, false, false};
        for (int a = h0; a < h1; ++a) {
            for (int q = w0; q < w1; ++q) {
                const float4 v = *reinterpret_cast<const float4*>(xb + ((I) a * w + q) * c);
                const int r = a * w + q;
                maxpool_lane(v.x, r, &best[0], &arg[0], &done[0]);
                maxpool_lane(v.y, r, &best[1], &arg[1], &done[1]);
                maxpool_lane(v.z, r, &best[2], &arg[2], &done[2]);
                maxpool_lane(v.w, r, &best[3], &arg[3], &done[3]);
            }
        }
        *reinterpret_cast<float4*>(y + o) = make_float4(best[0], best[1], best[2], best[3]);
        if (indices != nullptr) {
            *reinterpret_cast<int4*>(indices + o) = make_int4(arg[0], arg[1], arg[2], arg[3]);
        }
    }
}

// maxpool2d_nhwc in 32-bit index arithmetic where both tensors have fewer than 2^31 elements, else 64-bit
extern "C" __global__ void maxpool2d_nhwc_f32(const float* __restrict__ x, float* __restrict__ y,
                                              int* __restrict__ indices, i64 n, int h, int w, int c, int ho, int wo,
                                              int kh, int kw, int sh, int sw, int ph, int pw, int vec4) {
    // every offset and grid-stride index stays below 2^32 when both tensors have fewer than 2^31 elements
    if (n * h * w * c < (i64) 1 << 31 && n * ho * wo * c < (i64) 1 << 31) {
        maxpool2d_nhwc<unsigned>(x, y, indices, (unsigned) n, h, w, c, ho, wo, kh, kw, sh, sw, ph, pw, vec4);
    } else {
        maxpool2d_nhwc<unsigned long long>(x, y, indices, (unsigned long long) n, h, w, c, ho, wo, kh, kw, sh, sw,
                                           ph, pw, vec4);
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
    int i0, i1, j0, j1;
    maxpool_cover(a, ho, kh, sh, ph, &i0, &i1);
    maxpool_cover(b, wo, kw, sw, pw, &j0, &j1);
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
// after each add): the CPU's bits on every run. vec4 (c a multiple of 4, every pointer 16-byte
// aligned): a thread per four neighbouring channels, float4/int4 loads, the same adds per channel;
// 32-bit index arithmetic as in maxpool2d_nhwc_f32.
template <typename I>
__device__ __forceinline__ void maxpool2d_nhwc_backward(const float* __restrict__ dy, const int* __restrict__ indices,
                                                        float* __restrict__ dx, I n, int h, int w, int c, int ho,
                                                        int wo, int kh, int kw, int sh, int sw, int ph, int pw,
                                                        int vec4) {
    const I total = n * h * w * (vec4 ? (I) c / 4 : (I) c);
    for (I t = global_thread<I>(); t < total; t += grid_threads<I>()) {
        const NhwcPlace<I> at = nhwc_place<I>(t, c, vec4, h, w);
        const int a = at.row;
        const int b = at.col;
        const I base = at.image * ho * wo * c + at.ch;
        const I xi = at.pix * c + at.ch;
        if (!vec4) {
            dx[xi] = maxpool_route(dy + base, indices + base, c, a, b, w, ho, wo, kh, kw, sh, sw, ph, pw, dx[xi]);
            continue;
        }
        const int r = a * w + b;
        int i0, i1, j0, j1;
        maxpool_cover(a, ho, kh, sh, ph, &i0, &i1);
        maxpool_cover(b, wo, kw, sw, pw, &j0, &j1);
        float4 acc = *reinterpret_cast<const float4*>(dx + xi);
        for (int i = i0; i <= i1; ++i) {
            for (int j = j0; j <= j1; ++j) {
                const I o = base + ((I) i * wo + j) * c;
                const int4 k = *reinterpret_cast<const int4*>(indices + o);
                if (k.x == r || k.y == r || k.z == r || k.w == r) {
                    const float4 g = *reinterpret_cast<const float4*>(dy + o);
                    if (k.x == r) acc.x = (float) ((double) acc.x + (double) g.x);
                    if (k.y == r) acc.y = (float) ((double) acc.y + (double) g.y);
                    if (k.z == r) acc.z = (float) ((double) acc.z + (double) g.z);
                    if (k.w == r) acc.w = (float) ((double) acc.w + (double) g.w);
                }
            }
        }
        *reinterpret_cast<float4*>(dx + xi) = acc;
    }
}

// maxpool2d_nhwc_backward in 32-bit index arithmetic where both tensors have fewer than 2^31 elements, else 64-bit
extern "C" __global__ void maxpool2d_nhwc_backward_f32(const float* __restrict__ dy, const int* __restrict__ indices,
                                                       float* __restrict__ dx, i64 n, int h, int w, int c, int ho,
                                                       int wo, int kh, int kw, int sh, int sw, int ph, int pw,
                                                       int vec4) {
    if (n * h * w * c < (i64) 1 << 31 && n * ho * wo * c < (i64) 1 << 31) {
        maxpool2d_nhwc_backward<unsigned>(dy, indices, dx, (unsigned) n, h, w, c, ho, wo, kh, kw, sh, sw, ph, pw,
                                          vec4);
    } else {
        maxpool2d_nhwc_backward<unsigned long long>(dy, indices, dx, (unsigned long long) n, h, w, c, ho, wo, kh, kw,
                                                    sh, sw, ph, pw, vec4);
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
