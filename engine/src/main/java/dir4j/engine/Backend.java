package dir4j.engine;

/**
 * The kernels of one device. A small set of primitives (fill, copy, elementwise unary and
 * binary with broadcasting through stride-0 views, reductions, cumulative sum) plus the fused
 * ops that earn their place by speed (GEMM, convolution, batch norm, pooling). Backends know
 * nothing of autograd: {@link Ops} composes these into differentiable ops.
 *
 * <p>Conventions: every {@code out} is a contiguous tensor of the documented shape and the same
 * dtype and device as the inputs, allocated by the caller; inputs may be any strided view.
 */
public interface Backend {

    /** The device this backend computes on. */
    Device device();

    /** Fresh zero-filled storage of {@code bytes}. */
    Storage allocate(long bytes);

    /** Fresh storage whose contents are undefined, for outputs a kernel overwrites entirely. */
    default Storage allocateUninitialized(long bytes) {
        return allocate(bytes);
    }

    /** out[...] = value. {@code out} may be any view. */
    void fill(Tensor out, double value);

    /** dst[...] = src[...] for two views of one shape; converts dtype when they differ. */
    void copy(Tensor src, Tensor dst);

    /** Elementwise functions of one input; alpha and beta are the op's parameters. */
    enum Unary {
        /** -x */ NEG,
        /** e^x */ EXP,
        /** ln x */ LOG,
        /** √x */ SQRT,
        /** |x| */ ABS,
        /** sign(x) ∈ {−1, 0, 1} */ SIGN,
        /** 1/x */ RECIPROCAL,
        /** max(x, 0) */ RELU,
        /** x^alpha */ POW,
        /** min(max(x, alpha), beta); NaN bounds are absent */ CLAMP,
        /** alpha·x + beta */ AFFINE,
        /** 1 where x &gt; alpha, else 0 */ GREATER,
        /** 1 where alpha ≤ x ≤ beta (NaN bounds absent), else 0 */ IN_RANGE
    }

    /** out = f(x; alpha, beta), x of out's shape. */
    void unary(Unary op, Tensor x, double alpha, double beta, Tensor out);

    /** Elementwise functions of two inputs. */
    enum Binary {
        ADD, SUB, MUL, DIV, MAX, MIN,
        /** a^b */ POW,
        /** 1 where a == b, else 0 */ EQ,
        /** 1 where a &gt; b, else 0 */ GT
    }

    /** out = f(a, b); a and b are views of out's shape (broadcast dimensions have stride 0). */
    void binary(Binary op, Tensor a, Tensor b, Tensor out);

    /**
     * ReLU's backward: out = g · (x &gt; 0 ? 1 : 0), elementwise over tensors of one shape and
     * dtype (the product, so a NaN or infinite g still gives NaN where x ≤ 0). The default is that
     * product with a mask; a backend may do it in one pass.
     */
    default void reluBackward(Tensor g, Tensor x, Tensor out) {
        try (Tensor mask = Tensor.uninitialized(x.dtype(), x.device(), x.shape())) {
            unary(Unary.GREATER, x, 0, 0, mask);
            binary(Binary.MUL, g, mask, out);
        }
    }

    /** Reductions. */
    enum Reduce { SUM, MAX, MIN }

    /**
     * Reduces x over the axes where {@code reduceAxes[i]} is true; out has x's rank with those
     * dimensions of size 1 (keep-dim form).
     */
    void reduce(Reduce op, Tensor x, boolean[] reduceAxes, Tensor out);

    /** Inclusive cumulative sum along an axis (from the end when {@code reverse}). */
    void cumsum(Tensor x, int axis, boolean reverse, Tensor out);

    /**
     * Batched matrix product: a [B, M, K] · b [B, K, N] → out [B, M, N]; a and b may have any
     * strides (a transposed operand is a permuted view, batch stride 0 broadcasts).
     */
    void matmul(Tensor a, Tensor b, Tensor out);

    /** Convolution geometry, PyTorch semantics (groups = 1). */
    record ConvParams(int strideH, int strideW, int padH, int padW, int dilationH, int dilationW) {}

    /** y [N, Co, Ho, Wo] = conv2d(x [N, Ci, H, W], w [Co, Ci, kh, kw]), no bias; inputs contiguous. */
    void conv2d(Tensor x, Tensor w, ConvParams p, Tensor y);

    /** dx [N, Ci, H, W] from dy and w; inputs contiguous. */
    void conv2dBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx);

    /** dw [Co, Ci, kh, kw] from x and dy; inputs contiguous. */
    void conv2dBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw);

    /**
     * Channels-last convolution with its epilogue fused:
     * y = relu?(conv2d(x, w) [+ bias] [+ z]), with x [N, H, W, Ci], w [Co, kh, kw, Ci], bias [Co]
     * or null, z [N, Ho, Wo, Co] or null (a residual) and y [N, Ho, Wo, Co], all contiguous and
     * float32 (z and y distinct). For inference a batch norm with running statistics folds into w
     * and bias, so a ResNet's conv + BN (+ residual) + ReLU is one call; training passes bias and z
     * null and relu false (the plain forward, whose backward is {@link #conv2dNhwcBackwardData} and
     * {@link #conv2dNhwcBackwardFilter}). The default is the reference: the NCHW {@link #conv2d} on
     * permuted copies, then the bias, z and the ReLU as separate ops; CUDA runs cuDNN's
     * channels-last tensor-core kernels with the epilogue fused.
     */
    default void conv2dNhwc(Tensor x, Tensor w, Tensor bias, Tensor z, boolean relu, ConvParams p, Tensor y) {
        checkConv2dNhwc(x, w, bias, z, p, y);
        int[] ys = y.shape();
        try (Tensor xv = nchwView(x); Tensor wv = nchwView(w);
             Tensor xc = Tensor.uninitialized(x.dtype(), x.device(), xv.shape());
             Tensor wc = Tensor.uninitialized(w.dtype(), w.device(), wv.shape());
             Tensor out = Tensor.uninitialized(y.dtype(), y.device(), ys[0], ys[3], ys[1], ys[2]);
             Tensor yv = nchwView(y)) {
            copy(xv, xc);
            copy(wv, wc);
            conv2d(xc, wc, p, out);
            if (bias != null) {
                try (Tensor b = bias.viewOf(out.shape(), new long[] {0, bias.stride(0), 0, 0}, bias.offset())) {
                    binary(Binary.ADD, out, b, out);
                }
            }
            if (z != null) {
                try (Tensor zv = nchwView(z)) {
                    binary(Binary.ADD, out, zv, out);
                }
            }
            if (relu) {
                unary(Unary.RELU, out, 0, 0, out);
            }
            copy(out, yv);
        }
    }

    /** Checks {@link #conv2dNhwc}'s operands, naming what is wrong. */
    static void checkConv2dNhwc(Tensor x, Tensor w, Tensor bias, Tensor z, ConvParams p, Tensor y) {
        String shapes = "x " + Shape.str(x.shape()) + ", w " + Shape.str(w.shape()) + ", bias "
                + (bias == null ? "none" : Shape.str(bias.shape())) + ", z " + (z == null ? "none" : Shape.str(z.shape())) + ", y "
                + Shape.str(y.shape());
        DType dtype = x.dtype() == DType.FLOAT64 ? DType.FLOAT64 : DType.FLOAT32;
        for (Tensor t : new Tensor[] {x, w, bias, z, y}) {
            if (t != null && (t.dtype() != dtype || !t.isContiguous())) {
                throw new IllegalArgumentException("conv2dNhwc: every operand must be a contiguous float32 tensor "
                        + "(float64 on the CPU) of one dtype (" + shapes + "); got a "
                        + (t.isContiguous() ? "" : "strided ") + t.dtype() + " one");
            }
        }
        if (x.rank() != 4 || w.rank() != 4 || (bias != null && (bias.rank() != 1 || bias.shape(0) != w.shape(0)))
                || y.rank() != 4 || w.shape(3) != x.shape(3) || y.shape(3) != w.shape(0) || y.shape(0) != x.shape(0)) {
            throw new IllegalArgumentException("conv2dNhwc: expected x [N, H, W, Ci], w [Co, kh, kw, Ci], bias [Co], "
                    + "y [N, Ho, Wo, Co]; got " + shapes);
        }
        int ho = (x.shape(1) + 2 * p.padH() - p.dilationH() * (w.shape(1) - 1) - 1) / p.strideH() + 1;
        int wo = (x.shape(2) + 2 * p.padW() - p.dilationW() * (w.shape(2) - 1) - 1) / p.strideW() + 1;
        if (y.shape(1) != ho || y.shape(2) != wo) {
            throw new IllegalArgumentException("conv2dNhwc: " + p + " gives " + ho + "x" + wo + " outputs; got "
                    + shapes);
        }
        if (z != null && !java.util.Arrays.equals(z.shape(), y.shape())) {
            throw new IllegalArgumentException("conv2dNhwc: z must have y's shape; got " + shapes);
        }
        // cuDNN reads the inputs while it writes y, and its first call (the algorithm search)
        // overwrites y before the fused call reads z: on CUDA an overlap would be wrong
        for (Tensor t : new Tensor[] {x, w, bias, z}) {
            if (t != null && overlaps(t, y)) {
                throw new IllegalArgumentException("conv2dNhwc: y must not share memory with x, w, bias or z ("
                        + shapes + ")");
            }
        }
    }

    /** Whether two contiguous tensors' elements share memory. */
    private static boolean overlaps(Tensor a, Tensor b) {
        return a.storage() == b.storage() && a.numel() > 0 && b.numel() > 0 && a.offset() < b.offset() + b.numel()
                && b.offset() < a.offset() + a.numel();
    }

    /**
     * dx [N, H, W, Ci] from dy [N, Ho, Wo, Co] and w [Co, kh, kw, Ci] of the channels-last
     * convolution (the backward of {@link #conv2dNhwc} without bias, z and ReLU); all contiguous.
     * The default runs {@link #conv2dBackwardData} on permuted copies; CUDA runs cuDNN on NHWC
     * descriptors.
     */
    default void conv2dNhwcBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        checkConv2dNhwc(dx, w, null, null, p, dy);
        try (Tensor dyc = nchwCopy(this, dy); Tensor wc = nchwCopy(this, w);
             Tensor out = Tensor.uninitialized(dx.dtype(), dx.device(), dx.shape(0), dx.shape(3), dx.shape(1),
                     dx.shape(2));
             Tensor dxv = nchwView(dx)) {
            conv2dBackwardData(dyc, wc, p, out);
            copy(out, dxv);
        }
    }

    /**
     * dw [Co, kh, kw, Ci] from x [N, H, W, Ci] and dy [N, Ho, Wo, Co] of the channels-last
     * convolution; all contiguous. The default runs {@link #conv2dBackwardFilter} on permuted
     * copies; CUDA runs cuDNN on NHWC descriptors.
     */
    default void conv2dNhwcBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        checkConv2dNhwc(x, dw, null, null, p, dy);
        try (Tensor xc = nchwCopy(this, x); Tensor dyc = nchwCopy(this, dy);
             Tensor out = Tensor.uninitialized(dw.dtype(), dw.device(), dw.shape(0), dw.shape(3), dw.shape(1),
                     dw.shape(2));
             Tensor dwv = nchwView(dw)) {
            conv2dBackwardFilter(xc, dyc, p, out);
            copy(out, dwv);
        }
    }

    /**
     * Max pooling of a contiguous channels-last x [N, H, W, C] into y [N, Ho, Wo, C], with
     * {@link #maxPool2d}'s semantics (−∞ padding, floor mode, NaN wins): the argmax (the flat
     * h·W + w index within x's channel plane, the first maximum in the window's row-major scan) to
     * indices [N, Ho, Wo, C] (int32), or none when indices is null (inference). The default pools a
     * permuted NCHW copy.
     */
    default void maxPool2dNhwc(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        checkMaxPool2dNhwc(x, y, indices);
        try (Tensor xc = nchwCopy(this, x); Tensor yv = nchwView(y);
             Tensor out = Tensor.uninitialized(y.dtype(), y.device(), yv.shape());
             Tensor idx = indices == null ? null : Tensor.uninitialized(DType.INT32, y.device(), yv.shape());
             Tensor iv = indices == null ? null : nchwView(indices)) {
            maxPool2d(xc, p, out, idx);
            copy(out, yv);
            if (idx != null) {
                copy(idx, iv);
            }
        }
    }

    /** Checks {@link #maxPool2dNhwc}'s operands, naming what is wrong. */
    static void checkMaxPool2dNhwc(Tensor x, Tensor y, Tensor indices) {
        if (x.rank() != 4 || y.rank() != 4 || x.shape(0) != y.shape(0) || x.shape(3) != y.shape(3) || !x.isContiguous()
                || !y.isContiguous() || (indices != null && (!indices.isContiguous() || indices.dtype() != DType.INT32
                || !java.util.Arrays.equals(indices.shape(), y.shape())))) {
            throw new IllegalArgumentException("maxPool2dNhwc: expected contiguous x [N, H, W, C], y [N, Ho, Wo, C] "
                    + "and int32 indices of y's shape (or none); got " + Shape.str(x.shape()) + ", "
                    + Shape.str(y.shape()) + " and " + (indices == null ? "none" : indices.dtype() + " "
                    + Shape.str(indices.shape())));
        }
    }

    /**
     * dx [N, H, W, C] (zeroed by the caller) += dy [N, Ho, Wo, C] routed through the indices of
     * {@link #maxPool2dNhwc} with the same geometry; where windows overlap each input sums its
     * outputs' gradients in row-major output order, as {@link #maxPool2dBackward}, so the result
     * has its bits. The default runs that on permuted copies.
     */
    default void maxPool2dNhwcBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx) {
        checkMaxPool2dNhwc(dx, dy, indices);
        try (Tensor dyc = nchwCopy(this, dy); Tensor ic = nchwCopy(this, indices); Tensor dxc = nchwCopy(this, dx);
             Tensor dxv = nchwView(dx)) {
            maxPool2dBackward(dyc, ic, p, dxc);
            copy(dxc, dxv);
        }
    }

    /** A contiguous [N, C, H, W] copy of a [N, H, W, C] tensor (the caller closes it). */
    private static Tensor nchwCopy(Backend b, Tensor t) {
        try (Tensor v = nchwView(t)) {
            Tensor c = Tensor.uninitialized(t.dtype(), t.device(), v.shape());
            b.copy(v, c);
            return c;
        }
    }

    /** A [N, H, W, C] tensor seen as [N, C, H, W] (the same memory, strided). */
    private static Tensor nchwView(Tensor t) {
        return t.viewOf(new int[] {t.shape(0), t.shape(3), t.shape(1), t.shape(2)},
                new long[] {t.stride(0), t.stride(3), t.stride(1), t.stride(2)}, t.offset());
    }

    /**
     * Batch norm over (N, H, W) per channel of a contiguous x [N, C, H, W]. In training,
     * statistics come from the batch, running averages are updated in place
     * (running = (1 − momentum)·running + momentum·stat, the variance unbiased as in PyTorch) and
     * the batch mean and 1/√(var+eps) are written to saveMean/saveInvStd [C] for the backward; in
     * eval, the running statistics are used and saveMean/saveInvStd receive them.
     */
    void batchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                     boolean training, double momentum, double eps, Tensor y, Tensor saveMean, Tensor saveInvStd);

    /**
     * Inference batch norm fused with what follows it in a residual block, one pass over x:
     * y = relu?(γ·(x − μ)/√(σ² + eps) + β [+ residual]) per channel of a contiguous x [N, C, H, W],
     * with the running statistics μ, σ² and a contiguous residual of x's shape (or null). y may be
     * x itself (in place). Rounds as {@link #batchNorm2d} in eval mode followed by an add and a
     * ReLU, so fusing never changes a result. The default composes those primitives.
     */
    default void batchNorm2dInference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                      double eps, Tensor residual, boolean relu, Tensor y) {
        try (Tensor mean = Tensor.empty(x.dtype(), x.device(), x.shape(1));
             Tensor invStd = Tensor.empty(x.dtype(), x.device(), x.shape(1))) {
            batchNorm2d(x, gamma, beta, runningMean, runningVar, false, 0, eps, y, mean, invStd);
        }
        if (residual != null) {
            binary(Binary.ADD, y, residual, y);
        }
        if (relu) {
            unary(Unary.RELU, y, 0, 0, y);
        }
    }

    /**
     * Gradients of batch norm given the saved statistics. With {@code training} the batch
     * statistics' dependence on x is included; otherwise they are constants. dgamma/dbeta [C].
     */
    void batchNorm2dBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                             boolean training, Tensor dx, Tensor dgamma, Tensor dbeta);

    /**
     * {@link #batchNorm2d} (either mode, the same statistics, running-average update and saved
     * mean and 1/√(var+eps)) followed by what ends a ResNet block's branch:
     * y = relu?(BN(x) [+ residual]), residual (or null) contiguous of x's shape, y distinct from x
     * and residual. The values are exactly those of the three ops in turn; a backend may fuse the
     * add and the ReLU into batch norm's last pass. The default composes them.
     */
    default void batchNorm2dAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                boolean training, double momentum, double eps, Tensor residual, boolean relu, Tensor y,
                                Tensor saveMean, Tensor saveInvStd) {
        batchNorm2d(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y, saveMean, saveInvStd);
        addAndRelu(y, residual, relu);
    }

    /** y += residual (when not null), then y = relu(y) (when relu), in place: the composed epilogues. */
    private void addAndRelu(Tensor y, Tensor residual, boolean relu) {
        if (residual != null) {
            binary(Binary.ADD, y, residual, y);
        }
        if (relu) {
            unary(Unary.RELU, y, 0, 0, y);
        }
    }

    /**
     * The backward of {@link #batchNorm2dAct} from its input x, its output y and dy: with relu the
     * gradient at the ReLU's input is dz = dy · (y &gt; 0 ? 1 : 0) (y &gt; 0 exactly where the ReLU's
     * input is, so the output serves as {@link #reluBackward}'s mask), else dz = dy; dresidual (or
     * null when not wanted) receives dz, and dx, dgamma, dbeta are {@link #batchNorm2dBackward}'s
     * of dz. The values are exactly those of the composition, which is the default; a backend may
     * apply the mask inside batch norm's passes instead of materialising dz.
     */
    default void batchNorm2dActBackward(Tensor x, Tensor y, Tensor dy, Tensor gamma, Tensor saveMean,
                                        Tensor saveInvStd, boolean training, boolean relu, Tensor dx, Tensor dgamma,
                                        Tensor dbeta, Tensor dresidual) {
        maskedBackward(y, dy, relu, dresidual,
                dz -> batchNorm2dBackward(x, dz, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta));
    }

    /**
     * The composed epilogue backwards: dz = dy · (y &gt; 0 ? 1 : 0) with relu, else dy, into
     * dresidual when not null; then {@code backward} of dz.
     */
    private void maskedBackward(Tensor y, Tensor dy, boolean relu, Tensor dresidual,
                                java.util.function.Consumer<Tensor> backward) {
        Tensor dz = dy;
        if (relu) {
            dz = dresidual != null ? dresidual : Tensor.uninitialized(dy.dtype(), dy.device(), dy.shape());
            reluBackward(dy, y, dz);
        } else if (dresidual != null) {
            copy(dy, dresidual);
        }
        try {
            backward.accept(dz);
        } finally {
            if (dz != dy && dz != dresidual) {
                dz.close();
            }
        }
    }

    /**
     * {@link #batchNorm2d} over (N, H, W) per channel of a contiguous channels-last x [N, H, W, C]
     * into y of x's shape: the same statistics, running-average update and saved mean and
     * 1/√(var+eps). The default runs {@link #batchNorm2d} on permuted copies.
     */
    default void batchNorm2dNhwc(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                 boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                                 Tensor saveInvStd) {
        try (Tensor xc = nchwCopy(this, x); Tensor out = Tensor.uninitialized(y.dtype(), y.device(), xc.shape());
             Tensor yv = nchwView(y)) {
            batchNorm2d(xc, gamma, beta, runningMean, runningVar, training, momentum, eps, out, saveMean, saveInvStd);
            copy(out, yv);
        }
    }

    /**
     * {@link #batchNorm2dBackward} of a contiguous channels-last x [N, H, W, C]: dx of x's shape,
     * dgamma/dbeta [C]. The default runs the NCHW backward on permuted copies.
     */
    default void batchNorm2dNhwcBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                         boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        try (Tensor xc = nchwCopy(this, x); Tensor dyc = nchwCopy(this, dy);
             Tensor out = Tensor.uninitialized(dx.dtype(), dx.device(), xc.shape()); Tensor dxv = nchwView(dx)) {
            batchNorm2dBackward(xc, dyc, gamma, saveMean, saveInvStd, training, out, dgamma, dbeta);
            copy(out, dxv);
        }
    }

    /**
     * {@link #batchNorm2dNhwc} (either mode) followed by what ends a ResNet block's branch, as
     * {@link #batchNorm2dAct} on NCHW: y = relu?(BN(x) [+ residual]), residual (or null) contiguous
     * channels-last of x's shape, y distinct from x and residual. The values are exactly those of
     * the three ops in turn, which is the default; CUDA fuses the add and the ReLU into batch
     * norm's last pass.
     */
    default void batchNorm2dNhwcAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                    boolean training, double momentum, double eps, Tensor residual, boolean relu,
                                    Tensor y, Tensor saveMean, Tensor saveInvStd) {
        batchNorm2dNhwc(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y, saveMean, saveInvStd);
        addAndRelu(y, residual, relu);
    }

    /**
     * The backward of {@link #batchNorm2dNhwcAct} from x, its output y and dy, as
     * {@link #batchNorm2dActBackward} on NCHW: dz = dy · (y &gt; 0 ? 1 : 0) with relu, else dy;
     * dresidual (or null) receives dz; dx, dgamma, dbeta are {@link #batchNorm2dNhwcBackward}'s of
     * dz. The default composes them; CUDA applies the mask inside batch norm's passes.
     */
    default void batchNorm2dNhwcActBackward(Tensor x, Tensor y, Tensor dy, Tensor gamma, Tensor saveMean,
                                            Tensor saveInvStd, boolean training, boolean relu, Tensor dx,
                                            Tensor dgamma, Tensor dbeta, Tensor dresidual) {
        maskedBackward(y, dy, relu, dresidual,
                dz -> batchNorm2dNhwcBackward(x, dz, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta));
    }

    /** Device work recorded once by {@link #record} and queued again by {@link Recording#replay}. */
    interface Recording extends AutoCloseable {
        /** Queues the recorded work again: the same kernels on the same buffers, in order. */
        void replay();

        /** Frees the recording and the memory only it used. Idempotent. */
        @Override
        void close();
    }

    /**
     * Records the device work that {@code body} queues, without running it, for replays that skip
     * the host's per-op cost ({@link Recording#replay}); on CUDA a graph captured from the
     * device's stream. The body must queue the same work on every replay: it writes and reads
     * buffers that stay allocated (their contents may change between replays), reads nothing back
     * to the host and synchronises nothing, and no other thread may use the device while it
     * runs. Returns null when this backend cannot record (the default: the CPU runs ops as they
     * come); throws when recording fails, having left the device as it was.
     */
    default Recording record(Runnable body) {
        return null;
    }

    /** Pooling window geometry. */
    record PoolParams(int kernelH, int kernelW, int strideH, int strideW, int padH, int padW) {}

    /**
     * Max pooling of a contiguous x [N, C, H, W]; argmax (flat h·W+w index per plane, the first
     * maximum in scan order) to indices (int32), or no argmax when indices is null (no backward
     * will run). A NaN in a window is its maximum.
     */
    void maxPool2d(Tensor x, PoolParams p, Tensor y, Tensor indices);

    /**
     * dx (zeroed by the caller) += dy routed through the indices of {@link #maxPool2d} with the same
     * window geometry p. Where windows overlap, each input sums its outputs' gradients in scan
     * order (row-major over the outputs), so every backend gives the same bits run after run.
     */
    void maxPool2dBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx);

    /**
     * Average pooling of a contiguous x [N, C, H, W] over windows given per output row/column:
     * rows [hStart[i], hEnd[i]), columns [wStart[j], wEnd[j]) clipped to the input; the divisor is
     * the window size before clipping when {@code divisorFromWindow}, else the clipped size.
     * Covers avg_pool2d (with count_include_pad) and adaptive_avg_pool2d.
     */
    void avgPool2d(Tensor x, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd, boolean divisorFromWindow, Tensor y);

    /** dx (zeroed by the caller) += the adjoint of {@link #avgPool2d}. */
    void avgPool2dBackward(Tensor dy, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd, boolean divisorFromWindow,
                           Tensor dx);

    /** out = x.index_select(axis, indices): indices int32 [K]; out has K along axis. */
    void indexSelect(Tensor x, int axis, Tensor indices, Tensor out);

    /**
     * dx (caller-initialised, contiguous) += scatter of g along axis at indices (the adjoint of
     * indexSelect). A repeated index sums its slices in the order they appear in indices, so the
     * result is deterministic and the same on every backend.
     */
    void indexAdd(Tensor g, int axis, Tensor indices, Tensor dx);

    // ---------------------------------------------------------------- the method's fused ops

    /**
     * Generalized-mean pooling: y[n, c] = (mean_hw max(x, eps)^p)^(1/p) for a contiguous
     * x [N, C, H, W]; p is a one-element tensor (read where the kernel runs).
     */
    void gem(Tensor x, Tensor p, double eps, Tensor y);

    /**
     * GeM backward: dx [N, C, H, W] from dy [N, C], and dpPartial [N, C] with each plane's
     * contribution to dL/dp (the caller sums them).
     */
    void gemBackward(Tensor x, Tensor p, double eps, Tensor y, Tensor dy, Tensor dx, Tensor dpPartial);

    /**
     * The AP loss's bins: nq triangular kernels of width Δ = (max − min)/(nq − 1) centred from
     * max down to min, the two end bins saturating.
     *
     * @param nq  number of bins, 2 … 100 (the reference's range)
     * @param min centre of the lowest bin (finite)
     * @param max centre of the highest bin (finite, above min)
     * @throws IllegalArgumentException naming the value, for nq outside [2, 100], min ≥ max, NaN
     *         or an infinite end
     */
    record ApBins(int nq, double min, double max) {
        public ApBins {
            if (nq < 2 || nq > 100) {
                throw new IllegalArgumentException("AP loss: nq must be in [2, 100], got " + nq);
            }
            if (!(max > min)) {
                throw new IllegalArgumentException("AP loss: max (" + max + ") must exceed min (" + min + ")");
            }
            if (!Double.isFinite(min) || !Double.isFinite(max)) {
                // an infinite range makes the bin width infinite: every score would weigh 0 or NaN
                throw new IllegalArgumentException("AP loss: min (" + min + ") and max (" + max + ") must be finite");
            }
        }
    }

    /**
     * The k largest entries of each row of scores [R, N] (float32, unit column stride), in the
     * order of search results: higher score first, equal scores by lower column, NaN last. values
     * [R, k] (float32) and indices [R, k] (int32 column numbers), contiguous, best first.
     * 1 ≤ k ≤ N, and k ≤ {@link #TOPK_MAX} on CUDA.
     */
    void topk(Tensor scores, int k, Tensor values, Tensor indices);

    /** The largest k {@link #topk} takes on every backend. */
    int TOPK_MAX = 1024;

    /** Checks {@link #topk}'s operands (kMax: the backend's largest k), naming what is wrong. */
    static void checkTopk(Tensor scores, int k, Tensor values, Tensor indices, int kMax) {
        if (scores.rank() != 2 || scores.dtype() != DType.FLOAT32 || (scores.shape(1) > 1 && scores.stride(1) != 1)) {
            throw new IllegalArgumentException("topk: scores must be a float32 [R, N] with contiguous rows, got "
                    + Shape.str(scores.shape()) + " " + scores.dtype());
        }
        int rows = scores.shape(0);
        int n = scores.shape(1);
        if (k < 1 || k > n || k > kMax) {
            throw new IllegalArgumentException("topk: k = " + k + " must be in [1, min(" + n + " columns, " + kMax
                    + ")]");
        }
        if (values.dtype() != DType.FLOAT32 || !values.isContiguous() || values.rank() != 2 || values.shape(0) != rows
                || values.shape(1) != k || indices.dtype() != DType.INT32 || !indices.isContiguous()
                || indices.rank() != 2 || indices.shape(0) != rows || indices.shape(1) != k) {
            throw new IllegalArgumentException("topk: values must be a contiguous float32 [" + rows + ", " + k
                    + "] and indices an int32 one, got " + Shape.str(values.shape()) + " " + values.dtype() + " and "
                    + Shape.str(indices.shape()) + " " + indices.dtype());
        }
    }

    /** {@code excludedDiagonal} of the AP histogram ops when no score is left out. */
    int AP_KEEP_ALL = Integer.MIN_VALUE;

    /**
     * The labels of the AP histogram ops, one of two forms: a dense 0/1 matrix [N, M] (any
     * strides, the scores' dtype), or same-class labels y_ij = [rowIds[i] == colIds[j]] from class
     * numbers (rowIds [N], colIds [M], vectors of the scores' dtype holding integers exactly,
     * any stride), which never stores the N×M matrix.
     */
    record ApLabels(Tensor dense, Tensor rowIds, Tensor colIds) {
        public ApLabels {
            boolean denseForm = dense != null && rowIds == null && colIds == null;
            boolean classForm = dense == null && rowIds != null && colIds != null;
            if (!denseForm && !classForm) {
                throw new IllegalArgumentException("AP labels: either a dense matrix or both class-number vectors");
            }
        }

        /** A dense 0/1 matrix [N, M]. */
        public static ApLabels dense(Tensor labels) {
            return new ApLabels(labels, null, null);
        }

        /** y_ij = [rowIds[i] == colIds[j]]. */
        public static ApLabels sameClass(Tensor rowIds, Tensor colIds) {
            return new ApLabels(null, rowIds, colIds);
        }

        /** Checks the labels against scores [N, M], naming what is wrong. */
        public void check(String op, Tensor scores) {
            int n = scores.shape(0);
            int m = scores.shape(1);
            if (dense != null) {
                if (dense.rank() != 2 || dense.shape(0) != n || dense.shape(1) != m) {
                    throw new IllegalArgumentException(op + ": labels " + Shape.str(dense.shape()) + " must match the scores "
                            + Shape.str(scores.shape()));
                }
                return;
            }
            if (rowIds.rank() != 1 || rowIds.shape(0) != n || colIds.rank() != 1 || colIds.shape(0) != m) {
                throw new IllegalArgumentException(op + ": class numbers " + Shape.str(rowIds.shape()) + " and "
                        + Shape.str(colIds.shape()) + " must be [" + n + "] and [" + m + "] for scores "
                        + Shape.str(scores.shape()));
            }
            if (rowIds.dtype() != scores.dtype() || colIds.dtype() != scores.dtype()) {
                throw new IllegalArgumentException(op + ": class numbers must have the scores' dtype " + scores.dtype());
            }
        }
    }

    /**
     * Soft histograms of each query row of scores [N, M] with labels (1 = positive):
     * hist [N, 2, nq] gets n_k = Σ_j q_k(s_ij) in [:, 0, :] and n⁺_k = Σ_j y_ij·q_k(s_ij) in
     * [:, 1, :]. Entry (i, i + excludedDiagonal) of every row i is left out (a query's match with
     * itself: 0 when the queries are the database, r0 for the row block starting at query r0,
     * −c0 for a column block starting at item c0); {@link #AP_KEEP_ALL} leaves out nothing.
     */
    void apHistogram(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor hist);

    /** {@link #apHistogram(Tensor, ApLabels, ApBins, int, Tensor)} with dense labels [N, M]. */
    default void apHistogram(Tensor scores, Tensor labels, ApBins bins, int excludedDiagonal, Tensor hist) {
        apHistogram(scores, ApLabels.dense(labels), bins, excludedDiagonal, hist);
    }

    /**
     * The adjoint: gradScores [N, M] (contiguous) from gradHist [N, 2, nq]; the left-out entries
     * get 0.
     */
    void apHistogramBackward(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor gradHist,
                             Tensor gradScores);

    /** {@link #apHistogramBackward(Tensor, ApLabels, ApBins, int, Tensor, Tensor)} with dense labels. */
    default void apHistogramBackward(Tensor scores, Tensor labels, ApBins bins, int excludedDiagonal,
                                     Tensor gradHist, Tensor gradScores) {
        apHistogramBackward(scores, ApLabels.dense(labels), bins, excludedDiagonal, gradHist, gradScores);
    }

    /**
     * The AP loss from its histograms, per query, with the gradient folded in (one pass, no
     * graph): for hist [N, 2, nq] (n_k, n⁺_k; contiguous), ap [N] gets AP = Σ_k P_k·r_k with
     * P_k = cumsum(n⁺)_k / (cumsum(n)_k + 1e−16) and r_k = n⁺_k / (Σ_k n⁺_k, or 1 where that is
     * 0), and gradHist [N, 2, nq] gets coef[q]·∂AP_q/∂hist[q] (coef [N]: dL/dAP per query, e.g.
     * −weight/kept queries, 0 for excluded ones). All contiguous, one floating dtype; computed in
     * double. The same values as the composition of cumsum, div and sum and its autograd.
     */
    void apLossFromHistogram(Tensor hist, Tensor coef, Tensor ap, Tensor gradHist);

    /** Checks {@link #apLossFromHistogram}'s operands, naming what is wrong. */
    static void checkApLossFromHistogram(Tensor hist, Tensor coef, Tensor ap, Tensor gradHist) {
        if (hist.rank() != 3 || hist.shape(1) != 2 || !hist.isContiguous()) {
            throw new IllegalArgumentException("apLossFromHistogram: hist must be a contiguous [N, 2, nq], got "
                    + Shape.str(hist.shape()));
        }
        int n = hist.shape(0);
        for (Tensor t : new Tensor[] {coef, ap}) {
            if (t.rank() != 1 || t.shape(0) != n || !t.isContiguous() || t.dtype() != hist.dtype()) {
                throw new IllegalArgumentException("apLossFromHistogram: coef and ap must be contiguous [" + n + "] "
                        + hist.dtype() + ", got " + Shape.str(t.shape()) + " " + t.dtype());
            }
        }
        if (!java.util.Arrays.equals(gradHist.shape(), hist.shape()) || !gradHist.isContiguous()
                || gradHist.dtype() != hist.dtype()) {
            throw new IllegalArgumentException("apLossFromHistogram: gradHist must be a contiguous "
                    + Shape.str(hist.shape()) + " " + hist.dtype() + ", got " + Shape.str(gradHist.shape()));
        }
    }

    // ---------------------------------------------------------------- fused optimiser steps

    /**
     * Hyper-parameters of one torch.optim.SGD step: learning rate, momentum μ (0: none),
     * dampening d, weight decay wd (L2, added to the gradient), Nesterov.
     */
    record SgdStep(double lr, double momentum, double dampening, double weightDecay, boolean nesterov) {}

    /**
     * One SGD step over one parameter tensor, in place and in one pass: per element, with every
     * scalar rounded once to the parameter's dtype and fma a single rounding,
     * g = wd ≠ 0 ? fma(wd, p, ∇) : ∇; with μ ≠ 0, b = firstStep ? g : fma(1 − d, g, μ·b) and
     * g = nesterov ? fma(μ, b, g) : b; then p = fma(−lr, g, p). That is torch.optim.SGD's
     * order of operations (add with alpha, mul_ then add_, clone on the first step).
     * param, grad and momentumBuffer (null when μ = 0) are contiguous tensors of one shape and
     * dtype (float32 or float64).
     */
    void sgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, boolean firstStep, SgdStep h);

    /**
     * {@link #sgdStep} over several parameters (lists of one length; a null momentum buffer where
     * μ = 0), with one first-step flag each: the same values as one sgdStep per parameter in
     * turn, which is the default. CUDA runs float32 parameters in one launch (PyTorch's foreach
     * step does the same).
     */
    default void sgdSteps(java.util.List<Tensor> params, java.util.List<Tensor> grads,
                          java.util.List<Tensor> momentumBuffers, boolean[] firstSteps, SgdStep h) {
        if (grads.size() != params.size() || momentumBuffers.size() != params.size()
                || firstSteps.length != params.size()) {
            throw new IllegalArgumentException("sgdSteps: " + params.size() + " parameters but " + grads.size()
                    + " gradients, " + momentumBuffers.size() + " momentum buffers and " + firstSteps.length
                    + " first-step flags");
        }
        for (int i = 0; i < params.size(); i++) {
            sgdStep(params.get(i), grads.get(i), momentumBuffers.get(i), firstSteps[i], h);
        }
    }

    /**
     * Hyper-parameters of one torch.optim.Adam/AdamW step number {@code step} (from 1): weight
     * decay is L2 (added to the gradient) unless {@code decoupled} (AdamW: p·(1 − lr·wd) first).
     */
    record AdamStep(double lr, double beta1, double beta2, double eps, double weightDecay, boolean decoupled,
                    long step) {
        public AdamStep {
            if (step < 1) {
                throw new IllegalArgumentException("Adam step counts from 1, got " + step);
            }
        }

        /** lr / (1 − β1^t). */
        public double stepSize() {
            return lr / (1 - Math.pow(beta1, step));
        }

        /** √(1 − β2^t). */
        public double biasCorrection2Sqrt() {
            return Math.sqrt(1 - Math.pow(beta2, step));
        }

        /** AdamW's factor 1 − lr·wd. */
        public double decayFactor() {
            return 1 - lr * weightDecay;
        }
    }

    /**
     * One Adam/AdamW step over one parameter tensor, in place and in one pass: per element, every
     * scalar rounded once to the dtype (stepSize, biasCorrection2Sqrt and decayFactor computed in
     * double first), fma a single rounding:
     * decoupled wd: p = p·(1 − lr·wd); L2 wd: g = fma(wd, p, ∇); m = fma(1 − β1, g, β1·m);
     * v = fma(1 − β2, g·g, β2·v); denom = √v / √(1 − β2^t) + ε; p = fma(−lr/(1 − β1^t), m/denom, p).
     * param, grad, expAvg (m) and expAvgSq (v) are contiguous tensors of one shape and dtype.
     */
    void adamStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamStep h);

    /**
     * The AP loss's backward for a row block of a symmetric score matrix (S = D·Dᵀ with symmetric
     * labels): scores [R, M] and labels [R, M] are rows rowOffset … rowOffset + R − 1 of S and of
     * the labels, gradHist [M, 2, nq] holds every query's histogram gradient, and gradScores
     * [R, M] (contiguous) gets dL/dS[r0 + r, j] + dL/dS[j, r0 + r], the first from query r0 + r's
     * gradient, the second from query j's, both at the score s = S[r0 + r, j]. Block b's rows of
     * dL/dD = (G + Gᵀ)·D are then gradScores·D. Entries (r, r + excludedDiagonal) get 0 (as in
     * {@link #apHistogram}).
     */
    void apHistogramBackwardSymmetric(Tensor scores, ApLabels labels, ApBins bins, int rowOffset,
                                      int excludedDiagonal, Tensor gradHist, Tensor gradScores);

    /** {@link #apHistogramBackwardSymmetric(Tensor, ApLabels, ApBins, int, int, Tensor, Tensor)}, dense labels. */
    default void apHistogramBackwardSymmetric(Tensor scores, Tensor labels, ApBins bins, int rowOffset,
                                              int excludedDiagonal, Tensor gradHist, Tensor gradScores) {
        apHistogramBackwardSymmetric(scores, ApLabels.dense(labels), bins, rowOffset, excludedDiagonal, gradHist,
                gradScores);
    }
}
