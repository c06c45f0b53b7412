// CPU emulation test of the elementwise and reduction kernels (elementwise.cu, reduce.cu) on the
// launches the channels-last paths make (CudaBackend#conv2dNhwc's epilogue: the bias as a row
// vector over the pixels, the residual, the ReLU; ResNetDeviceInference's stem input, NCHW into a
// zero-padded NHWC buffer, and its NHWC -> NCHW output; Ops.concat of the training stem's zero
// channel; the composed eval batch-norm backward on NHWC and NCHW), with CudaBackend's dispatch,
// StridedGeometry and ReducePlan transcribed, against the CPU backend's semantics (ScalarMath:
// float add, ReLU keeping NaN, −0 to +0; BatchNormKernels#backward in eval): see run.sh.
#include "elementwise.emu.cpp"
#include "reduce.emu.cpp"
#include <cstdio>
#include <random>
#include <string>

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { ++failures; std::printf("FAIL: "); std::printf(__VA_ARGS__); std::printf("\n"); } } while (0)

static long SMS = 132; // H200; a case sets 1 so that the grid-stride loops take several rounds
static const int BLOCK = 256;

// ---------------- a device buffer and views of it (dir4j.engine.Tensor: shape, strides, offset in elements)
struct Buf {
    float* p; size_t n;
    explicit Buf(size_t count) : n(count) { p = static_cast<float*>(std::aligned_alloc(256, (count * 4 + 255) / 256 * 256)); for (size_t i = 0; i < n; i++) p[i] = 99.0f; }
    ~Buf() { std::free(p); }
    Buf(const Buf&) = delete;
};
struct View {
    float* base; long offset; std::vector<int> shape; std::vector<long> strides;
    float* addr() const { return base + offset; }
    long numel() const { long n = 1; for (int s : shape) n *= s; return n; }
    bool contiguous() const { long e = 1; for (int i = (int) shape.size() - 1; i >= 0; i--) { if (shape[i] != 1 && strides[i] != e) return false; e *= shape[i]; } return true; }
    // the element at row-major linear index i of the view
    float& at(long i) const { long o = offset; for (int d = (int) shape.size() - 1; d >= 0; d--) { o += (i % shape[d]) * strides[d]; i /= shape[d]; } return base[o]; }
};
static std::vector<long> compact(const std::vector<int>& shape) { std::vector<long> s(shape.size()); long e = 1; for (int d = (int) shape.size() - 1; d >= 0; d--) { s[d] = e; e *= shape[d]; } return s; }
static View whole(Buf& b, std::vector<int> shape, long offset = 0) { return View{b.p, offset, shape, compact(shape)}; }

// ---------------- host side, transcribed: StridedGeometry, CudaModules#gridFor, CudaBackend's dispatch
static bool aligned16(const float* p) { return ((uintptr_t) p & 15) == 0; }
static long gridFor(long work, int block) { return std::min(std::max(1L, (work + block - 1) / block), SMS * 32); }

static Geometry geometryOf(const std::vector<int>& shape, const std::vector<std::vector<long>>& strides) {
    int ops = (int) strides.size();
    long numel = 1;
    for (int s : shape) numel *= s;
    long ms[8] = {}; long mst[3][8] = {};
    int r = 0;
    for (size_t d = 0; d < shape.size(); d++) {
        if (shape[d] == 1) continue;
        bool merge = r > 0;
        for (int k = 0; k < ops && merge; k++) merge = mst[k][r - 1] == strides[k][d] * shape[d];
        if (merge) { ms[r - 1] *= shape[d]; for (int k = 0; k < ops; k++) mst[k][r - 1] = strides[k][d]; }
        else { ms[r] = shape[d]; for (int k = 0; k < ops; k++) mst[k][r] = strides[k][d]; r++; }
    }
    Geometry g{};
    if (r == 0) { g.rank = 1; g.numel = numel; g.shape[0] = shape.empty() ? 1 : numel; return g; }
    if (r > DIR4J_MAX_RANK) { std::printf("rank %d after merging\n", r); std::abort(); }
    g.rank = r; g.numel = numel;
    for (int d = 0; d < r; d++) { g.shape[d] = ms[d]; for (int k = 0; k < ops; k++) g.stride[k][d] = mst[k][d]; }
    return g;
}
static bool fitsInt32(const Geometry& g, int ops) {
    if (g.numel >= (1L << 31)) return false;
    for (int k = 0; k < ops; k++) { long mx = 0; for (int d = 0; d < g.rank; d++) { mx += (g.shape[d] - 1) * g.stride[k][d]; if (mx >= (1L << 31) || mx < 0) return false; } }
    return true;
}
// RepeatedVector.of: {inner, period} or {0, 0} when not a repeated vector
static std::pair<long, long> repeatedVector(const std::vector<int>& shape, const std::vector<long>& strides) {
    long inner = 1, period = 1, expect = 1; int phase = 0;
    for (int d = (int) shape.size() - 1; d >= 0; d--) {
        if (shape[d] == 1) continue;
        long st = strides[d];
        if (phase == 0 && st == 0) { inner *= shape[d]; continue; }
        if (phase <= 1 && st != 0) { if (st != expect) return {0, 0}; phase = 1; expect *= shape[d]; period *= shape[d]; continue; }
        if (st != 0) return {0, 0};
        phase = 2;
    }
    return {inner, period};
}

static std::string lastPath; // which kernel the last op launched (the test names it)

static void cudaUnary(int op, const View& x, const View& out, double alpha = 0, double beta = 0) {
    if (x.numel() == 0) return;
    if (x.contiguous() && out.contiguous() && aligned16(x.addr()) && aligned16(out.addr())) {
        lastPath = "unary_contig4";
        emu_launch(gridFor((x.numel() + 3) / 4, BLOCK), 1, BLOCK, 0, [&] { unary_contig4_f32(x.addr(), out.addr(), x.numel(), op, alpha, beta); });
        return;
    }
    Geometry g = geometryOf(out.shape, {x.strides, out.strides});
    lastPath = fitsInt32(g, 2) ? "unary_strided_i32" : "unary_strided_i64";
    emu_launch(gridFor(g.numel, BLOCK), 1, BLOCK, 0, [&] {
        if (fitsInt32(g, 2)) unary_strided_f32_i32(x.addr(), out.addr(), g, op, alpha, beta); else unary_strided_f32_i64(x.addr(), out.addr(), g, op, alpha, beta); });
}

static void cudaBinary(int op, const View& a, const View& b, const View& out) {
    long n = out.numel();
    if (n == 0) return;
    float *aa = a.addr(), *ba = b.addr(), *oa = out.addr();
    if (a.contiguous() && b.contiguous() && out.contiguous() && aligned16(aa) && aligned16(ba) && aligned16(oa)) {
        lastPath = "binary_contig4";
        emu_launch(gridFor((n + 3) / 4, BLOCK), 1, BLOCK, 0, [&] { binary_contig4_f32(aa, ba, oa, n, op); });
        return;
    }
    if (op <= B_DIV && out.contiguous() && n < INT_MAX && aligned16(oa)) {
        bool swap = !(a.contiguous() && aligned16(aa));
        const View& c = swap ? b : a;
        std::pair<long, long> rep{0, 0};
        if (c.contiguous() && aligned16(swap ? ba : aa)) rep = repeatedVector(out.shape, (swap ? a : b).strides);
        if (rep.first != 0) {
            float* ra = swap ? aa : ba;
            int mode = rep.first % 4 == 0 ? 0 : rep.first == 1 && rep.second % 4 == 0 && aligned16(ra) ? 1 : 2;
            lastPath = "binary_repeat4 mode " + std::to_string(mode);
            emu_launch(gridFor((n + 15) / 16, BLOCK), 1, BLOCK, 0, [&] {
                binary_repeat4_f32(swap ? ba : aa, ra, oa, (unsigned) n, (unsigned) rep.first, (unsigned) rep.second, op, swap ? 1 : 0, mode); });
            return;
        }
    }
    Geometry g = geometryOf(out.shape, {a.strides, b.strides, out.strides});
    bool i32 = fitsInt32(g, 3);
    lastPath = i32 ? "binary_strided_i32" : "binary_strided_i64";
    emu_launch(gridFor(g.numel, BLOCK), 1, BLOCK, 0, [&] {
        if (i32) binary_strided_f32_i32(aa, ba, oa, g, op); else binary_strided_f32_i64(aa, ba, oa, g, op); });
}

// copyOnDevice (same dtype): contiguous -> cuMemcpyDtoDAsync, else the strided 32-bit copy
static void cudaCopy(const View& src, const View& dst) {
    if (src.numel() == 0) return;
    if (src.contiguous() && dst.contiguous()) { lastPath = "memcpy"; std::memmove(dst.addr(), src.addr(), src.numel() * 4); return; }
    Geometry g = geometryOf(dst.shape, {src.strides, dst.strides});
    bool i32 = fitsInt32(g, 2);
    lastPath = i32 ? "copy_strided_i32" : "copy_strided_i64";
    auto s = reinterpret_cast<const unsigned*>(src.addr()); auto d = reinterpret_cast<unsigned*>(dst.addr());
    emu_launch(gridFor(g.numel, BLOCK), 1, BLOCK, 0, [&] { if (i32) copy_strided_b32_i32(s, d, g); else copy_strided_b32_i64(s, d, g); });
}

// fill of a float32 view: contiguous -> cuMemsetD32Async, else the strided 32-bit fill
static void cudaFill(const View& out, float value) {
    if (out.numel() == 0) return;
    unsigned bits; std::memcpy(&bits, &value, 4);
    if (out.contiguous()) { lastPath = "memset"; for (long i = 0; i < out.numel(); i++) out.addr()[i] = value; return; }
    Geometry g = geometryOf(out.shape, {out.strides});
    bool i32 = fitsInt32(g, 1);
    lastPath = i32 ? "fill_strided_i32" : "fill_strided_i64";
    auto d = reinterpret_cast<unsigned*>(out.addr());
    emu_launch(gridFor(g.numel, BLOCK), 1, BLOCK, 0, [&] { if (i32) fill_strided_b32_i32(d, g, bits); else fill_strided_b32_i64(d, g, bits); });
}

// CudaBackend#reduce with ReducePlan.of (kinds ROWS, COLUMNS, BLOCKS with splits) and reduceRows
enum PlanKind { ROWS, COLUMNS, BLOCKS };
static const char* planName[] = {"rows", "columns", "blocks"};
static void cudaReduceRows(const float* x, float* out, const Geometry& rows, long count, long len, int op) {
    int threadsPerRow = len >= 2048 ? BLOCK : 32;
    long rowsPerBlock = BLOCK / threadsPerRow;
    long grid = std::min((count + rowsPerBlock - 1) / rowsPerBlock, SMS * 32);
    emu_launch(std::max(1L, grid), 1, BLOCK, 0, [&] { reduce_rows_f32(x, out, rows, count, len, op, threadsPerRow); });
}
static void cudaReduce(int op, const View& x, const std::vector<bool>& reduce, const View& out) {
    if (!out.contiguous()) { std::printf("reduce: output not contiguous\n"); std::abort(); }
    std::vector<std::pair<long, long>> keptDims, redDims;
    for (size_t d = 0; d < x.shape.size(); d++) (reduce[d] ? redDims : keptDims).push_back({x.shape[d], x.strides[d]});
    std::stable_sort(redDims.begin(), redDims.end(), [](auto& a, auto& b) { return -a.second < -b.second; });
    auto geometry = [](const std::vector<std::pair<long, long>>& dims) {
        std::vector<int> s; std::vector<long> st;
        for (auto& e : dims) { s.push_back((int) e.first); st.push_back(e.second); }
        return geometryOf(s, {st});
    };
    Geometry kept = geometry(keptDims), red = geometry(redDims);
    long outputs = kept.numel, perOutput = red.numel;
    bool fewOutputs = outputs < 2 * SMS;
    bool redContiguous = red.rank == 1 && (red.stride[0][0] == 1 || red.shape[0] == 1);
    PlanKind kind; int splits = 1;
    if (redContiguous && !(fewOutputs && perOutput > (1 << 16))) kind = ROWS;
    else if (outputs >= 2048 && kept.stride[0][kept.rank - 1] == 1) kind = COLUMNS;
    else {
        kind = BLOCKS;
        if (fewOutputs && perOutput > (1 << 16)) {
            long wanted = (4L * SMS + outputs - 1) / outputs;
            splits = (int) std::max(1L, std::min(std::min(wanted, perOutput / 4096), 65535L));
        }
    }
    lastPath = std::string("reduce ") + planName[kind] + (splits > 1 ? " split " + std::to_string(splits) : "");
    const float* xa = x.addr(); float* oa = out.addr();
    if (kind == ROWS) { cudaReduceRows(xa, oa, kept, outputs, perOutput, op); return; }
    if (kind == COLUMNS) { emu_launch(gridFor(outputs, BLOCK), 1, BLOCK, 0, [&] { reduce_columns_f32(xa, oa, kept, red, op); }); return; }
    long grid = std::min(outputs, 65535L * 32);
    if (splits == 1) { emu_launch(grid, 1, BLOCK, 0, [&] { reduce_blocks_f32(xa, oa, kept, red, op, nullptr); }); return; }
    std::vector<float> partial(outputs * splits, NAN);
    emu_launch(grid, splits, BLOCK, 0, [&] { reduce_blocks_f32(xa, oa, kept, red, op, partial.data()); });
    Geometry rows = geometryOf({(int) outputs}, {{(long) splits}});
    cudaReduceRows(partial.data(), oa, rows, outputs, splits, op);
}

// ---------------- reference: ScalarMath / FloatKernels semantics
static float refRelu(float v) { return v != v ? v : (v > 0 ? v : 0.0f); } // Math.max(v, 0): −0 -> +0
static bool sameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (a != a && b != b); }

static float sample(std::mt19937& rng) {
    std::normal_distribution<double> N(0, 1);
    int c = rng() % 50;
    return c == 0 ? NAN : c == 1 ? -0.0f : c == 2 ? 0.0f : c == 3 ? INFINITY : c == 4 ? -INFINITY : (float) N(rng);
}

// conv2dNhwc's epilogue on y [n, h, w, c] (a pooled buffer at element `yOff`): y += bias viewed as
// [n, h, w, c] with strides (0, 0, 0, 1); y += z (when residual); y = relu(y) (when relu)
static void epilogueCase(int n, int h, int w, int c, long yOff, long biasOff, bool residual, bool relu, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<int> ys = {n, h, w, c};
    long numel = (long) n * h * w * c;
    Buf yb(numel + yOff + 8), zb(numel + yOff + 8), bb(c + biasOff + 8);
    View y = whole(yb, ys, yOff), z = whole(zb, ys, yOff);
    View bias{bb.p, biasOff, {c}, {1}};
    for (long i = 0; i < numel; i++) { y.addr()[i] = sample(rng); z.addr()[i] = sample(rng); }
    for (int i = 0; i < c; i++) bias.addr()[i] = sample(rng);
    std::vector<float> ref(numel);
    for (long i = 0; i < numel; i++) {
        float v = y.addr()[i] + bias.addr()[i % c];
        if (residual) v = v + z.addr()[i];
        ref[i] = relu ? refRelu(v) : v;
    }
    View rows{bias.base, bias.offset, ys, {0, 0, 0, bias.strides[0]}};
    std::string paths;
    cudaBinary(B_ADD, y, rows, y); paths += lastPath;
    if (residual) { cudaBinary(B_ADD, y, z, y); paths += ", " + lastPath; }
    if (relu) { cudaUnary(U_RELU, y, y); paths += ", " + lastPath; }
    int bad = 0;
    for (long i = 0; i < numel; i++) if (!sameBits(ref[i], y.addr()[i]) && bad++ < 3) std::printf("  y[%ld] ref %.9g gpu %.9g\n", i, ref[i], y.addr()[i]);
    for (long i = 0; i < yOff; i++) if (yb.p[i] != 99.0f) bad++;
    for (long i = yOff + numel; i < (long) yb.n; i++) if (yb.p[i] != 99.0f) bad++;
    CHECK(bad == 0, "epilogue %dx%dx%dx%d y+%ld bias+%ld (%s): %d bad", n, h, w, c, yOff, biasOff, paths.c_str(), bad);
    std::printf("epilogue %dx%dx%dx%d y+%ld bias+%ld residual %d relu %d: %s\n", n, h, w, c, yOff, biasOff, residual, relu, paths.c_str());
}

// NCHW per-channel bias [1, C, 1, 1] against [N, C, H, W] (and swapped: bias - y)
static void nchwBiasCase(int n, int c, int h, int w, int op, bool swap, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<int> xs = {n, c, h, w};
    long numel = (long) n * c * h * w;
    Buf xb(numel + 8), ob(numel + 8), bb(c + 8);
    View x = whole(xb, xs), out = whole(ob, xs), bias{bb.p, 0, xs, {0, 1, 0, 0}};
    for (long i = 0; i < numel; i++) x.addr()[i] = sample(rng);
    for (int i = 0; i < c; i++) bb.p[i] = sample(rng) + 0.5f;
    if (swap) cudaBinary(op, bias, x, out); else cudaBinary(op, x, bias, out);
    int bad = 0;
    for (long i = 0; i < numel; i++) {
        float bv = bb.p[(i / ((long) h * w)) % c], xv = x.addr()[i];
        float a = swap ? bv : xv, b = swap ? xv : bv;
        float r = op == B_ADD ? a + b : op == B_SUB ? a - b : op == B_MUL ? a * b : a / b;
        if (!sameBits(r, out.addr()[i]) && bad++ < 3) std::printf("  out[%ld] ref %.9g gpu %.9g\n", i, r, out.addr()[i]);
    }
    CHECK(bad == 0, "nchw bias %dx%dx%dx%d op %d swap %d (%s): %d bad", n, c, h, w, op, swap, lastPath.c_str(), bad);
    std::printf("nchw bias %dx%dx%dx%d op %d swap %d: %s\n", n, c, h, w, op, swap, lastPath.c_str());
}

// ResNetDeviceInference#features: x [n, cin, h, w] (NCHW, contiguous) into a pooled NHWC buffer
// [n, h, w, cpad] (stale values) through the view [n, cin, h, w] of strides (h·w·cpad, 1, w·cpad,
// cpad), the padding channels filled with 0 through [n, h, w, cpad − cin] at offset cin; and the
// end: an NHWC map y [n, h, w, c] back to NCHW through the view of strides (y0, y3, y1, y2).
static void stemCase(int n, int cin, int h, int w, unsigned seed) {
    std::mt19937 rng(seed);
    int cpad = (cin + 3) / 4 * 4; // STEM_CHANNEL_ALIGN
    long xn = (long) n * cin * h * w, bn = (long) n * h * w * cpad;
    Buf xb(xn), inb(bn + 8);
    for (long i = 0; i < xn; i++) xb.p[i] = sample(rng);
    for (long i = 0; i < bn + 8; i++) inb.p[i] = NAN; // a stale buffer
    View x = whole(xb, {n, cin, h, w});
    View in = whole(inb, {n, h, w, cpad});
    View dst{inb.p, in.offset, {n, cin, h, w}, {(long) h * w * cpad, 1, (long) w * cpad, cpad}};
    cudaCopy(x, dst);
    std::string paths = lastPath;
    if (cpad > cin) {
        View padding{inb.p, in.offset + cin, {n, h, w, cpad - cin}, {(long) h * w * cpad, (long) w * cpad, cpad, 1}};
        cudaFill(padding, 0);
        paths += ", " + lastPath;
    }
    int bad = 0;
    for (int b = 0; b < n; b++) for (int a = 0; a < h; a++) for (int q = 0; q < w; q++) for (int ch = 0; ch < cpad; ch++) {
        float e = ch < cin ? xb.p[(((long) b * cin + ch) * h + a) * w + q] : 0.0f;
        float g = inb.p[(((long) b * h + a) * w + q) * cpad + ch];
        if (!sameBits(e, g) || (ch >= cin && std::signbit(g))) bad++;
    }
    for (int i = 0; i < 8; i++) if (inb.p[bn + i] == inb.p[bn + i]) bad++;
    CHECK(bad == 0, "stem input %dx%dx%dx%d -> NHWC %d channels (%s): %d bad", n, cin, h, w, cpad, paths.c_str(), bad);
    // the training stem's Ops.concat(3, permuted NCHW view, zeros [n, h, w, cpad - cin])
    if (cpad > cin) {
        Buf cat(bn), zeros((long) n * h * w * (cpad - cin));
        for (size_t i = 0; i < zeros.n; i++) zeros.p[i] = 0;
        View permuted{xb.p, 0, {n, h, w, cin}, {(long) cin * h * w, (long) w, 1, (long) h * w}};
        View out = whole(cat, {n, h, w, cpad});
        cudaCopy(permuted, View{cat.p, 0, {n, h, w, cin}, out.strides});
        std::string p2 = lastPath;
        cudaCopy(whole(zeros, {n, h, w, cpad - cin}), View{cat.p, (long) cin, {n, h, w, cpad - cin}, out.strides});
        p2 += ", " + lastPath;
        int bad2 = 0;
        for (long i = 0; i < bn; i++) if (!sameBits(cat.p[i], inb.p[i])) bad2++;
        CHECK(bad2 == 0, "training stem concat %dx%dx%dx%d (%s): %d bad", n, cin, h, w, p2.c_str(), bad2);
        paths += "; concat " + p2;
    }
    // NHWC [n, h, w, cpad] -> NCHW through the permuted view
    Buf ob(bn + 8);
    View y = in;
    View nchw{y.base, y.offset, {n, cpad, h, w}, {y.strides[0], y.strides[3], y.strides[1], y.strides[2]}};
    cudaCopy(nchw, whole(ob, {n, cpad, h, w}));
    paths += "; out " + lastPath;
    bad = 0;
    for (int b = 0; b < n; b++) for (int ch = 0; ch < cpad; ch++) for (int a = 0; a < h * w; a++)
        if (!sameBits(ob.p[((long) b * cpad + ch) * h * w + a], inb.p[((long) b * h * w + a) * cpad + ch])) bad++;
    for (int i = 0; i < 8; i++) if (ob.p[bn + i] != 99.0f) bad++;
    CHECK(bad == 0, "NHWC -> NCHW %dx%dx%dx%d: %d bad", n, h, w, cpad, bad);
    std::printf("stem %dx%dx%dx%d -> %d channels: %s\n", n, cin, h, w, cpad, paths.c_str());
}

// CudaBackend#batchNormBackward in eval (frozen statistics), composed from binary ops and two sums
// over every axis but the channel's (CUDA runs it on NCHW only since batchnorm.cu took channels-last
// batch norm; the NHWC cases stay as more layouts for the reductions); against BatchNormKernels#backward (dβ = Σ dy, dγ = Σ dy·(x − μ)·invStd,
// dx = γ·invStd·dy), in double: dx to the bit (γ·invStd is one rounding either way), dγ and dβ to
// 1e-5 of Σ|term|
static void bnEvalBackwardCase(bool nhwc, int n, int c, int h, int w, unsigned seed) {
    std::mt19937 rng(seed); std::normal_distribution<double> N(0, 1);
    std::vector<int> s = nhwc ? std::vector<int>{n, h, w, c} : std::vector<int>{n, c, h, w};
    long numel = (long) n * c * h * w;
    Buf xb(numel), dyb(numel), dxb(numel + 8), tb(numel), pc(8 * (c + 4)), scaleb(c + 4);
    for (long i = 0; i < numel; i++) { xb.p[i] = (float) (N(rng) * 2 + 0.5); dyb.p[i] = (float) N(rng); }
    long cs = (c + 3) / 4 * 4; // per-channel vectors 16-byte aligned, as the allocator's
    float *gamma = pc.p, *mean = pc.p + cs, *inv = pc.p + 2 * cs, *dg = pc.p + 3 * cs, *db = pc.p + 4 * cs;
    for (int i = 0; i < c; i++) { gamma[i] = (float) N(rng); mean[i] = (float) (N(rng) * 0.3); inv[i] = (float) (0.5 + std::fabs(N(rng))); }
    int ca = nhwc ? 3 : 1;
    std::vector<long> perChannel(4, 0); perChannel[ca] = 1;
    std::vector<bool> overNhw(4, true); overNhw[ca] = false;
    std::vector<int> keep(4, 1); keep[ca] = c;
    std::vector<long> keepStrides = nhwc ? std::vector<long>{c, c, c, 1} : std::vector<long>{c, 1, 1, 1};
    View x = whole(xb, s), dy = whole(dyb, s), dx = whole(dxb, s), t = whole(tb, s);
    View meanV{mean, 0, s, perChannel}, invV{inv, 0, s, perChannel}, dgK{dg, 0, keep, keepStrides}, dbK{db, 0, keep, keepStrides};
    View scale{scaleb.p, 0, {c}, {1}}, scaleB{scaleb.p, 0, s, perChannel};
    std::string paths;
    cudaBinary(B_SUB, x, meanV, t); paths += lastPath;
    cudaBinary(B_MUL, t, invV, t); paths += ", " + lastPath;
    cudaBinary(B_MUL, t, dy, t); paths += ", " + lastPath;
    cudaReduce(R_SUM, t, overNhw, dgK); paths += ", " + lastPath;
    cudaReduce(R_SUM, dy, overNhw, dbK); paths += ", " + lastPath;
    cudaBinary(B_MUL, View{gamma, 0, {c}, {1}}, View{inv, 0, {c}, {1}}, scale); paths += ", " + lastPath;
    cudaBinary(B_MUL, dy, scaleB, dx); paths += ", " + lastPath;
    std::vector<double> sDy(c, 0), sDyXc(c, 0), aDy(c, 0), aDyXc(c, 0);
    int bad = 0;
    for (long i = 0; i < numel; i++) {
        int ch = nhwc ? (int) (i % c) : (int) ((i / ((long) h * w)) % c);
        double d = dyb.p[i], xc = (double) xb.p[i] - mean[ch];
        sDy[ch] += d; sDyXc[ch] += d * xc; aDy[ch] += std::fabs(d); aDyXc[ch] += std::fabs(d * xc * inv[ch]);
        float e = (float) ((double) gamma[ch] * inv[ch]) * dyb.p[i];
        if (!sameBits(e, dxb.p[i]) && bad++ < 3) std::printf("  dx[%ld] ref %.9g gpu %.9g\n", i, e, dxb.p[i]);
    }
    for (int ch = 0; ch < c; ch++) {
        double eg = sDyXc[ch] * inv[ch], eb = sDy[ch];
        if (!(std::fabs(eg - dg[ch]) <= 1e-5 * aDyXc[ch] + 1e-30) && bad++ < 6) std::printf("  dgamma[%d] ref %.9g gpu %.9g\n", ch, eg, dg[ch]);
        if (!(std::fabs(eb - db[ch]) <= 1e-5 * aDy[ch] + 1e-30) && bad++ < 6) std::printf("  dbeta[%d] ref %.9g gpu %.9g\n", ch, eb, db[ch]);
    }
    for (int i = 0; i < 8; i++) if (dxb.p[numel + i] != 99.0f) bad++;
    CHECK(bad == 0, "bn eval backward %s %dx%dx%dx%d (%s): %d bad", nhwc ? "NHWC" : "NCHW", n, c, h, w, paths.c_str(), bad);
    std::printf("bn eval backward %s n %d c %d %dx%d sms %ld: %s\n", nhwc ? "NHWC" : "NCHW", n, c, h, w, SMS, paths.c_str());
}

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // channels: 64 (float4 rows), 4 (the padded stem), 3, 6, 130 (an element index per value), 1 (a scalar)
    epilogueCase(2, 5, 7, 64, 0, 0, true, true, 1);
    epilogueCase(1, 3, 3, 4, 0, 0, false, true, 2);
    epilogueCase(3, 5, 5, 3, 0, 0, true, true, 3);   // odd count: the tail loops
    epilogueCase(2, 3, 5, 6, 0, 0, false, false, 4);
    epilogueCase(1, 4, 3, 130, 0, 0, true, true, 5);
    epilogueCase(2, 3, 3, 1, 0, 0, true, true, 6);
    epilogueCase(2, 4, 4, 64, 0, 1, true, true, 7);  // an unaligned bias: no float4 rows
    epilogueCase(1, 3, 3, 8, 1, 0, true, true, 8);   // an unaligned y: the strided kernels
    SMS = 1; // grids of at most 32 blocks: several rounds of every grid-stride loop
    epilogueCase(4, 28, 28, 64, 0, 0, true, true, 9);
    epilogueCase(2, 30, 31, 3, 0, 0, true, true, 9);
    nchwBiasCase(4, 32, 33, 33, B_MUL, false, 9);
    stemCase(2, 3, 100, 90, 9);
    SMS = 132;
    nchwBiasCase(2, 5, 4, 4, B_ADD, false, 10);
    nchwBiasCase(2, 5, 3, 3, B_MUL, false, 11);
    nchwBiasCase(3, 7, 1, 1, B_SUB, true, 12);
    nchwBiasCase(2, 3, 5, 7, B_DIV, true, 13);
    stemCase(2, 3, 7, 9, 14);
    stemCase(1, 1, 5, 5, 15);
    stemCase(2, 5, 6, 3, 16);
    stemCase(1, 4, 4, 6, 17);
    // eval batch-norm backward: the sums take every ReducePlan kind (blocks, blocks split in two
    // passes, columns at 2048+ channels, rows for a 1x1 map of 1 image) on NHWC and NCHW layouts
    bnEvalBackwardCase(true, 2, 64, 5, 7, 20);
    bnEvalBackwardCase(false, 2, 64, 5, 7, 21);
    bnEvalBackwardCase(true, 2, 2048, 2, 1, 22);
    bnEvalBackwardCase(true, 1, 6, 1, 1, 23);
    bnEvalBackwardCase(false, 3, 5, 3, 3, 24);
    SMS = 2;
    bnEvalBackwardCase(true, 2, 3, 190, 190, 25);  // 72,200 values per channel over 3 outputs: split blocks
    bnEvalBackwardCase(false, 2, 3, 190, 190, 26);
    SMS = 132;
    std::printf(failures ? "FAILURES: %d\n" : "ALL OK\n", failures);
    return failures != 0;
}
