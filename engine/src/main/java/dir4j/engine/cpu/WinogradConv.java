package dir4j.engine.cpu;

import dir4j.engine.cpu.NhwcConv.Activation;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Stride-1 3×3 convolutions of channels-last activations by Winograd's minimal filtering algorithm
 * F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016):
 * each 2×2 block of outputs comes from a 4×4 block of inputs as Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, so
 * a block costs 16 multiply-adds per input channel and output channel instead of 36 (2.25× fewer).
 *
 * <p>The transformed filters U = G g Gᵀ are packed once, as a 4×4 "kernel" of {@link NhwcConv}'s
 * packing ([output block][ξ][input channel][{@link NhwcConv#NR}]); per call the input tiles are
 * transformed into 16 planes V_ξ [tile][input channel] (adds only), each plane is multiplied by its
 * U_ξ with {@link NhwcConv#microKernel} (6 tiles × NR output channels a call, the same kernel and
 * depth chunks as the direct convolution), and the 16 products of each tile are transformed back,
 * with the bias, the residual add and the ReLU fused into the store as in {@link NhwcConv#forward}.
 *
 * <p>Tiles are processed in bands whose planes take at most {@link #BAND_FLOATS} floats, so the
 * working memory stays bounded at any image size. The result matches the direct convolution to
 * float rounding (the transforms add a few roundings of the inputs' and outputs' magnitude;
 * WinogradConvTest bounds it against a double-precision convolution). It pays where the direct
 * kernel is compute-bound: {@link #pays} says where.
 *
 * <p>{@link #backwardFilter} is the training's weight gradient of the same convolutions by the
 * transposed algorithm F(3×3, 2×2) (each 2×2 block of dy is the "filter"), on the same micro-kernel
 * with the tiles as its depth (checked by Conv2dKernelsTest against the definition).
 */
public final class WinogradConv {
    private static final VectorSpecies<Float> SPECIES = NhwcConv.SPECIES;
    private static final int MR = NhwcConv.MR;
    private static final int NR = NhwcConv.NR;
    private static final int NV = NhwcConv.NV;
    /** Transformed values per tile: a 4×4 block. */
    static final int XI = 16;
    /** Floats of a cache line: the gap between the 16 planes of V, and between the 16 products' sums. */
    private static final int LINE = 16;
    /**
     * Largest V (16 planes of a band of tiles), in floats: 4 MiB, the two cores' L2 here. Chosen in
     * a throwaway probe beside 1, 2 and 16 MiB (not in bench/RESULTS.md): 16 MiB made 64-channel
     * layers at 112×112 no faster than the direct kernel, and smaller bands re-read the transformed
     * weights more often. {@code -Ddir4j.winogradBand=N} sets it, for tuning runs on other machines.
     */
    static final long BAND_FLOATS = Long.getLong("dir4j.winogradBand", 1L << 20);
    /** Tile groups (of MR tiles) a task carries through all 16 products: its sums take 16·8·MR·NR floats. */
    static final int GROUPS_PER_TASK = 8;
    /** Fewest input channels for which {@link #pays} chooses this: 64, the smallest measured. */
    static final int MIN_CHANNELS = 64;
    /** Whether {@link #pays} may choose this at all ({@code -Ddir4j.winograd=false} turns it off). */
    static final boolean ENABLED = !"false".equalsIgnoreCase(System.getProperty("dir4j.winograd"));

    private WinogradConv() {}

    /** A 3×3 filter bank transformed (U = G g Gᵀ) and packed, with its bias and padding. */
    public static final class Weights {
        final NhwcConv.Weights u;
        final int pad;

        private Weights(NhwcConv.Weights u, int pad) {
            this.u = u;
            this.pad = pad;
        }

        /**
         * Transforms and packs {@code w} ([cout][cin][3][3], PyTorch's layout) and copies {@code bias}
         * (cout values) for a stride-1 convolution with {@code pad} zero pixels around the input.
         *
         * @throws IllegalArgumentException if a size or length is wrong
         */
        public static Weights pack(float[] w, float[] bias, int cout, int cin, int pad) {
            if (cout <= 0 || cin <= 0 || pad < 0) {
                throw new IllegalArgumentException("bad convolution cout=" + cout + " cin=" + cin + " pad=" + pad);
            }
            if (w.length != (long) cout * cin * 9 || bias.length != cout) {
                throw new IllegalArgumentException("weights hold " + w.length + " values and bias " + bias.length
                        + " for a " + cout + "x" + cin + "x3x3 convolution");
            }
            return fromDirect(NhwcConv.Weights.pack(w, bias, cout, cin, 3, 1, pad));
        }

        /**
         * The transform of a stride-1 3×3 already packed for {@link NhwcConv} (as training packs its
         * weights every step, flipped and transposed for backward-data): vectorised over the packing's
         * output channels, in parallel over its blocks, in float (the inference's weights too).
         */
        static Weights fromDirect(NhwcConv.Weights d) {
            return fromDirect(d, null);
        }

        /** {@link #fromDirect(NhwcConv.Weights)} into {@code into} when it is large enough (it is overwritten). */
        static Weights fromDirect(NhwcConv.Weights d, float[] into) {
            if (d.kernel != 3 || d.stride != 1) {
                throw new IllegalArgumentException("Winograd F(2x2, 3x3) takes a stride-1 3x3 convolution, not a "
                        + d.kernel + "x" + d.kernel + " with stride " + d.stride);
            }
            int ins = d.cin;
            int blocks = Sgemm.ceilDiv(d.cout, NR);
            float[] p = transformed(blocks, ins, d.cout, into);
            float[] src = d.packed;
            int tile = 16;
            int parts = Sgemm.ceilDiv(ins, tile);
            CpuThreads.parallelFor(blocks * parts, u -> {
                int ob = u / parts;
                int l1 = Math.min(ins, (u % parts + 1) * tile);
                for (int l = (u % parts) * tile; l < l1; l++) {
                    for (int c = 0; c < NR; c += SPECIES.length()) {
                        transformFilters(src, ob * 9 * ins * NR + l * NR + c, ins * NR, p,
                                ob * XI * ins * NR + l * NR + c, ins * NR);
                    }
                }
            });
            return new Weights(new NhwcConv.Weights(p, d.bias, ins, d.cout, 4, 1, 0), d.pad);
        }

        /**
         * The transform of a stride-1 3×3's NCHW weights w[cout][cin][3][3] at float offset off of seg
         * (with {@code flipTranspose} those of its backward-data: cin outputs, cout inputs, taps
         * reversed), as {@link #fromDirect} of their {@link NhwcConv.Weights#packFrom} but without
         * that packing: each task stages its tile of inputs for one block of outputs in a per-thread
         * array and transforms it from there. Into {@code into} when it is large enough.
         */
        static Weights fromNchw(MemorySegment seg, long off, int cout, int cin, int pad, boolean flipTranspose,
                float[] into) {
            int outs = flipTranspose ? cin : cout;
            int ins = flipTranspose ? cout : cin;
            Sgemm.checkExtent("weights", seg, off, 1, 0, (long) cout * cin * 9, 1);
            MemorySegment w = Sgemm.forWorkers(seg);
            int blocks = Sgemm.ceilDiv(outs, NR);
            float[] p = transformed(blocks, ins, outs, into);
            int tile = 16;
            int parts = Sgemm.ceilDiv(ins, tile);
            CpuThreads.parallelFor(blocks * parts, u -> {
                int ob = u / parts;
                int l0 = (u % parts) * tile;
                int l1 = Math.min(ins, l0 + tile);
                int tl = l1 - l0;
                int js = Math.min(NR, outs - ob * NR);
                // in the last block, lanes past the last output keep what an earlier tile left there:
                // they only reach output channels that are never stored
                float[] g = PanelPacking.scratch(STAGED, 9 * tile * NR);
                NhwcConv.Weights.packTileNchw(w, off, cin, 9, ob, js, l0, l1, flipTranspose, g, 0, tl);
                for (int l = l0; l < l1; l++) {
                    for (int c = 0; c < NR; c += SPECIES.length()) {
                        transformFilters(g, (l - l0) * NR + c, tl * NR, p, ob * XI * ins * NR + l * NR + c, ins * NR);
                    }
                }
            });
            return new Weights(new NhwcConv.Weights(p, new float[blocks * NR], ins, outs, 4, 1, 0), pad);
        }

        /** U's array for blocks × ins (outs in all): {@code into} when large enough, else a new one. */
        private static float[] transformed(int blocks, int ins, int outs, float[] into) {
            long floats = (long) blocks * XI * ins * NR;
            if (floats > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("transformed weights too large for one array: " + outs + "x"
                        + ins + "x3x3");
            }
            // every element is written by the transforms, so a recycled array needs no zeroing
            return into != null && into.length >= floats ? into : new float[(int) floats];
        }

        public int outChannels() {
            return u.cout;
        }

        public int inChannels() {
            return u.cin;
        }

        public int pad() {
            return pad;
        }

        /** Output side for an input side of {@code size} (stride 1, 3×3). */
        public int outSize(int size) {
            return size + 2 * pad - 2;
        }
    }

    /**
     * U = G g Gᵀ for a vector of filters: tap t (row-major over the 3×3) of every lane at
     * g[gi + t·gs], value ξ of U at u[ui + ξ·us], with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]].
     */
    static void transformFilters(float[] g, int gi, int gs, float[] u, int ui, int us) {
        VectorSpecies<Float> s = SPECIES;
        FloatVector half = FloatVector.broadcast(s, 0.5f);
        // G g, column by column (c): rows g0c, (g0c + g1c + g2c)/2, (g0c − g1c + g2c)/2, g2c
        FloatVector g00 = FloatVector.fromArray(s, g, gi);
        FloatVector g01 = FloatVector.fromArray(s, g, gi + gs);
        FloatVector g02 = FloatVector.fromArray(s, g, gi + 2 * gs);
        FloatVector g10 = FloatVector.fromArray(s, g, gi + 3 * gs);
        FloatVector g11 = FloatVector.fromArray(s, g, gi + 4 * gs);
        FloatVector g12 = FloatVector.fromArray(s, g, gi + 5 * gs);
        FloatVector g20 = FloatVector.fromArray(s, g, gi + 6 * gs);
        FloatVector g21 = FloatVector.fromArray(s, g, gi + 7 * gs);
        FloatVector g22 = FloatVector.fromArray(s, g, gi + 8 * gs);
        rowOfU(g00, g01, g02, half, u, ui, us);
        rowOfU(g00.add(g10).add(g20).mul(half), g01.add(g11).add(g21).mul(half), g02.add(g12).add(g22).mul(half), half,
                u, ui + 4 * us, us);
        rowOfU(g00.sub(g10).add(g20).mul(half), g01.sub(g11).add(g21).mul(half), g02.sub(g12).add(g22).mul(half), half,
                u, ui + 8 * us, us);
        rowOfU(g20, g21, g22, half, u, ui + 12 * us, us);
    }

    /** One row (a, b, c) of G g times Gᵀ: (a, (a + b + c)/2, (a − b + c)/2, c). */
    private static void rowOfU(FloatVector a, FloatVector b, FloatVector c, FloatVector half, float[] u, int ui,
            int us) {
        a.intoArray(u, ui);
        a.add(b).add(c).mul(half).intoArray(u, ui + us);
        a.sub(b).add(c).mul(half).intoArray(u, ui + 2 * us);
        c.intoArray(u, ui + 3 * us);
    }

    /**
     * Whether this beats {@link NhwcConv#forward} for a stride-1 3×3 convolution with {@code cin}
     * input channels: from {@link #MIN_CHANNELS}. bench/RESULTS.md has {@code NhwcConvBench} at
     * ResNet's four 3×3 sizes (64 to 512 channels, 56² to 7²). A throwaway probe (not in RESULTS)
     * also put 32 channels even, 16 slower, and outputs down to 4×4 faster. Only an output of one
     * tile (2×2) ran slower there, by ~10 %, which does not justify keeping both packings of the
     * weights. {@code -Ddir4j.winograd=false} makes it always false.
     */
    public static boolean pays(int cin) {
        return ENABLED && cin >= MIN_CHANNELS;
    }

    /**
     * {@link NhwcConv#forward} of weights packed for it this call (training packs them every step),
     * through this algorithm where it {@link #pays}: a stride-1 3×3 with enough input channels. The
     * transform of the packed weights costs about one pass over them (vectorised, parallel).
     */
    static void forwardPacked(Activation x, NhwcConv.Weights w, Activation out, Activation residual, boolean relu) {
        if (w.kernel == 3 && w.stride == 1 && pays(w.cin)) {
            // The transformed weights live in a per-thread array reused from call to call: a new one
            // each call (several MiB, humongous for G1) slowed the step's other passes by GC work.
            Weights u = Weights.fromDirect(w, TRAINING_WEIGHTS.get());
            TRAINING_WEIGHTS.set(u.u.packed);
            forward(x, u, out, residual, relu);
        } else {
            NhwcConv.forward(x, w, out, residual, relu);
        }
    }

    /**
     * {@link #forward} of NCHW weights (a training convolution's, {@link Weights#fromNchw}, with
     * {@code flipTranspose} its backward-data) into a per-thread array reused from call to call.
     */
    static void forwardNchw(Activation x, MemorySegment w, long wOff, int cout, int cin, int pad,
            boolean flipTranspose, Activation out) {
        Weights u = Weights.fromNchw(w, wOff, cout, cin, pad, flipTranspose, TRAINING_WEIGHTS.get());
        TRAINING_WEIGHTS.set(u.u.packed);
        forward(x, u, out, null, false);
    }

    /** {@link Weights#fromNchw}'s per-thread tile of staged weights. */
    private static final ThreadLocal<float[]> STAGED = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> TRAINING_WEIGHTS = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[0]);
    private static final ThreadLocal<float[]> PLANES = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * out = relu?(conv3x3(x, w) + bias [+ residual]) over out's interior (its padding ring is not
     * written), as {@link NhwcConv#forward} with a stride-1 3×3 of the same weights. x may have any
     * padding and either column layout; pixels outside x count as zero.
     *
     * @throws IllegalArgumentException if the channels or output sizes do not fit
     */
    public static void forward(Activation x, Weights w, Activation out, Activation residual, boolean relu) {
        x.requireUnsplit("the Winograd convolution");
        int cin = w.u.cin;
        if (x.channels() != cin) {
            throw new IllegalArgumentException("input has " + x.channels() + " channels; the convolution wants " + cin);
        }
        int oh = w.outSize(x.height());
        int ow = w.outSize(x.width());
        if (oh <= 0 || ow <= 0) {
            throw new IllegalArgumentException("a " + x.height() + "x" + x.width() + " input is too small for a 3x3"
                    + " convolution with pad " + w.pad);
        }
        check("output", out, x.batch(), oh, ow, w.u.cout);
        if (residual != null) {
            check("residual", residual, x.batch(), oh, ow, w.u.cout);
        }
        int th = (oh + 1) / 2;
        int tw = (ow + 1) / 2;
        long tiles = (long) x.batch() * th * tw;
        int bandTiles = (int) Math.min(tiles, Math.max(MR, BAND_FLOATS / ((long) XI * cin) / MR * MR));
        int bandPadded = Sgemm.ceilDiv(bandTiles, MR) * MR;
        float[] v = PLANES.get();
        if (v.length < (long) XI * (bandPadded * cin + LINE)) {
            v = new float[XI * (bandPadded * cin + LINE)];
            PLANES.set(v);
        }
        for (long b0 = 0; b0 < tiles; b0 += bandTiles) {
            int nb = (int) Math.min(bandTiles, tiles - b0);
            band(x, w, out, residual, relu, th, tw, oh, ow, b0, nb, v);
        }
    }

    private static void check(String what, Activation a, int batch, int h, int w, int c) {
        if (a.batch() != batch || a.height() != h || a.width() != w || a.channels() != c) {
            throw new IllegalArgumentException(what + " is " + a.batch() + "x" + a.height() + "x" + a.width() + "x"
                    + a.channels() + ", the convolution gives " + batch + "x" + h + "x" + w + "x" + c);
        }
    }

    /** Tiles [b0, b0 + nb) (numbered image by image, row by row): transform, multiply, transform back. */
    private static void band(Activation x, Weights w, Activation out, Activation residual, boolean relu, int th,
            int tw, int oh, int ow, long b0, int nb, float[] v) {
        int cin = w.u.cin;
        int groups = Sgemm.ceilDiv(nb, MR);
        // floats from one V_ξ to the next: a cache line more than the plane, so that the 16 planes of
        // a tile do not all fall in the same L1 sets (their sizes are often multiples of 4 KiB)
        int plane = groups * MR * cin + LINE;
        int per = 8;
        CpuThreads.parallelFor(Sgemm.ceilDiv(groups * MR, per), u -> {
            int t1 = Math.min(groups * MR, (u + 1) * per);
            for (int t = u * per; t < t1; t++) {
                if (t < nb) {
                    inputTile(x, w.pad, b0 + t, th, tw, v, t * cin, plane, NR);
                } else {
                    for (int xi = 0; xi < XI; xi++) {
                        java.util.Arrays.fill(v, xi * plane + t * cin, xi * plane + (t + 1) * cin, 0f);
                    }
                }
            }
        });
        int obs = Sgemm.ceilDiv(w.u.cout, NR);
        int run = Math.min(groups, GROUPS_PER_TASK);
        int threads = CpuThreads.threads();
        while (run > 1 && (long) obs * Sgemm.ceilDiv(groups, run) < 4L * threads) {
            run = Math.max(1, run / 2);
        }
        int runGroups = run;
        int runs = Sgemm.ceilDiv(groups, runGroups);
        int[] tapOff = new int[XI];
        for (int xi = 0; xi < XI; xi++) {
            tapOff[xi] = xi * plane;
        }
        int[][] depth = NhwcConv.depthChunks(1, cin, NhwcConv.KC);
        int wPer = XI * cin * NR;
        float[] packed = w.u.packed;
        CpuThreads.parallelFor(obs * runs, u -> {
            int ob = u / runs;
            int g0 = (u % runs) * runGroups;
            int g1 = Math.min(groups, g0 + runGroups);
            int span = (g1 - g0) * MR * NR + LINE;     // from one ξ's sums for the run to the next (see plane)
            float[] acc = ACC.get();
            if (acc.length < XI * (runGroups * MR * NR + LINE)) {
                acc = new float[XI * (runGroups * MR * NR + LINE)];
                ACC.set(acc);
            }
            for (int xi = 0; xi < XI; xi++) {
                for (int[] dc : depth) {
                    int wi = ob * wPer + (xi * cin + dc[2]) * NR;
                    for (int g = g0; g < g1; g++) {
                        NhwcConv.microKernel(v, g * MR * cin, cin, tapOff, xi, xi + 1, dc[2], dc[3], packed, wi, acc,
                                xi * span + (g - g0) * MR * NR, dc[2] > 0);
                    }
                }
            }
            int tEnd = Math.min(nb, g1 * MR);
            for (int t = g0 * MR; t < tEnd; t++) {
                outputTile(acc, (t - g0 * MR) * NR, span, b0 + t, th, tw, oh, ow, ob, w.u.bias, out, residual, relu);
            }
        });
    }

    /** Lanes 0, 2, 4, … of two vectors laid end to end, and lanes 1, 3, 5, …: a row's even and odd columns. */
    private static final FloatVector EVEN = FloatVector.zero(SPECIES).addIndex(2);
    private static final FloatVector ODD = EVEN.add(1f);
    private static final ThreadLocal<float[]> DY_ROWS = ThreadLocal.withInitial(() -> new float[0]);
    /** Tiles per task of the backward-filter's input transform, output channels per task of its dy transform. */
    private static final int TILE_RUN = 16;
    private static final int DY_RUN = 4;
    /** G's rows as coefficients of (g0, g1): G = [[1, 0], [½, ½], [½, −½], [0, −1]]. */
    private static final float[] G0 = {1f, 0.5f, 0.5f, 0f};
    private static final float[] G1 = {0f, 0.5f, -0.5f, -1f};
    private static final ThreadLocal<float[][]> FILTER_BUFFERS = ThreadLocal.withInitial(() -> new float[3][0]);

    /** The thread's buffer k of at least {@code floats} (contents undefined). */
    private static float[] filterBuffer(int k, long floats) {
        float[][] b = FILTER_BUFFERS.get();
        if (floats > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("Winograd backward-filter buffer of " + floats + " floats");
        }
        if (b[k].length < floats) {
            b[k] = new float[(int) floats];
        }
        return b[k];
    }

    /**
     * The weight gradient of a stride-1 3×3 convolution, dw[o][c][kh][kw] = Σ over images and output
     * pixels (y, x) of dy[o][y][x] · x[c][y + kh − pad][x + kw − pad], by Winograd's F(3×3, 2×2):
     * each 2×2 block of dy (the "filter") and the 4×4 block of x under it (the data) give
     * dw = Aᵀ[Σ_tiles (G dy Gᵀ) ⊙ (Bᵀ d B)]A, with G = [[1, 0], [½, ½], [½, −½], [0, −1]] and
     * Aᵀ = [[1, 1, 1, 0], [0, 1, −1, 0], [0, 1, 1, 1]] (the data transform Bᵀ is the forward's, whose
     * last row [0, 1, 0, −1] the sign of G's last row answers). Per ξ the sum over tiles is a product
     * (cout × tiles)·(tiles × cin) on {@link NhwcConv#microKernel}: 6 output channels × NR input
     * channels a call, the tiles its depth. Tiles run in bands of whole tile rows; the 16 sums
     * per (o, c) carry over the bands.
     *
     * <p>x is NCHW [batch, cin, h, w] at float offset xOff of xs; dy NCHW [batch, cout, h + 2·pad − 2,
     * w + 2·pad − 2] at dyOff of dys; dw [cout, cin, 3, 3] at dwOff of dws is overwritten.
     */
    static void backwardFilter(int batch, int cin, int h, int w, int cout, int pad, MemorySegment xs, long xOff,
            MemorySegment dys, long dyOff, MemorySegment dws, long dwOff) {
        int oh = h + 2 * pad - 2;
        int ow = w + 2 * pad - 2;
        if (oh <= 0 || ow <= 0 || batch <= 0) {
            throw new IllegalArgumentException("Winograd backward-filter needs a non-empty output, got batch " + batch
                    + " of " + oh + "x" + ow);
        }
        Activation x = Conv2dKernels.channelsLastCopy(xs, xOff, batch, cin, h, w, 0);
        try {
            backwardFilter(x, cout, pad, oh, ow, dys, dyOff, dws, dwOff);
        } finally {
            HeapBuffers.giveBack(x.data());
        }
    }

    /** The weight gradient above from x's channels-last copy (unpadded), for an oh × ow output. */
    private static void backwardFilter(Activation x, int cout, int pad, int oh, int ow, MemorySegment dys, long dyOff,
            MemorySegment dws, long dwOff) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        int batch = x.batch();
        int cin = x.channels();
        MemorySegment dy = Sgemm.forWorkers(dys);
        int th = (oh + 1) / 2;
        int tw = (ow + 1) / 2;
        int tileRows = batch * th;
        int oGroups = Sgemm.ceilDiv(cout, MR);
        int cBlocks = Sgemm.ceilDiv(cin, NR);
        // a band: whole rows of tiles whose U (16 × oGroups·MR × tiles) and V (16 × cBlocks·NR × tiles)
        // take at most BAND_FLOATS
        long perTile = (long) XI * (oGroups * MR + cBlocks * NR);
        int bandRows = (int) Math.max(1, Math.min(tileRows, BAND_FLOATS / (perTile * tw)));
        int maxTiles = bandRows * tw;
        int planeU = oGroups * MR * maxTiles + LINE;
        int planeV = cBlocks * NR * maxTiles + LINE;
        float[] u = filterBuffer(0, (long) XI * planeU);
        float[] v = filterBuffer(1, (long) XI * planeV);
        float[] m = filterBuffer(2, (long) cBlocks * XI * oGroups * MR * NR);
        int[] tapOff = new int[XI];
        for (int xi = 0; xi < XI; xi++) {
            tapOff[xi] = xi * planeU;
        }
        // tasks: a block of NR input channels × one ξ, each over all output-channel groups, so that a
        // depth chunk of V (NR × KC) serves every group from L1 and each task reads its U and V
        // planes once. (Tasks of one output-channel group over all 16 ξ re-read all of V per group
        // from L3, which bound them by its bandwidth: the two cores ran no faster than one.)
        for (int r0 = 0; r0 < tileRows; r0 += bandRows) {
            int rows = Math.min(bandRows, tileRows - r0);
            int tiles = rows * tw;
            int ps = tiles;                       // U row (one output channel) length in this band
            int blockStride = tiles * NR;         // V: one block of NR input channels
            int band0 = r0;
            boolean first = r0 == 0;
            if (cin % NR != 0) {
                // the last block's lanes past cin must hold zeros (their sums are thrown away)
                for (int xi = 0; xi < XI; xi++) {
                    int at = xi * planeV + (cBlocks - 1) * blockStride;
                    java.util.Arrays.fill(v, at, at + blockStride, 0f);
                }
            }
            for (int xi = 0; xi < XI; xi++) {
                java.util.Arrays.fill(u, xi * planeU + cout * ps, xi * planeU + oGroups * MR * ps, 0f);
            }
            // V from x, a run of tiles a task; U from dy (below)
            CpuThreads.parallelFor(Sgemm.ceilDiv(tiles, TILE_RUN), k -> {
                for (int t = k * TILE_RUN, end = Math.min(tiles, t + TILE_RUN); t < end; t++) {
                    inputTile(x, pad, (long) band0 * tw + t, th, tw, v, t * NR, planeV, blockStride);
                }
            });
            // a task: DY_RUN output channels over all the band's tile rows, so that each writes its 16
            // planes' runs of U in order (tasks of one tile row wrote short runs all over the planes)
            CpuThreads.parallelFor(Sgemm.ceilDiv(cout, DY_RUN), q -> {
                float[] two = DY_ROWS.get();
                if (two.length < 2 * ow) {
                    two = new float[2 * ow];
                    DY_ROWS.set(two);
                }
                for (int o = q * DY_RUN, oEnd = Math.min(cout, o + DY_RUN); o < oEnd; o++) {
                    for (int row = band0; row < band0 + rows; row++) {
                        int n = row / th;
                        int y = 2 * (row % th);
                        // the tile row's two dy rows, copied to the heap (vector reads of the segment itself
                        // made other kernels' segment accesses polymorphic: 2-4x slower passes elsewhere)
                        int pair = Math.min(2, oh - y);
                        MemorySegment.copy(dy, java.lang.foreign.ValueLayout.JAVA_FLOAT,
                                (dyOff + (((long) n * cout + o) * oh + y) * ow) * Float.BYTES, two, 0, pair * ow);
                        int uo = o * ps + (row - band0) * tw;
                        for (int j0 = 0; j0 < tw; j0 += vl) {
                            int x0 = 2 * j0;
                            FloatVector lo = dyRow(two, 0, x0, ow);
                            FloatVector hi = dyRow(two, 0, x0 + vl, ow);
                            FloatVector g00 = EVEN.selectFrom(lo, hi);
                            FloatVector g01 = ODD.selectFrom(lo, hi);
                            lo = pair == 2 ? dyRow(two, ow, x0, ow) : FloatVector.zero(SPECIES);
                            hi = pair == 2 ? dyRow(two, ow, x0 + vl, ow) : FloatVector.zero(SPECIES);
                            FloatVector g10 = EVEN.selectFrom(lo, hi);
                            FloatVector g11 = ODD.selectFrom(lo, hi);
                            VectorMask<Float> mask = j0 + vl <= tw ? null : SPECIES.indexInRange(j0, tw);
                            // G g: rows g0, (g0 + g1)/2, (g0 − g1)/2, −g1, then each row (a, b) times Gᵀ.
                            // One call site in a loop: four inlined copies of gRow passed C2's node
                            // cutoff, and the copies it did not inline boxed their vectors.
                            for (int r = 0; r < 4; r++) {
                                gRow(g00.mul(G0[r]).add(g10.mul(G1[r])), g01.mul(G0[r]).add(g11.mul(G1[r])), u,
                                        uo + j0 + 4 * r * planeU, planeU, mask);
                            }
                        }
                    }
                }
            });
            int[][] depth = NhwcConv.depthChunks(1, tiles, NhwcConv.KC);
            CpuThreads.parallelFor(cBlocks * XI, task -> {
                int cb = task / XI;
                int xi = task % XI;
                for (int[] dc : depth) {
                    int wi = xi * planeV + cb * blockStride + dc[2] * NR;
                    for (int g = 0; g < oGroups; g++) {
                        NhwcConv.microKernel(u, g * MR * ps, ps, tapOff, xi, xi + 1, dc[2], dc[3], v, wi, m,
                                ((cb * XI + xi) * oGroups + g) * MR * NR, !first || dc[2] > 0);
                    }
                }
            });
        }
        MemorySegment dwW = Sgemm.forWorkers(dws);
        CpuThreads.parallelFor(cout * cBlocks, q -> {
            int o = q / cBlocks;
            int cb = q % cBlocks;
            float[] tile = new float[9 * NR];
            for (int c = 0; c < NR; c += vl) {
                int base = ((cb * XI) * oGroups + o / MR) * MR * NR + (o % MR) * NR + c;
                int step = oGroups * MR * NR;    // from one ξ's sums to the next
                filterTransformBack(m, base, step, tile, c);
            }
            int cEnd = Math.min(NR, cin - cb * NR);
            for (int c = 0; c < cEnd; c++) {
                long at = dwOff + ((long) o * cin + cb * NR + c) * 9;
                for (int k = 0; k < 9; k++) {
                    dwW.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, at + k, tile[k * NR + c]);
                }
            }
        });
    }

    /** The vector of the dy row at rows[at …] from column x0 (zero past the row's end, at ow). */
    private static FloatVector dyRow(float[] rows, int at, int x0, int ow) {
        if (x0 >= ow) {
            return FloatVector.zero(SPECIES);
        }
        return x0 + SPECIES.length() <= ow ? FloatVector.fromArray(SPECIES, rows, at + x0)
                : FloatVector.fromArray(SPECIES, rows, at + x0, SPECIES.indexInRange(x0, ow));
    }

    /** One row (a, b) of G g times Gᵀ: (a, (a + b)/2, (a − b)/2, −b), at u[at + k·plane] for k = 0…3. */
    private static void gRow(FloatVector a, FloatVector b, float[] u, int at, int plane, VectorMask<Float> mask) {
        put(a, u, at, mask);
        put(a.add(b).mul(0.5f), u, at + plane, mask);
        put(a.sub(b).mul(0.5f), u, at + 2 * plane, mask);
        put(b.neg(), u, at + 3 * plane, mask);
    }

    /**
     * Aᵀ M A of the 16 sums at m[base + ξ·step] (a vector of input channels): the 3×3 gradient, tap k at
     * tile[k·NR + c …]. Aᵀ = [[1, 1, 1, 0], [0, 1, −1, 0], [0, 1, 1, 1]], rows of M first.
     */
    private static void filterTransformBack(float[] m, int base, int step, float[] tile, int c) {
        VectorSpecies<Float> s = SPECIES;
        // row r of M → (m0 + m1 + m2, m1 − m2, m1 + m2 + m3) = (p_r, q_r, w_r)
        FloatVector m0 = FloatVector.fromArray(s, m, base);
        FloatVector m1 = FloatVector.fromArray(s, m, base + step);
        FloatVector m2 = FloatVector.fromArray(s, m, base + 2 * step);
        FloatVector m3 = FloatVector.fromArray(s, m, base + 3 * step);
        FloatVector p0 = m0.add(m1).add(m2);
        FloatVector q0 = m1.sub(m2);
        FloatVector w0 = m1.add(m2).add(m3);
        m0 = FloatVector.fromArray(s, m, base + 4 * step);
        m1 = FloatVector.fromArray(s, m, base + 5 * step);
        m2 = FloatVector.fromArray(s, m, base + 6 * step);
        m3 = FloatVector.fromArray(s, m, base + 7 * step);
        FloatVector p1 = m0.add(m1).add(m2);
        FloatVector q1 = m1.sub(m2);
        FloatVector w1 = m1.add(m2).add(m3);
        m0 = FloatVector.fromArray(s, m, base + 8 * step);
        m1 = FloatVector.fromArray(s, m, base + 9 * step);
        m2 = FloatVector.fromArray(s, m, base + 10 * step);
        m3 = FloatVector.fromArray(s, m, base + 11 * step);
        FloatVector p2 = m0.add(m1).add(m2);
        FloatVector q2 = m1.sub(m2);
        FloatVector w2 = m1.add(m2).add(m3);
        m0 = FloatVector.fromArray(s, m, base + 12 * step);
        m1 = FloatVector.fromArray(s, m, base + 13 * step);
        m2 = FloatVector.fromArray(s, m, base + 14 * step);
        m3 = FloatVector.fromArray(s, m, base + 15 * step);
        FloatVector p3 = m0.add(m1).add(m2);
        FloatVector q3 = m1.sub(m2);
        FloatVector w3 = m1.add(m2).add(m3);
        // then down the columns: tap (kh, kw) with kw = 0 from p, 1 from q, 2 from w
        p0.add(p1).add(p2).intoArray(tile, c);
        q0.add(q1).add(q2).intoArray(tile, NR + c);
        w0.add(w1).add(w2).intoArray(tile, 2 * NR + c);
        p1.sub(p2).intoArray(tile, 3 * NR + c);
        q1.sub(q2).intoArray(tile, 4 * NR + c);
        w1.sub(w2).intoArray(tile, 5 * NR + c);
        p1.add(p2).add(p3).intoArray(tile, 6 * NR + c);
        q1.add(q2).add(q3).intoArray(tile, 7 * NR + c);
        w1.add(w2).add(w3).intoArray(tile, 8 * NR + c);
    }

    /**
     * V_ξ[t] = (Bᵀ d B)_ξ of tile {@code tile}'s 4×4 input block d, for every channel c, at
     * v[vi + ξ·plane + (c / NR)·blockStride + c % NR] (blockStride NR: channels contiguous, as the
     * forward's planes; the backward-filter's keep each block of NR channels apart).
     */
    private static void inputTile(Activation x, int pad, long tile, int th, int tw, float[] v, int vi, int plane,
            int blockStride) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        int perImage = th * tw;
        int n = (int) (tile / perImage);
        int rem = (int) (tile % perImage);
        int y0 = 2 * (rem / tw) - pad;
        int x0 = 2 * (rem % tw) - pad;
        int cin = x.channels();
        float[] xd = x.data();
        // where each of the 16 input pixels lies, or -1 outside the image
        int[] at = new int[XI];
        for (int a = 0; a < 4; a++) {
            for (int b = 0; b < 4; b++) {
                int yy = y0 + a;
                int xx = x0 + b;
                at[4 * a + b] = yy >= 0 && yy < x.height() && xx >= 0 && xx < x.width() ? x.index(n, yy, xx) : -1;
            }
        }
        for (int c = 0; c < cin; c += vl) {
            VectorMask<Float> m = c + vl <= cin ? null : s.indexInRange(c, cin);
            int co = vi + (c / NR) * blockStride + c % NR;
            // Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]: first down each of the
            // four columns (rows of Bᵀ d), then along each row ((Bᵀ d) B). Written out, so that no
            // vector is kept in an array (which would box it).
            for (int b = 0; b < 4; b++) {
                FloatVector d0 = load(xd, at[b], c, m);
                FloatVector d1 = load(xd, at[4 + b], c, m);
                FloatVector d2 = load(xd, at[8 + b], c, m);
                FloatVector d3 = load(xd, at[12 + b], c, m);
                // column b of Bᵀ d, parked in V's slots of row 0 (ξ = b), 1 (4 + b), 2, 3
                put(d0.sub(d2), v, co + b * plane, m);
                put(d1.add(d2), v, co + (4 + b) * plane, m);
                put(d2.sub(d1), v, co + (8 + b) * plane, m);
                put(d1.sub(d3), v, co + (12 + b) * plane, m);
            }
            for (int a = 0; a < 4; a++) {
                int r = co + 4 * a * plane;
                FloatVector s0 = load(v, r, 0, m);
                FloatVector s1 = load(v, r + plane, 0, m);
                FloatVector s2 = load(v, r + 2 * plane, 0, m);
                FloatVector s3 = load(v, r + 3 * plane, 0, m);
                put(s0.sub(s2), v, r, m);
                put(s1.add(s2), v, r + plane, m);
                put(s2.sub(s1), v, r + 2 * plane, m);
                put(s1.sub(s3), v, r + 3 * plane, m);
            }
        }
    }

    /** a[i + c …] under m (all lanes when null), or zero where i is -1 (a pixel outside the image). */
    private static FloatVector load(float[] a, int i, int c, VectorMask<Float> m) {
        if (i < 0) {
            return FloatVector.zero(SPECIES);
        }
        return m == null ? FloatVector.fromArray(SPECIES, a, i + c) : FloatVector.fromArray(SPECIES, a, i + c, m);
    }

    private static void put(FloatVector a, float[] v, int i, VectorMask<Float> m) {
        if (m == null) {
            a.intoArray(v, i);
        } else {
            a.intoArray(v, i, m);
        }
    }

    /**
     * Y = Aᵀ M A of one tile (its 16 products at acc[ai + ξ·span], NR channels of output block ob),
     * + bias [+ residual], ReLU, into the tile's 2×2 output pixels that lie inside out.
     */
    private static void outputTile(float[] acc, int ai, int span, long tile, int th, int tw, int oh, int ow, int ob,
            float[] bias, Activation out, Activation residual, boolean relu) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        int perImage = th * tw;
        int n = (int) (tile / perImage);
        int rem = (int) (tile % perImage);
        int y0 = 2 * (rem / tw);
        int x0 = 2 * (rem % tw);
        int cout = out.channels();
        float[] od = out.data();
        float[] rd = residual == null ? null : residual.data();
        for (int vv = 0; vv < NV; vv++) {
            int c = ob * NR + vv * vl;
            if (c >= cout) {
                return;
            }
            VectorMask<Float> mask = c + vl <= cout ? null : s.indexInRange(c, cout);
            // Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]: along each row r of M (t0, t1), then down the columns
            int base = ai + vv * vl;
            FloatVector m0 = FloatVector.fromArray(s, acc, base);
            FloatVector m1 = FloatVector.fromArray(s, acc, base + span);
            FloatVector m2 = FloatVector.fromArray(s, acc, base + 2 * span);
            FloatVector m3 = FloatVector.fromArray(s, acc, base + 3 * span);
            FloatVector a0 = m0.add(m1).add(m2);
            FloatVector b0 = m1.sub(m2).sub(m3);
            m0 = FloatVector.fromArray(s, acc, base + 4 * span);
            m1 = FloatVector.fromArray(s, acc, base + 5 * span);
            m2 = FloatVector.fromArray(s, acc, base + 6 * span);
            m3 = FloatVector.fromArray(s, acc, base + 7 * span);
            FloatVector a1 = m0.add(m1).add(m2);
            FloatVector b1 = m1.sub(m2).sub(m3);
            m0 = FloatVector.fromArray(s, acc, base + 8 * span);
            m1 = FloatVector.fromArray(s, acc, base + 9 * span);
            m2 = FloatVector.fromArray(s, acc, base + 10 * span);
            m3 = FloatVector.fromArray(s, acc, base + 11 * span);
            FloatVector a2 = m0.add(m1).add(m2);
            FloatVector b2 = m1.sub(m2).sub(m3);
            m0 = FloatVector.fromArray(s, acc, base + 12 * span);
            m1 = FloatVector.fromArray(s, acc, base + 13 * span);
            m2 = FloatVector.fromArray(s, acc, base + 14 * span);
            m3 = FloatVector.fromArray(s, acc, base + 15 * span);
            FloatVector a3 = m0.add(m1).add(m2);
            FloatVector b3 = m1.sub(m2).sub(m3);
            FloatVector bv = FloatVector.fromArray(s, bias, c);
            FloatVector y00 = a0.add(a1).add(a2);
            FloatVector y01 = b0.add(b1).add(b2);
            FloatVector y10 = a1.sub(a2).sub(a3);
            FloatVector y11 = b1.sub(b2).sub(b3);
            store(y00, bv, n, y0, x0, c, oh, ow, out, od, residual, rd, relu, mask);
            store(y01, bv, n, y0, x0 + 1, c, oh, ow, out, od, residual, rd, relu, mask);
            store(y10, bv, n, y0 + 1, x0, c, oh, ow, out, od, residual, rd, relu, mask);
            store(y11, bv, n, y0 + 1, x0 + 1, c, oh, ow, out, od, residual, rd, relu, mask);
        }
    }

    private static void store(FloatVector y, FloatVector bias, int n, int oy, int ox, int c, int oh, int ow,
            Activation out, float[] od, Activation residual, float[] rd, boolean relu, VectorMask<Float> mask) {
        if (oy >= oh || ox >= ow) {
            return;
        }
        FloatVector a = y.add(bias);
        int oi = out.index(n, oy, ox) + c;
        if (mask == null) {
            if (rd != null) {
                a = a.add(FloatVector.fromArray(SPECIES, rd, residual.index(n, oy, ox) + c));
            }
            if (relu) {
                a = a.max(0f);
            }
            a.intoArray(od, oi);
        } else {
            if (rd != null) {
                a = a.add(FloatVector.fromArray(SPECIES, rd, residual.index(n, oy, ox) + c, mask));
            }
            if (relu) {
                a = a.max(0f);
            }
            a.intoArray(od, oi, mask);
        }
    }
}
