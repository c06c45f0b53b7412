package dir4j.engine;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.Backend.PoolParams;
import dir4j.engine.autograd.Autograd;

/** The differentiable neural-network ops: linear, convolution, batch norm, pooling, normalisation. */
public final class NnOps {
    private NnOps() {}

    private static void rank(String op, Tensor t, int r, String what) {
        if (t.rank() != r) {
            throw new IllegalArgumentException(op + ": " + what + " must have rank " + r + ", got "
                    + Ops.describe(t));
        }
    }

    /** y = x·wᵀ + b for x [..., in], w [out, in], b [out] (b may be null). */
    public static Tensor linear(Tensor x, Tensor w, Tensor b) {
        Ops.check("linear", x, w, b);
        rank("linear", w, 2, "weight");
        if (x.shape(-1) != w.shape(1)) {
            throw new IllegalArgumentException("linear: input " + Ops.describe(x) + " has " + x.shape(-1)
                    + " features, weight " + Ops.describe(w) + " expects " + w.shape(1));
        }
        if (b != null && (b.rank() != 1 || b.shape(0) != w.shape(0))) {
            throw new IllegalArgumentException("linear: bias " + Ops.describe(b) + " must be [" + w.shape(0)
                    + "] for weight " + Ops.describe(w));
        }
        // One node, not matmul + transpose (+ add): the weight's gradient is made as gᵀ·x, a
        // contiguous [out, in] that the leaf takes over, where matmul's rule gives (xᵀ·g)ᵀ, a
        // transposed view the leaf must copy (a strided copy of the whole weight every step).
        Tensor y;
        try (var ng = Autograd.noGrad(); Tensor wt = Ops.transpose(w, 0, 1)) {
            Tensor xw = Ops.matmul(x, wt);
            y = b == null ? xw : Ops.add(xw, b);
            if (y != xw) {
                xw.close();
            }
        }
        int out = w.shape(0);
        int in = w.shape(1);
        return Autograd.record("linear", y, new Tensor[] {x, w, b}, g -> {
            Tensor g2 = g.rank() == 2 ? g : Ops.reshape(g, -1, out);
            Tensor dx = null;
            if (x.requiresGrad()) {
                Tensor gw = Ops.matmul(g2, w);
                dx = x.rank() == 2 ? gw : Ops.reshape(gw, x.shape());
            }
            Tensor dw = null;
            if (w.requiresGrad()) {
                Tensor x2 = x.rank() == 2 ? x : Ops.reshape(x, -1, in);
                dw = Ops.matmul(Ops.transpose(g2, 0, 1), x2);
            }
            Tensor db = b != null && b.requiresGrad() ? Ops.sum(g2, new int[] {0}, false) : null;
            return new Tensor[] {dx, dw, db};
        });
    }

    /**
     * 2-D convolution, PyTorch semantics (groups = 1): x [N, Ci, H, W], w [Co, Ci, kh, kw],
     * optional bias [Co].
     */
    public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, int stride, int padding, int dilation) {
        return conv2d(x, w, bias, new ConvParams(stride, stride, padding, padding, dilation, dilation));
    }

    /** 2-D convolution with per-axis geometry. */
    public static Tensor conv2d(Tensor x, Tensor w, Tensor bias, ConvParams p) {
        Ops.check("conv2d", x, w, bias);
        Ops.checkFloating("conv2d", x);
        rank("conv2d", x, 4, "input");
        rank("conv2d", w, 4, "weight");
        if (x.shape(1) != w.shape(1)) {
            throw new IllegalArgumentException("conv2d: input " + Ops.describe(x) + " has " + x.shape(1)
                    + " channels, weight " + Ops.describe(w) + " expects " + w.shape(1) + " (groups=1)");
        }
        if (bias != null && (bias.rank() != 1 || bias.shape(0) != w.shape(0))) {
            throw new IllegalArgumentException("conv2d: bias " + Ops.describe(bias) + " must be [" + w.shape(0) + "]");
        }
        int ho = outSize(x.shape(2), w.shape(2), p.strideH(), p.padH(), p.dilationH());
        int wo = outSize(x.shape(3), w.shape(3), p.strideW(), p.padW(), p.dilationW());
        if (ho <= 0 || wo <= 0) {
            throw new IllegalArgumentException("conv2d: input " + Ops.describe(x) + " is too small for kernel "
                    + w.shape(2) + "x" + w.shape(3) + " with " + p + " (output " + ho + "x" + wo + ")");
        }
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor wc = w.isContiguous() ? w : Ops.cloneDetached(w);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), x.shape(0), w.shape(0), ho, wo);
        x.backend().conv2d(xc, wc, p, y);
        Tensor out = y;
        if (bias != null) {
            try (Tensor b4 = bias.viewOf(new int[] {1, w.shape(0), 1, 1}, new long[] {0, bias.strides()[0], 0, 0},
                    bias.offset()); Tensor bv = Ops.broadcastView("conv2d", b4, y.shape())) {
                y.backend().binary(Backend.Binary.ADD, y, bv, y);
            }
        }
        int[] xs = x.shape();
        int[] ws = w.shape();
        return Ops.freeUnlessRecorded(Autograd.record("conv2d", out, new Tensor[] {x, w, bias}, g -> {
            Tensor gc = g.isContiguous() ? g : Ops.cloneDetached(g);
            Tensor gx = null;
            Tensor gw = null;
            Tensor gb = null;
            if (x.requiresGrad()) {
                gx = Tensor.uninitialized(g.dtype(), g.device(), xs);
                g.backend().conv2dBackwardData(gc, wc, p, gx);
            }
            if (w.requiresGrad()) {
                gw = Tensor.uninitialized(g.dtype(), g.device(), ws);
                g.backend().conv2dBackwardFilter(xc, gc, p, gw);
            }
            if (bias != null && bias.requiresGrad()) {
                gb = Ops.sum(gc, new int[] {0, 2, 3}, false);
            }
            return new Tensor[] {gx, gw, gb};
        }), xc == x ? null : xc, wc == w ? null : wc);
    }

    /**
     * Channels-last 2-D convolution without bias (groups = 1): x [N, H, W, Ci] and w
     * [Co, kh, kw, Ci] give [N, Ho, Wo, Co]; gradients for x and w (a permuted view of an OIHW
     * parameter passes its gradient on to it). The backward runs
     * {@link Backend#conv2dNhwcBackwardData} and {@link Backend#conv2dNhwcBackwardFilter}.
     */
    public static Tensor conv2dNhwc(Tensor x, Tensor w, ConvParams p) {
        Ops.check("conv2dNhwc", x, w);
        Ops.checkFloating("conv2dNhwc", x);
        rank("conv2dNhwc", x, 4, "input");
        rank("conv2dNhwc", w, 4, "weight");
        if (x.shape(3) != w.shape(3)) {
            throw new IllegalArgumentException("conv2dNhwc: input " + Ops.describe(x) + " has " + x.shape(3)
                    + " channels, weight [Co, kh, kw, Ci] " + Ops.describe(w) + " expects " + w.shape(3));
        }
        int ho = outSize(x.shape(1), w.shape(1), p.strideH(), p.padH(), p.dilationH());
        int wo = outSize(x.shape(2), w.shape(2), p.strideW(), p.padW(), p.dilationW());
        if (ho <= 0 || wo <= 0) {
            throw new IllegalArgumentException("conv2dNhwc: input " + Ops.describe(x) + " is too small for kernel "
                    + w.shape(1) + "x" + w.shape(2) + " with " + p + " (output " + ho + "x" + wo + ")");
        }
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor wc = w.isContiguous() ? w : Ops.cloneDetached(w);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), x.shape(0), ho, wo, w.shape(0));
        x.backend().conv2dNhwc(xc, wc, null, null, false, p, y);
        int[] xs = x.shape();
        int[] ws = w.shape();
        return Ops.freeUnlessRecorded(Autograd.record("conv2dNhwc", y, new Tensor[] {x, w}, g -> {
            Tensor gc = g.isContiguous() ? g : Ops.cloneDetached(g);
            Tensor gx = null;
            Tensor gw = null;
            if (x.requiresGrad()) {
                gx = Tensor.uninitialized(g.dtype(), g.device(), xs);
                g.backend().conv2dNhwcBackwardData(gc, wc, p, gx);
            }
            if (w.requiresGrad()) {
                gw = Tensor.uninitialized(g.dtype(), g.device(), ws);
                g.backend().conv2dNhwcBackwardFilter(xc, gc, p, gw);
            }
            return new Tensor[] {gx, gw};
        }), xc == x ? null : xc, wc == w ? null : wc);
    }

    static int outSize(int in, int k, int stride, int pad, int dil) {
        return Math.floorDiv(in + 2 * pad - dil * (k - 1) - 1, stride) + 1;
    }

    /**
     * Batch normalisation over (N, H, W) of x [N, C, H, W]. In training the batch statistics
     * normalise and the running ones (if given) are updated in place; in eval the running ones
     * normalise. gamma/beta may be null (no affine).
     */
    public static Tensor batchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     boolean training, double momentum, double eps) {
        return batchNorm("batchNorm2d", false, x, gamma, beta, runningMean, runningVar, training, momentum, eps, null,
                false);
    }

    /**
     * {@link #batchNorm2d} of a channels-last x [N, H, W, C] (statistics per channel over N, H, W),
     * the same parameters, running statistics and modes; gradients for x, gamma and beta.
     */
    public static Tensor batchNorm2dNhwc(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                         boolean training, double momentum, double eps) {
        return batchNorm("batchNorm2dNhwc", true, x, gamma, beta, runningMean, runningVar, training, momentum, eps,
                null, false);
    }

    /**
     * {@link #batchNorm2dNhwc} followed by the residual add and ReLU that end a ResNet block's
     * branch, relu?(BN(x) [+ residual]) with residual (or null) of x's shape, as
     * {@link #batchNorm2dAct} on NCHW: one graph node, the same values and gradients as the three
     * ops in turn; the gradient for residual is the masked dy.
     */
    public static Tensor batchNorm2dNhwcAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
                                            Tensor runningVar, boolean training, double momentum, double eps,
                                            Tensor residual, boolean relu) {
        return batchNorm("batchNorm2dNhwcAct", true, x, gamma, beta, runningMean, runningVar, training, momentum,
                eps, residual, relu);
    }

    /**
     * The batch norms' one graph node: channels-last ({@link Backend#batchNorm2dNhwcAct}, with or
     * without the residual add and ReLU) or NCHW, the latter plain ({@link Backend#batchNorm2d}) or
     * followed by the residual add and ReLU ({@link Backend#batchNorm2dAct}); the backward of a
     * ReLU gets the output for its mask.
     */
    private static Tensor batchNorm(String op, boolean nhwc, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
                                    Tensor runningVar, boolean training, double momentum, double eps, Tensor residual,
                                    boolean relu) {
        Ops.check(op, x, gamma, beta, runningMean, runningVar, residual);
        int axis = nhwc ? 3 : 1;
        checkBatchNorm(op, x, axis, gamma, beta, runningMean, runningVar, training);
        if (residual != null && !java.util.Arrays.equals(residual.shape(), x.shape())) {
            throw new IllegalArgumentException(op + ": residual " + Ops.describe(residual)
                    + " must have the input's shape " + Ops.describe(x));
        }
        boolean act = residual != null || relu;
        int c = x.shape(axis);
        Tensor g = gamma != null ? gamma : Tensor.full(x.dtype(), x.device(), 1.0, c);
        Tensor b = beta != null ? beta : Tensor.zeros(x.dtype(), x.device(), c);
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor rc = residual == null || residual.isContiguous() ? residual : Ops.cloneDetached(residual);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), x.shape());
        Tensor mean = Tensor.empty(x.dtype(), x.device(), c);
        Tensor invStd = Tensor.empty(x.dtype(), x.device(), c);
        if (nhwc) {
            x.backend().batchNorm2dNhwcAct(xc, g, b, runningMean, runningVar, training, momentum, eps, rc, relu, y,
                    mean, invStd);
        } else if (act) {
            x.backend().batchNorm2dAct(xc, g, b, runningMean, runningVar, training, momentum, eps, rc, relu, y, mean,
                    invStd);
        } else {
            x.backend().batchNorm2d(xc, g, b, runningMean, runningVar, training, momentum, eps, y, mean, invStd);
        }
        if (rc != residual) {
            rc.close();
        }
        Autograd.record(op, y, new Tensor[] {x, gamma, beta, residual}, dy -> {
            Tensor dyc = dy.isContiguous() ? dy : Ops.cloneDetached(dy);
            Tensor dx = Tensor.uninitialized(x.dtype(), x.device(), x.shape());
            Tensor dg = Tensor.empty(x.dtype(), x.device(), c);
            Tensor db = Tensor.empty(x.dtype(), x.device(), c);
            Tensor dr = residual != null && residual.requiresGrad()
                    ? Tensor.uninitialized(x.dtype(), x.device(), x.shape()) : null;
            if (nhwc) {
                dy.backend().batchNorm2dNhwcActBackward(xc, y, dyc, g, mean, invStd, training, relu, dx, dg, db, dr);
            } else if (act) {
                dy.backend().batchNorm2dActBackward(xc, y, dyc, g, mean, invStd, training, relu, dx, dg, db, dr);
            } else {
                dy.backend().batchNorm2dBackward(xc, dyc, g, mean, invStd, training, dx, dg, db);
            }
            if (dyc != dy) {
                dyc.close();
            }
            return new Tensor[] {dx, dg, db, dr};
        });
        return Ops.freeUnlessRecorded(y, mean, invStd, xc == x ? null : xc, g == gamma ? null : g,
                b == beta ? null : b);
    }

    /**
     * {@link #batchNorm2d} (batch statistics when {@code training}, else the running ones) followed
     * by the residual add and ReLU that end a ResNet block's branch: relu?(BN(x) [+ residual]),
     * residual (or null) of x's shape. One node in the graph and, on the CPU, one pass for the
     * normalisation, the add and the ReLU ({@link Backend#batchNorm2dAct}); the backward applies the
     * ReLU's mask inside batch norm's passes ({@link Backend#batchNorm2dActBackward}) and keeps no
     * intermediate: only x, the output and the statistics, where the three ops in turn keep two
     * more activations. Values and gradients are exactly those of the three ops in turn
     * ({@link #batchNorm2d}, {@link Ops#add}, {@link Ops#relu}); the gradient for residual is the
     * masked dy.
     */
    public static Tensor batchNorm2dAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                        boolean training, double momentum, double eps, Tensor residual, boolean relu) {
        return batchNorm("batchNorm2dAct", false, x, gamma, beta, runningMean, runningVar, training, momentum, eps,
                residual, relu);
    }

    /**
     * Inference batch norm (running statistics) fused with the residual add and ReLU that end a
     * ResNet block: relu?(γ·(x − μ)/√(σ² + eps) + β [+ residual]), residual (or null) of x's shape.
     * Without a graph to record (no-grad mode, or no input requiring grad) it is one pass over x;
     * with {@code inPlace} the result is written over x, which is returned (pass it only for a
     * temporary the caller owns, such as a convolution's output: it saves an allocation and keeps
     * the working set in cache). With a graph it is {@link #batchNorm2dAct} in eval mode (one node,
     * differentiable as the three ops in turn) into a new tensor (never in place). Either way the
     * values are exactly those of {@link #batchNorm2d} in eval mode, {@link Ops#add} and
     * {@link Ops#relu} in turn.
     */
    public static Tensor batchNorm2dInference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean,
                                              Tensor runningVar, double eps, Tensor residual, boolean relu,
                                              boolean inPlace) {
        Ops.check("batchNorm2dInference", x, gamma, beta, runningMean, runningVar, residual);
        if (residual != null && !java.util.Arrays.equals(residual.shape(), x.shape())) {
            throw new IllegalArgumentException("batchNorm2dInference: residual " + Ops.describe(residual)
                    + " must have the input's shape " + Ops.describe(x));
        }
        boolean graph = Autograd.isGradEnabled() && (x.requiresGrad() || (gamma != null && gamma.requiresGrad())
                || (beta != null && beta.requiresGrad()) || (residual != null && residual.requiresGrad()));
        if (graph) {
            return batchNorm2dAct(x, gamma, beta, runningMean, runningVar, false, 0, eps, residual, relu);
        }
        checkBatchNorm("batchNorm2dInference", x, 1, gamma, beta, runningMean, runningVar, false);
        if (inPlace && !Shape.isNonOverlapping(x.shape(), x.strides())) {
            throw new IllegalArgumentException("batchNorm2dInference: in place needs an input whose elements are "
                    + "distinct, got " + Ops.describe(x) + " with strides " + java.util.Arrays.toString(x.strides())
                    + " (an expanded view: several elements in one place); pass inPlace=false");
        }
        if (inPlace && residual != null && x.partiallyOverlaps(residual)) {
            throw new IllegalArgumentException("batchNorm2dInference: in place, the residual " + Ops.describe(residual)
                    + " shares memory with the input " + Ops.describe(x) + " (another view of it) and would be read "
                    + "after being overwritten; pass inPlace=false or a copy of the residual");
        }
        int c = x.shape(1);
        Tensor g = gamma != null ? gamma : Tensor.full(x.dtype(), x.device(), 1.0, c);
        Tensor b = beta != null ? beta : Tensor.zeros(x.dtype(), x.device(), c);
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor rc = residual == null || residual.isContiguous() ? residual : Ops.cloneDetached(residual);
        Tensor y = inPlace ? xc : Tensor.uninitialized(x.dtype(), x.device(), x.shape());
        x.backend().batchNorm2dInference(xc, g, b, runningMean, runningVar, eps, rc, relu, y);
        if (inPlace && xc != x) {
            x.backend().copy(xc, x);
            y = x;
        }
        y.setProducer("batchNorm2dInference");
        for (Tensor t : new Tensor[] {xc, rc, g, b}) {
            if (t != null && t != x && t != residual && t != gamma && t != beta && t != y) {
                t.close();
            }
        }
        return y;
    }

    private static void checkBatchNorm(String op, Tensor x, int channelAxis, Tensor gamma, Tensor beta,
                                       Tensor runningMean, Tensor runningVar, boolean training) {
        Ops.checkFloating(op, x);
        rank(op, x, 4, "input");
        int c = x.shape(channelAxis);
        for (Tensor t : new Tensor[] {gamma, beta, runningMean, runningVar}) {
            if (t != null && (t.rank() != 1 || t.shape(0) != c || !t.isContiguous())) {
                throw new IllegalArgumentException(op + ": parameter " + Ops.describe(t)
                        + " must be a contiguous [" + c + "] for input " + Ops.describe(x));
            }
        }
        if (!training && (runningMean == null || runningVar == null)) {
            throw new IllegalArgumentException(op + ": eval mode needs running mean and variance");
        }
        if (training && x.numel() < 2L * c) {
            throw new IllegalArgumentException(op + ": training needs more than one value per channel, got input "
                    + Ops.describe(x));
        }
    }

    /** Max pooling of x [N, C, H, W] (PyTorch semantics, padding with −∞, floor mode). */
    public static Tensor maxPool2d(Tensor x, int kernel, int stride, int padding) {
        return maxPool(false, x, kernel, stride, padding);
    }

    /**
     * {@link #maxPool2d} of a channels-last x [N, H, W, C] into [N, Ho, Wo, C], the same semantics;
     * the backward routes each gradient to its window's argmax ({@link Backend#maxPool2dNhwcBackward}).
     */
    public static Tensor maxPool2dNhwc(Tensor x, int kernel, int stride, int padding) {
        return maxPool(true, x, kernel, stride, padding);
    }

    private static Tensor maxPool(boolean nhwc, Tensor x, int kernel, int stride, int padding) {
        String op = nhwc ? "maxPool2dNhwc" : "maxPool2d";
        Ops.check(op, x);
        Ops.checkFloating(op, x);
        rank(op, x, 4, "input");
        if (padding * 2 > kernel) {
            throw new IllegalArgumentException(op + ": padding " + padding + " must be at most half the kernel " + kernel);
        }
        PoolParams p = new PoolParams(kernel, kernel, stride, stride, padding, padding);
        int hAxis = nhwc ? 1 : 2;
        int ho = outSize(x.shape(hAxis), kernel, stride, padding, 1);
        int wo = outSize(x.shape(hAxis + 1), kernel, stride, padding, 1);
        if (ho <= 0 || wo <= 0) {
            throw new IllegalArgumentException(op + ": input " + Ops.describe(x) + " too small for kernel " + kernel);
        }
        int[] ys = nhwc ? new int[] {x.shape(0), ho, wo, x.shape(3)} : new int[] {x.shape(0), x.shape(1), ho, wo};
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), ys);
        // the argmax serves only the backward: without a graph to record, the kernel skips it
        Tensor idx = Autograd.isGradEnabled() && x.requiresGrad() ? Tensor.uninitialized(DType.INT32, x.device(), ys)
                : null;
        if (nhwc) {
            x.backend().maxPool2dNhwc(xc, p, y, idx);
        } else {
            x.backend().maxPool2d(xc, p, y, idx);
        }
        int[] xs = x.shape();
        Autograd.record(op, y, new Tensor[] {x}, g -> {
            Tensor gc = g.isContiguous() ? g : Ops.cloneDetached(g);
            Tensor dx = Tensor.empty(g.dtype(), g.device(), xs);
            if (nhwc) {
                g.backend().maxPool2dNhwcBackward(gc, idx, p, dx);
            } else {
                g.backend().maxPool2dBackward(gc, idx, p, dx);
            }
            return new Tensor[] {dx};
        });
        return Ops.freeUnlessRecorded(y, idx, xc == x ? null : xc);
    }

    /** Average pooling of x [N, C, H, W]; {@code countIncludePad} as PyTorch (default true). */
    public static Tensor avgPool2d(Tensor x, int kernel, int stride, int padding, boolean countIncludePad) {
        rank("avgPool2d", x, 4, "input");
        // as PyTorch (and maxPool2d): a wider padding makes windows of padding alone, whose average
        // without the padding is 0/0
        if (padding * 2 > kernel) {
            throw new IllegalArgumentException("avgPool2d: padding " + padding + " must be at most half the kernel "
                    + kernel);
        }
        int ho = outSize(x.shape(2), kernel, stride, padding, 1);
        int wo = outSize(x.shape(3), kernel, stride, padding, 1);
        if (ho <= 0 || wo <= 0) {
            throw new IllegalArgumentException("avgPool2d: input " + Ops.describe(x) + " too small for kernel " + kernel);
        }
        int[][] h = windows(x.shape(2), ho, stride, padding, kernel);
        int[][] w = windows(x.shape(3), wo, stride, padding, kernel);
        return windowAverage("avgPool2d", x, h, w, countIncludePad);
    }

    /** Adaptive average pooling of x [N, C, H, W] to [N, C, oh, ow] (PyTorch's windows). */
    public static Tensor adaptiveAvgPool2d(Tensor x, int oh, int ow) {
        rank("adaptiveAvgPool2d", x, 4, "input");
        return windowAverage("adaptiveAvgPool2d", x, adaptiveWindows(x.shape(2), oh), adaptiveWindows(x.shape(3), ow),
                false);
    }

    /** Windows as PyTorch's avg_pool2d: ends clipped to the padded input, so that the
     *  count_include_pad divisor is (end − start); the kernel clips again to the input. */
    private static int[][] windows(int in, int out, int stride, int pad, int kernel) {
        int[][] r = new int[2][out];
        for (int i = 0; i < out; i++) {
            r[0][i] = i * stride - pad;
            r[1][i] = Math.min(i * stride - pad + kernel, in + pad);
        }
        return r;
    }

    private static int[][] adaptiveWindows(int in, int out) {
        if (out <= 0) {
            throw new IllegalArgumentException("adaptiveAvgPool2d: output size must be positive, got " + out);
        }
        int[][] r = new int[2][out];
        for (int i = 0; i < out; i++) {
            r[0][i] = (int) Math.floor((double) i * in / out);
            r[1][i] = (int) Math.ceil((double) (i + 1) * in / out);
        }
        return r;
    }

    private static Tensor windowAverage(String op, Tensor x, int[][] h, int[][] w, boolean divisorFromWindow) {
        Ops.check(op, x);
        Ops.checkFloating(op, x);
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), x.shape(0), x.shape(1), h[0].length, w[0].length);
        x.backend().avgPool2d(xc, h[0], h[1], w[0], w[1], divisorFromWindow, y);
        int[] xs = x.shape();
        return Ops.freeUnlessRecorded(Autograd.record(op, y, new Tensor[] {x}, g -> {
            Tensor gc = g.isContiguous() ? g : Ops.cloneDetached(g);
            Tensor dx = Tensor.empty(g.dtype(), g.device(), xs);
            g.backend().avgPool2dBackward(gc, h[0], h[1], w[0], w[1], divisorFromWindow, dx);
            return new Tensor[] {dx};
        }), xc == x ? null : xc);
    }

    /** x / max(‖x‖₂, eps) along an axis (PyTorch's F.normalize). */
    public static Tensor l2Normalize(Tensor x, int axis, double eps) {
        // clamping ‖x‖² at eps² (not ‖x‖ at eps) keeps sqrt's backward away from 0/0 on a zero vector
        Tensor sq = Ops.mul(x, x);
        Tensor sum = Ops.sum(sq, new int[] {axis}, true);
        Tensor clamped = Ops.clamp(sum, eps * eps, Double.NaN);
        Tensor norm = Ops.sqrt(clamped);
        return Ops.freeUnlessRecorded(Ops.div(x, norm), sq, sum, clamped, norm);
    }

    /**
     * Generalized-mean (GeM) pooling: y[n, c] = (mean_hw max(x, eps)^p)^(1/p) for x [N, C, H, W]
     * and a one-element p (learnable); gradients for x and p. p = 1 is average pooling, p → ∞
     * max pooling.
     */
    public static Tensor gem(Tensor x, Tensor p, double eps) {
        Ops.check("gem", x, p);
        Ops.checkFloating("gem", x);
        rank("gem", x, 4, "input");
        if (p.numel() != 1) {
            throw new IllegalArgumentException("gem: p must have one element, got " + Ops.describe(p));
        }
        // p is checked where reading it is free (CPU); on a device the kernels read it there, and
        // reading it here would wait for every queued op (~0.1 ms a call on the H200, a third of
        // the GeM forward at 64x2048x32x32)
        if (p.device().kind() == Device.Kind.CPU) {
            double pv = p.item();
            if (!(pv > 0) || Double.isInfinite(pv)) {
                throw new IllegalArgumentException("gem: p must be a positive finite number, got " + pv);
            }
        }
        Tensor xc = x.isContiguous() ? x : Ops.cloneDetached(x);
        Tensor y = Tensor.uninitialized(x.dtype(), x.device(), x.shape(0), x.shape(1));
        x.backend().gem(xc, p, eps, y);
        int[] ps = p.shape();
        return Ops.freeUnlessRecorded(Autograd.record("gem", y, new Tensor[] {x, p}, g -> {
            Tensor gc = g.isContiguous() ? g : Ops.cloneDetached(g);
            Tensor dx = Tensor.uninitialized(x.dtype(), x.device(), x.shape());
            // every element written by the backend
            Tensor dpPartial = Tensor.uninitialized(x.dtype(), x.device(), x.shape(0), x.shape(1));
            g.backend().gemBackward(xc, p, eps, y, gc, dx, dpPartial);
            Tensor dp = p.requiresGrad() ? Ops.reshapeRaw(Ops.sum(dpPartial, null, false), ps) : null;
            return new Tensor[] {x.requiresGrad() ? dx : null, dp};
        }), xc == x ? null : xc);
    }

    /**
     * The AP loss's soft histograms, fused (the reference's N×2nq×M quantisation tensor is never
     * formed): for scores [N, M] and labels [N, M] (1 for positives), returns [N, 2, nq] with
     * n_k in [:, 0, :] and n⁺_k in [:, 1, :]; differentiable in the scores. With
     * {@code excludeDiagonal}, score (i, i) is left out (each query's match with itself).
     */
    public static Tensor apHistogram(Tensor scores, Tensor labels, Backend.ApBins bins, boolean excludeDiagonal) {
        Ops.check("apHistogram", scores, labels);
        Ops.checkFloating("apHistogram", scores);
        rank("apHistogram", scores, 2, "scores");
        if (!java.util.Arrays.equals(scores.shape(), labels.shape())) {
            throw new IllegalArgumentException("apHistogram: scores " + Ops.describe(scores) + " and labels "
                    + Ops.describe(labels) + " differ in shape");
        }
        if (excludeDiagonal && scores.shape(0) > scores.shape(1)) {
            throw new IllegalArgumentException("apHistogram: excludeDiagonal needs N ≤ M, got " + Ops.describe(scores));
        }
        int diagonal = excludeDiagonal ? 0 : Backend.AP_KEEP_ALL;
        Tensor h = Tensor.empty(scores.dtype(), scores.device(), scores.shape(0), 2, bins.nq());
        scores.backend().apHistogram(scores, labels, bins, diagonal, h);
        return Autograd.record("apHistogram", h, new Tensor[] {scores, labels}, g -> {
            Tensor ds = Tensor.empty(scores.dtype(), scores.device(), scores.shape());
            g.backend().apHistogramBackward(scores, labels, bins, diagonal, g, ds);
            return new Tensor[] {ds, null};
        });
    }
}
