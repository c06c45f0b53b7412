// CPU emulation test of sgd_steps_f32 (optim.cu: many float32 parameters in one launch, a block per
// chunk) against sgd_step_f32 run per tensor (whose values the GPU tests check against the CPU
// backend bit for bit): see run.sh. The table is built as CudaBackend#sgdSteps builds it.
#include "optim.emu.cpp"
#include <cstdio>
#include <random>
#include <vector>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { ++failures; std::printf("FAIL: "); std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

static const int BLOCK = 256;

static void run(const std::vector<long>& sizes, double momentum, double dampening, double wd, bool nesterov,
                unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    int t = (int) sizes.size();
    std::vector<std::vector<float>> p(t), g(t), b(t), p2, b2;
    std::vector<int> first(t);
    for (int k = 0; k < t; ++k) {
        p[k].resize(sizes[k]); g[k].resize(sizes[k]); b[k].resize(sizes[k]);
        for (long i = 0; i < sizes[k]; ++i) { p[k][i] = nd(rng); g[k][i] = nd(rng); b[k][i] = nd(rng); }
        first[k] = (int) (rng() % 2);
    }
    p2 = p;
    b2 = b;
    const double lr = 0.05;
    bool hasMomentum = momentum != 0;
    // per tensor, as Backend#sgdStep
    for (int k = 0; k < t; ++k) {
        long n = sizes[k];
        if (n == 0) continue;
        long grid = std::min((n + BLOCK - 1) / BLOCK, 4L);
        emu_launch(grid, 1, BLOCK, 0, [&] {
            sgd_step_f32(p[k].data(), g[k].data(), hasMomentum ? b[k].data() : nullptr, n, lr, momentum, dampening, wd,
                         nesterov, first[k]); });
    }
    // in one launch: the table of CudaBackend#sgdSteps
    std::vector<int> chunkTensor, chunkLocal;
    for (int k = 0; k < t; ++k) {
        for (long c = 0; c * SGD_CHUNK < sizes[k]; ++c) { chunkTensor.push_back(k); chunkLocal.push_back((int) c); }
    }
    int chunks = (int) chunkTensor.size();
    std::vector<u64> table(4L * t + (t + 2L * chunks + 1) / 2 + 1);
    for (int k = 0; k < t; ++k) {
        table[k] = (u64) p2[k].data();
        table[t + k] = (u64) g[k].data();
        table[2 * t + k] = hasMomentum ? (u64) b2[k].data() : 0;
        table[3 * t + k] = (u64) sizes[k];
    }
    int* ints = reinterpret_cast<int*>(table.data() + 4 * t);
    for (int k = 0; k < t; ++k) ints[k] = first[k];
    for (int c = 0; c < chunks; ++c) { ints[t + c] = chunkTensor[c]; ints[t + chunks + c] = chunkLocal[c]; }
    emu_launch(std::max(1, std::min(chunks, 3)), 1, BLOCK, 0, [&] {
        sgd_steps_f32(table.data(), t, chunks, lr, momentum, dampening, wd, nesterov); });
    for (int k = 0; k < t; ++k) {
        CHECK(std::memcmp(p[k].data(), p2[k].data(), 4 * sizes[k]) == 0, "param %d (%ld) momentum %g nesterov %d", k,
              sizes[k], momentum, nesterov);
        if (hasMomentum) {
            CHECK(std::memcmp(b[k].data(), b2[k].data(), 4 * sizes[k]) == 0, "buffer %d (%ld)", k, sizes[k]);
        }
    }
}

int main() {
    // sizes: empty, one element, under, at and over a chunk, several chunks and a tail
    std::vector<long> sizes = {5, 0, 1, 4095, 4096, 4097, 9000, 300};
    unsigned seed = 1;
    run(sizes, 0.9, 0, 1e-4, false, seed++);
    run(sizes, 0.9, 0, 0, true, seed++);
    run(sizes, 0.5, 0.1, 1e-3, false, seed++);
    run(sizes, 0, 0, 1e-4, false, seed++);
    run({7}, 0.9, 0, 1e-4, false, seed++);
    std::printf(failures ? "FAILURES: %d\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
