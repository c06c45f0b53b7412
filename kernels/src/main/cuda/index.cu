// index_select and its adjoint index_add along one axis (Backend#indexSelect, #indexAdd).
//
// Both walk a contiguous tensor (out, or dx) by its row-major linear index i; the coordinate
// along the axis is (i / inner) % n, and the other operand's offset for the remaining
// coordinates comes from a Geometry over the contiguous tensor's shape whose one operand has
// the other tensor's strides with the axis stride set to 0 (merging dimensions keeps the map
// from linear index to offset, so this holds after StridedGeometry merges them).
#include "common.cuh"

// out[i] = x[base(i) + indices[k]·axisStride], k = (i / inner) % K; copies bits of width T
template <typename T>
__device__ void index_select(const T* __restrict__ x, T* __restrict__ out, const int* __restrict__ indices,
                             const Geometry& g, i64 inner, i64 k, i64 axisStride) {
    for (i64 i = global_thread<i64>(); i < g.numel; i += grid_threads<i64>()) {
        i64 off[1];
        strided_offsets<1, i64>(g, i, off);
        const i64 sel = indices[(i / inner) % k];
        out[i] = x[off[0] + sel * axisStride];
    }
}

extern "C" __global__ void index_select_b16(const unsigned short* x, unsigned short* out, const int* indices,
                                            const Geometry g, i64 inner, i64 k, i64 axisStride) {
    index_select<unsigned short>(x, out, indices, g, inner, k, axisStride);
}

extern "C" __global__ void index_select_b32(const unsigned int* x, unsigned int* out, const int* indices,
                                            const Geometry g, i64 inner, i64 k, i64 axisStride) {
    index_select<unsigned int>(x, out, indices, g, inner, k, axisStride);
}

extern "C" __global__ void index_select_b64(const u64* x, u64* out, const int* indices, const Geometry g, i64 inner,
                                            i64 k, i64 axisStride) {
    index_select<u64>(x, out, indices, g, inner, k, axisStride);
}

// dx[i] += Σ g[base(i) + s·axisStride] over the positions s with indices[s] = d, d = (i / inner) % D,
// taken in ascending s (the CPU's order), one rounding per add: deterministic, no atomics.
// csr (built by the host) holds ptr[D + 1] then the positions grouped by target:
// positions ptr[d] .. ptr[d + 1] of list = csr + D + 1.
template <typename T>
__device__ void index_add(const T* __restrict__ grad, T* __restrict__ dx, const int* __restrict__ csr,
                          const Geometry& g, i64 inner, i64 d, i64 axisStride) {
    const int* list = csr + d + 1;
    for (i64 i = global_thread<i64>(); i < g.numel; i += grid_threads<i64>()) {
        const i64 target = (i / inner) % d;
        const int s0 = csr[target];
        const int s1 = csr[target + 1];
        if (s0 == s1) {
            continue;
        }
        i64 off[1];
        strided_offsets<1, i64>(g, i, off);
        T acc = dx[i];
        for (int s = s0; s < s1; ++s) {
            acc = acc + grad[off[0] + (i64) list[s] * axisStride];
        }
        dx[i] = acc;
    }
}

extern "C" __global__ void index_add_f32(const float* grad, float* dx, const int* csr, const Geometry g, i64 inner,
                                         i64 d, i64 axisStride) {
    index_add<float>(grad, dx, csr, g, inner, d, axisStride);
}

extern "C" __global__ void index_add_f64(const double* grad, double* dx, const int* csr, const Geometry g,
                                         i64 inner, i64 d, i64 axisStride) {
    index_add<double>(grad, dx, csr, g, inner, d, axisStride);
}
