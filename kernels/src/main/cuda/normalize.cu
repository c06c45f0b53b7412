// L2 normalisation of contiguous rows, fused: y = x / sqrt(max(Σx², eps²)) (PyTorch's
// F.normalize as dir4j.engine.NnOps#l2Normalize composes it: the clamp is on the squared norm,
// so the gradient flows through the norm where Σx² ≥ eps²).
//
// Not yet called by the CUDA backend: the Backend contract has no fused normalise op, and
// NnOps composes it from primitives. Kept here, built and checked, for when the contract grows
// one (descriptors are normalised at every training and extraction step).
#include "common.cuh"

// One row per `threadsPerRow` threads (32 or blockDim.x); rows of `len` contiguous values.
extern "C" __global__ void l2norm_rows_f32(const float* __restrict__ x, float* __restrict__ y, i64 rows, i64 len,
                                           double eps, int threadsPerRow) {
    __shared__ double scratch[32];
    const int groups = blockDim.x / threadsPerRow;
    const int group = threadIdx.x / threadsPerRow;
    const int lane = threadIdx.x % threadsPerRow;
    __shared__ double inv[32];
    for (i64 base = (i64) blockIdx.x * groups; base < rows; base += (i64) gridDim.x * groups) {
        const i64 row = base + group;
        const float* xr = x + row * len;
        double ss = 0;
        if (row < rows) {
            for (i64 j = lane; j < len; j += threadsPerRow) {
                const double v = xr[j];
                ss += v * v;
            }
        }
        double scale;
        if (threadsPerRow == 32) {
            ss = warp_reduce(R_SUM, ss);
            scale = 1.0 / sqrt(fmax(__shfl_sync(0xffffffffu, ss, 0), eps * eps));
        } else {
            ss = block_sum(ss, scratch);
            if (threadIdx.x == 0) {
                inv[0] = 1.0 / sqrt(fmax(ss, eps * eps));
            }
            __syncthreads();
            scale = inv[0];
            __syncthreads();
        }
        if (row < rows) {
            float* yr = y + row * len;
            const float s = (float) scale;
            for (i64 j = lane; j < len; j += threadsPerRow) {
                yr[j] = xr[j] * s;
            }
        }
    }
}

// dx from x and the upstream g. With n² = max(Σx², eps²): where Σx² ≥ eps²,
// dx = g/n − x·(x·g)/n³; below, the norm is the constant eps and dx = g/eps.
extern "C" __global__ void l2norm_rows_backward_f32(const float* __restrict__ x, const float* __restrict__ g,
                                                    float* __restrict__ dx, i64 rows, i64 len, double eps,
                                                    int threadsPerRow) {
    __shared__ double scratch[32];
    __shared__ double sums[2];
    const int groups = blockDim.x / threadsPerRow;
    const int group = threadIdx.x / threadsPerRow;
    const int lane = threadIdx.x % threadsPerRow;
    for (i64 base = (i64) blockIdx.x * groups; base < rows; base += (i64) gridDim.x * groups) {
        const i64 row = base + group;
        const float* xr = x + row * len;
        const float* gr = g + row * len;
        double ss = 0;
        double dot = 0;
        if (row < rows) {
            for (i64 j = lane; j < len; j += threadsPerRow) {
                const double v = xr[j];
                ss += v * v;
                dot += v * (double) gr[j];
            }
        }
        if (threadsPerRow == 32) {
            ss = __shfl_sync(0xffffffffu, warp_reduce(R_SUM, ss), 0);
            dot = __shfl_sync(0xffffffffu, warp_reduce(R_SUM, dot), 0);
        } else {
            ss = block_sum(ss, scratch);
            dot = block_sum(dot, scratch);
            if (threadIdx.x == 0) {
                sums[0] = ss;
                sums[1] = dot;
            }
            __syncthreads();
            ss = sums[0];
            dot = sums[1];
            __syncthreads();
        }
        if (row < rows) {
            float* dr = dx + row * len;
            if (ss >= eps * eps) {
                const double n = sqrt(ss);
                const float a = (float) (1.0 / n);
                const float b = (float) (dot / (n * n * n));
                for (i64 j = lane; j < len; j += threadsPerRow) {
                    dr[j] = gr[j] * a - xr[j] * b;
                }
            } else {
                const float a = (float) (1.0 / eps);
                for (i64 j = lane; j < len; j += threadsPerRow) {
                    dr[j] = gr[j] * a;
                }
            }
        }
    }
}
