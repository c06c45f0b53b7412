package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct convolutions on channels-last (NHWC) activations for inference, with the bias, a residual
 * and the ReLU fused into the store: the kernels of {@code dir4j.nn.resnet.ResNetInference}.
 *
 * <p>Nothing is packed per call. The activation is its own packed operand: a tile of {@link #MR}
 * output pixels reads, for each kernel tap, {@code MR} runs of input channels that lie at a fixed
 * distance from each other ({@code ps} floats), and the micro-kernel broadcasts them against
 * {@code NR} output channels of the weights, packed once as {@code [NR-block][tap][cin][NR]}. The
 * reduction (taps × input channels) runs in depth chunks of about {@link #KC} rows, so that a
 * chunk's weights stay in L1 over a task's tiles; the sums stay in 24 vector registers within a
 * chunk, and the last chunk's store is the epilogue (bias, optional residual, optional ReLU, into
 * an optionally zero-padded output).
 *
 * <p>Tiling: the tile is {@code MR} consecutive positions of the output laid out on the input's
 * padded row length (the "implicit padding" layout: position q = oh·Wp + ow reads input
 * q + kh·Wp + kw for tap (kh, kw)), so tiles run across rows and only positions with ow ≥ OW are
 * computed and thrown away. A convolution with stride s &gt; 1 first splits its input into the s×s
 * stride phases (pixel (s·i + a, s·j + b) to phase (a, b)), over which it is a stride-1 one with a
 * tap offset per phase; an input the previous layer already stored split
 * ({@link Activation#phaseStride}) is read in place. bench: {@code NhwcConvBench} (JMH, against the
 * im2col + SGEMM path on ResNet's batch-1 shapes) and {@code ResNetForwardBench.forwardCompiled}.
 *
 * <p>Activations are heap arrays (the micro-kernel is fastest on them, see {@link Sgemm}) with
 * {@link Activation#SLACK_PIXELS} pixels of slack at the end, which the last tiles may read.
 */
public final class NhwcConv {
    static final VectorSpecies<Float> SPECIES = CpuVectors.FLOAT;
    /** Output pixels per tile. */
    public static final int MR = 6;
    /** Vectors of output channels per tile. */
    static final int NV = 4;
    /** Output channels per tile (four vectors: 64 with AVX-512). */
    public static final int NR = NV * SPECIES.length();

    private NhwcConv() {}

    /**
     * A batch of channels-last images in a heap array: image n, row y, column x, channel c at
     * {@code n·imageStride() + ((y + pad)·paddedWidth() + x + pad)·channels + c}; the ring of
     * {@code pad} pixels around each image is zero (it is the next convolution's zero padding).
     * With {@code sharedColumns} a row's right padding is the next row's left padding (rows are
     * {@code width + pad} long, not {@code width + 2·pad}): a stride-1 convolution then computes
     * and throws away {@code pad} positions a row instead of {@code 2·pad} (14 → 7 % at 14×14).
     * Only stride-1 convolutions read such an activation.
     *
     * <p>With {@code phaseStride} s &gt; 1 the padded image is stored split into its s×s stride
     * phases (padded pixel (s·i + a, s·j + b) at row i, column j of phase (a, b), each phase
     * {@link #phaseRows} × {@link #phaseColumns}, the phases one after the other): the layout a
     * stride-s convolution with this padding reads without splitting its input first. Only
     * {@link NhwcConv#forward} writes such an activation (its store goes through {@link #index}) and
     * only its stride-s convolutions with the same padding read one; the other operations refuse it.
     */
    public record Activation(float[] data, int batch, int height, int width, int channels, int pad,
                             boolean sharedColumns, int phaseStride) {
        /** Pixels of slack after the last image: the largest over-read of a tile, with margin. */
        public static final int SLACK_PIXELS = 32;

        public Activation {
            if (phaseStride < 1 || phaseStride > 1 && sharedColumns) {
                throw new IllegalArgumentException("phase stride " + phaseStride + (sharedColumns
                        ? " with shared columns" : "") + ": a stride of 1 or more, and shared columns only unsplit");
            }
        }

        /** An activation without stride phases; see the class comment for {@code sharedColumns}. */
        public Activation(float[] data, int batch, int height, int width, int channels, int pad,
                boolean sharedColumns) {
            this(data, batch, height, width, channels, pad, sharedColumns, 1);
        }

        /** An activation with a full padding ring. */
        public Activation(float[] data, int batch, int height, int width, int channels, int pad) {
            this(data, batch, height, width, channels, pad, false);
        }

        /** A zeroed activation with a full padding ring. */
        public static Activation allocate(int batch, int height, int width, int channels, int pad) {
            return allocate(batch, height, width, channels, pad, false);
        }

        /** A zeroed activation; see the class comment for {@code sharedColumns}. */
        public static Activation allocate(int batch, int height, int width, int channels, int pad,
                boolean sharedColumns) {
            return allocate(batch, height, width, channels, pad, sharedColumns, 1);
        }

        /** A zeroed activation; see the class comment for {@code sharedColumns} and {@code phaseStride}. */
        public static Activation allocate(int batch, int height, int width, int channels, int pad,
                boolean sharedColumns, int phaseStride) {
            long floats = floats(batch, height, width, channels, pad, sharedColumns, phaseStride);
            if (floats > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("channels-last activation " + batch + "x" + height + "x" + width
                        + "x" + channels + " (pad " + pad + ") is over 2^31 floats: run a smaller batch");
            }
            return new Activation(new float[(int) floats], batch, height, width, channels, pad, sharedColumns,
                    phaseStride);
        }

        /** The floats an activation of this geometry holds (its array's length), slack included. */
        public static long floats(int batch, int height, int width, int channels, int pad, boolean sharedColumns) {
            return floats(batch, height, width, channels, pad, sharedColumns, 1);
        }

        /** The floats an activation of this geometry holds (its array's length), slack included. */
        public static long floats(int batch, int height, int width, int channels, int pad, boolean sharedColumns,
                int phaseStride) {
            long s = phaseStride;
            long rows = (height + 2L * pad + s - 1) / s;
            long cols = (width + (sharedColumns ? 1L : 2L) * pad + s - 1) / s;
            return (long) batch * s * s * rows * cols * channels + (long) SLACK_PIXELS * channels;
        }

        public int paddedHeight() {
            return height + 2 * pad;
        }

        public int paddedWidth() {
            return width + (sharedColumns ? 1 : 2) * pad;
        }

        /** Rows of one stride phase (the padded height when unsplit). */
        public int phaseRows() {
            return (paddedHeight() + phaseStride - 1) / phaseStride;
        }

        /** Columns of one stride phase (the padded width when unsplit). */
        public int phaseColumns() {
            return (paddedWidth() + phaseStride - 1) / phaseStride;
        }

        public int imageStride() {
            // no division on the unsplit path: index() runs in the max pool's and the stores' loops
            return phaseStride == 1 ? paddedHeight() * paddedWidth() * channels
                    : phaseStride * phaseStride * phaseRows() * phaseColumns() * channels;
        }

        /** Index of channel 0 of pixel (y, x) of image n. */
        public int index(int n, int y, int x) {
            return phaseStride == 1 ? n * imageStride() + ((y + pad) * paddedWidth() + x + pad) * channels
                    : phasedIndex(n, y, x);
        }

        /** {@link #index} in an activation split into stride phases (kept apart: index stays small). */
        private int phasedIndex(int n, int y, int x) {
            int s = phaseStride;
            int yp = y + pad;
            int xp = x + pad;
            return n * imageStride() + (((yp % s) * s + xp % s) * phaseRows() * phaseColumns()
                    + (yp / s) * phaseColumns() + xp / s) * channels;
        }

        /** Refuses an activation split into stride phases, for an operation that reads rows. */
        void requireUnsplit(String operation) {
            if (phaseStride != 1) {
                throw new IllegalArgumentException(operation + " reads unsplit activations, not one split into "
                        + phaseStride + "x" + phaseStride + " stride phases");
            }
        }
    }

    /**
     * Convolution weights with their bias, packed for the micro-kernel. The weights are in PyTorch's
     * layout {@code [cout][cin][k][k]}; the bias has {@code cout} values (a folded batch norm).
     */
    public static final class Weights {
        final float[] packed;
        final float[] bias;
        final int cin;
        final int cout;
        final int kernel;
        final int stride;
        final int pad;

        Weights(float[] packed, float[] bias, int cin, int cout, int kernel, int stride, int pad) {
            this.packed = packed;
            this.bias = bias;
            this.cin = cin;
            this.cout = cout;
            this.kernel = kernel;
            this.stride = stride;
            this.pad = pad;
        }

        /**
         * Packs {@code w} ([cout][cin][kernel][kernel]) and copies {@code bias}.
         *
         * Output channels are padded with zero weights to a multiple of {@link #NR} (the tile width);
         * the padding is computed and never stored.
         *
         * @throws IllegalArgumentException if a size or length is wrong
         */
        public static Weights pack(float[] w, float[] bias, int cout, int cin, int kernel, int stride, int pad) {
            if (cout <= 0 || cin <= 0 || kernel <= 0 || stride <= 0 || pad < 0) {
                throw new IllegalArgumentException("bad convolution cout=" + cout + " cin=" + cin + " kernel="
                        + kernel + " stride=" + stride + " pad=" + pad);
            }
            int taps = kernel * kernel;
            if (w.length != cout * cin * taps || bias.length != cout) {
                throw new IllegalArgumentException("weights hold " + w.length + " values and bias " + bias.length
                        + " for a " + cout + "x" + cin + "x" + kernel + "x" + kernel + " convolution");
            }
            // Through a native copy: packFrom also packs training weights from tensors every step, and
            // a heap segment among its callers would make its compiled accesses polymorphic.
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                MemorySegment seg = arena.allocate((long) w.length * Float.BYTES, 64);
                MemorySegment.copy(w, 0, seg, java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, w.length);
                Weights p = packFrom(seg, 0, cout, cin, kernel, stride, pad, false);
                return new Weights(p.packed, java.util.Arrays.copyOf(bias, p.bias.length), cin, cout, kernel, stride,
                        pad);
            }
        }

        /**
         * Packs the weights of a training convolution straight from a tensor's memory, in parallel
         * over the blocks of output channels, with zero bias: {@code w} [cout][cin][k][k] float32 at
         * float offset {@code off} of {@code seg}. With {@code flipTranspose} the packed convolution
         * is the backward-data one of w: cin output channels, cout input channels, the taps
         * reversed (w'[ci][co][a][b] = w[co][ci][k-1-a][k-1-b]).
         */
        static Weights packFrom(MemorySegment seg, long off, int cout, int cin, int kernel, int stride, int pad,
                boolean flipTranspose) {
            return packFrom(seg, off, cout, cin, kernel, stride, pad, flipTranspose, false);
        }

        /**
         * {@link #packFrom(MemorySegment, long, int, int, int, int, int, boolean)} of weights in either
         * layout: with {@code channelsLast} w is [cout][k][k][cin] (a channels-last convolution's),
         * else [cout][cin][k][k].
         */
        static Weights packFrom(MemorySegment seg, long off, int cout, int cin, int kernel, int stride, int pad,
                boolean flipTranspose, boolean channelsLast) {
            int taps = kernel * kernel;
            int outs = flipTranspose ? cin : cout;
            int ins = flipTranspose ? cout : cin;
            int blocks = Sgemm.ceilDiv(outs, NR);
            long floats = (long) blocks * NR * ins * taps;
            if (floats > Integer.MAX_VALUE - 16) {
                throw new IllegalArgumentException("convolution weights too large for one packed array: " + cout + "x"
                        + cin + "x" + kernel + "x" + kernel);
            }
            Sgemm.checkExtent("weights", seg, off, 1, 0, (long) cout * cin * taps, 1);
            MemorySegment w = Sgemm.forWorkers(seg);
            float[] p = new float[(int) floats];
            // Read in the source's order (a filter row's taps are contiguous) a tile of 16 input
            // channels at a time, so that the tile's writes (16 x NR x taps floats) stay in L1.
            int tile = 16;
            CpuThreads.parallelFor(blocks * Sgemm.ceilDiv(ins, tile), u -> {
                int ob = u / Sgemm.ceilDiv(ins, tile);
                int l0 = (u % Sgemm.ceilDiv(ins, tile)) * tile;
                int l1 = Math.min(ins, l0 + tile);
                int base = ob * NR * ins * taps;
                int js = Math.min(NR, outs - ob * NR);
                if (!channelsLast) {
                    packTileNchw(w, off, cin, taps, ob, js, l0, l1, flipTranspose, p, base + l0 * NR, ins);
                    return;
                }
                if (flipTranspose) {
                    // flipped: the packed (output o, input l) is the weight's (co = l, ci = o), and
                    // the block's outputs o are contiguous in w for each (l, tap)
                    for (int l = l0; l < l1; l++) {
                        for (int t = 0; t < taps; t++) {
                            long at = off + ((long) l * taps + (taps - 1 - t)) * cin + (long) ob * NR;
                            MemorySegment.copy(w, ValueLayout.JAVA_FLOAT, at * Float.BYTES, p,
                                    base + (t * ins + l) * NR, js);
                        }
                    }
                    return;
                }
                // w[co][tap][ci]: the tile's input channels are contiguous for each (output, tap)
                int tl = l1 - l0;
                float[] block = PanelPacking.staging(js * taps * tl);
                for (int j = 0; j < js; j++) {
                    for (int t = 0; t < taps; t++) {
                        long at = off + ((long) (ob * NR + j) * taps + t) * cin + l0;
                        MemorySegment.copy(w, ValueLayout.JAVA_FLOAT, at * Float.BYTES, block, (j * taps + t) * tl, tl);
                    }
                }
                for (int t = 0; t < taps; t++) {
                    PanelPacking.transpose(block, t * tl, taps * tl, js, tl, p, base + (t * ins + l0) * NR, NR);
                }
            });
            return new Weights(p, new float[blocks * NR], ins, outs, kernel, stride, pad);
        }

        /**
         * One tile of {@link #packFrom} from NCHW weights w[co][ci][k][k]: inputs [l0, l1) of output
         * block ob (js outputs), the packed (tap t, input l, output j) at
         * p[base + (t·lStride + l − l0)·NR + j] (lanes past js are not written). The runs the weights
         * hold contiguously (an output's taps over the tile's inputs; flipped, the block's outputs'
         * taps for one input) are staged whole and transposed into place by vector gathers
         * ({@link PanelPacking#transpose}); element by element this took 13 % of layer3's 3×3
         * forward (bench/RESULTS.md, session 13).
         */
        static void packTileNchw(MemorySegment w, long off, int cin, int taps, int ob, int js, int l0, int l1,
                boolean flipTranspose, float[] p, int base, int lStride) {
            if (!flipTranspose) {
                // output o = ob·NR + j, input l: w[o][l][t], the tile's (l, t) one run per output
                int span = (l1 - l0) * taps;
                float[] block = PanelPacking.staging(js * span);
                for (int j = 0; j < js; j++) {
                    long at = off + ((long) (ob * NR + j) * cin + l0) * taps;
                    MemorySegment.copy(w, ValueLayout.JAVA_FLOAT, at * Float.BYTES, block, j * span, span);
                }
                for (int l = l0; l < l1; l++) {
                    PanelPacking.transpose(block, (l - l0) * taps, span, js, taps, p, base + (l - l0) * NR,
                            lStride * NR);
                }
                return;
            }
            // flipped: output o = ci = ob·NR + j, input l = co: w[l][o][t], the block's (j, t) one run
            // per input; tap t of the packed filter is tap taps−1−t of w, so rows go backwards
            float[] block = PanelPacking.staging(js * taps);
            for (int l = l0; l < l1; l++) {
                long at = off + ((long) l * cin + ob * NR) * taps;
                MemorySegment.copy(w, ValueLayout.JAVA_FLOAT, at * Float.BYTES, block, 0, js * taps);
                PanelPacking.transpose(block, 0, taps, js, taps, p, base + ((taps - 1) * lStride + l - l0) * NR,
                        -lStride * NR);
            }
        }

        public int outChannels() {
            return cout;
        }

        public int inChannels() {
            return cin;
        }

        public int kernel() {
            return kernel;
        }

        public int stride() {
            return stride;
        }

        public int pad() {
            return pad;
        }

        /** Output size along a side of {@code size} input pixels. */
        public int outSize(int size) {
            return (size + 2 * pad - kernel) / stride + 1;
        }
    }

    /**
     * out = relu?(conv(x, w) + bias [+ residual]). x must carry at least the convolution's padding
     * (its zero ring is the padding); out and residual (any padding) must have the output's batch,
     * size and channels.
     */
    public static void forward(Activation x, Weights w, Activation out, Activation residual, boolean relu) {
        forward(x, w, out, residual, relu, TASK_MACS, KC);
    }

    /** {@link #forward} with the multiply-adds a task aims at and the rows of a depth chunk (for tuning runs). */
    static void forward(Activation x, Weights w, Activation out, Activation residual, boolean relu, long taskMacs,
            int kc) {
        if (x.channels() != w.cin || x.pad() < w.pad) {
            throw new IllegalArgumentException("input has " + x.channels() + " channels and pad " + x.pad()
                    + "; the convolution wants " + w.cin + " and pad >= " + w.pad);
        }
        if (x.sharedColumns() && w.stride != 1) {
            throw new IllegalArgumentException("a strided convolution cannot read an activation with shared padding"
                    + " columns");
        }
        // d: how far into x's padded image the convolution's padded image starts.
        int d = x.pad() - w.pad;
        checkOutputs(x, w, out, residual);
        int oh = w.outSize(x.height());
        int ow = w.outSize(x.width());
        int cin = w.cin;
        int st = w.stride;
        int k = w.kernel;
        // Stride s > 1: the padded input in its s x s phases (pixels (s*i + a, s*j + b)), so that the
        // strided convolution is a stride-1 one over the phases, laid out flat like any other: as the
        // layer that wrote x stored it, or split here.
        float[] xd;
        int imageStride;
        int wp;
        int[] tapOff = new int[k * k];
        if (st == 1) {
            x.requireUnsplit("a stride-1 convolution");
            xd = x.data();
            imageStride = x.imageStride();
            wp = x.paddedWidth();
            for (int kh = 0; kh < k; kh++) {
                for (int kw = 0; kw < k; kw++) {
                    tapOff[kh * k + kw] = ((kh + d) * wp + kw + d) * cin;
                }
            }
        } else {
            int hq;
            int phases;
            if (x.phaseStride() == st && d == 0) {
                hq = x.phaseRows();
                wp = x.phaseColumns();
                phases = st;
                xd = x.data();
            } else {
                hq = Sgemm.ceilDiv(x.height() + 2 * w.pad, st);
                wp = Sgemm.ceilDiv(x.width() + 2 * w.pad, st);
                phases = Math.min(k, st);
                xd = phaseSplit(x, d, st, phases, hq, wp);
            }
            imageStride = phases * phases * hq * wp * cin;
            for (int kh = 0; kh < k; kh++) {
                for (int kw = 0; kw < k; kw++) {
                    tapOff[kh * k + kw] = (((kh % st) * phases + kw % st) * hq * wp + (kh / st) * wp + kw / st) * cin;
                }
            }
        }
        int taps = k * k;
        int tilesPerImage = Sgemm.ceilDiv(oh * wp, MR);
        int ps = cin;
        // The furthest float a tile reads must lie inside the array (tiles run past the last pixel).
        long last = (long) (x.batch() - 1) * imageStride + (long) (tilesPerImage - 1) * MR * cin
                + java.util.Arrays.stream(tapOff).max().getAsInt() + (long) (MR - 1) * ps + cin;
        if (last > xd.length) {
            throw new IllegalStateException("channels-last input too short: tiles read up to float " + last
                    + " of " + xd.length);
        }
        int obs = Sgemm.ceilDiv(w.cout, NR);
        int tiles = x.batch() * tilesPerImage;
        int wPer = taps * cin * NR;
        // Tasks: one block of NR output channels over a run of tiles (its weights stay in L2 over them).
        long macsPerTile = (long) MR * NR * taps * cin;
        int chunkSize = tilesPerTask(tiles, obs, macsPerTile, taskMacs);
        int chunks = Sgemm.ceilDiv(tiles, chunkSize);
        int[][] depth = depthChunks(taps, cin, kc);
        // The tasks' order, and so how the threads share them (CpuThreads gives each a contiguous
        // run): output block by output block when the weights are the larger operand (each thread
        // reads its share of them), pixel run by pixel run when the activations are (each thread
        // reads and writes its own rows, which the next layer, split alike, finds in its cache).
        boolean byPixels = (long) x.data().length + out.data().length > w.packed.length;
        CpuThreads.parallelFor(obs * chunks, u -> {
            int ob = byPixels ? u % obs : u / chunks;
            int t0 = (byPixels ? u / obs : u % chunks) * chunkSize;
            int t1 = Math.min(tiles, t0 + chunkSize);
            // The tiles' sums, carried from depth chunk to depth chunk; the last chunk's are stored.
            float[] acc = accumulators(chunkSize * MR * NR);
            // Depth chunk by depth chunk, so that a chunk's weights (KC x NR) stay in L1 over the tiles.
            for (int di = 0; di < depth.length; di++) {
                int[] dc = depth[di];
                int wi = ob * wPer + (dc[0] * cin + dc[2]) * NR;
                for (int t = t0; t < t1; t++) {
                    int ti = t % tilesPerImage;
                    int base = (t / tilesPerImage) * imageStride + ti * MR * cin;
                    // one depth chunk: every tile in the same slot, which stays in L1
                    int slot = depth.length == 1 ? 0 : (t - t0) * MR * NR;
                    microKernel(xd, base, ps, tapOff, dc[0], dc[1], dc[2], dc[3], w.packed, wi, acc, slot, di > 0);
                    if (di == depth.length - 1) {
                        // the epilogue while the tile's sums are still in L1
                        store(acc, slot, t / tilesPerImage, ti, wp, oh, ow, ob, w.bias, out, residual, relu);
                    }
                }
            }
        });
        if (xd != x.data()) {
            HeapBuffers.giveBack(xd);
        }
    }

    /**
     * Whether {@link #forwardFewChannels} suits a convolution of {@code cin} input channels and a
     * {@code kernel}-wide kernel: a filter row's taps (kernel · cin floats of a channels-last row) make
     * one depth run of at most {@link #FEW_CHANNELS_RUN} floats, and cin is below the per-tap loop's
     * sweet spot (ResNet's 7×7 stem on RGB: 21-float runs).
     */
    public static boolean fewChannels(int cin, int kernel) {
        return cin < 16 && (long) kernel * cin <= FEW_CHANNELS_RUN;
    }

    /** Longest filter-row run {@link #forwardFewChannels} takes as one depth run. */
    static final int FEW_CHANNELS_RUN = 64;

    /**
     * {@link #forward} for a convolution with few input channels ({@link #fewChannels}), straight
     * from the padded channels-last input: with the input unsplit, the k taps of a filter row and
     * their cin channels are one contiguous run of k·cin floats, so the micro-kernel takes k row
     * taps of that depth at a pixel stride of stride·cin, instead of k² taps of cin channels (all
     * loop overhead at cin = 3) or an im2col copy of k²·cin floats per output pixel. A tile is MR
     * pixels of one output row (the last one of a row partial). x must carry at least the
     * convolution's padding and not share its padding columns; out and residual as for {@link #forward}.
     */
    public static void forwardFewChannels(Activation x, Weights w, Activation out, Activation residual,
            boolean relu) {
        x.requireUnsplit("the few-channel convolution");
        if (x.channels() != w.cin || x.pad() < w.pad || x.sharedColumns()) {
            throw new IllegalArgumentException("input has " + x.channels() + " channels, pad " + x.pad()
                    + (x.sharedColumns() ? " (shared columns)" : "") + "; the convolution wants " + w.cin
                    + " channels and a full padding ring of at least " + w.pad);
        }
        if (!fewChannels(w.cin, w.kernel)) {
            throw new IllegalArgumentException("forwardFewChannels takes filter rows of at most " + FEW_CHANNELS_RUN
                    + " floats, not " + w.kernel + " taps x " + w.cin + " channels");
        }
        checkOutputs(x, w, out, residual);
        int oh = w.outSize(x.height());
        int ow = w.outSize(x.width());
        int cin = w.cin;
        int k = w.kernel;
        int st = w.stride;
        int pw = x.paddedWidth();
        float[] xd = x.data();
        int[] tapOff = new int[k];
        for (int kh = 0; kh < k; kh++) {
            tapOff[kh] = kh * pw * cin;
        }
        int run = k * cin;
        int ps = st * cin;
        int tilesPerRow = Sgemm.ceilDiv(ow, MR);
        int tilesPerImage = oh * tilesPerRow;
        int tiles = x.batch() * tilesPerImage;
        // the furthest float a tile reads (a row's last tile runs past the row, into the padding,
        // the next row or the slack) must lie inside the array
        long last = (long) x.index(x.batch() - 1, (oh - 1) * st - w.pad, ((tilesPerRow - 1) * MR) * st - w.pad)
                + tapOff[k - 1] + (long) (MR - 1) * ps + run;
        if (last > xd.length) {
            throw new IllegalStateException("channels-last input too short: tiles read up to float " + last + " of "
                    + xd.length);
        }
        // depth chunks: whole filter rows, at most KC weight rows each, or the whole filter when it
        // is at most a quarter more (ResNet's stem: 147 rows, 37.6 KiB; as 126 + 21 rows the second
        // pass reloaded and stored every tile's sums, and NhwcConvBench.fewChannels ran 9 % longer)
        int rowsPerChunk = k * run <= KC + KC / 4 ? k : Math.max(1, Math.min(k, KC / run));
        int obs = Sgemm.ceilDiv(w.cout, NR);
        int wPer = k * run * NR;
        long macsPerTile = (long) MR * NR * k * run;
        int chunkSize = tilesPerTask(tiles, obs, macsPerTile, TASK_MACS);
        int chunks = Sgemm.ceilDiv(tiles, chunkSize);
        int wv = tilesPerRow * MR; // the row width the tiles cover, for store()
        CpuThreads.parallelFor(obs * chunks, u -> {
            int ob = u / chunks;
            int t0 = (u % chunks) * chunkSize;
            int t1 = Math.min(tiles, t0 + chunkSize);
            float[] acc = accumulators(chunkSize * MR * NR);
            for (int r0 = 0; r0 < k; r0 += rowsPerChunk) {
                int r1 = Math.min(k, r0 + rowsPerChunk);
                int wi = ob * wPer + r0 * run * NR;
                for (int t = t0; t < t1; t++) {
                    int n = t / tilesPerImage;
                    int ti = t % tilesPerImage;
                    int y = ti / tilesPerRow;
                    int x0 = (ti % tilesPerRow) * MR;
                    int base = x.index(n, y * st - w.pad, x0 * st - w.pad);
                    // one depth chunk: every tile in the same slot, which stays in L1
                    int slot = rowsPerChunk >= k ? 0 : (t - t0) * MR * NR;
                    microKernel(xd, base, ps, tapOff, r0, r1, 0, run, w.packed, wi, acc, slot, r0 > 0);
                    if (r1 == k) {
                        // the epilogue while the tile's sums are still in L1
                        store(acc, slot, n, ti, wv, oh, ow, ob, w.bias, out, residual, relu);
                    }
                }
            }
        });
    }

    /**
     * The weight gradient of a convolution with few input channels ({@link #fewChannels}), the
     * partner of {@link #forwardFewChannels}: dw[o][c][kh][kw] = Σ over images and output pixels of
     * dy[o][y][x] · x[c][y·s + kh − pad][x·s + kw − pad], straight from the NCHW image. Per band of
     * output rows, dwᵀ[taps × cout] += Vᵀ·dy on {@link #microKernel}, with the k²·cin taps
     * L = (kh·k + kw)·cin + c as its 6-row side (the stem's 147 taps fill 150 rows) and the output
     * channels as its NR = 64 lanes (the stem's 64 fill them). The other way round (dy's channels
     * as rows, the taps as lanes padded from 147 to 192, each pixel's taps a dozen short copies)
     * took 1.3× the time (bench/RESULTS.md, session 13). Vᵀ's rows are stride-s runs of a
     * zero-padded planar copy of x (pooled, {@link HeapBuffers}); dy's band is transposed to
     * pixel-major lanes; the depth (the band's pixels) runs in chunks of {@link #KC} so that dy's
     * chunk serves every row group from L1. Bands are split among {@link #FEW_TASKS} tasks with
     * their own sums, added in task order, so the result does not depend on the thread count.
     *
     * <p>x NCHW [batch, cin, h, w] at float offset xOff of xs; dy NCHW [batch, cout, oh, ow] at dyOff
     * of dys; dw [cout, cin, k, k] at dwOff of dws is overwritten.
     */
    static void backwardFilterFewChannels(MemorySegment xs, long xOff, int batch, int cin, int h, int w,
            int cout, int k, int stride, int pad, MemorySegment dys, long dyOff, MemorySegment dws, long dwOff) {
        int oh = (h + 2 * pad - k) / stride + 1;
        int ow = (w + 2 * pad - k) / stride + 1;
        if (oh <= 0 || ow <= 0 || batch <= 0 || cout <= 0 || stride <= 0) {
            throw new IllegalArgumentException("few-channel backward-filter: a " + h + "x" + w + " input, batch "
                    + batch + ", for a " + k + "x" + k + "/" + stride + " convolution to " + cout + " channels");
        }
        Sgemm.checkExtent("x", xs, xOff, 1, 0, (long) batch * cin * h * w, 1);
        Sgemm.checkExtent("dy", dys, dyOff, 1, 0, (long) batch * cout * oh * ow, 1);
        Sgemm.checkExtent("dw", dws, dwOff, 1, 0, (long) cout * cin * k * k, 1);
        int ph = h + 2 * pad;
        int pw = w + 2 * pad;
        // the planar copy, with 2·VL floats of slack for the last stride-2 windows
        float[] xp = HeapBuffers.borrow((long) batch * cin * ph * pw + 2L * SPECIES.length());
        try {
            java.util.Arrays.fill(xp, 0f);
            MemorySegment x = Sgemm.forWorkers(xs);
            CpuThreads.parallelRange((long) batch * cin * h, Math.max(1, 4096 / w), (s0, e0) -> {
                for (long u = s0; u < e0; u++) {
                    long plane = u / h;
                    int y = (int) (u % h);
                    MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, (xOff + u * w) * Float.BYTES, xp,
                            (int) ((plane * ph + y + pad) * pw + pad), w);
                }
            });
            planarProduct(xp, batch, cin, ph, pw, cout, k, stride, oh, ow, Sgemm.forWorkers(dys), dyOff,
                    Sgemm.forWorkers(dws), dwOff);
        } finally {
            HeapBuffers.giveBack(xp);
        }
    }

    /** {@link #backwardFilterFewChannels} from the planar copy xp ([batch][cin][ph][pw], padded). */
    private static void planarProduct(float[] xp, int batch, int cin, int ph, int pw, int cout, int k, int stride,
            int oh, int ow, MemorySegment dy, long dyOff, MemorySegment dw, long dwOff) {
        int lanes = k * k * cin;
        int groups = Sgemm.ceilDiv(lanes, MR);
        int oBlocks = Sgemm.ceilDiv(cout, NR);
        int bandRows = Math.max(1, Math.min(oh, FEW_BAND_PIXELS / ow));
        int bandsPerImage = Sgemm.ceilDiv(oh, bandRows);
        int units = batch * bandsPerImage;
        int tasks = Math.min(units, FEW_TASKS);
        int accFloats = groups * oBlocks * MR * NR;
        float[][] acc = new float[tasks][accFloats];
        int maxDepth = bandRows * ow;
        int[] tap0 = {0};
        CpuThreads.parallelFor(tasks, task -> {
            float[] a = acc[task];
            float[][] buf = FEW_BUFFERS.get();
            if (buf[0].length < groups * MR * maxDepth) {
                buf[0] = new float[groups * MR * maxDepth];
            }
            if (buf[1].length < oBlocks * maxDepth * NR) {
                buf[1] = new float[oBlocks * maxDepth * NR];
            }
            float[] vt = buf[0];
            float[] dyT = buf[1];
            for (int u = (int) ((long) units * task / tasks), end = (int) ((long) units * (task + 1) / tasks); u < end;
                    u++) {
                int n = u / bandsPerImage;
                int y0 = (u % bandsPerImage) * bandRows;
                int rows = Math.min(bandRows, oh - y0);
                int depth = rows * ow;
                // Vᵀ: row L = (kh·k + kw)·cin + c holds x[c][(y0 + r)·s + kh][j·s + kw] over the band's pixels
                for (int l = 0; l < lanes; l++) {
                    int kh = l / (k * cin);
                    int kw = (l / cin) % k;
                    int c = l % cin;
                    for (int r = 0; r < rows; r++) {
                        int src = ((n * cin + c) * ph + (y0 + r) * stride + kh) * pw + kw;
                        copyStrided(xp, src, stride, vt, l * depth + r * ow, ow);
                    }
                }
                // (rows past the last tap keep what they held: their sums are never read)
                // dy's band, pixel-major in blocks of NR output channels (lanes past cout are never read back)
                float[] st = PanelPacking.staging(cout * depth);
                for (int o = 0; o < cout; o++) {
                    MemorySegment.copy(dy, ValueLayout.JAVA_FLOAT,
                            (dyOff + (((long) n * cout + o) * oh + y0) * ow) * Float.BYTES, st, o * depth, depth);
                }
                for (int b = 0; b < oBlocks; b++) {
                    PanelPacking.transpose(st, b * NR * depth, depth, Math.min(NR, cout - b * NR), depth, dyT,
                            b * depth * NR, NR);
                }
                for (int l0 = 0; l0 < depth; l0 += KC) {
                    int l1 = Math.min(depth, l0 + KC);
                    for (int b = 0; b < oBlocks; b++) {
                        for (int g = 0; g < groups; g++) {
                            microKernel(vt, g * MR * depth, depth, tap0, 0, 1, l0, l1, dyT, (b * depth + l0) * NR, a,
                                    (g * oBlocks + b) * MR * NR, true);
                        }
                    }
                }
            }
        });
        for (int t = 1; t < tasks; t++) {
            for (int i = 0; i < accFloats; i++) {
                acc[0][i] += acc[t][i];
            }
        }
        float[] sum = acc[0];
        for (int o = 0; o < cout; o++) {
            for (int c = 0; c < cin; c++) {
                for (int kh = 0; kh < k; kh++) {
                    for (int kw = 0; kw < k; kw++) {
                        int l = (kh * k + kw) * cin + c;
                        float val = sum[((l / MR) * oBlocks + o / NR) * MR * NR + (l % MR) * NR + o % NR];
                        dw.setAtIndex(ValueLayout.JAVA_FLOAT, dwOff + ((long) (o * cin + c) * k + kh) * k + kw, val);
                    }
                }
            }
        }
    }

    /**
     * dst[d + j] = src[s + j·stride] for j < len: stride 1 a plain copy, stride 2 the even lanes of
     * two loads a vector (reading up to 2·VL floats from the window's start, which the caller's
     * slack allows), others element by element.
     */
    private static void copyStrided(float[] src, int s, int stride, float[] dst, int d, int len) {
        if (stride == 1) {
            System.arraycopy(src, s, dst, d, len);
            return;
        }
        if (stride == 2) {
            int vl = SPECIES.length();
            int j = 0;
            for (; j + vl <= len; j += vl) {
                FloatVector lo = FloatVector.fromArray(SPECIES, src, s + 2 * j);
                FloatVector hi = FloatVector.fromArray(SPECIES, src, s + 2 * j + vl);
                FloatKernels.evenLanes(lo, hi).intoArray(dst, d + j);
            }
            if (j < len) {
                FloatVector lo = FloatVector.fromArray(SPECIES, src, s + 2 * j);
                FloatVector hi = FloatVector.fromArray(SPECIES, src, s + 2 * j + vl);
                FloatKernels.evenLanes(lo, hi).intoArray(dst, d + j, SPECIES.indexInRange(0, len - j));
            }
            return;
        }
        for (int j = 0; j < len; j++) {
            dst[d + j] = src[s + j * stride];
        }
    }

    /** Output pixels per band of {@link #backwardFilterFewChannels} (the products' depth; the band's lanes stay in L2). */
    static final int FEW_BAND_PIXELS = 1024;
    /** Tasks of {@link #backwardFilterFewChannels}, each with its own sums: fixed, so results do not depend on threads. */
    static final int FEW_TASKS = 16;
    private static final ThreadLocal<float[][]> FEW_BUFFERS = ThreadLocal.withInitial(() -> new float[2][0]);

    /** Rows of the packed weights per depth chunk: KC x NR floats (32 KiB) fit L1. */
    static final int KC = 8192 / NR;
    /** Multiply-adds a task aims at: tiles are grouped up to this, down to four tasks per thread. */
    static final long TASK_MACS = 1L << 21;

    /**
     * The reduction (taps x input channels) cut into chunks {tapFrom, tapTo, channelFrom, channelTo}
     * of about KC rows each: whole taps grouped when a tap has fewer channels, a tap's channels
     * split when it has more.
     */
    static int[][] depthChunks(int taps, int cin, int kc) {
        java.util.List<int[]> out = new java.util.ArrayList<>();
        if (cin >= kc) {
            int parts = Sgemm.ceilDiv(cin, kc);
            for (int t = 0; t < taps; t++) {
                for (int p = 0; p < parts; p++) {
                    out.add(new int[] {t, t + 1, (int) ((long) cin * p / parts), (int) ((long) cin * (p + 1) / parts)});
                }
            }
        } else {
            int per = Math.max(1, kc / cin);
            int groups = Sgemm.ceilDiv(taps, per);
            for (int g = 0; g < groups; g++) {
                out.add(new int[] {taps * g / groups, taps * (g + 1) / groups, 0, cin});
            }
        }
        return out.toArray(int[][]::new);
    }

    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[0]);

    /** The thread's tile sums, at least {@code floats} long (contents undefined). */
    private static float[] accumulators(int floats) {
        float[] acc = ACC.get();
        if (acc.length < floats) {
            acc = new float[floats];
            ACC.set(acc);
        }
        return acc;
    }

    /**
     * Fewest tiles a task runs (before the halving for enough tasks): a depth chunk's weights are
     * read into L1 once per task and serve all its tiles, so with one or two tiles per task (deep
     * convolutions: layer4's 3×3/2 has 4,608 rows) the weights stream from L2 at every tile.
     */
    static final int MIN_TILES_PER_TASK = 8;

    /**
     * Tiles per task: about {@code taskMacs} multiply-adds each but at least {@link #MIN_TILES_PER_TASK},
     * spread evenly (a remainder joins the runs rather than making a short one that streams the
     * weights again for a tile or two: layer4's 9 tiles at 7×7 are one run, not 8 + 1), then halved
     * down to four tasks per thread.
     */
    static int tilesPerTask(int tiles, int obs, long macsPerTile, long taskMacs) {
        long target = Math.max(MIN_TILES_PER_TASK, taskMacs / macsPerTile);
        long runs = Math.max(1, tiles / target);
        int chunk = (int) Math.max(1, Sgemm.ceilDiv(tiles, (int) Math.min(runs, tiles)));
        int threads = CpuThreads.threads();
        while (chunk > 1 && (long) obs * Sgemm.ceilDiv(tiles, chunk) < 4L * threads) {
            chunk = Math.max(1, chunk / 2);
        }
        return chunk;
    }

    /** Checks that w leaves a non-empty output of x and that out (and residual) have its shape. */
    private static void checkOutputs(Activation x, Weights w, Activation out, Activation residual) {
        int oh = w.outSize(x.height());
        int ow = w.outSize(x.width());
        if (oh <= 0 || ow <= 0) {
            throw new IllegalArgumentException("a " + x.height() + "x" + x.width() + " input is too small for a "
                    + w.kernel + "x" + w.kernel + " convolution");
        }
        checkOutput("output", out, x.batch(), oh, ow, w.cout);
        if (residual != null) {
            checkOutput("residual", residual, x.batch(), oh, ow, w.cout);
        }
    }

    private static void checkOutput(String what, Activation a, int batch, int h, int w, int c) {
        if (a.batch() != batch || a.height() != h || a.width() != w || a.channels() != c) {
            throw new IllegalArgumentException(what + " is " + a.batch() + "x" + a.height() + "x" + a.width() + "x"
                    + a.channels() + ", the convolution gives " + batch + "x" + h + "x" + w + "x" + c);
        }
    }

    /**
     * The first {@code phases} x {@code phases} stride phases of x's padded images, from d pixels
     * into the padding: phase (a, b) holds padded pixel (d + s*i + a, d + s*j + b) at
     * [n][a*phases + b][i][j][c] (hq x wq per phase; what lies outside x is zero), in a buffer
     * borrowed from {@link HeapBuffers} (the caller gives it back): a fresh array per call (up to
     * 1.7 MB for ResNet-50's layer2 3×3/2 at 224², humongous for G1) cost its zeroing and collection.
     */
    private static float[] phaseSplit(Activation x, int d, int st, int phases, int hq, int wq) {
        x.requireUnsplit("splitting into stride phases");
        int c = x.channels();
        int hp = x.paddedHeight() - d;
        int wpx = x.paddedWidth();
        long floats = (long) x.batch() * phases * phases * hq * wq * c + (long) Activation.SLACK_PIXELS * c;
        if (floats > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("strided convolution input too large for one array: run a smaller batch");
        }
        float[] out = HeapBuffers.borrow(floats);
        float[] xd = x.data();
        int img = phases * phases * hq * wq * c;
        CpuThreads.parallelFor(x.batch() * phases * hq, u -> {
            int n = u / (phases * hq);
            int a = (u / hq) % phases;
            int i = u % hq;
            int row = d + st * i + a;
            for (int b = 0; b < phases; b++) {
                int o = n * img + ((a * phases + b) * hq + i) * wq * c;
                int j = 0;
                if (row < hp) {
                    int src = n * x.imageStride() + row * wpx * c;
                    for (int col = d + b; j < wq && col < wpx - d; j++, col += st) {
                        System.arraycopy(xd, src + col * c, out, o + j * c, c);
                    }
                }
                java.util.Arrays.fill(out, o + j * c, o + wq * c, 0f);
            }
        });
        java.util.Arrays.fill(out, (int) (floats - (long) Activation.SLACK_PIXELS * c), (int) floats, 0f);
        return out;
    }

    /** The epilogue: the tile's valid pixels, + bias [+ residual], ReLU, into out (lane-masked past cout). */
    private static void store(float[] tile, int tileOff, int n, int ti, int wp, int oh, int ow, int ob, float[] bias,
            Activation out, Activation residual, boolean relu) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        int c0 = ob * NR;
        int cout = out.channels();
        boolean whole = c0 + NR <= cout;
        float[] od = out.data();
        float[] rd = residual == null ? null : residual.data();
        for (int r = 0; r < MR; r++) {
            int q = ti * MR + r;
            int y = q / wp;
            int xx = q - y * wp;
            if (y >= oh) {
                return;
            }
            if (xx >= ow) {
                continue;
            }
            int oi = out.index(n, y, xx) + c0;
            int ri = rd == null ? 0 : residual.index(n, y, xx) + c0;
            for (int v = 0; v < NV; v++) {
                int c = v * vl;
                FloatVector acc = FloatVector.fromArray(s, tile, tileOff + r * NR + c).add(FloatVector.fromArray(s, bias, c0 + c));
                if (whole) {
                    if (rd != null) {
                        acc = acc.add(FloatVector.fromArray(s, rd, ri + c));
                    }
                    if (relu) {
                        acc = acc.max(0f);
                    }
                    acc.intoArray(od, oi + c);
                } else {
                    VectorMask<Float> m = s.indexInRange(c0 + c, cout);
                    if (rd != null) {
                        acc = acc.add(FloatVector.fromArray(s, rd, ri + c, m));
                    }
                    if (relu) {
                        acc = acc.max(0f);
                    }
                    acc.intoArray(od, oi + c, m);
                }
            }
        }
    }


    /**
     * tile[off … off + MR×NR) (+)= Σ over taps t in [tapFrom, tapTo) and input channels l in [l0, l1) of
     * x[base + tapOff[t] + r·ps + l] · w[wi + ((t − tapFrom)·(l1 − l0) + l − l0)·NR + j], adding to
     * what the tile holds when {@code accumulate} (a later depth chunk). One long
     * loop over the input channels per tap (with a loop as short as a 16-channel block the same
     * code ran at half the speed). 6 pixels × 4 vectors: 24 accumulators + 4 weight vectors + 1
     * broadcast of AVX-512's 32 registers; beside 12×2, 8×3 and 4×6 on runtime pixel strides of 64
     * to 1024 floats it ran fastest in isolated alternating runs.
     */
    static void microKernel(float[] x, int base, int ps, int[] tapOff, int tapFrom, int tapTo, int l0, int l1,
            float[] w, int wi, float[] tile, int off, boolean accumulate) {
        VectorSpecies<Float> s = SPECIES;
        int vl = s.length();
        FloatVector c00 = init(s, tile, off + 0 * NR + 0 * vl, accumulate), c01 = init(s, tile, off + 0 * NR + 1 * vl, accumulate), c02 = init(s, tile, off + 0 * NR + 2 * vl, accumulate), c03 = init(s, tile, off + 0 * NR + 3 * vl, accumulate);
        FloatVector c10 = init(s, tile, off + 1 * NR + 0 * vl, accumulate), c11 = init(s, tile, off + 1 * NR + 1 * vl, accumulate), c12 = init(s, tile, off + 1 * NR + 2 * vl, accumulate), c13 = init(s, tile, off + 1 * NR + 3 * vl, accumulate);
        FloatVector c20 = init(s, tile, off + 2 * NR + 0 * vl, accumulate), c21 = init(s, tile, off + 2 * NR + 1 * vl, accumulate), c22 = init(s, tile, off + 2 * NR + 2 * vl, accumulate), c23 = init(s, tile, off + 2 * NR + 3 * vl, accumulate);
        FloatVector c30 = init(s, tile, off + 3 * NR + 0 * vl, accumulate), c31 = init(s, tile, off + 3 * NR + 1 * vl, accumulate), c32 = init(s, tile, off + 3 * NR + 2 * vl, accumulate), c33 = init(s, tile, off + 3 * NR + 3 * vl, accumulate);
        FloatVector c40 = init(s, tile, off + 4 * NR + 0 * vl, accumulate), c41 = init(s, tile, off + 4 * NR + 1 * vl, accumulate), c42 = init(s, tile, off + 4 * NR + 2 * vl, accumulate), c43 = init(s, tile, off + 4 * NR + 3 * vl, accumulate);
        FloatVector c50 = init(s, tile, off + 5 * NR + 0 * vl, accumulate), c51 = init(s, tile, off + 5 * NR + 1 * vl, accumulate), c52 = init(s, tile, off + 5 * NR + 2 * vl, accumulate), c53 = init(s, tile, off + 5 * NR + 3 * vl, accumulate);
        for (int t = tapFrom; t < tapTo; t++) {
            int xi = base + tapOff[t];
            for (int l = l0; l < l1; l++, wi += NR) {
                FloatVector b0 = FloatVector.fromArray(s, w, wi);
                FloatVector b1 = FloatVector.fromArray(s, w, wi + vl);
                FloatVector b2 = FloatVector.fromArray(s, w, wi + 2 * vl);
                FloatVector b3 = FloatVector.fromArray(s, w, wi + 3 * vl);
                FloatVector a0 = FloatVector.broadcast(s, x[xi + l]);
                c00 = a0.fma(b0, c00);
                c01 = a0.fma(b1, c01);
                c02 = a0.fma(b2, c02);
                c03 = a0.fma(b3, c03);
                FloatVector a1 = FloatVector.broadcast(s, x[xi + ps + l]);
                c10 = a1.fma(b0, c10);
                c11 = a1.fma(b1, c11);
                c12 = a1.fma(b2, c12);
                c13 = a1.fma(b3, c13);
                FloatVector a2 = FloatVector.broadcast(s, x[xi + 2 * ps + l]);
                c20 = a2.fma(b0, c20);
                c21 = a2.fma(b1, c21);
                c22 = a2.fma(b2, c22);
                c23 = a2.fma(b3, c23);
                FloatVector a3 = FloatVector.broadcast(s, x[xi + 3 * ps + l]);
                c30 = a3.fma(b0, c30);
                c31 = a3.fma(b1, c31);
                c32 = a3.fma(b2, c32);
                c33 = a3.fma(b3, c33);
                FloatVector a4 = FloatVector.broadcast(s, x[xi + 4 * ps + l]);
                c40 = a4.fma(b0, c40);
                c41 = a4.fma(b1, c41);
                c42 = a4.fma(b2, c42);
                c43 = a4.fma(b3, c43);
                FloatVector a5 = FloatVector.broadcast(s, x[xi + 5 * ps + l]);
                c50 = a5.fma(b0, c50);
                c51 = a5.fma(b1, c51);
                c52 = a5.fma(b2, c52);
                c53 = a5.fma(b3, c53);
            }
        }
        c00.intoArray(tile, off + 0 * NR + 0 * vl);
        c01.intoArray(tile, off + 0 * NR + 1 * vl);
        c02.intoArray(tile, off + 0 * NR + 2 * vl);
        c03.intoArray(tile, off + 0 * NR + 3 * vl);
        c10.intoArray(tile, off + 1 * NR + 0 * vl);
        c11.intoArray(tile, off + 1 * NR + 1 * vl);
        c12.intoArray(tile, off + 1 * NR + 2 * vl);
        c13.intoArray(tile, off + 1 * NR + 3 * vl);
        c20.intoArray(tile, off + 2 * NR + 0 * vl);
        c21.intoArray(tile, off + 2 * NR + 1 * vl);
        c22.intoArray(tile, off + 2 * NR + 2 * vl);
        c23.intoArray(tile, off + 2 * NR + 3 * vl);
        c30.intoArray(tile, off + 3 * NR + 0 * vl);
        c31.intoArray(tile, off + 3 * NR + 1 * vl);
        c32.intoArray(tile, off + 3 * NR + 2 * vl);
        c33.intoArray(tile, off + 3 * NR + 3 * vl);
        c40.intoArray(tile, off + 4 * NR + 0 * vl);
        c41.intoArray(tile, off + 4 * NR + 1 * vl);
        c42.intoArray(tile, off + 4 * NR + 2 * vl);
        c43.intoArray(tile, off + 4 * NR + 3 * vl);
        c50.intoArray(tile, off + 5 * NR + 0 * vl);
        c51.intoArray(tile, off + 5 * NR + 1 * vl);
        c52.intoArray(tile, off + 5 * NR + 2 * vl);
        c53.intoArray(tile, off + 5 * NR + 3 * vl);
    }

    private static FloatVector init(VectorSpecies<Float> s, float[] tile, int i, boolean accumulate) {
        return accumulate ? FloatVector.fromArray(s, tile, i) : FloatVector.zero(s);
    }

    /**
     * The patches of a convolution as a channels-last activation with k·k·C "channels" (in PyTorch's
     * weight order c, kh, kw), so that the convolution becomes a 1×1 one on them: for a first layer
     * with few input channels (ResNet's 7×7 stem on RGB), where a per-tap loop over 3 channels would
     * be all loop overhead. x is NCHW float32 at float offset xOff of seg.
     */
    public static Activation patchesFromNchw(MemorySegment seg, long xOff, int batch, int channels, int height,
            int width, int kernel, int stride, int pad) {
        int oh = (height + 2 * pad - kernel) / stride + 1;
        return patchesFromNchw(seg, xOff, batch, channels, height, width, kernel, stride, pad, 0, oh);
    }

    /**
     * Output rows [rowFrom, rowFrom + rows) of {@link #patchesFromNchw}: a band, so that a large
     * image's patches (k·k·C floats per output pixel) need not exist all at once.
     */
    public static Activation patchesFromNchw(MemorySegment seg, long xOff, int batch, int channels, int height,
            int width, int kernel, int stride, int pad, int rowFrom, int rows) {
        int ow = (width + 2 * pad - kernel) / stride + 1;
        Activation out = Activation.allocate(batch, rows, ow, channels * kernel * kernel, 0);
        patchesFromNchw(seg, xOff, batch, channels, height, width, kernel, stride, pad, rowFrom, out);
        return out;
    }

    /**
     * {@link #patchesFromNchw(MemorySegment, long, int, int, int, int, int, int, int, int, int)} into
     * {@code out} [batch, rows, ow, C·k·k] (no padding; every element written, so a reused buffer
     * may hold anything). Each output pixel's patch is written in order (c, kh, kw), one
     * contiguous run per pixel; the reads are k-long runs of the input rows.
     */
    public static void patchesFromNchw(MemorySegment seg, long xOff, int batch, int channels, int height,
            int width, int kernel, int stride, int pad, int rowFrom, Activation out) {
        int ow = (width + 2 * pad - kernel) / stride + 1;
        int oh = out.height();
        int kk = channels * kernel * kernel;
        if (out.batch() != batch || out.width() != ow || out.channels() != kk || out.pad() != 0) {
            throw new IllegalArgumentException("patches: expected [" + batch + ", rows, " + ow + ", " + kk
                    + "] without padding, got [" + out.batch() + ", " + oh + ", " + out.width() + ", " + out.channels()
                    + "] padded " + out.pad());
        }
        Sgemm.checkExtent("input", seg, xOff, (long) batch * channels * height, width, width, 1);
        MemorySegment x = Sgemm.forWorkers(seg);
        float[] od = out.data();
        CpuThreads.parallelFor(batch * oh, u -> {
            int n = u / oh;
            int y = u % oh;
            int oi = out.index(n, y, 0);
            for (int xx = 0; xx < ow; xx++) {
                int ix0 = xx * stride - pad;
                boolean inside = ix0 >= 0 && ix0 + kernel <= width;
                for (int c = 0; c < channels; c++) {
                    long plane = xOff + ((long) n * channels + c) * height * width;
                    for (int kh = 0; kh < kernel; kh++) {
                        int iy = (rowFrom + y) * stride - pad + kh;
                        if (iy < 0 || iy >= height) {
                            java.util.Arrays.fill(od, oi, oi + kernel, 0f);
                            oi += kernel;
                            continue;
                        }
                        long row = plane + (long) iy * width + ix0;
                        if (inside) {
                            MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, row * Float.BYTES, od, oi, kernel);
                            oi += kernel;
                            continue;
                        }
                        for (int kw = 0; kw < kernel; kw++, oi++) {
                            int ix = ix0 + kw;
                            od[oi] = ix >= 0 && ix < width ? x.getAtIndex(ValueLayout.JAVA_FLOAT, row + kw) : 0f;
                        }
                    }
                }
            }
        });
    }

    /** Max pooling, window k, stride s, padding p (padding never wins), into a new activation. */
    public static Activation maxPool(Activation x, int kernel, int stride, int pad, int outPad) {
        Activation out = Activation.allocate(x.batch(), (x.height() + 2 * pad - kernel) / stride + 1,
                (x.width() + 2 * pad - kernel) / stride + 1, x.channels(), outPad);
        maxPool(x, kernel, stride, pad, out);
        return out;
    }

    /** {@link #maxPool(Activation, int, int, int, int)} into {@code out} (its interior is overwritten). */
    public static void maxPool(Activation x, int kernel, int stride, int pad, Activation out) {
        x.requireUnsplit("the max pool");
        out.requireUnsplit("the max pool");
        if (x.pad() != 0) {
            throw new IllegalArgumentException("max pooling reads an unpadded activation");
        }
        int oh = (x.height() + 2 * pad - kernel) / stride + 1;
        int ow = (x.width() + 2 * pad - kernel) / stride + 1;
        int c = x.channels();
        checkOutput("max pooling output", out, x.batch(), oh, ow, c);
        // SPECIES itself inside the lambda: a captured species is no constant to C2, which then boxes
        // every vector (MaxPoolBench.channelsLast, ResNet-50's stem pool at batch 4: 3.6 ms, 0.63 ms now)
        int vl = SPECIES.length();
        float[] xd = x.data();
        float[] od = out.data();
        // x is unpadded and unsplit: pixel (iy, ix) of image n at n * imageStride + (iy * width + ix) * c
        int xImage = x.imageStride();
        int xRow = x.width() * c;
        CpuThreads.parallelFor(x.batch() * oh, u -> {
            int n = u / oh;
            int y = u % oh;
            int y0 = Math.max(0, y * stride - pad);
            int y1 = Math.min(x.height(), y * stride - pad + kernel);
            for (int xx = 0; xx < ow; xx++) {
                int x0 = Math.max(0, xx * stride - pad);
                int x1 = Math.min(x.width(), xx * stride - pad + kernel);
                int oi = out.index(n, y, xx);
                int ch = 0;
                for (; ch + vl <= c; ch += vl) {
                    FloatVector m = FloatVector.broadcast(SPECIES, Float.NEGATIVE_INFINITY);
                    for (int iy = y0; iy < y1; iy++) {
                        for (int ix = x0; ix < x1; ix++) {
                            m = m.max(FloatVector.fromArray(SPECIES, xd, n * xImage + iy * xRow + ix * c + ch));
                        }
                    }
                    m.intoArray(od, oi + ch);
                }
                for (; ch < c; ch++) {
                    float m = Float.NEGATIVE_INFINITY;
                    for (int iy = y0; iy < y1; iy++) {
                        for (int ix = x0; ix < x1; ix++) {
                            float v = xd[n * xImage + iy * xRow + ix * c + ch];
                            m = v > m || Float.isNaN(v) ? v : m;
                        }
                    }
                    od[oi + ch] = m;
                }
            }
        });
    }

    /**
     * A channels-last tensor's copy: x ([batch, height, width, channels] float32, contiguous at
     * float offset xOff of seg) into {@code buffer} as an activation with padding pad, one row copy
     * per image row. The buffer (exactly {@link Activation#floats} long for a full padding ring) may
     * hold anything: the ring and the slack are zeroed.
     */
    static Activation fromNhwcInto(MemorySegment seg, long xOff, int batch, int height, int width, int channels,
            int pad, float[] buffer) {
        if (buffer.length != Activation.floats(batch, height, width, channels, pad, false)) {
            throw new IllegalArgumentException("a buffer of " + buffer.length + " floats for a " + batch + "x" + height
                    + "x" + width + "x" + channels + " activation padded by " + pad);
        }
        Sgemm.checkExtent("input", seg, xOff, (long) batch * height, (long) width * channels, (long) width * channels,
                1);
        Activation out = new Activation(buffer, batch, height, width, channels, pad);
        MemorySegment x = Sgemm.forWorkers(seg);
        int ph = out.paddedHeight();
        int rowFloats = width * channels;
        int paddedRow = out.paddedWidth() * channels;
        int side = pad * channels;
        CpuThreads.parallelRange((long) batch * ph, Math.max(1, (1 << 16) / Math.max(1, paddedRow)), (s, e) -> {
            for (long u = s; u < e; u++) {
                int n = (int) (u / ph);
                int py = (int) (u % ph);
                int at = n * out.imageStride() + py * paddedRow;
                if (py < pad || py >= pad + height) {
                    java.util.Arrays.fill(buffer, at, at + paddedRow, 0f);
                    continue;
                }
                java.util.Arrays.fill(buffer, at, at + side, 0f);
                MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, (xOff + ((long) n * height + py - pad) * rowFloats)
                        * Float.BYTES, buffer, at + side, rowFloats);
                java.util.Arrays.fill(buffer, at + side + rowFloats, at + paddedRow, 0f);
            }
        });
        java.util.Arrays.fill(buffer, batch * out.imageStride(), buffer.length, 0f);
        return out;
    }

    /** Writes x (any padding) as a contiguous channels-last float32 tensor at float offset dstOff of dst. */
    public static void toNhwc(Activation x, MemorySegment dst, long dstOff) {
        x.requireUnsplit("the copy to NHWC");
        int rowFloats = x.width() * x.channels();
        int rows = x.batch() * x.height();
        Sgemm.checkExtent("output", dst, dstOff, rows, rowFloats, rowFloats, 1);
        MemorySegment d = Sgemm.forWorkers(dst);
        float[] xd = x.data();
        CpuThreads.parallelRange(rows, Math.max(1, (1 << 16) / Math.max(1, rowFloats)), (s, e) -> {
            for (long u = s; u < e; u++) {
                int n = (int) (u / x.height());
                int y = (int) (u % x.height());
                MemorySegment.copy(xd, x.index(n, y, 0), d, ValueLayout.JAVA_FLOAT, (dstOff + u * rowFloats) * Float.BYTES,
                        rowFloats);
            }
        });
    }

    /** A channels-last NCHW copy: x (NCHW float32 at xOff of seg) into a new activation with padding pad. */
    public static Activation fromNchw(MemorySegment seg, long xOff, int batch, int channels, int height, int width,
            int pad) {
        Sgemm.checkExtent("input", seg, xOff, (long) batch * channels * height, width, width, 1);
        Activation out = Activation.allocate(batch, height, width, channels, pad);
        fromNchwInto(seg, xOff, out);
        return out;
    }

    /**
     * x (NCHW float32 at xOff of seg, out's batch, channels and size) into out's interior; its
     * padding ring is not written (a reused buffer keeps its zero ring).
     */
    public static void fromNchwInto(MemorySegment seg, long xOff, Activation out) {
        int batch = out.batch();
        int channels = out.channels();
        int height = out.height();
        int width = out.width();
        Sgemm.checkExtent("input", seg, xOff, (long) batch * channels * height, width, width, 1);
        MemorySegment x = Sgemm.forWorkers(seg);
        float[] od = out.data();
        // Per image row: the channels' rows copied out whole, then transposed with vector gathers:
        // with few channels (an RGB image) each gather fills 16 consecutive floats of the
        // interleaved row (a map computed once: float f of the row is channel f % C of pixel f / C),
        // not one pixel's few channels under a mask (5x fewer gathers for an RGB row).
        int vl = SPECIES.length();
        int rowFloats = channels * width;
        int[] interleave = null;
        if (channels < vl) {
            interleave = new int[Sgemm.ceilDiv(rowFloats, vl) * vl];
            for (int f = 0; f < interleave.length; f++) {
                int g = Math.min(f, rowFloats - 1);
                interleave[f] = (g % channels) * width + g / channels;
            }
        }
        int[] map = interleave;
        CpuThreads.parallelFor(batch * height, u -> {
            int n = u / height;
            int y = u % height;
            float[] block = PanelPacking.staging(rowFloats);
            for (int c = 0; c < channels; c++) {
                long row = xOff + (((long) n * channels + c) * height + y) * width;
                MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, row * Float.BYTES, block, c * width, width);
            }
            int at = out.index(n, y, 0);
            if (map == null) {
                PanelPacking.transpose(block, width, channels, width, od, at, channels);
                return;
            }
            int f = 0;
            for (; f + vl <= rowFloats; f += vl) {
                FloatVector.fromArray(SPECIES, block, 0, map, f).intoArray(od, at + f);
            }
            if (f < rowFloats) {
                VectorMask<Float> m = SPECIES.indexInRange(f, rowFloats);
                FloatVector.fromArray(SPECIES, block, 0, map, f).intoArray(od, at + f, m);
            }
        });
    }

    /** Zeroes a's padding ring and the slack after its last image (its interior is left as it is). */
    static void zeroPadding(Activation a) {
        float[] d = a.data();
        int c = a.channels();
        int paddedRow = a.paddedWidth() * c;
        int left = a.pad() * c;
        int right = left + a.width() * c;
        for (int n = 0; n < a.batch() && a.pad() > 0; n++) {
            for (int py = 0; py < a.paddedHeight(); py++) {
                int at = n * a.imageStride() + py * paddedRow;
                if (py < a.pad() || py >= a.pad() + a.height()) {
                    java.util.Arrays.fill(d, at, at + paddedRow, 0f);
                } else {
                    java.util.Arrays.fill(d, at, at + left, 0f);
                    java.util.Arrays.fill(d, at + right, at + paddedRow, 0f);
                }
            }
        }
        java.util.Arrays.fill(d, a.batch() * a.imageStride(), d.length, 0f);
    }

    /** Writes x (any padding) as NCHW float32 at float offset dstOff of dst. */
    public static void toNchw(Activation x, MemorySegment dst, long dstOff) {
        x.requireUnsplit("the copy to NCHW");
        int c = x.channels();
        int h = x.height();
        int w = x.width();
        Sgemm.checkExtent("output", dst, dstOff, (long) x.batch() * c * h, w, w, 1);
        MemorySegment d = Sgemm.forWorkers(dst);
        float[] xd = x.data();
        if (w < 2 * SPECIES.length()) {
            // Rows shorter than two vectors would gather partial vectors and copy out short runs
            // (LayoutCopyBench: 2.5x slower at 7x7x512, 1.2x at 28x28x128). Instead a block of 64
            // channels' planes (contiguous in NCHW) is staged whole: each pixel's channels scattered
            // into their planes a vector at a time, then one copy out. Element by element into the
            // segment this took ~230 us for ResNet-50's 7x7x2048 features.
            int hw = h * w;
            int vl = SPECIES.length();
            int[] planes = new int[vl];
            for (int i = 0; i < vl; i++) {
                planes[i] = i * hw;
            }
            int blocks = Sgemm.ceilDiv(c, 64);
            CpuThreads.parallelFor(x.batch() * blocks, u -> {
                int n = u / blocks;
                int c0 = (u % blocks) * 64;
                int cs = Math.min(c, c0 + 64) - c0;
                float[] stage = PanelPacking.staging(cs * hw);
                for (int y = 0, p = 0; y < h; y++) {
                    for (int xx = 0; xx < w; xx++, p++) {
                        int xi = x.index(n, y, xx) + c0;
                        for (int v = 0; v < cs; v += vl) {
                            if (v + vl <= cs) {
                                FloatVector.fromArray(SPECIES, xd, xi + v).intoArray(stage, v * hw + p, planes, 0);
                            } else {
                                VectorMask<Float> m = SPECIES.indexInRange(v, cs);
                                FloatVector.fromArray(SPECIES, xd, xi + v, m).intoArray(stage, v * hw + p, planes, 0,
                                        m);
                            }
                        }
                    }
                }
                MemorySegment.copy(stage, 0, d, ValueLayout.JAVA_FLOAT, (dstOff + ((long) n * c + c0) * hw)
                        * Float.BYTES, cs * hw);
            });
            return;
        }
        // Per image row: the pixels transposed into channel rows with vector gathers, each copied out whole.
        CpuThreads.parallelFor(x.batch() * h, u -> {
            int n = u / h;
            int y = u % h;
            float[] block = PanelPacking.staging(c * w);
            PanelPacking.transpose(xd, x.index(n, y, 0), c, w, c, block, 0, w);
            for (int ch = 0; ch < c; ch++) {
                MemorySegment.copy(block, ch * w, d, ValueLayout.JAVA_FLOAT, (dstOff + (((long) n * c + ch) * h + y) * w)
                        * Float.BYTES, w);
            }
        });
    }
}
