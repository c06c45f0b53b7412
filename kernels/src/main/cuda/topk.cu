// The k largest entries of each row of a score matrix (Backend#topk), in dir4j's one result order:
// higher score first, equal scores by lower column index, NaN last (retrieval's ScoreOrder). One
// block of TOPK_THREADS threads per row:
//   1. radix select on 32-bit order keys, a byte at a time from the top: a 256-bucket histogram of
//      the keys still matching the chosen prefix gives the next byte of the k-th largest key T and
//      how many entries equal to T are needed (the rest of the k are the entries above T);
//   2. collection in column order, a block-wide scan of the "above T" and "equal to T" flags per
//      chunk of TOPK_THREADS columns, so that the equal entries kept are those of lowest index,
//      whatever the number of ties (deterministic, and the CPU's choice);
//   3. a bitonic sort of the k (key, ~index) pairs in shared memory, best first.
// Each pass reads the row once (five reads in all): at 100,000 columns a row is 400 KB.
#include "common.cuh"

#define TOPK_THREADS 256
#define TOPK_MAX 1024

// Unsigned key whose order is the float order (−0 just below +0); NaN gets 0, below every number.
__device__ __forceinline__ unsigned topk_key(float f) {
    if (f != f) {
        return 0u;
    }
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// scores [rows, n], row stride ld (columns contiguous); values [rows, k], indices [rows, k] (int32
// column numbers); 1 ≤ k ≤ min(n, TOPK_MAX). Launch: grid rows, block TOPK_THREADS.
extern "C" __global__ void topk_rows_f32(const float* __restrict__ scores, i64 ld, i64 n, int k,
                                         float* __restrict__ values, int* __restrict__ indices) {
    __shared__ unsigned hist[256];
    __shared__ unsigned chosenPrefix;
    __shared__ unsigned chosenRemaining;
    __shared__ unsigned warpAbove[TOPK_THREADS / 32];
    __shared__ unsigned warpEqual[TOPK_THREADS / 32];
    __shared__ u64 items[TOPK_MAX];
    const float* row = scores + (i64) blockIdx.x * ld;

    // 1. radix select
    unsigned prefix = 0;
    unsigned mask = 0;
    unsigned remaining = (unsigned) k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int t = threadIdx.x; t < 256; t += blockDim.x) {
            hist[t] = 0;
        }
        __syncthreads();
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) {
            const unsigned key = topk_key(row[j]);
            if ((key & mask) == prefix) {
                atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned above = 0;
            int b = 255;
            for (; b > 0; --b) {
                if (above + hist[b] >= remaining) {
                    break;
                }
                above += hist[b];
            }
            chosenPrefix = prefix | ((unsigned) b << shift);
            chosenRemaining = remaining - above;
        }
        __syncthreads();
        prefix = chosenPrefix;
        remaining = chosenRemaining;
        mask |= 255u << shift;
        __syncthreads();
    }
    const unsigned threshold = prefix;          // the k-th largest key
    const unsigned equalNeeded = remaining;     // entries equal to it among the k
    const unsigned aboveCount = (unsigned) k - equalNeeded;

    // 2. collection in column order
    const int warp = threadIdx.x >> 5;
    const int lane = threadIdx.x & 31;
    const unsigned lanesBelow = (1u << lane) - 1u;
    unsigned aboveBase = 0;
    unsigned equalBase = 0;
    for (i64 c0 = 0; c0 < n && (aboveBase < aboveCount || equalBase < equalNeeded); c0 += blockDim.x) {
        const i64 j = c0 + threadIdx.x;
        const unsigned key = j < n ? topk_key(row[j]) : 0u;
        const bool isAbove = j < n && key > threshold;
        const bool isEqual = j < n && key == threshold;
        const unsigned aboveBallot = __ballot_sync(0xffffffffu, isAbove);
        const unsigned equalBallot = __ballot_sync(0xffffffffu, isEqual);
        if (lane == 0) {
            warpAbove[warp] = __popc(aboveBallot);
            warpEqual[warp] = __popc(equalBallot);
        }
        __syncthreads();
        unsigned aboveBefore = 0;
        unsigned equalBefore = 0;
        unsigned aboveTotal = 0;
        unsigned equalTotal = 0;
        for (int w = 0; w < TOPK_THREADS / 32; ++w) {
            if (w < warp) {
                aboveBefore += warpAbove[w];
                equalBefore += warpEqual[w];
            }
            aboveTotal += warpAbove[w];
            equalTotal += warpEqual[w];
        }
        const u64 item = ((u64) key << 32) | (u64) (~(unsigned) j);
        if (isAbove) {
            const unsigned r = aboveBase + aboveBefore + __popc(aboveBallot & lanesBelow);
            if (r < aboveCount) {
                items[r] = item;
            }
        }
        if (isEqual) {
            const unsigned r = equalBase + equalBefore + __popc(equalBallot & lanesBelow);
            if (r < equalNeeded) {
                items[aboveCount + r] = item;
            }
        }
        aboveBase += aboveTotal;
        equalBase += equalTotal;
        __syncthreads(); // warpAbove/warpEqual are rewritten by the next chunk
    }

    // 3. bitonic sort, descending: higher key first, then higher ~index (lower index)
    unsigned p = 1;
    while (p < (unsigned) k) {
        p <<= 1;
    }
    for (unsigned t = (unsigned) k + threadIdx.x; t < p; t += blockDim.x) {
        items[t] = 0ull;
    }
    __syncthreads();
    for (unsigned size = 2; size <= p; size <<= 1) {
        for (unsigned stride = size >> 1; stride > 0; stride >>= 1) {
            for (unsigned t = threadIdx.x; t < p; t += blockDim.x) {
                const unsigned partner = t ^ stride;
                if (partner > t) {
                    const u64 a = items[t];
                    const u64 b = items[partner];
                    const bool firstHalf = (t & size) == 0;
                    if (firstHalf ? a < b : a > b) {
                        items[t] = b;
                        items[partner] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
    float* vOut = values + (i64) blockIdx.x * k;
    int* iOut = indices + (i64) blockIdx.x * k;
    for (int t = threadIdx.x; t < k; t += blockDim.x) {
        const int col = (int) ~(unsigned) items[t];
        iOut[t] = col;
        vOut[t] = row[col];
    }
}
