package dir4j.engine.cpu;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Batch norm over (N, H, W) per channel of a contiguous NCHW tensor, parallel over channels.
 * Each channel's data is N runs of H·W contiguous values; float32 runs are vectorised. Float32
 * channels-last tensors [N, H, W, C] have their own kernels ({@link #forwardNhwc},
 * {@link #backwardNhwc}), vectorised across channels.
 */
final class BatchNormKernels {
    private BatchNormKernels() {}

    private static double ld(Tensor t, long i) {
        return CpuBackend.load(t.segment(), t.dtype(), t.offset() + i);
    }

    private static void st(Tensor t, long i, double v) {
        CpuBackend.store(t.segment(), t.dtype(), t.offset() + i, v);
    }

    /** Elements per task below which an elementwise pass over planes is not split further. */
    private static final int MIN_CHUNK = 1 << 15;

    static void forward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, boolean training,
                        double momentum, double eps, Tensor y, Tensor saveMean, Tensor saveInvStd) {
        forward(x, gamma, beta, runningMean, runningVar, training, momentum, eps, null, false, y, saveMean, saveInvStd);
    }

    /**
     * {@link #forward} then relu?(y [+ residual]) fused into the normalising pass (residual null:
     * none), rounding as the separate add and ReLU would ({@link FloatKernels#scaleShiftAddRelu});
     * the add and ReLU for float32 only (other dtypes compose the ops, which round after each).
     */
    static void forward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, boolean training,
                        double momentum, double eps, Tensor residual, boolean relu, Tensor y, Tensor saveMean,
                        Tensor saveInvStd) {
        if (!training) {
            for (int ch = 0; ch < x.shape(1); ch++) {
                st(saveMean, ch, ld(runningMean, ch));
                st(saveInvStd, ch, 1 / Math.sqrt(ld(runningVar, ch) + eps));
            }
            inference(x, gamma, beta, runningMean, runningVar, eps, residual, relu, y);
            return;
        }
        boolean epilogue = residual != null || relu;
        if (epilogue && x.dtype() != DType.FLOAT32) {
            throw new IllegalStateException("batch norm's fused add/ReLU is float32 only, got " + x.dtype());
        }
        MemorySegment rs = residual == null ? null : residual.segment();
        long ro = residual == null ? 0 : residual.offset();
        int n = x.shape(0);
        int c = x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        long count = (long) n * hw;
        boolean f32 = x.dtype() == DType.FLOAT32;
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        CpuThreads.parallelFor(c, ch -> {
            double mean;
            double var;
            if (training) {
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    long off = x.offset() + ((long) i * c + ch) * hw;
                    sum += f32 ? FloatKernels.sum(xs, off, 1, hw) : scalarSum(x, off - x.offset(), hw);
                }
                mean = sum / count;
                double ss = 0;
                for (int i = 0; i < n; i++) {
                    long off = x.offset() + ((long) i * c + ch) * hw;
                    ss += f32 ? FloatKernels.sumSquaredDeviation(xs, off, hw, (float) mean)
                            : scalarSsd(x, off - x.offset(), hw, mean);
                }
                var = ss / count; // biased, for normalisation (as PyTorch)
                if (runningMean != null) {
                    st(runningMean, ch, (1 - momentum) * ld(runningMean, ch) + momentum * mean);
                }
                if (runningVar != null) {
                    double unbiased = count > 1 ? ss / (count - 1) : var;
                    st(runningVar, ch, (1 - momentum) * ld(runningVar, ch) + momentum * unbiased);
                }
            } else {
                mean = ld(runningMean, ch);
                var = ld(runningVar, ch);
            }
            double invStd = 1 / Math.sqrt(var + eps);
            st(saveMean, ch, mean);
            st(saveInvStd, ch, invStd);
            double scale = ld(gamma, ch) * invStd;
            double shift = ld(beta, ch) - mean * scale;
            for (int i = 0; i < n; i++) {
                long rel = ((long) i * c + ch) * hw;
                if (f32 && epilogue) {
                    FloatKernels.scaleShiftAddRelu(xs, x.offset() + rel, rs, ro + rel, ys, y.offset() + rel, hw,
                            (float) scale, (float) shift, relu);
                } else if (f32) {
                    FloatKernels.scaleShift(xs, x.offset() + rel, ys, y.offset() + rel, hw, (float) scale,
                            (float) shift);
                } else {
                    for (int j = 0; j < hw; j++) {
                        st(y, rel + j, ld(x, rel + j) * scale + shift);
                    }
                }
            }
        });
    }

    /**
     * y = relu?(γ·(x − μ)·invStd + β [+ residual]) with the running statistics, one pass over
     * (n, c) planes split into chunks of at least {@link #MIN_CHUNK} elements (a channel-per-task
     * split spends more on tasks than on work in ResNet's late stages: 2048 planes of 7×7 at 224²).
     * The per-channel scale and shift are formed in double as {@link #forward} forms them.
     */
    static void inference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps,
                          Tensor residual, boolean relu, Tensor y) {
        int c = x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        long planes = (long) x.shape(0) * c;
        double[] scale = new double[c];
        double[] shift = new double[c];
        for (int ch = 0; ch < c; ch++) {
            double invStd = 1 / Math.sqrt(ld(runningVar, ch) + eps);
            scale[ch] = ld(gamma, ch) * invStd;
            shift[ch] = ld(beta, ch) - ld(runningMean, ch) * scale[ch];
        }
        boolean f32 = x.dtype() == DType.FLOAT32;
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        MemorySegment rs = residual == null ? null : residual.segment();
        long ro = residual == null ? 0 : residual.offset();
        CpuThreads.parallelRange(planes, Math.max(1, MIN_CHUNK / Math.max(1, hw)), (start, end) -> {
            for (long pl = start; pl < end; pl++) {
                int ch = (int) (pl % c);
                long rel = pl * hw;
                if (f32) {
                    FloatKernels.scaleShiftAddRelu(xs, x.offset() + rel, rs, ro + rel, ys, y.offset() + rel, hw,
                            (float) scale[ch], (float) shift[ch], relu);
                    continue;
                }
                for (int j = 0; j < hw; j++) {
                    double v = ld(x, rel + j) * scale[ch] + shift[ch];
                    if (residual != null) {
                        v += ld(residual, rel + j);
                    }
                    st(y, rel + j, relu ? ScalarMath.unary(dir4j.engine.Backend.Unary.RELU, v, 0, 0) : v);
                }
            }
        });
    }

    static void backward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, boolean training,
                         Tensor dx, Tensor dgamma, Tensor dbeta) {
        int n = x.shape(0);
        int c = x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        long count = (long) n * hw;
        boolean f32 = x.dtype() == DType.FLOAT32;
        MemorySegment xs = x.segment();
        MemorySegment dys = dy.segment();
        MemorySegment dxs = dx.segment();
        CpuThreads.parallelFor(c, ch -> {
            double mean = ld(saveMean, ch);
            double invStd = ld(saveInvStd, ch);
            double g = ld(gamma, ch);
            double sumDy = 0;
            double sumDyXc = 0;
            for (int i = 0; i < n; i++) {
                long rel = ((long) i * c + ch) * hw;
                if (f32) {
                    sumDy += FloatKernels.sum(dys, dy.offset() + rel, 1, hw);
                    sumDyXc += FloatKernels.dotCentered(dys, dy.offset() + rel, xs, x.offset() + rel, hw, (float) mean);
                } else {
                    for (int j = 0; j < hw; j++) {
                        double d = ld(dy, rel + j);
                        sumDy += d;
                        sumDyXc += d * (ld(x, rel + j) - mean);
                    }
                }
            }
            st(dbeta, ch, sumDy);
            st(dgamma, ch, sumDyXc * invStd);
            // training: dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = γ·invStd·dy
            double a = g * invStd;
            double b = training ? -g * invStd * invStd * invStd * sumDyXc / count : 0;
            double cc = training ? -a * sumDy / count - b * mean : 0;
            for (int i = 0; i < n; i++) {
                long rel = ((long) i * c + ch) * hw;
                if (f32) {
                    FloatKernels.axpbyc(dys, dy.offset() + rel, xs, x.offset() + rel, dxs, dx.offset() + rel, hw,
                            (float) a, (float) b, (float) cc);
                } else {
                    for (int j = 0; j < hw; j++) {
                        st(dx, rel + j, a * ld(dy, rel + j) + b * ld(x, rel + j) + cc);
                    }
                }
            }
        });
    }

    /**
     * {@link #backward} of the gradient dz at the input of relu?(· [+ residual]) from the output y:
     * dz = dy·(y &gt; 0 ? 1 : 0) with relu, else dy, applied inside the two passes (never stored except
     * into dresidual, when not null). The same bits as {@link #backward} over a stored dz. Float32.
     */
    static void backwardAct(Tensor x, Tensor y, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                            boolean training, boolean relu, Tensor dx, Tensor dgamma, Tensor dbeta, Tensor dresidual) {
        int n = x.shape(0);
        int c = x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        long count = (long) n * hw;
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        MemorySegment dys = dy.segment();
        MemorySegment dxs = dx.segment();
        MemorySegment rs = dresidual == null ? null : dresidual.segment();
        long ro = dresidual == null ? 0 : dresidual.offset();
        CpuThreads.parallelFor(c, ch -> {
            double mean = ld(saveMean, ch);
            double invStd = ld(saveInvStd, ch);
            double g = ld(gamma, ch);
            double sumDy = 0;
            double sumDyXc = 0;
            for (int i = 0; i < n; i++) {
                long rel = ((long) i * c + ch) * hw;
                if (relu) {
                    double[] sums = FloatKernels.reluMaskedSums(dys, dy.offset() + rel, ys, y.offset() + rel, xs,
                            x.offset() + rel, hw, (float) mean);
                    sumDy += sums[0];
                    sumDyXc += sums[1];
                } else {
                    sumDy += FloatKernels.sum(dys, dy.offset() + rel, 1, hw);
                    sumDyXc += FloatKernels.dotCentered(dys, dy.offset() + rel, xs, x.offset() + rel, hw, (float) mean);
                }
            }
            st(dbeta, ch, sumDy);
            st(dgamma, ch, sumDyXc * invStd);
            double a = g * invStd;
            double b = training ? -g * invStd * invStd * invStd * sumDyXc / count : 0;
            double cc = training ? -a * sumDy / count - b * mean : 0;
            for (int i = 0; i < n; i++) {
                long rel = ((long) i * c + ch) * hw;
                FloatKernels.axpbycReluMasked(dys, dy.offset() + rel, ys, y.offset() + rel, relu, xs, x.offset() + rel,
                        dxs, dx.offset() + rel, rs, ro + rel, hw, (float) a, (float) b, (float) cc);
            }
        });
    }

    // ================================================================ channels-last (NHWC), float32
    //
    // x is N·H·W rows of C channels. The reductions take blocks of BLOCK_ROWS rows and, one vector
    // of channels at a time, sum the block's rows in registers (vectorised across channels), add
    // those sums into a second float sum per channel, and that into double every BLOCK_ROWS blocks: float sums of at most BLOCK_ROWS terms
    // each, double beyond, close to the NCHW kernels' float vector sums of one plane's run folded
    // into double (one float sum over tens of thousands of rows would lose digits). Work is a grid of tasks (a chunk of rows × a block of
    // channels) fixed by the shape alone, each with its own double partials combined in row-chunk
    // order afterwards, so the results do not depend on the thread count or on scheduling.
    // Many rows of few channels (64 × 50,000) split by rows; few rows of many channels
    // (2048 × 196) split by channel blocks.

    private static final VectorSpecies<Float> S = CpuVectors.FLOAT;
    private static final int L = S.length();
    private static final ByteOrder NO = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    /** Channels per reduction task (a multiple of any vector length). */
    private static final int COL_BLOCK = 256;
    /** Elements per reduction task. */
    private static final int TASK_ELEMENTS = 1 << 16;
    /** Terms of each float partial sum (rows per inner block, inner blocks per outer). */
    private static final int BLOCK_ROWS = 16;

    private static FloatVector load(MemorySegment s, long i) {
        return FloatVector.fromMemorySegment(S, s, i * 4, NO);
    }

    /** One reduction task: rows [r0, r1) of channels [c0, c0 + w), adding into out[q][base + j]. */
    @FunctionalInterface
    private interface RowTask {
        void run(long r0, long r1, int c0, int w, double[][] out, int base);
    }

    /** Per-channel double sums of {@code quantities} quantities over all rows, by the fixed task grid. */
    private static double[][] reduceRows(long rows, int c, int quantities, RowTask task) {
        int cb = Math.min(c, COL_BLOCK);
        int colBlocks = (c + cb - 1) / cb;
        long rowsPerTask = Math.max(1, TASK_ELEMENTS / cb);
        int rowChunks = (int) Math.max(1, (rows + rowsPerTask - 1) / rowsPerTask);
        double[][] part = new double[quantities][(int) ((long) rowChunks * c)];
        CpuThreads.parallelFor(rowChunks * colBlocks, t -> {
            int rc = t / colBlocks;
            int c0 = (t % colBlocks) * cb;
            long r0 = rc * rowsPerTask;
            task.run(r0, Math.min(rows, r0 + rowsPerTask), c0, Math.min(cb, c - c0), part, rc * c + c0);
        });
        double[][] total = new double[quantities][c];
        for (int q = 0; q < quantities; q++) {
            for (int rc = 0; rc < rowChunks; rc++) {
                for (int ch = 0; ch < c; ch++) {
                    total[q][ch] += part[q][rc * c + ch];
                }
            }
        }
        return total;
    }

    /**
     * Runs body over [0, rows) in chunks of about TASK_ELEMENTS elements claimed dynamically (a
     * static split into one chunk per thread waits for the slowest core, and these 2 cores are
     * shared).
     */
    private static void forRowChunks(long rows, int c, CpuThreads.RangeBody body) {
        long per = Math.max(1, TASK_ELEMENTS / c);
        int chunks = (int) ((rows + per - 1) / per);
        CpuThreads.parallelFor(chunks, k -> body.run(k * per, Math.min(rows, (k + 1) * per)));
    }

    /**
     * The float sums of one reduction task for channels [c0, c0 + w): the caller sums each block
     * of BLOCK_ROWS rows in registers (one vector of channels at a time) and adds the block's sums
     * with {@link #add}; {@link #blockDone} folds the middle float sums into the double partials
     * every BLOCK_ROWS blocks, {@link #finish} what is left.
     */
    private static final class Acc {
        private final float[] mid;
        private final double[] out;
        private final int base;
        private final int w;
        private int blocks;

        Acc(int w, double[] out, int base) {
            this.mid = new float[w];
            this.out = out;
            this.base = base;
            this.w = w;
        }

        void add(int j, FloatVector v) {
            FloatVector.fromArray(S, mid, j).add(v).intoArray(mid, j);
        }

        void add(int j, float v) {
            mid[j] += v;
        }

        void blockDone() {
            if (++blocks == BLOCK_ROWS) {
                blocks = 0;
                finish();
            }
        }

        void finish() {
            for (int j = 0; j < w; j++) {
                out[base + j] += mid[j];
                mid[j] = 0;
            }
        }
    }

    /**
     * {@link #forward} of a contiguous float32 channels-last x [N, H, W, C] into y of its shape:
     * the same statistics (two passes: the mean, then the sums of deviations from it and of their
     * squares, which correct the mean and give the variance), running-average update (unbiased
     * variance), saved mean and 1/√(var+eps),
     * and y = x·scale + shift with scale and shift formed in double and rounded to float.
     */
    static void forwardNhwc(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                            boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                            Tensor saveInvStd) {
        int c = x.shape(3);
        long rows = x.numel() / c;
        long count = rows;
        MemorySegment xs = x.segment();
        long xo = x.offset();
        double[] mean = new double[c];
        double[] var = new double[c];
        if (training) {
            double[] sum = reduceRows(rows, c, 1, (r0, r1, c0, w, out, base) -> {
                Acc sums = new Acc(w, out[0], base);
                int bound = S.loopBound(w);
                for (long rb = r0; rb < r1; rb += BLOCK_ROWS) {
                    long re = Math.min(r1, rb + BLOCK_ROWS);
                    int j = 0;
                    for (; j < bound; j += L) {
                        FloatVector acc = FloatVector.zero(S);
                        for (long r = rb, xr = xo + rb * c + c0 + j; r < re; r++, xr += c) {
                            acc = acc.add(load(xs, xr));
                        }
                        sums.add(j, acc);
                    }
                    for (; j < w; j++) {
                        float acc = 0;
                        for (long r = rb, xr = xo + rb * c + c0 + j; r < re; r++, xr += c) {
                            acc += xs.getAtIndex(F, xr);
                        }
                        sums.add(j, acc);
                    }
                    sums.blockDone();
                }
                sums.finish();
            })[0];
            float[] meanF = new float[c];
            for (int ch = 0; ch < c; ch++) {
                meanF[ch] = (float) (sum[ch] / count);
            }
            // the second pass sums d = x − mean₀ and d² (mean₀ the first pass's mean rounded to
            // float): mean = mean₀ + Σd/n and Σ(x − mean)² = Σd² − (Σd)²/n (the corrected two-pass
            // algorithm), so the float rounding of the first pass's sums and of mean₀ leaves neither
            // the mean nor the variance (a tight spread on a large offset, few rows)
            double[][] dev = reduceRows(rows, c, 2, (r0, r1, c0, w, out, base) -> {
                Acc sumsD = new Acc(w, out[0], base);
                Acc sumsD2 = new Acc(w, out[1], base);
                int bound = S.loopBound(w);
                for (long rb = r0; rb < r1; rb += BLOCK_ROWS) {
                    long re = Math.min(r1, rb + BLOCK_ROWS);
                    int j = 0;
                    for (; j < bound; j += L) {
                        FloatVector m = FloatVector.fromArray(S, meanF, c0 + j);
                        FloatVector accD = FloatVector.zero(S);
                        FloatVector accD2 = FloatVector.zero(S);
                        for (long r = rb, xr = xo + rb * c + c0 + j; r < re; r++, xr += c) {
                            FloatVector d = load(xs, xr).sub(m);
                            accD = accD.add(d);
                            accD2 = d.fma(d, accD2);
                        }
                        sumsD.add(j, accD);
                        sumsD2.add(j, accD2);
                    }
                    for (; j < w; j++) {
                        float m = meanF[c0 + j];
                        float accD = 0;
                        float accD2 = 0;
                        for (long r = rb, xr = xo + rb * c + c0 + j; r < re; r++, xr += c) {
                            float d = xs.getAtIndex(F, xr) - m;
                            accD += d;
                            accD2 = Math.fma(d, d, accD2);
                        }
                        sumsD.add(j, accD);
                        sumsD2.add(j, accD2);
                    }
                    sumsD.blockDone();
                    sumsD2.blockDone();
                }
                sumsD.finish();
                sumsD2.finish();
            });
            for (int ch = 0; ch < c; ch++) {
                double sd = dev[0][ch];
                mean[ch] = meanF[ch] + sd / count;
                double ss = Math.max(0, dev[1][ch] - sd * sd / count);
                var[ch] = ss / count; // biased, for normalisation (as PyTorch)
                if (runningMean != null) {
                    st(runningMean, ch, (1 - momentum) * ld(runningMean, ch) + momentum * mean[ch]);
                }
                if (runningVar != null) {
                    double unbiased = count > 1 ? ss / (count - 1) : var[ch];
                    st(runningVar, ch, (1 - momentum) * ld(runningVar, ch) + momentum * unbiased);
                }
            }
        } else {
            for (int ch = 0; ch < c; ch++) {
                mean[ch] = ld(runningMean, ch);
                var[ch] = ld(runningVar, ch);
            }
        }
        float[] scale = new float[c];
        float[] shift = new float[c];
        for (int ch = 0; ch < c; ch++) {
            double invStd = 1 / Math.sqrt(var[ch] + eps);
            st(saveMean, ch, mean[ch]);
            st(saveInvStd, ch, invStd);
            double sc = ld(gamma, ch) * invStd;
            scale[ch] = (float) sc;
            shift[ch] = (float) (ld(beta, ch) - mean[ch] * sc);
        }
        MemorySegment ys = y.segment();
        long yo = y.offset();
        int bound = S.loopBound(c);
        forRowChunks(rows, c, (r0, r1) -> {
            // blocks of rows, a vector of channels at a time with its scale and shift in registers
            for (long rb = r0; rb < r1; rb += BLOCK_ROWS) {
                long re = Math.min(r1, rb + BLOCK_ROWS);
                int j = 0;
                for (; j < bound; j += L) {
                    FloatVector sv = FloatVector.fromArray(S, scale, j);
                    FloatVector hv = FloatVector.fromArray(S, shift, j);
                    for (long r = rb, off = rb * c + j; r < re; r++, off += c) {
                        load(xs, xo + off).fma(sv, hv).intoMemorySegment(ys, (yo + off) * 4, NO);
                    }
                }
                for (; j < c; j++) {
                    for (long r = rb, off = rb * c + j; r < re; r++, off += c) {
                        ys.setAtIndex(F, yo + off, Math.fma(xs.getAtIndex(F, xo + off), scale[j], shift[j]));
                    }
                }
            }
        });
    }

    /**
     * {@link #backward} of a contiguous float32 channels-last x [N, H, W, C]: dbeta = Σ dy,
     * dgamma = Σ dy·(x − mean)·invStd, dx = a·dy + b·x + c per channel with the NCHW formulas.
     */
    static void backwardNhwc(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                             boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        int c = x.shape(3);
        long rows = x.numel() / c;
        long count = rows;
        MemorySegment xs = x.segment();
        MemorySegment dys = dy.segment();
        long xo = x.offset();
        long dyo = dy.offset();
        float[] meanF = new float[c];
        for (int ch = 0; ch < c; ch++) {
            meanF[ch] = (float) ld(saveMean, ch);
        }
        double[][] sums = reduceRows(rows, c, 2, (r0, r1, c0, w, out, base) -> {
            Acc sumsDy = new Acc(w, out[0], base);
            Acc sumsDyXc = new Acc(w, out[1], base);
            int bound = S.loopBound(w);
            for (long rb = r0; rb < r1; rb += BLOCK_ROWS) {
                long re = Math.min(r1, rb + BLOCK_ROWS);
                int j = 0;
                for (; j < bound; j += L) {
                    FloatVector m = FloatVector.fromArray(S, meanF, c0 + j);
                    FloatVector accDy = FloatVector.zero(S);
                    FloatVector accDyXc = FloatVector.zero(S);
                    long off = rb * c + c0 + j;
                    for (long r = rb; r < re; r++, off += c) {
                        FloatVector d = load(dys, dyo + off);
                        accDy = accDy.add(d);
                        accDyXc = load(xs, xo + off).sub(m).fma(d, accDyXc);
                    }
                    sumsDy.add(j, accDy);
                    sumsDyXc.add(j, accDyXc);
                }
                for (; j < w; j++) {
                    float m = meanF[c0 + j];
                    float accDy = 0;
                    float accDyXc = 0;
                    long off = rb * c + c0 + j;
                    for (long r = rb; r < re; r++, off += c) {
                        float d = dys.getAtIndex(F, dyo + off);
                        accDy += d;
                        accDyXc = Math.fma(xs.getAtIndex(F, xo + off) - m, d, accDyXc);
                    }
                    sumsDy.add(j, accDy);
                    sumsDyXc.add(j, accDyXc);
                }
                sumsDy.blockDone();
                sumsDyXc.blockDone();
            }
            sumsDy.finish();
            sumsDyXc.finish();
        });
        float[] av = new float[c];
        float[] bv = new float[c];
        float[] cv = new float[c];
        for (int ch = 0; ch < c; ch++) {
            double mean = ld(saveMean, ch);
            double invStd = ld(saveInvStd, ch);
            double g = ld(gamma, ch);
            double sumDy = sums[0][ch];
            double sumDyXc = sums[1][ch];
            st(dbeta, ch, sumDy);
            st(dgamma, ch, sumDyXc * invStd);
            // training: dx = γ·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = γ·invStd·dy
            double a = g * invStd;
            double b = training ? -g * invStd * invStd * invStd * sumDyXc / count : 0;
            double cc = training ? -a * sumDy / count - b * mean : 0;
            av[ch] = (float) a;
            bv[ch] = (float) b;
            cv[ch] = (float) cc;
        }
        MemorySegment dxs = dx.segment();
        long dxo = dx.offset();
        int bound = S.loopBound(c);
        forRowChunks(rows, c, (r0, r1) -> {
            for (long rb = r0; rb < r1; rb += BLOCK_ROWS) {
                long re = Math.min(r1, rb + BLOCK_ROWS);
                int j = 0;
                for (; j < bound; j += L) {
                    FloatVector a = FloatVector.fromArray(S, av, j);
                    FloatVector b = FloatVector.fromArray(S, bv, j);
                    FloatVector cc = FloatVector.fromArray(S, cv, j);
                    for (long r = rb, off = rb * c + j; r < re; r++, off += c) {
                        load(dys, dyo + off).fma(a, load(xs, xo + off).fma(b, cc))
                                .intoMemorySegment(dxs, (dxo + off) * 4, NO);
                    }
                }
                for (; j < c; j++) {
                    for (long r = rb, off = rb * c + j; r < re; r++, off += c) {
                        dxs.setAtIndex(F, dxo + off, Math.fma(dys.getAtIndex(F, dyo + off), av[j],
                                Math.fma(xs.getAtIndex(F, xo + off), bv[j], cv[j])));
                    }
                }
            }
        });
    }

    private static double scalarSum(Tensor x, long rel, int len) {
        double s = 0;
        for (int j = 0; j < len; j++) {
            s += ld(x, rel + j);
        }
        return s;
    }

    private static double scalarSsd(Tensor x, long rel, int len, double mean) {
        double s = 0;
        for (int j = 0; j < len; j++) {
            double d = ld(x, rel + j) - mean;
            s += d * d;
        }
        return s;
    }
}
