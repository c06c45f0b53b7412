package dir4j.engine;

import dir4j.engine.Backend.Binary;
import dir4j.engine.Backend.Reduce;
import dir4j.engine.Backend.Unary;
import dir4j.engine.autograd.Autograd;
import java.util.Arrays;

/**
 * The differentiable tensor ops. Each op checks its inputs, computes its forward result with
 * the device's {@link Backend}, and records its backward rule right beside it.
 */
public final class Ops {
    private Ops() {}

    // ================================================================ checks and helpers

    static void check(String op, Tensor... ts) {
        Tensor first = null;
        for (int i = 0; i < ts.length; i++) {
            Tensor t = ts[i];
            if (t == null) {
                continue;
            }
            t.checkAlive(op);
            if (first == null) {
                first = t;
                continue;
            }
            if (!t.device().equals(first.device())) {
                throw new IllegalArgumentException(op + ": inputs on different devices: " + describe(first) + " and "
                        + describe(t));
            }
            if (t.dtype() != first.dtype()) {
                throw new IllegalArgumentException(op + ": inputs of different dtypes: " + describe(first) + " and "
                        + describe(t) + "; convert one with .to(DType)");
            }
        }
    }

    static void checkFloating(String op, Tensor t) {
        if (!t.dtype().isFloating()) {
            throw new IllegalArgumentException(op + ": needs a float32 or float64 tensor, got " + describe(t));
        }
    }

    static String describe(Tensor t) {
        return Shape.str(t.shape()) + " " + t.dtype() + " on " + t.device();
    }

    /** An output for a kernel that writes every element (contents undefined until then). */
    static Tensor emptyLike(Tensor t, int... shape) {
        return Tensor.uninitialized(t.dtype(), t.device(), shape);
    }

    /**
     * Closes an op's internal temporaries when {@code out} recorded no graph (they are not needed
     * for a backward); when it did, the graph references them and their scope frees them.
     * Outside any scope this keeps no-grad calls (inference, evaluation) from leaking.
     */
    static Tensor freeUnlessRecorded(Tensor out, Tensor... temps) {
        if (out.gradFn() == null) {
            for (Tensor t : temps) {
                if (t != null && t != out) {
                    t.close();
                }
            }
        }
        return out;
    }

    /** A tensor of ones with t's shape, dtype and device. */
    public static Tensor onesLike(Tensor t) {
        return Tensor.full(t.dtype(), t.device(), 1.0, t.shape());
    }

    /** A tensor of zeros with t's shape, dtype and device. */
    public static Tensor zerosLike(Tensor t) {
        return Tensor.empty(t.dtype(), t.device(), t.shape());
    }

    /**
     * A copy of t with no graph, laid out as {@code like} when that is {@link Tensor#isDense dense}
     * (its strides: a gradient stored as its parameter is), else contiguous.
     */
    public static Tensor cloneLayoutLike(Tensor t, Tensor like) {
        Tensor c = Tensor.emptyLayoutLike(like, t.dtype(), t.device());
        if (c.sameDenseLayout(t) && !c.isContiguous()) {
            try (Tensor fc = c.flatDenseView(); Tensor ft = t.flatDenseView()) {
                t.backend().copy(ft, fc);
            }
        } else {
            t.backend().copy(t, c);
        }
        return c;
    }

    /** A contiguous copy with no graph. */
    public static Tensor cloneDetached(Tensor t) {
        Tensor c = emptyLike(t, t.shape());
        t.backend().copy(t, c);
        return c;
    }

    /**
     * a += b in place (b broadcast to a's shape); no graph. a may be any view whose elements are
     * distinct ({@link Shape#isNonOverlapping}: contiguous, permuted such as a channels-last
     * weight, a slice with gaps, interleaved as_strided strides) and is refused when expanded or
     * otherwise self-overlapping (several of its elements in one place), as PyTorch's add_ refuses
     * a stride-0 target; b is refused when it shares an element with a other than as the same
     * view (a's transpose, an overlapping slice, one of a's rows), where the sum would read
     * elements already updated: PyTorch refuses that only between dense views and otherwise
     * computes in its kernel's order (ViewOverlapTest lists the differences). Views that share no
     * element (a[::2] and a[1::2], two columns of a matrix) are added as PyTorch adds them. With a
     * and b of the same dense layout the sum runs over their spans as flat vectors.
     */
    public static void addInPlace(Tensor a, Tensor b) {
        check("addInPlace", a, b);
        if (!Shape.isNonOverlapping(a.shape(), a.strides())) {
            throw new IllegalArgumentException("addInPlace: target " + describe(a) + " with strides "
                    + Arrays.toString(a.strides()) + " has several elements in one place (an expanded view): "
                    + "adding into it in place is ambiguous; add into a copy (Ops.cloneDetached) instead");
        }
        if (a.partiallyOverlaps(b)) {
            throw new IllegalArgumentException("addInPlace: addend " + describe(b) + " shares memory with the target "
                    + describe(a) + " (a view of it such as its transpose, a shifted slice or one of its rows): the "
                    + "sum would read elements already updated; pass a copy of the addend (Ops.cloneDetached)");
        }
        if (!a.isContiguous() && a.sameDenseLayout(b) && a.dtype() == b.dtype()) {
            try (Tensor fa = a.flatDenseView(); Tensor fb = b.flatDenseView()) {
                a.backend().binary(Binary.ADD, fa, fb, fa);
            }
            return;
        }
        try (Tensor bv = broadcastView("addInPlace", b, a.shape())) {
            a.backend().binary(Binary.ADD, a, bv, a);
        }
    }

    /** A stride-0 view of t expanded to shape (no graph). */
    static Tensor broadcastView(String op, Tensor t, int[] shape) {
        int[] ts = t.shape();
        long[] st = t.strides();
        if (ts.length > shape.length) {
            throw new IllegalArgumentException(op + ": cannot broadcast " + Shape.str(ts) + " to " + Shape.str(shape));
        }
        long[] ns = new long[shape.length];
        int lead = shape.length - ts.length;
        for (int i = 0; i < shape.length; i++) {
            if (i < lead) {
                ns[i] = 0;
                continue;
            }
            int d = ts[i - lead];
            if (d == shape[i]) {
                ns[i] = st[i - lead];
            } else if (d == 1) {
                ns[i] = 0;
            } else {
                throw new IllegalArgumentException(op + ": cannot broadcast " + Shape.str(ts) + " to " + Shape.str(shape));
            }
        }
        return t.viewOf(shape.clone(), ns, t.offset());
    }

    /** Sums g over the dimensions along which a tensor of {@code shape} was broadcast to g's shape. */
    static Tensor sumTo(Tensor g, int[] shape) {
        int[] gs = g.shape();
        if (Arrays.equals(gs, shape)) {
            return g;
        }
        int lead = gs.length - shape.length;
        boolean[] red = new boolean[gs.length];
        int[] keep = new int[gs.length];
        for (int i = 0; i < gs.length; i++) {
            red[i] = i < lead || (shape[i - lead] == 1 && gs[i] != 1);
            keep[i] = red[i] ? 1 : gs[i];
        }
        Tensor out = emptyLike(g, keep);
        g.backend().reduce(Reduce.SUM, g, red, out);
        if (lead == 0) {
            return out;
        }
        Tensor r = out.viewOf(shape.clone(), Shape.contiguousStrides(shape), out.offset());
        out.close();
        return r;
    }

    // ================================================================ elementwise, two inputs

    private static Tensor binary(String op, Binary kind, Tensor a, Tensor b) {
        check(op, a, b);
        checkFloating(op, a);
        int[] shape = Shape.broadcast(op, a.shape(), b.shape());
        Tensor out = emptyLike(a, shape);
        try (Tensor av = broadcastView(op, a, shape); Tensor bv = broadcastView(op, b, shape)) {
            a.backend().binary(kind, av, bv, out);
        }
        return out;
    }

    /** a + b with broadcasting. */
    public static Tensor add(Tensor a, Tensor b) {
        Tensor out = binary("add", Binary.ADD, a, b);
        return Autograd.record("add", out, new Tensor[] {a, b},
                g -> new Tensor[] {sumTo(g, a.shape()), sumTo(g, b.shape())});
    }

    /** a − b with broadcasting. */
    public static Tensor sub(Tensor a, Tensor b) {
        Tensor out = binary("sub", Binary.SUB, a, b);
        return Autograd.record("sub", out, new Tensor[] {a, b},
                g -> new Tensor[] {sumTo(g, a.shape()), b.requiresGrad() ? sumTo(neg(g), b.shape()) : null});
    }

    /** a · b elementwise with broadcasting. */
    public static Tensor mul(Tensor a, Tensor b) {
        Tensor out = binary("mul", Binary.MUL, a, b);
        return Autograd.record("mul", out, new Tensor[] {a, b}, g -> new Tensor[] {
            a.requiresGrad() ? sumTo(mul(g, b), a.shape()) : null,
            b.requiresGrad() ? sumTo(mul(g, a), b.shape()) : null});
    }

    /** a / b elementwise with broadcasting. */
    public static Tensor div(Tensor a, Tensor b) {
        Tensor out = binary("div", Binary.DIV, a, b);
        // d(a/b)/da = 1/b, d(a/b)/db = −a/b² = −out/b
        return Autograd.record("div", out, new Tensor[] {a, b}, g -> new Tensor[] {
            a.requiresGrad() ? sumTo(div(g, b), a.shape()) : null,
            b.requiresGrad() ? sumTo(neg(div(mul(g, out), b)), b.shape()) : null});
    }

    /** Elementwise maximum; ties split the gradient evenly (as PyTorch). */
    public static Tensor maximum(Tensor a, Tensor b) {
        return minMax("maximum", Binary.MAX, a, b);
    }

    /** Elementwise minimum; ties split the gradient evenly. */
    public static Tensor minimum(Tensor a, Tensor b) {
        return minMax("minimum", Binary.MIN, a, b);
    }

    private static Tensor minMax(String op, Binary kind, Tensor a, Tensor b) {
        Tensor out = binary(op, kind, a, b);
        return Autograd.record(op, out, new Tensor[] {a, b}, g -> {
            // weight of a: 1 where a wins, 1/2 on ties, 0 where b wins
            Tensor wins = kind == Binary.MAX ? greater(a, b) : greater(b, a);
            Tensor wa = add(wins, affine(equal(a, b), 0.5, 0));
            Tensor wb = affine(wa, -1, 1);
            return new Tensor[] {sumTo(mul(g, wa), a.shape()), sumTo(mul(g, wb), b.shape())};
        });
    }

    /** a ^ b elementwise with broadcasting. */
    public static Tensor pow(Tensor a, Tensor b) {
        Tensor out = binary("pow", Binary.POW, a, b);
        // d/da = b·a^(b−1), d/db = a^b · ln a
        return Autograd.record("pow", out, new Tensor[] {a, b}, g -> new Tensor[] {
            a.requiresGrad() ? sumTo(mul(g, mul(b, pow(a, affine(b, 1, -1)))), a.shape()) : null,
            b.requiresGrad() ? sumTo(mul(g, mul(out, log(a))), b.shape()) : null});
    }

    /** 1 where a == b, else 0 (not differentiable). */
    public static Tensor equal(Tensor a, Tensor b) {
        return Autograd.nonDifferentiable("equal", binary("equal", Binary.EQ, a, b));
    }

    /** 1 where a &gt; b, else 0 (not differentiable). */
    public static Tensor greater(Tensor a, Tensor b) {
        return Autograd.nonDifferentiable("greater", binary("greater", Binary.GT, a, b));
    }

    // ================================================================ elementwise, one input

    private static Tensor unary(String op, Unary kind, Tensor x, double alpha, double beta) {
        check(op, x);
        checkFloating(op, x);
        Tensor out = emptyLike(x, x.shape());
        x.backend().unary(kind, x, alpha, beta, out);
        return out;
    }

    /** −x. */
    public static Tensor neg(Tensor x) {
        Tensor out = unary("neg", Unary.NEG, x, 0, 0);
        return Autograd.record("neg", out, new Tensor[] {x}, g -> new Tensor[] {neg(g)});
    }

    /** s·x + c (scalar multiply and add). */
    public static Tensor affine(Tensor x, double s, double c) {
        Tensor out = unary("affine", Unary.AFFINE, x, s, c);
        return Autograd.record("affine", out, new Tensor[] {x}, g -> new Tensor[] {affine(g, s, 0)});
    }

    /** e^x. */
    public static Tensor exp(Tensor x) {
        Tensor out = unary("exp", Unary.EXP, x, 0, 0);
        return Autograd.record("exp", out, new Tensor[] {x}, g -> new Tensor[] {mul(g, out)});
    }

    /** ln x. */
    public static Tensor log(Tensor x) {
        Tensor out = unary("log", Unary.LOG, x, 0, 0);
        return Autograd.record("log", out, new Tensor[] {x}, g -> new Tensor[] {div(g, x)});
    }

    /** √x. */
    public static Tensor sqrt(Tensor x) {
        Tensor out = unary("sqrt", Unary.SQRT, x, 0, 0);
        // d√x/dx = 1 / (2√x)
        return Autograd.record("sqrt", out, new Tensor[] {x}, g -> new Tensor[] {div(affine(g, 0.5, 0), out)});
    }

    /** |x|; gradient sign(x) (0 at 0, as PyTorch). */
    public static Tensor abs(Tensor x) {
        Tensor out = unary("abs", Unary.ABS, x, 0, 0);
        return Autograd.record("abs", out, new Tensor[] {x},
                g -> new Tensor[] {mul(g, unary("sign", Unary.SIGN, x, 0, 0))});
    }

    /** 1/x. */
    public static Tensor reciprocal(Tensor x) {
        Tensor out = unary("reciprocal", Unary.RECIPROCAL, x, 0, 0);
        return Autograd.record("reciprocal", out, new Tensor[] {x}, g -> new Tensor[] {neg(mul(g, mul(out, out)))});
    }

    /** x^p for a scalar exponent. */
    public static Tensor pow(Tensor x, double p) {
        Tensor out = unary("pow", Unary.POW, x, p, 0);
        // x^0 is constant: its gradient is 0 everywhere (as PyTorch), where 0·x^−1 is NaN at x = 0
        return Autograd.record("pow", out, new Tensor[] {x}, g -> new Tensor[] {p == 0
                ? zerosLike(x)
                : mul(g, affine(unary("pow", Unary.POW, x, p - 1, 0), p, 0))});
    }

    /** max(x, 0); gradient 0 at 0 (as PyTorch). */
    /** g · (x &gt; 0): ReLU's backward in one backend call (records nothing: backward runs without a graph). */
    static Tensor reluBackward(Tensor g, Tensor x) {
        check("relu backward", g, x);
        if (!java.util.Arrays.equals(g.shape(), x.shape()) || g.dtype() != x.dtype()) {
            throw new IllegalArgumentException("relu backward: gradient " + java.util.Arrays.toString(g.shape()) + " "
                    + g.dtype() + " for an input " + java.util.Arrays.toString(x.shape()) + " " + x.dtype());
        }
        Tensor out = emptyLike(x, x.shape());
        x.backend().reluBackward(g, x, out);
        return out;
    }

    public static Tensor relu(Tensor x) {
        Tensor out = unary("relu", Unary.RELU, x, 0, 0);
        return Autograd.record("relu", out, new Tensor[] {x}, g -> new Tensor[] {reluBackward(g, x)});
    }

    /**
     * min(max(x, min), max); pass Double.NaN for an absent bound. The gradient flows where
     * min ≤ x ≤ max (as PyTorch).
     */
    public static Tensor clamp(Tensor x, double min, double max) {
        Tensor out = unary("clamp", Unary.CLAMP, x, min, max);
        return Autograd.record("clamp", out, new Tensor[] {x},
                g -> new Tensor[] {mul(g, unary("clamp mask", Unary.IN_RANGE, x, min, max))});
    }

    // ================================================================ reductions

    private static boolean[] axesMask(String op, Tensor x, int[] axes) {
        boolean[] red = new boolean[x.rank()];
        if (axes == null) {
            Arrays.fill(red, true);
        } else {
            for (int a : axes) {
                int n = Shape.axis(op, a, x.rank());
                if (red[n]) {
                    throw new IllegalArgumentException(op + ": axis " + a + " given twice");
                }
                red[n] = true;
            }
        }
        return red;
    }

    private static int[] keptShape(int[] shape, boolean[] red) {
        int[] k = shape.clone();
        for (int i = 0; i < k.length; i++) {
            if (red[i]) {
                k[i] = 1;
            }
        }
        return k;
    }

    private static int[] droppedShape(int[] shape, boolean[] red) {
        return Arrays.stream(range(shape.length)).filter(i -> !red[i]).map(i -> shape[i]).toArray();
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) {
            r[i] = i;
        }
        return r;
    }

    private static Tensor reduceRaw(String op, Reduce kind, Tensor x, boolean[] red) {
        check(op, x);
        checkFloating(op, x);
        Tensor out = emptyLike(x, keptShape(x.shape(), red));
        x.backend().reduce(kind, x, red, out);
        return out;
    }

    private static Tensor finishKeep(Tensor kept, int[] shape, boolean[] red, boolean keepDim) {
        if (keepDim) {
            return kept;
        }
        int[] s = droppedShape(shape, red);
        Tensor r = kept.viewOf(s, Shape.contiguousStrides(s), kept.offset());
        r.setProducer(kept.producer());
        kept.close();
        return r;
    }

    /** Sum over axes (all when null). */
    public static Tensor sum(Tensor x, int[] axes, boolean keepDim) {
        boolean[] red = axesMask("sum", x, axes);
        int[] inShape = x.shape();
        Tensor out = finishKeep(reduceRaw("sum", Reduce.SUM, x, red), inShape, red, keepDim);
        return Autograd.record("sum", out, new Tensor[] {x}, g -> new Tensor[] {expandGrad(g, inShape, red)});
    }

    /** Mean over axes (all when null). */
    public static Tensor mean(Tensor x, int[] axes, boolean keepDim) {
        boolean[] red = axesMask("mean", x, axes);
        long n = 1;
        for (int i = 0; i < red.length; i++) {
            if (red[i]) {
                n *= x.shape()[i];
            }
        }
        Tensor s = sum(x, axes, keepDim);
        return freeUnlessRecorded(affine(s, 1.0 / n, 0), s);
    }

    /** Maximum over axes (values only); ties share the gradient evenly. */
    public static Tensor max(Tensor x, int[] axes, boolean keepDim) {
        return extremum("max", Reduce.MAX, x, axes, keepDim);
    }

    /** Minimum over axes (values only); ties share the gradient evenly. */
    public static Tensor min(Tensor x, int[] axes, boolean keepDim) {
        return extremum("min", Reduce.MIN, x, axes, keepDim);
    }

    private static Tensor extremum(String op, Reduce kind, Tensor x, int[] axes, boolean keepDim) {
        boolean[] red = axesMask(op, x, axes);
        int[] inShape = x.shape();
        Tensor kept = reduceRaw(op, kind, x, red);
        Tensor out = finishKeep(kept, inShape, red, keepDim);
        return Autograd.record(op, out, new Tensor[] {x}, g -> {
            Tensor gk = reshapeRaw(g, keptShape(inShape, red));
            Tensor extreme = reshapeRaw(out, keptShape(inShape, red));
            Tensor mask = equal(x, extreme);
            Tensor count = reduceRaw(op + " backward", Reduce.SUM, mask, red);
            return new Tensor[] {mul(mask, div(gk, count))};
        });
    }

    /** g of the reduced shape, broadcast back to the input shape (contiguous). */
    private static Tensor expandGrad(Tensor g, int[] inShape, boolean[] red) {
        Tensor gk = reshapeRaw(g, keptShape(inShape, red));
        Tensor out = Tensor.empty(g.dtype(), g.device(), inShape);
        try (Tensor v = broadcastView("sum backward", gk, inShape)) {
            g.backend().copy(v, out);
        }
        return out;
    }

    /** Inclusive cumulative sum along an axis. */
    public static Tensor cumsum(Tensor x, int axis) {
        return cumsum(x, axis, false);
    }

    /** Cumulative sum along an axis, from the end when {@code reverse}. */
    public static Tensor cumsum(Tensor x, int axis, boolean reverse) {
        check("cumsum", x);
        checkFloating("cumsum", x);
        int a = Shape.axis("cumsum", axis, x.rank());
        Tensor out = emptyLike(x, x.shape());
        x.backend().cumsum(x, a, reverse, out);
        // the adjoint of a forward cumulative sum is a reversed one
        return Autograd.record("cumsum", out, new Tensor[] {x}, g -> new Tensor[] {cumsum(g, a, !reverse)});
    }

    // ================================================================ matrix product

    /**
     * Matrix product of the last two dimensions, batched over the leading ones with
     * broadcasting: [..., M, K] · [..., K, N] → [..., M, N].
     */
    public static Tensor matmul(Tensor a, Tensor b) {
        check("matmul", a, b);
        checkFloating("matmul", a);
        if (a.rank() < 2 || b.rank() < 2) {
            throw new IllegalArgumentException("matmul: needs rank ≥ 2, got " + Shape.str(a.shape()) + " · "
                    + Shape.str(b.shape()) + " (unsqueeze vectors)");
        }
        int[] as = a.shape();
        int[] bs = b.shape();
        int m = as[as.length - 2];
        int k = as[as.length - 1];
        int n = bs[bs.length - 1];
        if (bs[bs.length - 2] != k) {
            throw new IllegalArgumentException("matmul: inner dimensions differ: " + Shape.str(as) + " · "
                    + Shape.str(bs));
        }
        int[] batch = Shape.broadcast("matmul", Arrays.copyOf(as, as.length - 2), Arrays.copyOf(bs, bs.length - 2));
        int nb = (int) Shape.numel(batch);
        int[] outShape = Arrays.copyOf(batch, batch.length + 2);
        outShape[batch.length] = m;
        outShape[batch.length + 1] = n;
        Tensor out = emptyLike(a, outShape);
        try (Tensor a3 = batched3("matmul", a, batch, nb, m, k);
             Tensor b3 = batched3("matmul", b, batch, nb, k, n);
             Tensor o3 = out.viewOf(new int[] {nb, m, n}, new long[] {(long) m * n, n, 1}, out.offset())) {
            a.backend().matmul(a3, b3, o3);
        }
        // dA = dC · Bᵀ, dB = Aᵀ · dC, summed over broadcast batch dimensions
        return Autograd.record("matmul", out, new Tensor[] {a, b}, g -> new Tensor[] {
            a.requiresGrad() ? sumTo(matmul(g, transpose(b, -1, -2)), a.shape()) : null,
            b.requiresGrad() ? sumTo(matmul(transpose(a, -1, -2), g), b.shape()) : null});
    }

    /**
     * The Gram matrix x·xᵀ of x [N, D] (all pairwise dot products: the score matrix of a batch
     * of descriptors). Its backward uses one GEMM, (G + Gᵀ)·x, where matmul(x, xᵀ) would use two
     * and a strided accumulation.
     */
    public static Tensor gram(Tensor x) {
        check("gram", x);
        checkFloating("gram", x);
        if (x.rank() != 2) {
            throw new IllegalArgumentException("gram: needs an N×D matrix, got " + describe(x));
        }
        Tensor out;
        try (Autograd.NoGrad ng = Autograd.noGrad(); Tensor xt = transpose(x, 0, 1)) {
            out = matmul(x, xt);
        }
        return Autograd.record("gram", out, new Tensor[] {x}, g -> {
            Tensor sym = add(g, transpose(g, 0, 1));
            return new Tensor[] {freeUnlessRecorded(matmul(sym, x), sym)};
        });
    }

    /** A [nb, r, c] view of t broadcast to the batch dims (a copy only when they cannot merge). */
    private static Tensor batched3(String op, Tensor t, int[] batch, int nb, int r, int c) {
        int[] full = Arrays.copyOf(batch, batch.length + 2);
        full[batch.length] = r;
        full[batch.length + 1] = c;
        try (Tensor v = broadcastView(op, t, full)) {
            long[] st = v.strides();
            int nbd = batch.length;
            // batch dims merge into one stride when each (of size > 1) is the next's stride × size
            long merged = 0;
            boolean ok = true;
            long expect = -1;
            for (int i = nbd - 1; i >= 0; i--) {
                if (batch[i] == 1) {
                    continue;
                }
                if (expect < 0) {
                    merged = st[i];
                } else if (st[i] != expect) {
                    ok = false;
                }
                expect = st[i] * batch[i];
            }
            if (ok) {
                return v.viewOf(new int[] {nb, r, c}, new long[] {merged, st[nbd], st[nbd + 1]}, v.offset());
            }
            Tensor cpy = Tensor.empty(t.dtype(), t.device(), full);
            t.backend().copy(v, cpy);
            Tensor r3 = cpy.viewOf(new int[] {nb, r, c}, new long[] {(long) r * c, c, 1}, 0);
            cpy.close();
            return r3;
        }
    }

    // ================================================================ views and shape ops

    /** A reshape with no graph (view when contiguous, else a copy). */
    static Tensor reshapeRaw(Tensor x, int[] shape) {
        int[] s = inferShape("reshape", x, shape);
        if (x.isContiguous()) {
            return x.viewOf(s, Shape.contiguousStrides(s), x.offset());
        }
        Tensor c = cloneDetached(x);
        Tensor v = c.viewOf(s, Shape.contiguousStrides(s), 0);
        c.close();
        return v;
    }

    private static int[] inferShape(String op, Tensor x, int[] shape) {
        int[] s = shape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1) {
                if (infer >= 0) {
                    throw new IllegalArgumentException(op + ": more than one -1 in " + Shape.str(shape));
                }
                infer = i;
            } else if (s[i] < 0) {
                throw new IllegalArgumentException(op + ": negative dimension in " + Shape.str(shape));
            } else {
                known *= s[i];
            }
        }
        if (infer >= 0) {
            if (known == 0 || x.numel() % known != 0) {
                throw new IllegalArgumentException(op + ": cannot reshape " + Shape.str(x.shape()) + " to "
                        + Shape.str(shape));
            }
            s[infer] = (int) (x.numel() / known);
        }
        if (Shape.numel(s) != x.numel()) {
            throw new IllegalArgumentException(op + ": cannot reshape " + Shape.str(x.shape()) + " ("
                    + x.numel() + " elements) to " + Shape.str(shape));
        }
        return s;
    }

    /** Same elements, new shape (one dimension may be −1). A view when x is contiguous. */
    public static Tensor reshape(Tensor x, int... shape) {
        check("reshape", x);
        Tensor out = reshapeRaw(x, shape);
        int[] in = x.shape();
        return Autograd.record("reshape", out, new Tensor[] {x}, g -> new Tensor[] {reshapeRaw(g, in)});
    }

    /** Flattens dimensions from startAxis on into one. */
    public static Tensor flatten(Tensor x, int startAxis) {
        int s = Shape.axis("flatten", startAxis, x.rank());
        int[] shape = Arrays.copyOf(x.shape(), s + 1);
        // the flattened size itself, not −1: with an empty leading dimension (an empty batch) −1
        // could be any size, and reshape refuses it
        long flat = 1;
        for (int i = s; i < x.rank(); i++) {
            flat *= x.shape(i);
        }
        shape[s] = Math.toIntExact(flat);
        return reshape(x, shape);
    }

    /** Inserts a dimension of size 1 (a view). */
    public static Tensor unsqueeze(Tensor x, int axis) {
        check("unsqueeze", x);
        int a = axis < 0 ? axis + x.rank() + 1 : axis;
        if (a < 0 || a > x.rank()) {
            throw new IllegalArgumentException("unsqueeze: axis " + axis + " out of range for rank " + x.rank());
        }
        int[] s = new int[x.rank() + 1];
        long[] st = new long[x.rank() + 1];
        for (int i = 0, j = 0; i < s.length; i++) {
            if (i == a) {
                s[i] = 1;
                st[i] = j < x.rank() ? x.strides()[j] * x.shape()[j] : 1;
            } else {
                s[i] = x.shape()[j];
                st[i] = x.strides()[j++];
            }
        }
        return viewWithReshapeGrad("unsqueeze", x, s, st);
    }

    /** Removes a dimension of size 1 (a view). */
    public static Tensor squeeze(Tensor x, int axis) {
        check("squeeze", x);
        int a = Shape.axis("squeeze", axis, x.rank());
        if (x.shape()[a] != 1) {
            throw new IllegalArgumentException("squeeze: dimension " + axis + " of " + Shape.str(x.shape())
                    + " is not 1");
        }
        int[] s = new int[x.rank() - 1];
        long[] st = new long[x.rank() - 1];
        for (int i = 0, j = 0; i < x.rank(); i++) {
            if (i != a) {
                s[j] = x.shape()[i];
                st[j++] = x.strides()[i];
            }
        }
        return viewWithReshapeGrad("squeeze", x, s, st);
    }

    private static Tensor viewWithReshapeGrad(String op, Tensor x, int[] shape, long[] strides) {
        Tensor out = x.viewOf(shape, strides, x.offset());
        int[] in = x.shape();
        return Autograd.record(op, out, new Tensor[] {x}, g -> new Tensor[] {reshapeRaw(g, in)});
    }

    /** Reorders dimensions (a view). */
    public static Tensor permute(Tensor x, int... order) {
        check("permute", x);
        int r = x.rank();
        if (order.length != r) {
            throw new IllegalArgumentException("permute: order " + Arrays.toString(order) + " for rank " + r);
        }
        int[] s = new int[r];
        long[] st = new long[r];
        int[] inverse = new int[r];
        boolean[] seen = new boolean[r];
        for (int i = 0; i < r; i++) {
            int o = Shape.axis("permute", order[i], r);
            if (seen[o]) {
                throw new IllegalArgumentException("permute: repeated axis in " + Arrays.toString(order));
            }
            seen[o] = true;
            s[i] = x.shape()[o];
            st[i] = x.strides()[o];
            inverse[o] = i;
        }
        Tensor out = x.viewOf(s, st, x.offset());
        return Autograd.record("permute", out, new Tensor[] {x}, g -> new Tensor[] {permute(g, inverse)});
    }

    /** Swaps two dimensions (a view). */
    public static Tensor transpose(Tensor x, int a, int b) {
        int r = x.rank();
        int[] order = range(r);
        int na = Shape.axis("transpose", a, r);
        int nb = Shape.axis("transpose", b, r);
        order[na] = nb;
        order[nb] = na;
        return permute(x, order);
    }

    /** Elements [start, end) along an axis (a view). */
    public static Tensor slice(Tensor x, int axis, int start, int end) {
        check("slice", x);
        int a = Shape.axis("slice", axis, x.rank());
        int d = x.shape()[a];
        if (start < 0 || end > d || start > end) {
            throw new IllegalArgumentException("slice: [" + start + ", " + end + ") out of range for dimension " + a
                    + " of " + Shape.str(x.shape()));
        }
        int[] s = x.shape();
        s[a] = end - start;
        Tensor out = x.viewOf(s, x.strides(), x.offset() + start * x.strides()[a]);
        int[] in = x.shape();
        return Autograd.record("slice", out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.empty(g.dtype(), g.device(), in);
            try (Tensor dst = gx.viewOf(s, gx.strides(), start * gx.strides()[a])) {
                g.backend().copy(g, dst);
            }
            return new Tensor[] {gx};
        });
    }

    /** The slice at one index along an axis, that axis removed (a view). */
    public static Tensor select(Tensor x, int axis, int index) {
        int a = Shape.axis("select", axis, x.rank());
        Tensor sl = slice(x, a, index, index + 1);
        return freeUnlessRecorded(squeeze(sl, a), sl);
    }

    /** Broadcasts size-1 dimensions to a larger shape (a view, stride 0). */
    public static Tensor expand(Tensor x, int... shape) {
        check("expand", x);
        Tensor out = broadcastView("expand", x, shape);
        int[] in = x.shape();
        return Autograd.record("expand", out, new Tensor[] {x}, g -> new Tensor[] {sumTo(g, in)});
    }

    /** A contiguous tensor with the same values (x itself as a view when already contiguous). */
    public static Tensor contiguous(Tensor x) {
        check("contiguous", x);
        Tensor out = x.isContiguous() ? x.viewOf(x.shape(), x.strides(), x.offset()) : cloneDetached(x);
        return Autograd.record("contiguous", out, new Tensor[] {x}, g -> new Tensor[] {g});
    }

    /** Joins tensors along an axis. */
    public static Tensor concat(int axis, Tensor... xs) {
        if (xs.length == 0) {
            throw new IllegalArgumentException("concat: no tensors");
        }
        check("concat", xs);
        int a = Shape.axis("concat", axis, xs[0].rank());
        int[] shape = xs[0].shape();
        int total = 0;
        for (Tensor t : xs) {
            int[] s = t.shape();
            if (s.length != shape.length) {
                throw new IllegalArgumentException("concat: ranks differ: " + Shape.str(shape) + " and " + Shape.str(s));
            }
            for (int i = 0; i < s.length; i++) {
                if (i != a && s[i] != shape[i]) {
                    throw new IllegalArgumentException("concat: shapes " + Shape.str(shape) + " and " + Shape.str(s)
                            + " differ outside axis " + a);
                }
            }
            total += s[a];
        }
        shape[a] = total;
        Tensor out = emptyLike(xs[0], shape);
        int[] starts = new int[xs.length];
        int pos = 0;
        for (int i = 0; i < xs.length; i++) {
            starts[i] = pos;
            int[] s = xs[i].shape();
            try (Tensor dst = out.viewOf(s, out.strides(), pos * out.strides()[a])) {
                out.backend().copy(xs[i], dst);
            }
            pos += s[a];
        }
        return Autograd.record("concat", out, xs.clone(), g -> {
            Tensor[] gs = new Tensor[xs.length];
            for (int i = 0; i < xs.length; i++) {
                if (xs[i].requiresGrad()) {
                    int[] s = xs[i].shape();
                    gs[i] = g.viewOf(s, g.strides(), g.offset() + starts[i] * g.strides()[a]);
                }
            }
            return gs;
        });
    }

    /** Rows (or entries along any axis) picked by an int32 index vector. */
    public static Tensor indexSelect(Tensor x, int axis, Tensor indices) {
        check("indexSelect", x);
        indices.checkAlive("indexSelect");
        if (indices.dtype() != DType.INT32 || indices.rank() != 1) {
            throw new IllegalArgumentException("indexSelect: indices must be a 1-D int32 tensor, got "
                    + describe(indices));
        }
        int a = Shape.axis("indexSelect", axis, x.rank());
        int d = x.shape()[a];
        for (int i : indices.toIntArray()) {
            if (i < 0 || i >= d) {
                throw new IndexOutOfBoundsException("indexSelect: index " + i + " out of range for dimension " + a
                        + " of " + Shape.str(x.shape()));
            }
        }
        int[] s = x.shape();
        s[a] = (int) indices.numel();
        Tensor out = emptyLike(x, s);
        x.backend().indexSelect(x, a, indices, out);
        int[] in = x.shape();
        return Autograd.record("indexSelect", out, new Tensor[] {x}, g -> {
            Tensor gx = Tensor.empty(g.dtype(), g.device(), in);
            g.backend().indexAdd(g, a, indices, gx);
            return new Tensor[] {gx};
        });
    }

    // ================================================================ device and dtype moves

    /** The tensor on another device (a view when already there). */
    public static Tensor copyTo(Tensor x, Device device) {
        x.checkAlive("to(" + device + ")");
        if (x.device().equals(device)) {
            Tensor v = x.viewOf(x.shape(), x.strides(), x.offset());
            return Autograd.record("to", v, new Tensor[] {x}, g -> new Tensor[] {g});
        }
        Device from = x.device();
        Tensor out = Tensor.empty(x.dtype(), device, x.shape());
        // the backend on the non-CPU side knows how to move bytes across
        Backends.of(device.kind() == Device.Kind.CPU ? from : device).copy(x, out);
        return Autograd.record("to", out, new Tensor[] {x}, g -> new Tensor[] {copyTo(g, from)});
    }

    /** The values converted to another dtype. */
    public static Tensor cast(Tensor x, DType dtype) {
        x.checkAlive("to(" + dtype + ")");
        DType from = x.dtype();
        Tensor out = Tensor.empty(dtype, x.device(), x.shape());
        x.backend().copy(x, out);
        if (!dtype.isFloating() || !from.isFloating()) {
            return Autograd.nonDifferentiable("cast to " + dtype, out);
        }
        return Autograd.record("cast", out, new Tensor[] {x}, g -> new Tensor[] {cast(g, from)});
    }
}
