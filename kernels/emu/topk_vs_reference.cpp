// CPU emulation test of topk.cu against the CPU backend's top-k (TopK's bounded heap over
// ScoreOrder keys, transcribed): see run.sh.
#include "topk.emu.cpp"
#include <cfloat>
#include <cstdio>
#include <random>
#include <string>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { ++failures; std::printf("FAIL: "); std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

// ---------------- reference: dir4j.engine.cpu.ScoreOrder and TopK, CpuBackend#topk
static int32_t floatBits(float f) { int32_t b; std::memcpy(&b, &f, 4); return b; }
static float bitsFloat(int32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
static int64_t orderKey(float score, int index) {
    int32_t s = score != score ? INT32_MIN : floatBits(score) ^ ((floatBits(score) >> 31) & 0x7fffffff);
    return (int64_t) ((uint64_t) (uint32_t) ~s << 32) | (int64_t) (uint32_t) index;
}
static int keyIndex(int64_t key) { return (int32_t) (uint32_t) (uint64_t) key; }
static float keyScore(int64_t key) {
    int32_t s = ~(int32_t) (key >> 32);
    return bitsFloat(s ^ ((s >> 31) & 0x7fffffff));
}

struct RefTopK {
    std::vector<int64_t> heap; int size = 0;
    explicit RefTopK(int k) : heap(k) {}
    void offer(float score, int index) {
        int64_t key = orderKey(score, index);
        if (size < (int) heap.size()) {
            int i = size++;
            heap[i] = key;
            while (i > 0) {
                int parent = (int) ((unsigned) (i - 1) >> 1);
                if (heap[parent] >= key) break;
                heap[i] = heap[parent]; i = parent;
            }
            heap[i] = key;
        } else if (key < heap[0]) {
            int i = 0, half = (int) ((unsigned) size >> 1);
            while (i < half) {
                int child = 2 * i + 1, right = child + 1;
                if (right < size && heap[right] > heap[child]) child = right;
                if (key >= heap[child]) break;
                heap[i] = heap[child]; i = child;
            }
            heap[i] = key;
        }
    }
    std::vector<int64_t> sortedKeys() const { std::vector<int64_t> k(heap.begin(), heap.begin() + size); std::sort(k.begin(), k.end()); return k; }
};

static void refTopk(const float* s, long ld, int rows, int n, int k, std::vector<float>& v, std::vector<int>& ix) {
    v.assign((size_t) rows * k, 0); ix.assign((size_t) rows * k, 0);
    for (int r = 0; r < rows; r++) {
        RefTopK top(k);
        for (int j = 0; j < n; j++) top.offer(s[r * ld + j], j);
        auto keys = top.sortedKeys();
        for (int j = 0; j < k; j++) { v[(size_t) r * k + j] = keyScore(keys[j]); ix[(size_t) r * k + j] = keyIndex(keys[j]); }
    }
}

// ---------------- host side, transcribed from CudaBackend#topk (after Backend.checkTopk):
// grid rows, block 256, no dynamic shared memory; args scores (offset applied), stride(0), shape(1), k
static void gpuTopk(const float* s, long ld, int rows, int n, int k, std::vector<float>& v, std::vector<int>& ix) {
    v.assign((size_t) rows * k, 7.5f); ix.assign((size_t) rows * k, -5);
    if (rows == 0) return;
    emu_launch(rows, 1, 256, 0, [&] { topk_rows_f32(s, ld, n, k, v.data(), ix.data()); });
}

static bool sameValue(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (a != a && b != b); }

enum Fill { NORMAL, FEW_VALUES, ALL_EQUAL, ALL_NAN, MOSTLY_NAN, SPECIALS, NEAR_KEYS, SORTED_UP, SORTED_DOWN };
static const char* fillName[] = {"normal", "few values", "all equal", "all NaN", "mostly NaN", "specials", "near keys", "ascending", "descending"};

static void fillRow(float* row, int n, Fill f, std::mt19937& rng) {
    std::normal_distribution<double> N(0, 1);
    for (int j = 0; j < n; j++) {
        float v;
        switch (f) {
            case NORMAL: v = (float) N(rng); break;
            case FEW_VALUES: { int c = rng() % 40; v = c == 0 ? NAN : c == 1 ? -0.0f : c == 2 ? 0.0f : c == 3 ? -INFINITY : (float) ((int) (rng() % 9) - 4) / 4; break; }
            case ALL_EQUAL: v = 0.25f; break;
            case ALL_NAN: v = rng() % 2 ? NAN : -NAN; break;
            case MOSTLY_NAN: v = rng() % 10 ? NAN : (float) N(rng); break;
            case SPECIALS: { const float sp[] = {INFINITY, -INFINITY, NAN, -0.0f, 0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f, 1.0f, -1.0f};
                             v = sp[rng() % 13]; break; }
            // keys equal in their top 2 or 3 bytes: every radix pass decides
            case NEAR_KEYS: v = bitsFloat(floatBits(1.0f) + (int) (rng() % 600)) * (rng() % 5 == 0 ? -1 : 1); break;
            case SORTED_UP: v = (float) (j / 3); break;
            case SORTED_DOWN: v = (float) (-(j / 3)); break;
        }
        row[j] = v;
    }
}

static void topkCase(int rows, int n, long ld, const std::vector<int>& ks, Fill f, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<float> s((size_t) std::max(0, rows - 1) * ld + n + 8, 99.0f); // 99 between rows: must never be picked
    for (int r = 0; r < rows; r++) fillRow(s.data() + (size_t) r * ld, n, f, rng);
    for (int k : ks) {
        if (k < 1 || k > n || k > 1024) continue;
        std::vector<float> rv, gv; std::vector<int> ri, gi;
        refTopk(s.data(), ld, rows, n, k, rv, ri);
        gpuTopk(s.data(), ld, rows, n, k, gv, gi);
        int bad = 0;
        for (size_t t = 0; t < rv.size(); t++) {
            if (ri[t] != gi[t] || !sameValue(rv[t], gv[t])) {
                if (bad++ < 3) std::printf("  row %zu place %zu: ref col %d %.9g, gpu col %d %.9g\n", t / k, t % k, ri[t], rv[t], gi[t], gv[t]);
            }
        }
        CHECK(bad == 0, "topk %d x %d (ld %ld) k %d %s: %d bad", rows, n, ld, k, fillName[f], bad);
    }
    std::printf("topk case %d x %d ld %ld %s done\n", rows, n, ld, fillName[f]);
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // k = 1, small, one below and at a power of two, the chunk size 256, n itself, TOPK_MAX
    std::vector<int> ks = {1, 2, 3, 7, 255, 256, 257, 600, 1023, 1024};
    topkCase(3, 1, 1, {1}, NORMAL, 1);
    topkCase(2, 5, 5, {1, 3, 5}, FEW_VALUES, 2);
    topkCase(4, 37, 37, {1, 5, 36, 37}, FEW_VALUES, 3);
    topkCase(2, 256, 256, {1, 100, 255, 256}, NORMAL, 4);
    topkCase(2, 257, 300, {1, 128, 256, 257}, FEW_VALUES, 5);
    topkCase(3, 1024, 1024, {1, 500, 1024}, FEW_VALUES, 6);
    topkCase(2, 1500, 1537, ks, NORMAL, 7);
    topkCase(2, 1500, 1500, ks, FEW_VALUES, 8);
    topkCase(1, 1300, 1300, {1, 17, 1024}, ALL_EQUAL, 9);
    topkCase(2, 700, 700, {1, 100, 700}, ALL_NAN, 10);
    topkCase(2, 2000, 2003, {1, 150, 199, 200, 201, 250, 1024}, MOSTLY_NAN, 11);
    topkCase(3, 800, 800, {1, 13, 100, 800}, SPECIALS, 12);
    topkCase(3, 3000, 3000, {1, 10, 300, 1024}, NEAR_KEYS, 13);
    topkCase(1, 2000, 2000, {1, 1000, 1024}, SORTED_UP, 14);
    topkCase(1, 2000, 2000, {1, 1000, 1024}, SORTED_DOWN, 15);
    topkCase(40, 300, 333, {1, 10, 300}, FEW_VALUES, 16);  // many queries
    topkCase(2, 100003, 100003, {1, 1000, 1024}, FEW_VALUES, 17); // long rows (CudaTopkGpuTest's size)
    std::printf(failures ? "FAILURES: %d\n" : "ALL OK\n", failures);
    return failures != 0;
}
