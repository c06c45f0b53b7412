package dir4j.engine;

import dir4j.engine.autograd.Autograd;
import dir4j.engine.autograd.Node;
import dir4j.engine.cpu.CpuStorage;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

/**
 * An n-dimensional array on a device: a view (shape, strides and offset, in elements) of a
 * reference-counted {@link Storage}. Views share storage; {@link #contiguous()} copies.
 *
 * <p>Lifetime: a tensor created inside a {@link MemoryScope} is closed with it unless kept;
 * otherwise its creator closes it. Using a closed tensor is an error that names the op.
 *
 * <p>Autograd: a tensor made by an op from inputs that require grad records the op's
 * {@link Node}; {@link #backward()} runs reverse mode and accumulates into leaves' {@link #grad()}.
 */
public final class Tensor implements AutoCloseable {
    private final Storage storage;
    private final DType dtype;
    private final int[] shape;
    private final long[] strides;
    private final long offset;
    private final long numel;
    private volatile boolean closed;
    /** Whether the close was its memory scope's end (for the error of a later use). */
    private volatile boolean freedByScope;

    private boolean requiresGrad;
    private Node gradFn;
    private Tensor grad;
    private String producer = "a factory";

    Tensor(Storage storage, DType dtype, int[] shape, long[] strides, long offset) {
        storage.retain();
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        this.numel = Shape.numel(shape);
        MemoryScope.register(this);
    }

    // ---------------------------------------------------------------- factories

    /** An uninitialised (in practice zero-filled) tensor. */
    public static Tensor empty(DType dtype, Device device, int... shape) {
        int[] s = Shape.check("empty", shape);
        Storage st = Backends.of(device).allocate(Math.max(1, Shape.numel(s)) * dtype.byteSize());
        return new Tensor(st, dtype, s, Shape.contiguousStrides(s), 0);
    }

    /**
     * A tensor whose contents are undefined: for op outputs that a kernel overwrites entirely
     * (skips zero-filling, which costs as much as a copy for large activations).
     */
    public static Tensor uninitialized(DType dtype, Device device, int... shape) {
        int[] s = Shape.check("uninitialized", shape);
        Storage st = Backends.of(device).allocateUninitialized(Math.max(1, Shape.numel(s)) * dtype.byteSize());
        return new Tensor(st, dtype, s, Shape.contiguousStrides(s), 0);
    }

    /** A float32 CPU tensor of zeros. */
    public static Tensor zeros(int... shape) {
        return empty(DType.FLOAT32, Device.CPU, shape);
    }

    /** Zeros of a dtype on a device. */
    public static Tensor zeros(DType dtype, Device device, int... shape) {
        return empty(dtype, device, shape);
    }

    /** A float32 CPU tensor filled with {@code value}. */
    public static Tensor full(double value, int... shape) {
        return full(DType.FLOAT32, Device.CPU, value, shape);
    }

    /** A tensor filled with {@code value}. */
    public static Tensor full(DType dtype, Device device, double value, int... shape) {
        Tensor t = empty(dtype, device, shape);
        t.backend().fill(t, value);
        return t;
    }

    /** Ones, float32, CPU. */
    public static Tensor ones(int... shape) {
        return full(1.0, shape);
    }

    /** A float32 CPU tensor holding {@code data} in row-major order. */
    public static Tensor of(float[] data, int... shape) {
        Tensor t = empty(DType.FLOAT32, Device.CPU, checkLength("of", data.length, shape));
        MemorySegment.copy(data, 0, t.segment(), ValueLayout.JAVA_FLOAT, 0, data.length);
        return t;
    }

    /** A float64 CPU tensor holding {@code data} (the gradient-check path). */
    public static Tensor ofDoubles(double[] data, int... shape) {
        Tensor t = empty(DType.FLOAT64, Device.CPU, checkLength("ofDoubles", data.length, shape));
        MemorySegment.copy(data, 0, t.segment(), ValueLayout.JAVA_DOUBLE, 0, data.length);
        return t;
    }

    /** An int32 CPU tensor (indices, labels). */
    public static Tensor ofInts(int[] data, int... shape) {
        Tensor t = empty(DType.INT32, Device.CPU, checkLength("ofInts", data.length, shape));
        MemorySegment.copy(data, 0, t.segment(), ValueLayout.JAVA_INT, 0, data.length);
        return t;
    }

    /** A float32 scalar (rank 0). */
    public static Tensor scalar(double v) {
        return full(v);
    }

    /** Standard normal samples, float32, CPU. */
    public static Tensor randn(Random rng, int... shape) {
        float[] d = new float[(int) Shape.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) rng.nextGaussian();
        }
        return of(d, shape);
    }

    /** Uniform samples in [lo, hi), float32, CPU. */
    public static Tensor uniform(Random rng, double lo, double hi, int... shape) {
        float[] d = new float[(int) Shape.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return of(d, shape);
    }

    private static int[] checkLength(String op, int length, int[] shape) {
        int[] s = Shape.check(op, shape);
        if (Shape.numel(s) != length) {
            throw new IllegalArgumentException(op + ": " + length + " values do not fill shape " + Shape.str(s)
                    + " (" + Shape.numel(s) + " elements)");
        }
        return s;
    }

    /** A view of this tensor's storage with other geometry (no autograd; used by ops). */
    public Tensor viewOf(int[] newShape, long[] newStrides, long newOffset) {
        checkAlive("view");
        return new Tensor(storage, dtype, newShape, newStrides, newOffset);
    }

    // ---------------------------------------------------------------- geometry

    public int[] shape() {
        return shape.clone();
    }

    public int shape(int axis) {
        return shape[Shape.axis("shape", axis, shape.length)];
    }

    public int rank() {
        return shape.length;
    }

    public long numel() {
        return numel;
    }

    public DType dtype() {
        return dtype;
    }

    public Device device() {
        return storage.device();
    }

    /** Strides in elements. */
    public long[] strides() {
        return strides.clone();
    }

    public long stride(int axis) {
        return strides[Shape.axis("stride", axis, shape.length)];
    }

    /** Offset of element 0 in its storage, in elements. */
    public long offset() {
        return offset;
    }

    public Storage storage() {
        return storage;
    }

    /** The backend of this tensor's device. */
    public Backend backend() {
        return Backends.of(storage.device());
    }

    /** True when the elements are laid out row-major without gaps. */
    public boolean isContiguous() {
        long expect = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expect) {
                return false;
            }
            expect *= shape[i];
        }
        return true;
    }

    /**
     * True when the elements fill [offset, offset + numel) of the storage without gaps or
     * overlaps, in some order of the dimensions: contiguous, or a permutation of a contiguous
     * tensor (a channels-last weight [K, C, kh, kw] stored as [K, kh, kw, C]). Elementwise work
     * on tensors of the same dense layout may run over that span as one flat vector.
     */
    public boolean isDense() {
        return Shape.isDense(shape, strides);
    }

    /**
     * Whether this tensor and {@code o} read or write some element in common without being the
     * same view of it: they share a storage, some storage element belongs to both, and their
     * offsets, shapes or strides differ (a tensor and its transpose, two overlapping slices, a
     * matrix and one of its rows). Writing one while reading the other element by element would
     * read values already overwritten. Two views that interleave without a common element (every
     * other element each, two columns of a matrix) do not overlap, as PyTorch lets them be added
     * in place. The test is exact, and quick for the usual views (dense ones, slices of rows or
     * columns of one matrix, one a shift of the other; the class Overlap says how); only views whose
     * layouts it cannot split are compared element by element over the intersection of their
     * ranges (a range of 2^31 elements or more then counts as overlapping).
     */
    public boolean partiallyOverlaps(Tensor o) {
        if (storage != o.storage || numel == 0 || o.numel == 0) {
            return false;
        }
        if (offset == o.offset && Arrays.equals(shape, o.shape) && Shape.sameStrides(shape, strides, o.strides)) {
            return false;
        }
        return Overlap.shareElement(shape, strides, offset, o.shape, o.strides, o.offset);
    }

    /**
     * Whether {@code o} has this tensor's shape and strides and both are {@link #isDense dense}:
     * then element i of the one sits at the same position of its span as element i of the other.
     */
    public boolean sameDenseLayout(Tensor o) {
        return Arrays.equals(shape, o.shape) && isDense() && o.isDense() && Shape.sameStrides(shape, strides, o.strides);
    }

    /**
     * Whether this tensor is laid out as {@code like} wants its companions (gradient, optimiser
     * state) to be: with like's strides when like is {@link #isDense dense} but not contiguous (a
     * channels-last weight), else contiguous. Fused optimiser steps run over such operands as
     * flat spans.
     */
    public boolean laidOutAs(Tensor like) {
        return like.isContiguous() || !like.isDense() ? isContiguous() : sameDenseLayout(like);
    }

    /**
     * A zero-filled tensor with {@code like}'s shape and, when {@code like} is {@link #isDense
     * dense}, its strides (PyTorch's preserve_format); otherwise contiguous.
     */
    public static Tensor emptyLayoutLike(Tensor like, DType dtype, Device device) {
        if (like.isContiguous() || !like.isDense()) {
            return empty(dtype, device, like.shape);
        }
        return emptyDense(dtype, device, like.shape, like.strides);
    }

    /**
     * A zero-filled tensor of this shape with these {@link #isDense dense} strides, e.g. a
     * [K, C, kh, kw] weight stored channels-last with strides (kh·kw·C, 1, kw·C, C).
     */
    public static Tensor emptyDense(DType dtype, Device device, int[] shape, long[] strides) {
        int[] s = Shape.check("emptyDense", shape);
        if (strides.length != s.length || !Shape.isDense(s, strides)) {
            throw new IllegalArgumentException("emptyDense: strides " + Arrays.toString(strides) + " are not a dense "
                    + "layout of " + Shape.str(s));
        }
        Storage st = Backends.of(device).allocate(Math.max(1, Shape.numel(s)) * dtype.byteSize());
        return new Tensor(st, dtype, s, strides.clone(), 0);
    }

    /** The dense span of this tensor as a flat [numel] view (this must be {@link #isDense dense}). */
    public Tensor flatDenseView() {
        if (!isDense()) {
            throw new IllegalStateException("flatDenseView: " + Shape.str(shape) + " with strides "
                    + Arrays.toString(strides) + " is not dense");
        }
        return viewOf(new int[] {(int) numel}, new long[] {1}, offset);
    }

    /** The CPU memory of this tensor's storage (from element 0 of the storage, not of the view). */
    public MemorySegment segment() {
        checkAlive("segment");
        if (!(storage instanceof CpuStorage cs)) {
            throw new IllegalStateException("segment: tensor is on " + device() + ", not the CPU; copy it with to(Device.CPU)");
        }
        return cs.segment();
    }

    // ---------------------------------------------------------------- data access

    /** The values as a float array, row-major (copies; works for any strides and dtype). */
    public float[] toFloatArray() {
        double[] d = toDoubleArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    /** The values as a double array, row-major. */
    public double[] toDoubleArray() {
        try (Tensor moved = Ops.copyTo(this, Device.CPU); Tensor c = moved.contiguousDetached()) {
            double[] out = new double[(int) numel];
            MemorySegment seg = c.segment();
            long base = c.offset;
            switch (dtype) {
                case FLOAT32 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = seg.getAtIndex(ValueLayout.JAVA_FLOAT, base + i);
                    }
                }
                case FLOAT64 -> MemorySegment.copy(seg, ValueLayout.JAVA_DOUBLE, base * 8, out, 0, out.length);
                case INT32 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = seg.getAtIndex(ValueLayout.JAVA_INT, base + i);
                    }
                }
                default -> throw new UnsupportedOperationException("toDoubleArray: dtype " + dtype + " not supported yet");
            }
            return out;
        }
    }

    /** The values of an int32 tensor. */
    public int[] toIntArray() {
        double[] d = toDoubleArray();
        int[] r = new int[d.length];
        for (int i = 0; i < d.length; i++) {
            r[i] = (int) d[i];
        }
        return r;
    }

    /** The single value of a one-element tensor. */
    public double item() {
        if (numel != 1) {
            throw new IllegalArgumentException("item: tensor of shape " + Shape.str(shape) + " has " + numel
                    + " elements, not 1");
        }
        if (storage instanceof CpuStorage cs) {
            // read in place: a host counter read every step (batch norm's batches tracked) costs no copy
            checkAlive("item");
            switch (dtype) {
                case FLOAT32 -> {
                    return cs.segment().getAtIndex(ValueLayout.JAVA_FLOAT, offset);
                }
                case FLOAT64 -> {
                    return cs.segment().getAtIndex(ValueLayout.JAVA_DOUBLE, offset);
                }
                case INT32 -> {
                    return cs.segment().getAtIndex(ValueLayout.JAVA_INT, offset);
                }
                default -> { }
            }
        }
        return toDoubleArray()[0];
    }

    // ---------------------------------------------------------------- lifetime

    /** Releases this view's hold on the storage (and a leaf's gradient). Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        gradFn = null;
        if (grad != null) {
            grad.close();
            grad = null;
        }
        storage.release();
    }

    /**
     * {@link #close} by the {@link MemoryScope} that owned this tensor, as it closed; one closed
     * before (its own close, or its holder's) keeps saying so.
     */
    void closeByScope() {
        if (closed) {
            return;
        }
        freedByScope = true;
        close();
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Throws an error naming {@code op} if this tensor has been closed, saying how: by the end of
     * its memory scope, or by a close (its own, or that of what held it: a module or network, an
     * index).
     */
    public void checkAlive(String op) {
        if (closed || storage.isFreed()) {
            String what = op + ": tensor " + Shape.str(shape) + " (" + dtype + ", made by " + producer + ")";
            throw new IllegalStateException(!closed
                    ? what + " holds storage that was already freed"
                    : freedByScope
                    ? what + " was already freed: its MemoryScope ended; keep it with MemoryScope.keep(t) or create "
                            + "it outside the scope"
                    : what + " was already closed: by its close(), or by the close of what holds it (a module or "
                            + "network, an index, an extractor) while it was still in use");
        }
    }

    // ---------------------------------------------------------------- autograd

    public boolean requiresGrad() {
        return requiresGrad;
    }

    /** Marks a leaf as requiring gradients; returns this. */
    public Tensor requiresGrad(boolean on) {
        if (gradFn != null && !on) {
            throw new IllegalStateException("requiresGrad(false): tensor made by " + producer
                    + " is not a leaf; use detach()");
        }
        if (on && !dtype.isFloating()) {
            throw new IllegalArgumentException("requiresGrad: only floating tensors can require grad, not " + dtype);
        }
        this.requiresGrad = on;
        return this;
    }

    /** True for tensors not made by a recorded op. */
    public boolean isLeaf() {
        return gradFn == null;
    }

    public Node gradFn() {
        return gradFn;
    }

    /** Accumulated gradient of a leaf (null before any backward). */
    public Tensor grad() {
        return grad;
    }

    /** Replaces the accumulated gradient (the old one is closed). */
    public void setGrad(Tensor g) {
        if (grad != null && grad != g) {
            grad.close();
        }
        grad = g;
    }

    /** Frees the accumulated gradient. */
    public void zeroGrad() {
        setGrad(null);
    }

    /** The op that made this tensor (for error messages). */
    public String producer() {
        return producer;
    }

    /** Used by {@link Autograd} when recording an op. */
    public void attachGraph(Node node, String producerName) {
        this.gradFn = node;
        this.requiresGrad = node != null;
        this.producer = producerName;
    }

    /** Names the op that made this tensor without recording a graph. */
    public void setProducer(String producerName) {
        this.producer = producerName;
    }

    /** Back-propagates from a scalar. */
    public void backward() {
        Autograd.backward(this, null);
    }

    /** Back-propagates an upstream gradient of this tensor's shape (multistage back-propagation). */
    public void backward(Tensor upstream) {
        Autograd.backward(this, upstream);
    }

    /** The same data, cut from the graph. */
    public Tensor detach() {
        Tensor t = viewOf(shape, strides, offset);
        t.producer = "detach";
        return t;
    }

    // ---------------------------------------------------------------- ops, for fluent code

    public Tensor add(Tensor o) { return Ops.add(this, o); }
    public Tensor sub(Tensor o) { return Ops.sub(this, o); }
    public Tensor mul(Tensor o) { return Ops.mul(this, o); }
    public Tensor div(Tensor o) { return Ops.div(this, o); }
    public Tensor add(double s) { return Ops.affine(this, 1, s); }
    public Tensor sub(double s) { return Ops.affine(this, 1, -s); }
    public Tensor mul(double s) { return Ops.affine(this, s, 0); }
    public Tensor div(double s) { return Ops.affine(this, 1 / s, 0); }
    public Tensor neg() { return Ops.neg(this); }
    public Tensor exp() { return Ops.exp(this); }
    public Tensor log() { return Ops.log(this); }
    public Tensor sqrt() { return Ops.sqrt(this); }
    public Tensor pow(double p) { return Ops.pow(this, p); }
    public Tensor pow(Tensor p) { return Ops.pow(this, p); }
    public Tensor relu() { return Ops.relu(this); }
    public Tensor clamp(double min, double max) { return Ops.clamp(this, min, max); }
    public Tensor sum() { return Ops.sum(this, null, false); }
    public Tensor sum(int axis, boolean keepDim) { return Ops.sum(this, new int[] {axis}, keepDim); }
    public Tensor mean() { return Ops.mean(this, null, false); }
    public Tensor mean(int axis, boolean keepDim) { return Ops.mean(this, new int[] {axis}, keepDim); }
    public Tensor max(int axis, boolean keepDim) { return Ops.max(this, new int[] {axis}, keepDim); }
    public Tensor cumsum(int axis) { return Ops.cumsum(this, axis); }
    public Tensor matmul(Tensor o) { return Ops.matmul(this, o); }
    public Tensor reshape(int... newShape) { return Ops.reshape(this, newShape); }
    public Tensor permute(int... order) { return Ops.permute(this, order); }
    public Tensor transpose(int a, int b) { return Ops.transpose(this, a, b); }
    public Tensor t() { return Ops.transpose(this, 0, 1); }
    public Tensor slice(int axis, int start, int end) { return Ops.slice(this, axis, start, end); }
    public Tensor select(int axis, int index) { return Ops.select(this, axis, index); }
    public Tensor unsqueeze(int axis) { return Ops.unsqueeze(this, axis); }
    public Tensor squeeze(int axis) { return Ops.squeeze(this, axis); }
    public Tensor expand(int... newShape) { return Ops.expand(this, newShape); }
    public Tensor flatten(int startAxis) { return Ops.flatten(this, startAxis); }
    public Tensor contiguous() { return Ops.contiguous(this); }
    public Tensor to(Device d) { return Ops.copyTo(this, d); }
    public Tensor to(DType t) { return Ops.cast(this, t); }

    /** A contiguous copy (or this when already contiguous) with no graph; for internal reads. */
    Tensor contiguousDetached() {
        if (isContiguous()) {
            return viewOf(shape, strides, offset);
        }
        Tensor c = empty(dtype, device(), shape);
        backend().copy(this, c);
        return c;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Tensor(").append(Arrays.toString(shape)).append(", ").append(dtype)
                .append(", ").append(device());
        if (requiresGrad) {
            sb.append(", requiresGrad");
        }
        if (closed) {
            return sb.append(", freed)").toString();
        }
        if (numel <= 16) {
            sb.append(", ").append(Arrays.toString(toDoubleArray()));
        }
        return sb.append(')').toString();
    }
}
