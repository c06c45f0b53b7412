// Minimal CPU emulation of the CUDA features dir4j's kernels use: one std::thread per CUDA thread,
// blocks run one after another, std::barrier for __syncthreads, per-warp barriers for shuffles.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
#include <climits>
#include <algorithm>
#include <memory>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline dim3 gridDim, blockDim, blockIdx;
inline thread_local dim3 threadIdx;
inline std::barrier<>* emu_block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> emu_warp_barriers;
inline std::vector<unsigned long long> emu_warp_slots;
inline std::vector<unsigned char> emu_shared_mem;
// statically sized __shared__ variables: run.sh turns each declaration into a call of
// emu_static_shared, which hands every thread of the block the same slot (declarations run in the
// same order in every thread); the arena is poisoned like the dynamic one before each block
inline std::vector<unsigned char> emu_static_shared_mem(48 * 1024, 0xA5);
inline thread_local size_t emu_static_offset;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }

// lane + delta's value (delta > 0: down, delta < 0: up); the caller's own where that lane is outside the warp
template <typename T>
inline T emu_shfl(T v, int delta) {
    static_assert(sizeof(T) <= 8, "shfl");
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int off = delta, width = (int) std::min(32u, blockDim.x - warp * 32);
    auto& b = *emu_warp_barriers[warp];
    b.arrive_and_wait();
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    emu_warp_slots[warp * 32 + lane] = bits;
    b.arrive_and_wait();
    T r = v;
    if (lane + off >= 0 && lane + off < width) { // (a missing lane of a partial warp: undefined on CUDA)
        unsigned long long o = emu_warp_slots[warp * 32 + lane + off];
        std::memcpy(&r, &o, sizeof(T));
    }
    b.arrive_and_wait();
    return r;
}
template <typename T>
inline T __shfl_down_sync(unsigned, T v, unsigned off) { return emu_shfl(v, (int) off); }
template <typename T>
inline T __shfl_up_sync(unsigned, T v, unsigned off) { return emu_shfl(v, -(int) off); }

inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }

// the bits of the predicate of every lane of the calling thread's warp (all lanes must call)
inline unsigned __ballot_sync(unsigned, bool pred) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    auto& b = *emu_warp_barriers[warp];
    b.arrive_and_wait();
    emu_warp_slots[warp * 32 + lane] = pred ? 1 : 0;
    b.arrive_and_wait();
    unsigned bits = 0;
    for (unsigned l = 0; l < 32 && warp * 32 + l < blockDim.x; ++l) {
        if (emu_warp_slots[warp * 32 + l]) bits |= 1u << l;
    }
    b.arrive_and_wait();
    return bits;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }

inline int __double2int_rd(double x) {
    if (x != x) return 0;
    double f = std::floor(x);
    if (f >= 2147483647.0) return INT_MAX;
    if (f <= -2147483648.0) return INT_MIN;
    return (int) f;
}
inline long long __double2ll_rn(double x) {
    if (x != x) return 0;
    double r = std::nearbyint(x);
    if (r >= 9.2233720368547758e18) return LLONG_MAX;
    if (r <= -9.2233720368547758e18) return LLONG_MIN;
    return (long long) r;
}
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double f; std::memcpy(&f, &i, 8); return f; }
using std::min;
using std::max;
inline float expf(float v) { return std::exp(v); }
inline float logf(float v) { return std::log(v); }
inline float sqrtf(float v) { return std::sqrt(v); }
inline float powf(float a, float b) { return std::pow(a, b); }
inline float fmaf(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
// the other round-to-nearest intrinsics optim.cu names (-ffp-contract=off keeps each one rounding)
inline double __dadd_rn(double a, double b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
using std::exp;
using std::log;
using std::sqrt;
using std::pow;
using std::fma;

// vector types and the 16-bit float conversions elementwise.cu names (run.sh drops the CUDA headers)
struct alignas(16) float4 { float x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct alignas(16) int4 { int x, y, z, w; };
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline int __double2int_rz(double x) {
    if (x != x) return 0;
    if (x >= 2147483647.0) return INT_MAX;
    if (x <= -2147483648.0) return INT_MIN;
    return (int) x;
}
struct __nv_bfloat16 { unsigned short bits; };
struct __half { _Float16 v; };
inline float __bfloat162float(__nv_bfloat16 h) { unsigned u = (unsigned) h.bits << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    unsigned u; std::memcpy(&u, &f, 4);
    if (f != f) return {0x7fc0};
    return {(unsigned short) ((u + 0x7fff + ((u >> 16) & 1)) >> 16)};
}
inline float __half2float(__half h) { return (float) h.v; }
inline __half __float2half_rn(float f) { return {(_Float16) f}; }

// kernel(args...) over grid x block with `shared` dynamic bytes (the block's shared memory is
// poisoned with 0xA5 bytes first, so that reads of unwritten shared memory show)
template <typename F>
void emu_launch(unsigned gx, unsigned gy, unsigned block, size_t shared, F kernel) {
    gridDim = {gx, gy, 1};
    blockDim = {block, 1, 1};
    emu_shared_mem.assign(shared + 16, 0xA5);
    emu_warp_slots.assign((block + 31) / 32 * 32, 0);
    for (unsigned by = 0; by < gy; ++by) {
        for (unsigned bx = 0; bx < gx; ++bx) {
            blockIdx = {bx, by, 0};
            std::fill(emu_shared_mem.begin(), emu_shared_mem.end(), 0xA5);
            std::fill(emu_static_shared_mem.begin(), emu_static_shared_mem.end(), 0xA5);
            std::barrier<> bar(block);
            emu_block_barrier = &bar;
            emu_warp_barriers.clear();
            for (unsigned w = 0; w < (block + 31) / 32; ++w) {
                emu_warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32u, block - w * 32)));
            }
            std::vector<std::thread> ts;
            for (unsigned t = 0; t < block; ++t) {
                ts.emplace_back([&, t] { threadIdx = {t, 0, 0}; emu_static_offset = 0; kernel(); });
            }
            for (auto& t : ts) t.join();
        }
    }
}
#define EMU_SHARED(T, name) T* name = reinterpret_cast<T*>(emu_shared_mem.data())

template <typename T>
T* emu_static_shared(size_t count) {
    size_t at = (emu_static_offset + alignof(T) - 1) / alignof(T) * alignof(T);
    if (at + sizeof(T) * count > emu_static_shared_mem.size()) std::abort(); // over 48 KB static
    emu_static_offset = at + sizeof(T) * count;
    return reinterpret_cast<T*>(emu_static_shared_mem.data() + at);
}
#define EMU_STATIC_SHARED_ARRAY(T, name, count) T* name = emu_static_shared<T>(count)
#define EMU_STATIC_SHARED(T, name) T& name = *emu_static_shared<T>(1)
