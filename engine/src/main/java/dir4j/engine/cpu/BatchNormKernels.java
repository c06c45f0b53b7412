package dir4j.engine.cpu;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Batch norm over (N, H, W) per channel of a contiguous NCHW tensor, parallel over channels.
 * Each channel's data is N runs of H·W contiguous values; float32 runs are vectorised.
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
