// CPU emulation test of the batch-norm kernels (batchnorm.cu: channels-last in both modes, and the
// NCHW inference apply) against a transcription of the CPU backend
// (dir4j.engine.cpu.BatchNormKernels#forward, #backwardAct, #inference): see run.sh. The launches
// follow CudaBackend#batchNorm2dNhwcAct and #batchNorm2dNhwcActBackward (chunks from
// bnNhwcRowsPerChunk, with a small SM count so that most shapes split into several chunks) and
// CudaBackend#batchNorm2dInference.
#include "batchnorm.emu.cpp"
#include <cstdio>
#include <random>
#include <vector>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { ++failures; std::printf("FAIL: "); std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

static const int BLOCK = 256;
static long gridFor(long work, int sms) { long n = std::max(1L, (work + BLOCK - 1) / BLOCK); return std::min(n, (long) sms * 32); }

// CudaBackend#bnNhwcRowsPerChunk: about 8 blocks per SM over the channel tiles, at least 64 rows a chunk
static long rowsPerChunk(long m, int c, int sms) {
    long tiles = (c + BN_TILE_C - 1) / BN_TILE_C;
    long chunks = std::max(1L, std::min(65535L, 8L * sms / tiles));
    chunks = std::max(1L, std::min(chunks, (m + 63) / 64));
    return (m + chunks - 1) / chunks;
}

static bool close(double ref, double got, double rtol, double atol) {
    if (std::isnan(ref)) return std::isnan(got);
    return std::fabs(ref - got) <= atol + rtol * std::fabs(ref);
}

static void compare(const char* what, const std::vector<float>& ref, const std::vector<float>& got, double rtol, double atol,
                    long m, int c) {
    int bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        if (!close(ref[i], got[i], rtol, atol)) {
            if (bad++ < 3) std::printf("FAIL: %s m=%ld c=%d at %zu: ref %.9g got %.9g\n", what, m, c, i, ref[i], got[i]);
        }
    }
    if (bad) { ++failures; std::printf("FAIL: %s m=%ld c=%d: %d of %zu differ\n", what, m, c, bad, ref.size()); }
}

static void run(long m, int c, double offset, bool residual, bool relu, bool training, int sms, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    long n = m * c;
    std::vector<float> x(n), res(n), dy(n), gamma(c), beta(c), rm(c), rv(c);
    for (long i = 0; i < n; ++i) { x[i] = (float) (offset + 1.7 * nd(rng) + 0.1 * (i % c)); res[i] = nd(rng); dy[i] = nd(rng); }
    for (int k = 0; k < c; ++k) { gamma[k] = 1.f + 0.3f * nd(rng); beta[k] = 0.2f * nd(rng); rm[k] = 0.1f * nd(rng); rv[k] = 1.f + 0.2f * std::fabs(nd(rng)); }
    const double momentum = 0.1, eps = 1e-5;

    // reference (BatchNormKernels#forward / #backwardAct, per channel in double)
    std::vector<float> ry(n), rmean(c), rinv(c), rrm(rm), rrv(rv), rdx(n), rdg(c), rdb(c), rdr(n);
    for (int k = 0; k < c; ++k) {
        double mean = rm[k], var = rv[k];
        if (training) {
            double sum = 0; for (long r = 0; r < m; ++r) sum += x[r * c + k];
            mean = sum / m;
            double ss = 0;
            for (long r = 0; r < m; ++r) { double d = x[r * c + k] - mean; ss += d * d; }
            var = ss / m;
            rrm[k] = (float) ((1 - momentum) * rm[k] + momentum * mean);
            rrv[k] = (float) ((1 - momentum) * rv[k] + momentum * (m > 1 ? ss / (m - 1) : var));
        }
        double inv = 1 / std::sqrt(var + eps);
        rmean[k] = (float) mean; rinv[k] = (float) inv;
        float scale = (float) (gamma[k] * inv), shift = (float) (beta[k] - mean * (gamma[k] * inv));
        for (long r = 0; r < m; ++r) {
            float v = std::fma(x[r * c + k], scale, shift);
            if (residual) v += res[r * c + k];
            if (relu && v < 0) v = 0;
            ry[r * c + k] = v;
        }
    }
    for (int k = 0; k < c; ++k) {
        double sumDy = 0, sumDyXc = 0;
        for (long r = 0; r < m; ++r) {
            long i = r * c + k;
            float d = relu ? dy[i] * (ry[i] > 0 ? 1.f : 0.f) : dy[i];
            sumDy += d; sumDyXc += (double) d * (x[i] - rmean[k]);
        }
        double inv = rinv[k], g = gamma[k];
        rdb[k] = (float) sumDy; rdg[k] = (float) (sumDyXc * inv);
        double a = g * inv, b = training ? -g * inv * inv * inv * sumDyXc / m : 0, cc = training ? -a * sumDy / m - b * rmean[k] : 0;
        for (long r = 0; r < m; ++r) {
            long i = r * c + k;
            float d = relu ? dy[i] * (ry[i] > 0 ? 1.f : 0.f) : dy[i];
            rdx[i] = std::fma(d, (float) a, std::fma(x[i], (float) b, (float) cc));
            rdr[i] = d;
        }
    }

    // the kernels, launched as CudaBackend launches them
    long rows = rowsPerChunk(m, c, sms);
    int chunks = (int) ((m + rows - 1) / rows);
    unsigned tiles = (unsigned) ((c + BN_TILE_C - 1) / BN_TILE_C);
    std::vector<double> partial(2L * chunks * c, std::nan(""));
    std::vector<float> y(n, NAN), mean(c, NAN), inv(c, NAN), ss(2 * c, NAN), grm(rm), grv(rv);
    if (training) {
        emu_launch(tiles, chunks, BLOCK, 0, [&] { bn_nhwc_partial_f32(x.data(), nullptr, nullptr, nullptr, m, c, rows, 0, partial.data()); });
    }
    emu_launch(gridFor(c, sms), 1, BLOCK, 0, [&] {
        bn_nhwc_finalize_f32(training ? partial.data() : nullptr, training ? chunks : 0, m, c, x.data(), gamma.data(),
                             beta.data(), grm.data(), grv.data(), momentum, eps, training, mean.data(), inv.data(),
                             ss.data()); });
    int vec4 = c % 4 == 0;
    emu_launch(gridFor(vec4 ? n / 4 : n, sms), 1, BLOCK, 0, [&] {
        bn_nhwc_apply_f32(x.data(), ss.data(), residual ? res.data() : nullptr, y.data(), n, c, relu, vec4); });
    std::vector<double> bpartial(2L * chunks * c, std::nan(""));
    std::vector<float> dx(n, NAN), dg(c, NAN), db(c, NAN), coef(3 * c, NAN), dr(n, NAN);
    emu_launch(tiles, chunks, BLOCK, 0, [&] {
        bn_nhwc_partial_f32(x.data(), y.data(), dy.data(), mean.data(), m, c, rows, relu, bpartial.data()); });
    emu_launch(gridFor(c, sms), 1, BLOCK, 0, [&] {
        bn_nhwc_backward_finalize_f32(bpartial.data(), chunks, m, c, gamma.data(), mean.data(), inv.data(), training,
                                      dg.data(), db.data(), coef.data()); });
    emu_launch(gridFor(vec4 ? n / 4 : n, sms), 1, BLOCK, 0, [&] {
        bn_nhwc_backward_apply_f32(x.data(), y.data(), dy.data(), coef.data(), dx.data(), residual ? dr.data() : nullptr,
                                   n, c, relu, vec4); });
    if (vec4) {
        // the float4 pass does each element's arithmetic of the scalar one: the same bits
        std::vector<float> sdx(n, NAN), sdr(n, NAN);
        emu_launch(gridFor(n, sms), 1, BLOCK, 0, [&] {
            bn_nhwc_backward_apply_f32(x.data(), y.data(), dy.data(), coef.data(), sdx.data(),
                                       residual ? sdr.data() : nullptr, n, c, relu, 0); });
        compare("dx (scalar pass)", sdx, dx, 0, 0, m, c);
        if (residual) compare("dresidual (scalar pass)", sdr, dr, 0, 0, m, c);
    }

    // float sums in the reference's order differ from the kernels' in the last bits only
    compare("saved mean", rmean, mean, 1e-5, 1e-5 * (1 + std::fabs(offset)), m, c);
    compare("saved 1/std", rinv, inv, 1e-5, 1e-6, m, c);
    compare("running mean", rrm, grm, 1e-5, 1e-6 * (1 + std::fabs(offset)), m, c);
    compare("running var", rrv, grv, 1e-5, 1e-6, m, c);
    compare("y", ry, y, 1e-4, 1e-4, m, c);
    compare("dbeta", rdb, db, 1e-4, 1e-3, m, c);
    compare("dgamma", rdg, dg, 1e-4, 1e-3, m, c);
    compare("dx", rdx, dx, 1e-3, 1e-4, m, c);
    if (residual) compare("dresidual", rdr, dr, 0, 0, m, c);
}

// bn_scale_shift_f32 + bn_apply_f32, the NCHW inference batch norm (CudaBackend#batchNorm2dInference),
// against BatchNormKernels#inference: scale, shift in double rounded once, y = relu?(fma(x, scale, shift)
// [+ residual]) to the bit, also in place (y = x)
static void runInference(int n, int c, int hw, bool residual, bool relu, bool inPlace, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    long total = (long) n * c * hw;
    std::vector<float> x(total), res(total), gamma(c), beta(c), mean(c), var(c), ss(2 * c, NAN), want(total);
    for (long i = 0; i < total; ++i) { x[i] = 2 * nd(rng); res[i] = nd(rng); }
    for (int k = 0; k < c; ++k) { gamma[k] = 1 + 0.3f * nd(rng); beta[k] = nd(rng); mean[k] = 0.2f * nd(rng); var[k] = 0.5f + std::fabs(nd(rng)); }
    const double eps = 1e-5;
    for (long i = 0; i < total; ++i) {
        int k = (int) ((i / hw) % c);
        double inv = 1 / std::sqrt((double) var[k] + eps);
        float scale = (float) (gamma[k] * inv), shift = (float) (beta[k] - mean[k] * (gamma[k] * inv));
        float v = std::fma(x[i], scale, shift);
        if (residual) v += res[i];
        if (relu && v < 0) v = 0;
        want[i] = v;
    }
    std::vector<float> y(total, NAN);
    float* out = inPlace ? x.data() : y.data();
    emu_launch(gridFor(c, 2), 1, BLOCK, 0, [&] {
        bn_scale_shift_f32(gamma.data(), beta.data(), mean.data(), var.data(), eps, c, ss.data()); });
    emu_launch(gridFor(total, 2), 1, BLOCK, 0, [&] {
        bn_apply_f32(x.data(), ss.data(), residual ? res.data() : nullptr, out, total, hw, c, relu); });
    int bad = 0;
    for (long i = 0; i < total; ++i) {
        if (std::memcmp(&want[i], &out[i], 4) != 0 && bad++ < 3) {
            std::printf("FAIL: bn_apply_f32 n %d c %d hw %d at %ld: want %.9g got %.9g\n", n, c, hw, i, want[i], out[i]);
        }
    }
    CHECK(bad == 0, "bn_apply_f32 n %d c %d hw %d residual %d relu %d in place %d: %d differ", n, c, hw, residual, relu,
          inPlace, bad);
}

int main() {
    // (m, c): the scalar path (c = 3, 6), float4 with a partial channel tile (8, 36), whole tiles
    // (64, 96), one row, rows not a multiple of the row lanes or the chunk
    struct Case { long m; int c; } cases[] = {{1, 8}, {7, 3}, {45, 6}, {300, 8}, {257, 36}, {130, 64}, {999, 96}};
    unsigned seed = 1;
    for (auto cs : cases) {
        for (int mode = 0; mode < 8; ++mode) {
            run(cs.m, cs.c, 0.0, mode & 1, mode & 2, !(mode & 4), 2, seed++);
        }
    }
    // a mean far from zero against the spread (the shifted sums keep the variance)
    run(2000, 8, 300.0, false, true, true, 3, seed++);
    run(513, 32, -50.0, true, true, true, 1, seed++);
    for (int mode = 0; mode < 8; ++mode) {
        runInference(2, 5, 7 * 3, mode & 1, mode & 2, mode & 4, seed++);
        runInference(1, 64, 1, mode & 1, mode & 2, mode & 4, seed++);
    }
    std::printf(failures ? "FAILURES: %d\n" : "ALL OK\n", failures);
    return failures ? 1 : 0;
}
