// CPU emulation test of the AP histogram and max-pool kernels against the reference: see run.sh.
#include "ap_histogram.emu.cpp"
#include "pool.emu.cpp"
#include <cstdio>
#include <random>
#include <string>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { ++failures; std::printf("FAIL: "); std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

// ---------------- reference: dir4j.engine.cpu.ApHistogramKernels, transcribed
struct Q {
    int nq; double min, max, a;
    Q(int nq_, double mn, double mx) : nq(nq_), min(mn), max(mx), a((nq_ - 1) / (mx - mn)) {}
    double w1(int k) const { return k == 0 ? 0 : -a; }
    double b1(int k) const { return k == 0 ? 1 : a * min + nq - k; }
    double w2(int k) const { return k == nq - 1 ? 0 : a; }
    double b2(int k) const { return k == nq - 1 ? 1 : 2 - nq + k - a * min; }
    int interiorBin(double s) const {
        double t = (max - s) * a;
        if (!(t > 1e-6 && t < nq - 1 - 1e-6)) return -1;
        int k = (int) t; double f = t - k;
        return f > 1e-6 && f < 1 - 1e-6 ? k : -1;
    }
    static int jint(double d) { if (d != d) return 0; if (d >= 2147483647.0) return INT_MAX; if (d <= -2147483648.0) return INT_MIN; return (int) d; }
    static int wrap(long long v) { return (int) (unsigned) (unsigned long long) v; }
    int clamp(int k) const { return std::max(0, std::min(nq - 1, k)); }
    int lo(double s) const { return clamp(wrap((long long) jint(std::floor((max - s) * a)) - 1)); }
    int hi(double s) const { return clamp(wrap((long long) jint(std::floor((max - s) * a)) + 2)); }
    static double jmin(double x, double y) { if (x != x || y != y) return NAN; return x < y ? x : y; }
    static double jmax(double x, double y) { if (x != x || y != y) return NAN; if (x == 0 && y == 0) return std::signbit(x) ? y : x; return x > y ? x : y; }
    double weight(int k, double s) const { return jmax(0, jmin(w1(k) * s + b1(k), w2(k) * s + b2(k))); }
    double slope(int k, double s) const {
        double l1 = w1(k) * s + b1(k), l2 = w2(k) * s + b2(k);
        double m = jmin(l1, l2);
        if (m < 0 || m != m) return 0;
        return l1 < l2 ? w1(k) : l2 < l1 ? w2(k) : (w1(k) + w2(k)) / 2;
    }
};

struct Labels {
    const float* dense = nullptr; long lRow = 0, lCol = 0;
    const float* rowIds = nullptr; const float* colIds = nullptr;
    double at(long i, long j) const { return dense ? (double) dense[i * lRow + j * lCol] : ((double) colIds[j] == (double) rowIds[i] ? 1 : 0); }
};

static void refForward(const float* s, long sRow, long sCol, const Labels& L, int n, int m, const Q& q, long diag, std::vector<float>& hist) {
    int nq = q.nq;
    hist.assign((size_t) n * 2 * nq, 0);
    for (int i = 0; i < n; i++) {
        std::vector<double> nb(nq), np(nq);
        for (int j = 0; j < m; j++) {
            if (j == i + diag) continue;
            double sv = s[i * sRow + j * sCol]; double y = L.at(i, j);
            int k = q.interiorBin(sv);
            if (k >= 0) {
                double wk = q.w2(k) * sv + q.b2(k), wk1 = q.w1(k + 1) * sv + q.b1(k + 1);
                nb[k] += wk; np[k] += y * wk; nb[k + 1] += wk1; np[k + 1] += y * wk1; continue;
            }
            for (k = q.lo(sv); k <= q.hi(sv); k++) { double w = q.weight(k, sv); nb[k] += w; np[k] += y * w; }
        }
        for (int k = 0; k < nq; k++) { hist[(size_t) i * 2 * nq + k] = (float) nb[k]; hist[(size_t) i * 2 * nq + nq + k] = (float) np[k]; }
    }
}

static double scoreGradient(const Q& q, double s, double y, const double* g, int at) {
    int nq = q.nq; int k = q.interiorBin(s);
    if (k >= 0) return (g[at + k] + y * g[at + nq + k] - g[at + k + 1] - y * g[at + nq + k + 1]) * q.a;
    double d = 0;
    for (k = q.lo(s); k <= q.hi(s); k++) d += (g[at + k] + y * g[at + nq + k]) * q.slope(k, s);
    return d;
}

static void refBackwardSym(const float* s, long sRow, long sCol, const Labels& L, int n, int m, const Q& q, int rowOffset, long diag,
                           const float* gh, std::vector<float>& out) {
    int nq = q.nq;
    std::vector<double> all((size_t) m * 2 * nq);
    for (int j = 0; j < m; j++) for (int k = 0; k < 2 * nq; k++) all[(size_t) j * 2 * nq + k] = gh[(size_t) j * 2 * nq + k];
    out.assign((size_t) n * m, 0);
    for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) {
        if (j == i + diag) { out[(size_t) i * m + j] = 0; continue; }
        double sv = s[i * sRow + j * sCol]; double y = L.at(i, j);
        double d = scoreGradient(q, sv, y, all.data(), (i + rowOffset) * 2 * nq) + scoreGradient(q, sv, y, all.data(), j * 2 * nq);
        out[(size_t) i * m + j] = (float) d;
    }
}

static void refBackward(const float* s, long sRow, long sCol, const Labels& L, int n, int m, const Q& q, long diag,
                        const float* gh, std::vector<float>& out) {
    int nq = q.nq;
    out.assign((size_t) n * m, 0);
    for (int i = 0; i < n; i++) {
        std::vector<double> g(2 * nq);
        for (int k = 0; k < 2 * nq; k++) g[k] = gh[(size_t) i * 2 * nq + k];
        for (int j = 0; j < m; j++) {
            if (j == i + diag) { out[(size_t) i * m + j] = 0; continue; }
            out[(size_t) i * m + j] = (float) scoreGradient(q, s[i * sRow + j * sCol], L.at(i, j), g.data(), 0);
        }
    }
}

static void refLoss(const float* h, const float* coef, int n, int nq, std::vector<float>& ap, std::vector<float>& gh) {
    ap.assign(n, 0); gh.assign((size_t) n * 2 * nq, 0);
    for (int qi = 0; qi < n; qi++) {
        std::vector<double> c(nq), p(nq), cc(nq), pp(nq);
        double mass = 0;
        for (int k = 0; k < nq; k++) { c[k] = h[(size_t) qi * 2 * nq + k]; p[k] = h[(size_t) qi * 2 * nq + nq + k]; mass += p[k]; }
        double m = mass == 0 ? 1 : mass, sc = 0, sp = 0, value = 0;
        for (int k = 0; k < nq; k++) { sc += c[k]; sp += p[k]; cc[k] = sc + 1e-16; pp[k] = sp; value += sp / cc[k] * (p[k] / m); }
        double g = coef[qi];
        ap[qi] = (float) value;
        double tailP = 0, tailC = 0;
        for (int k = nq - 1; k >= 0; k--) {
            double r = p[k] / m; tailP += r / cc[k]; tailC += r * pp[k] / (cc[k] * cc[k]);
            gh[(size_t) qi * 2 * nq + nq + k] = (float) (g * (tailP + (pp[k] / cc[k] - value) / m));
            gh[(size_t) qi * 2 * nq + k] = (float) (-g * tailC);
        }
    }
}

static bool sameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (a != a && b != b); }

// ---------------- host-side launch logic, transcribed from CudaBackend
static long apColumnsPerSplit(long rows, long cols, long sms) {
    long target = sms * 8;
    long splits = std::max(1L, std::min((target + rows - 1) / rows, (cols + 1023) / 1024));
    splits = std::min(splits, 65535L);
    return (cols + splits - 1) / splits;
}

static void gpuHistogram(const float* s, long sRow, long sCol, const Labels& L, long n, long m, int nq, double mn, double mx,
                         long diag, bool atomic, long sms, std::vector<float>& hist) {
    long cols = std::max(1L, apColumnsPerSplit(n, m, sms));
    int splits = (int) std::max(1L, (m + cols - 1) / cols);
    int threads = 128;
    while (threads > 32 && 2L * nq * threads * 8 > 48 * 1024) threads /= 2;
    bool priv = !atomic && 2L * nq * threads * 8 <= 48 * 1024;
    std::vector<u64> acc(n * 2 * nq, 0); std::vector<int> nanRows(n, 0);
    hist.assign(n * 2 * nq, -7);
    if (priv) {
        emu_launch(n, splits, threads, 2 * nq * threads * 8, [&] {
            ap_hist_accumulate_private_f32(s, sRow, sCol, L.dense, L.lRow, L.lCol, L.rowIds, L.colIds, m, nq, mn, mx, diag, cols, acc.data(), nanRows.data()); });
    } else {
        emu_launch(n, splits, 256, (256 / 32) * 2 * nq * 8, [&] {
            ap_hist_accumulate_f32(s, sRow, sCol, L.dense, L.lRow, L.lCol, L.rowIds, L.colIds, m, nq, mn, mx, diag, cols, acc.data(), nanRows.data()); });
    }
    emu_launch(3, 1, 64, 0, [&] { ap_hist_finalize_f32(acc.data(), nanRows.data(), hist.data(), n, nq); });
}

static void gpuBackwardSym(const float* s, long sRow, long sCol, const Labels& L, long n, long m, int nq, double mn, double mx,
                           long rowOffset, long diag, const float* gh, std::vector<float>& out) {
    int width = 2 * nq; int tileCols = 128;
    while (tileCols > 32 && (long) width * (tileCols + 1) * 4 > 32 * 1024) tileCols /= 2;
    long colBytes = (long) width * (tileCols + 1) * 4;
    int rowsPerTile = (int) std::max(1L, std::min(64L, (48 * 1024 - colBytes) / (width * 4L)));
    long shared = colBytes + (long) width * rowsPerTile * 4;
    long gridX = (m + tileCols - 1) / tileCols, gridY = (n + rowsPerTile - 1) / rowsPerTile;
    CHECK(shared <= 49152 && gridY <= 65535, "sym launch nq %d", nq);
    out.assign(n * m, NAN);
    emu_launch(gridX, gridY, tileCols, shared, [&] {
        ap_hist_backward_sym_f32(s, sRow, sCol, L.dense, L.lRow, L.lCol, L.rowIds, L.colIds, gh, 2 * nq, nq, 1, out.data(), n, m, nq, mn, mx, rowOffset, diag, rowsPerTile); });
}

static void gpuBackward(const float* s, long sRow, long sCol, const Labels& L, long n, long m, int nq, double mn, double mx,
                        long diag, long sms, const float* gh, std::vector<float>& out) {
    long cols = std::max(1L, apColumnsPerSplit(n, m, sms));
    int splits = (int) std::max(1L, (m + cols - 1) / cols);
    out.assign(n * m, NAN);
    emu_launch(n, splits, 256, 2 * nq * 8, [&] {
        ap_hist_backward_f32(s, sRow, sCol, L.dense, L.lRow, L.lCol, L.rowIds, L.colIds, gh, 2 * nq, nq, 1, out.data(), m, nq, mn, mx, diag, cols); });
}

static void apCase(int rows, int m, int r0, int nq, long diag, long sms, unsigned seed, bool specials) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> U(-1.2, 1.2);
    std::normal_distribution<double> N(0, 1);
    double mn = -1, mx = 1;
    Q q(nq, mn, mx);
    // a full symmetric S [m, m]; rows r0 .. r0+rows-1 are the block
    std::vector<float> S((size_t) m * m);
    for (int i = 0; i < m; i++) for (int j = 0; j <= i; j++) {
        double v = (i * 7 + j) % 3 == 0 ? N(rng) * 0.03 : U(rng);
        if (specials && (i + j) % 17 == 0) v = mx - (double) ((i + j) % nq) / q.a; // exactly at bin centres
        S[(size_t) i * m + j] = S[(size_t) j * m + i] = (float) v;
    }
    if (specials && m > 20) { S[(size_t) r0 * m + 5] = NAN; S[(size_t) (r0 + rows - 1) * m + 7] = INFINITY; S[(size_t) (r0 + rows / 2) * m + 9] = -INFINITY; S[(size_t) (r0 + rows / 2) * m + 11] = -1e30f; }
    std::vector<float> ids(m);
    for (int j = 0; j < m; j++) ids[j] = (float) (rng() % std::max(1, m / 3));
    std::vector<float> dense((size_t) rows * m);
    for (int i = 0; i < rows; i++) for (int j = 0; j < m; j++) dense[(size_t) i * m + j] = ids[r0 + i] == ids[j] ? 1 : 0;
    std::vector<float> gh((size_t) m * 2 * nq);
    for (auto& g : gh) g = (float) N(rng);
    const float* block = S.data() + (size_t) r0 * m;
    Labels Ld; Ld.dense = dense.data(); Ld.lRow = m; Ld.lCol = 1;
    Labels Lc; Lc.rowIds = ids.data() + r0; Lc.colIds = ids.data();
    char what[200]; std::snprintf(what, sizeof what, "rows %d m %d r0 %d nq %d diag %ld sms %ld", rows, m, r0, nq, diag, sms);

    std::vector<float> ref, gp, ga, gd;
    refForward(block, m, 1, Ld, rows, m, q, diag, ref);
    gpuHistogram(block, m, 1, Lc, rows, m, nq, mn, mx, diag, false, sms, gp);
    gpuHistogram(block, m, 1, Lc, rows, m, nq, mn, mx, diag, true, sms, ga);
    gpuHistogram(block, m, 1, Ld, rows, m, nq, mn, mx, diag, false, sms, gd);
    int bad = 0;
    for (size_t t = 0; t < ref.size(); t++) {
        double e = ref[t], a = gp[t];
        bool ok = (e != e && a != a) || std::fabs(e - a) <= 1e-6 * std::max(1.0, std::fabs(e));
        if (!ok && bad++ < 3) std::printf("  hist[%zu] ref %.9g gpu %.9g (%s)\n", t, e, a, what);
        CHECK(sameBits(gp[t], ga[t]), "private vs atomic hist[%zu] %g %g (%s)", t, gp[t], ga[t], what);
        CHECK(sameBits(gp[t], gd[t]), "class ids vs dense hist[%zu] (%s)", t, what);
    }
    CHECK(bad == 0, "histogram vs reference: %d bad (%s)", bad, what);

    // the symmetric backward
    std::vector<float> rs, gs, gs2;
    refBackwardSym(block, m, 1, Ld, rows, m, q, r0, diag, gh.data(), rs);
    gpuBackwardSym(block, m, 1, Lc, rows, m, nq, mn, mx, r0, diag, gh.data(), gs);
    gpuBackwardSym(block, m, 1, Ld, rows, m, nq, mn, mx, r0, diag, gh.data(), gs2);
    bad = 0;
    for (size_t t = 0; t < rs.size(); t++) {
        if (!sameBits(rs[t], gs[t]) && bad++ < 3) std::printf("  sym[%zu] (row %zu col %zu) ref %.9g gpu %.9g (%s)\n", t, t / m, t % m, rs[t], gs[t], what);
        CHECK(sameBits(gs[t], gs2[t]), "sym class vs dense [%zu] (%s)", t, what);
    }
    CHECK(bad == 0, "symmetric backward vs reference: %d bad (%s)", bad, what);

    // the row backward on the transposed view (strided scores and labels)
    std::vector<float> rb, gb;
    Labels LdT; LdT.dense = dense.data(); LdT.lRow = 1; LdT.lCol = m;
    // transposed block: [m, rows], element (j, i) = block[i, j]
    int nT = std::min(m, 300);
    refBackward(block, 1, m, LdT, nT, rows, q, -diag, gh.data(), rb);
    gpuBackward(block, 1, m, LdT, nT, rows, nq, mn, mx, -diag, sms, gh.data(), gb);
    bad = 0;
    for (size_t t = 0; t < rb.size(); t++) if (!sameBits(rb[t], gb[t]) && bad++ < 3) std::printf("  bwdT[%zu] ref %.9g gpu %.9g\n", t, rb[t], gb[t]);
    CHECK(bad == 0, "transposed row backward vs reference: %d bad (%s)", bad, what);
    std::printf("ap case %s done\n", what);
}

static void lossCase(int n, int nq, unsigned seed) {
    std::mt19937 rng(seed); std::uniform_real_distribution<double> U(0, 1);
    std::vector<float> h((size_t) n * 2 * nq), coef(n);
    for (int qi = 0; qi < n; qi++) {
        for (int k = 0; k < nq; k++) { float c = rng() % 4 == 0 ? 0 : (float) (U(rng) * 50); h[(size_t) qi * 2 * nq + k] = c; h[(size_t) qi * 2 * nq + nq + k] = qi % 17 == 0 ? 0 : (float) (c * U(rng)); }
        coef[qi] = qi % 13 == 0 ? 0 : (float) (-1.0 / n * (0.5 + U(rng)));
    }
    std::vector<float> ap, g, gap(n, NAN), gg((size_t) n * 2 * nq, NAN);
    refLoss(h.data(), coef.data(), n, nq, ap, g);
    long grid = std::min((long) (n + 127) / 128, 132L * 32);
    emu_launch(grid, 1, 128, 0, [&] { ap_loss_from_hist_f32(h.data(), coef.data(), gap.data(), gg.data(), n, nq); });
    int bad = 0;
    for (int i = 0; i < n; i++) if (!sameBits(ap[i], gap[i])) bad++;
    for (size_t t = 0; t < g.size(); t++) if (!sameBits(g[t], gg[t])) bad++;
    CHECK(bad == 0, "loss from hist n %d nq %d: %d bad", n, nq, bad);
    std::printf("loss case n %d nq %d done\n", n, nq);
}

// ---------------- max pool NHWC vs the NCHW reference semantics (dir4j PoolKernels: row-major scan, first max, NaN wins)
static void poolCase(int n, int h, int w, int c, int k, int st, int p, unsigned seed, long sms = 132) {
    std::mt19937 rng(seed); std::normal_distribution<double> N(0, 1);
    int ho = (h + 2 * p - k) / st + 1, wo = (w + 2 * p - k) / st + 1;
    std::vector<float> x((size_t) n * h * w * c), dy((size_t) n * ho * wo * c);
    for (auto& v : x) v = (float) N(rng);
    for (int b = 0; b < n; b++) for (int a = 1; a < std::min(h, 4); a++) for (int q = 1; q < std::min(w, 4); q++) for (int ch = 0; ch < c; ch++) x[(((size_t) b * h + a) * w + q) * c + ch] = 4.0f;
    if (h > 3 && w > 3 && c > 2) x[(((size_t) 0 * h + 3) * w + 3) * c + 2] = NAN;
    for (auto& v : dy) v = (float) N(rng);
    // reference on NCHW planes
    std::vector<float> ry(dy.size()), rdx(x.size(), 0); std::vector<int> ri(dy.size());
    for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) for (int i = 0; i < ho; i++) for (int j = 0; j < wo; j++) {
        int h0 = i * st - p, w0 = j * st - p, h1 = std::min(h0 + k, h), w1 = std::min(w0 + k, w); h0 = std::max(h0, 0); w0 = std::max(w0, 0);
        float best = -INFINITY; int arg = h0 * w + w0; bool done = false;
        for (int a = h0; a < h1 && !done; a++) for (int q = w0; q < w1; q++) {
            float v = x[(((size_t) b * h + a) * w + q) * c + ch];
            if (v > best || v != v) { best = v; arg = a * w + q; if (v != v) { done = true; break; } }
        }
        size_t o = (((size_t) b * ho + i) * wo + j) * c + ch;
        ry[o] = best; ri[o] = arg;
    }
    // backward reference: the CPU scatters in row-major output order, rounding after each add
    for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) for (int i = 0; i < ho; i++) for (int j = 0; j < wo; j++) {
        size_t o = (((size_t) b * ho + i) * wo + j) * c + ch;
        int r = ri[o]; size_t xi = (((size_t) b * h + r / w) * w + r % w) * c + ch;
        rdx[xi] = (float) ((double) rdx[xi] + (double) dy[o]);
    }
    // CudaBackend: block 256, grid gridFor(y.numel()) (gridFor(dx.numel()) backward), a quarter of
    // that with vec4 (c a multiple of 4, aligned pointers), at most sms·32 blocks
    auto gridFor = [&](long work) { return (unsigned) std::min(std::max(1L, (work + 255) / 256), sms * 32); };
    for (int vec4 = 0; vec4 <= (c % 4 == 0); vec4++) {
        std::vector<float> gy(dy.size(), 7), gdx(x.size(), 0); std::vector<int> gi(dy.size(), -5);
        long div = vec4 ? 4 : 1;
        emu_launch(gridFor((long) dy.size() / div), 1, 256, 0, [&] { maxpool2d_nhwc_f32(x.data(), gy.data(), gi.data(), n, h, w, c, ho, wo, k, k, st, st, p, p, vec4); });
        emu_launch(gridFor((long) x.size() / div), 1, 256, 0, [&] { maxpool2d_nhwc_backward_f32(dy.data(), gi.data(), gdx.data(), n, h, w, c, ho, wo, k, k, st, st, p, p, vec4); });
        int bad = 0;
        for (size_t t = 0; t < ry.size(); t++) if (!sameBits(ry[t], gy[t]) || ri[t] != gi[t]) bad++;
        for (size_t t = 0; t < rdx.size(); t++) if (!sameBits(rdx[t], gdx[t])) bad++;
        CHECK(bad == 0, "maxpool nhwc %d %d %d %d k%d s%d p%d vec4 %d: %d bad", n, h, w, c, k, st, p, vec4, bad);
    }
    // the NCHW kernels on the transposed tensors must give the same (transposed) results
    std::vector<float> xc(x.size()), dyc(dy.size()), yc(dy.size(), 7), dxc(x.size(), 0); std::vector<int> ic(dy.size(), -5);
    for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) {
        for (int a = 0; a < h * w; a++) xc[((size_t) b * c + ch) * h * w + a] = x[((size_t) b * h * w + a) * c + ch];
        for (int a = 0; a < ho * wo; a++) dyc[((size_t) b * c + ch) * ho * wo + a] = dy[((size_t) b * ho * wo + a) * c + ch];
    }
    emu_launch(gridFor((long) dy.size()), 1, 256, 0, [&] { maxpool2d_forward_f32(xc.data(), yc.data(), ic.data(), (long long) n * c, h, w, ho, wo, k, k, st, st, p, p); });
    emu_launch(gridFor((long) x.size()), 1, 256, 0, [&] { maxpool2d_backward_f32(dyc.data(), ic.data(), dxc.data(), (long long) n * c, h, w, ho, wo, k, k, st, st, p, p); });
    int badc = 0;
    for (int b = 0; b < n; b++) for (int ch = 0; ch < c; ch++) {
        for (int a = 0; a < ho * wo; a++) { size_t o = ((size_t) b * ho * wo + a) * c + ch, oc = ((size_t) b * c + ch) * ho * wo + a; if (!sameBits(ry[o], yc[oc]) || ri[o] != ic[oc]) badc++; }
        for (int a = 0; a < h * w; a++) if (!sameBits(rdx[((size_t) b * h * w + a) * c + ch], dxc[((size_t) b * c + ch) * h * w + a])) badc++;
    }
    CHECK(badc == 0, "maxpool nchw kernels %d %d %d %d: %d bad", n, h, w, c, badc);
    std::printf("pool case %dx%dx%dx%d done\n", n, h, w, c);
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    lossCase(1000, 2, 1); lossCase(1000, 20, 2); lossCase(300, 100, 3);
    poolCase(2, 9, 8, 6, 3, 2, 1, 1); poolCase(1, 7, 7, 3, 3, 2, 1, 2); poolCase(2, 12, 11, 5, 2, 2, 0, 3); poolCase(1, 10, 10, 4, 3, 1, 1, 4);
    poolCase(2, 56, 56, 8, 3, 2, 1, 5, 1); // the stem's pool; grids of at most 32 blocks: several rounds
    poolCase(2, 20, 18, 64, 3, 2, 1, 6); // the stem's channel count: a NaN (channel 2) and ties inside a float4
    poolCase(1, 9, 9, 12, 2, 2, 0, 7, 1); // non-overlapping windows, vec4 over several grid rounds
    // rows, m, r0, nq, diag, SMs (SMs small forces column splits)
    apCase(37, 300, 11, 20, 11, 132, 1, true);
    apCase(37, 300, 11, 20, (long) INT_MIN, 2, 2, true);
    apCase(70, 129, 40, 2, 40, 132, 3, true);
    apCase(33, 257, 100, 100, 100, 132, 4, true);
    apCase(33, 257, 100, 96, 100, 1, 5, true);
    apCase(65, 200, 0, 48, 0, 132, 6, true);
    apCase(5, 2100, 7, 25, 7, 1, 7, true);
    apCase(64, 64, 0, 48, -3, 132, 8, false);
    std::printf(failures ? "FAILURES: %d\n" : "ALL OK\n", failures);
    return failures != 0;
}
