package dir4j.engine.cpu;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Storage;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The pure-Java CPU backend. float32 runs on Vector API kernels (packed SGEMM, implicit-GEMM
 * convolution, vectorised elementwise and reduction rows) spread over {@link CpuThreads};
 * float64 runs on plain scalar loops kept as the reference path for gradient checks.
 */
public final class CpuBackend implements Backend {
    private static final CpuBackend INSTANCE;

    static {
        CpuSettings.require(); // before the Vector API's classes load
        INSTANCE = new CpuBackend();
    }

    private CpuBackend() {}

    /** The backend. */
    public static CpuBackend instance() {
        return INSTANCE;
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public Storage allocate(long bytes) {
        return new CpuStorage(bytes);
    }

    @Override
    public Storage allocateUninitialized(long bytes) {
        return new CpuStorage(bytes, false);
    }

    static MemorySegment seg(Tensor t) {
        return t.segment();
    }

    static double load(MemorySegment s, DType t, long i) {
        return switch (t) {
            case FLOAT32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            case FLOAT64 -> s.getAtIndex(ValueLayout.JAVA_DOUBLE, i);
            case INT32 -> s.getAtIndex(ValueLayout.JAVA_INT, i);
            default -> throw new UnsupportedOperationException("CPU backend: dtype " + t + " not supported yet");
        };
    }

    static void store(MemorySegment s, DType t, long i, double v) {
        switch (t) {
            case FLOAT32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) v);
            case FLOAT64 -> s.setAtIndex(ValueLayout.JAVA_DOUBLE, i, v);
            case INT32 -> s.setAtIndex(ValueLayout.JAVA_INT, i, (int) v);
            default -> throw new UnsupportedOperationException("CPU backend: dtype " + t + " not supported yet");
        }
    }

    // ================================================================ fill and copy

    @Override
    public void fill(Tensor out, double value) {
        MemorySegment o = seg(out);
        DType t = out.dtype();
        if (out.isContiguous() && t == DType.FLOAT32) {
            long n = out.numel();
            float v = (float) value;
            CpuThreads.parallelRange(n, 1 << 16, (s, e) -> {
                for (long i = s; i < e; i++) {
                    o.setAtIndex(ValueLayout.JAVA_FLOAT, out.offset() + i, v);
                }
            });
            return;
        }
        StridedWalk w = new StridedWalk(out.shape(), out.strides());
        long so = w.innerStride(0);
        w.walkParallel(new long[] {out.offset()}, (offs, len) -> {
            for (int i = 0; i < len; i++) {
                store(o, t, offs[0] + i * so, value);
            }
        });
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        checkSameShape("copy", src, dst);
        MemorySegment s = seg(src);
        MemorySegment d = seg(dst);
        DType ts = src.dtype();
        DType td = dst.dtype();
        if (ts == td && src.isContiguous() && dst.isContiguous()) {
            long bytes = src.numel() * ts.byteSize();
            long so = src.offset() * ts.byteSize();
            long dOff = dst.offset() * td.byteSize();
            // one thread does not saturate the memory bus: large copies go in parallel chunks
            // (a 200 MiB copy took 26 ms on one thread here, half that on two)
            // (overlapping ranges of one block keep the single memmove-like copy)
            boolean overlap = src.storage() == dst.storage() && so < dOff + bytes && dOff < so + bytes;
            CpuThreads.parallelRange(bytes, overlap ? Long.MAX_VALUE : COPY_CHUNK_BYTES, (from, to) ->
                    MemorySegment.copy(s, so + from, d, dOff + from, to - from));
            return;
        }
        StridedWalk w = new StridedWalk(dst.shape(), src.strides(), dst.strides());
        long ss = w.innerStride(0);
        long sd = w.innerStride(1);
        if (ts == DType.FLOAT32 && td == DType.FLOAT32 && transposeTiles(w, s, src.offset(), d, dst.offset())) {
            return;
        }
        w.walkParallel(new long[] {src.offset(), dst.offset()}, (offs, len) -> {
            long a = offs[0];
            long b = offs[1];
            if (ts == DType.FLOAT32 && td == DType.FLOAT32) {
                for (int i = 0; i < len; i++) {
                    d.setAtIndex(ValueLayout.JAVA_FLOAT, b + i * sd, s.getAtIndex(ValueLayout.JAVA_FLOAT, a + i * ss));
                }
            } else {
                for (int i = 0; i < len; i++) {
                    store(d, td, b + i * sd, load(s, ts, a + i * ss));
                }
            }
        });
    }

    /** Side of the square tiles of {@link #transposeTiles}: a tile's source lines stay in L1 across its rows. */
    private static final int TRANSPOSE_TILE = 32;

    /**
     * A float32 copy whose last two (merged) dimensions are transposed between source and
     * destination (the destination's last dimension at stride 1, the source's second-last): a
     * matrix made contiguous after {@code t()}, a permuted activation. Copied in 32×32 tiles, so
     * that each cache line read from the source serves a whole tile row; the element-by-element
     * walk read one float per line (a 4096×2048 transpose took 45 ms there). Returns false when the
     * layout is not that.
     */
    private static boolean transposeTiles(StridedWalk w, MemorySegment s, long sOff, MemorySegment d, long dOff) {
        int r = w.shape.length;
        if (r < 2) {
            return false;
        }
        long[] sst = w.strides[0];
        long[] dst = w.strides[1];
        if (dst[r - 1] != 1 || sst[r - 2] != 1 || sst[r - 1] == 1) {
            return false;
        }
        int rows = w.shape[r - 2];
        int cols = w.shape[r - 1];
        if (rows < TRANSPOSE_TILE || cols < TRANSPOSE_TILE) {
            return false;
        }
        long sCol = sst[r - 1];
        long dRow = dst[r - 2];
        int[] outerShape = java.util.Arrays.copyOf(w.shape, r - 2);
        StridedWalk outer = new StridedWalk(outerShape, java.util.Arrays.copyOf(sst, r - 2),
                java.util.Arrays.copyOf(dst, r - 2));
        long outers = outer.total;
        int rowTiles = (rows + TRANSPOSE_TILE - 1) / TRANSPOSE_TILE;
        long tasks = outers * rowTiles;
        CpuThreads.parallelRange(tasks, Math.max(1, (1 << 15) / ((long) TRANSPOSE_TILE * cols)), (from, to) -> {
            long[] base = new long[2];
            for (long t = from; t < to; t++) {
                long o = t / rowTiles;
                int i0 = (int) (t % rowTiles) * TRANSPOSE_TILE;
                int i1 = Math.min(rows, i0 + TRANSPOSE_TILE);
                outer.walk(new long[] {sOff, dOff}, o, o + 1, (offs, len) -> System.arraycopy(offs, 0, base, 0, 2));
                for (int j0 = 0; j0 < cols; j0 += TRANSPOSE_TILE) {
                    int j1 = Math.min(cols, j0 + TRANSPOSE_TILE);
                    for (int i = i0; i < i1; i++) {
                        long so = base[0] + i;
                        long doff = base[1] + i * dRow;
                        for (int j = j0; j < j1; j++) {
                            d.setAtIndex(ValueLayout.JAVA_FLOAT, doff + j, s.getAtIndex(ValueLayout.JAVA_FLOAT, so + j * sCol));
                        }
                    }
                }
            }
        });
        return true;
    }

    /** Bytes per task below which a contiguous copy is not split. */
    private static final long COPY_CHUNK_BYTES = 1 << 20;

    private static void checkSameShape(String op, Tensor a, Tensor b) {
        if (!java.util.Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(op + ": shapes differ: " + java.util.Arrays.toString(a.shape()) + " and "
                    + java.util.Arrays.toString(b.shape()));
        }
    }

    // ================================================================ elementwise

    @Override
    public void unary(Unary op, Tensor x, double alpha, double beta, Tensor out) {
        checkSameShape(op.name().toLowerCase(), x, out);
        MemorySegment xs = seg(x);
        MemorySegment os = seg(out);
        StridedWalk w = new StridedWalk(out.shape(), x.strides(), out.strides());
        long sx = w.innerStride(0);
        long so = w.innerStride(1);
        DType t = x.dtype();
        if (t == DType.FLOAT32 && out.dtype() == DType.FLOAT32 && sx != 1 && so == 1 && x.numel() >= STAGE_MIN) {
            // x read across its rows (a transposed or permuted view): one tiled copy into
            // out's layout, then the vector loop, instead of a scalar op per strided element
            // (exp of a transposed 4096x2048 matrix took 107-135 ms that way)
            try (Tensor staged = Tensor.uninitialized(t, x.device(), out.shape())) {
                copy(x, staged);
                unary(op, staged, alpha, beta, out);
            }
            return;
        }
        if (t == DType.FLOAT32 && out.dtype() == DType.FLOAT32) {
            float a = (float) alpha;
            float b = (float) beta;
            w.walkParallel(new long[] {x.offset(), out.offset()},
                    (offs, len) -> FloatKernels.unary(op, xs, offs[0], sx, os, offs[1], so, len, a, b));
        } else {
            DType to = out.dtype();
            w.walkParallel(new long[] {x.offset(), out.offset()}, (offs, len) -> {
                for (int i = 0; i < len; i++) {
                    store(os, to, offs[1] + i * so, ScalarMath.unary(op, load(xs, t, offs[0] + i * sx), alpha, beta));
                }
            });
        }
    }

    /** Elements from which a strided unary or binary input is first copied into the output's layout. */
    private static final long STAGE_MIN = 1 << 14;

    /** A row of an elementwise op on two inputs: element i of each at its offset + i·stride. */
    private interface Row3 {
        void run(MemorySegment a, long ao, long sa, MemorySegment b, long bo, long sb, MemorySegment o, long oo,
                 long so, int len);
    }

    /** Walks a, b and out (one shape) row by row in parallel, running {@code row} on each. */
    private static void walk3(String op, Tensor a, Tensor b, Tensor out, Row3 row) {
        walk3(walk3Of(op, a, b, out), a, b, out, row);
    }

    /** The walk over a, b and out, after checking that they have one shape. */
    private static StridedWalk walk3Of(String op, Tensor a, Tensor b, Tensor out) {
        checkSameShape(op, a, out);
        checkSameShape(op, b, out);
        return new StridedWalk(out.shape(), a.strides(), b.strides(), out.strides());
    }

    private static void walk3(StridedWalk w, Tensor a, Tensor b, Tensor out, Row3 row) {
        MemorySegment as = seg(a);
        MemorySegment bs = seg(b);
        MemorySegment os = seg(out);
        long sa = w.innerStride(0);
        long sb = w.innerStride(1);
        long so = w.innerStride(2);
        w.walkParallel(new long[] {a.offset(), b.offset(), out.offset()},
                (offs, len) -> row.run(as, offs[0], sa, bs, offs[1], sb, os, offs[2], so, len));
    }

    @Override
    public void reluBackward(Tensor g, Tensor x, Tensor out) {
        if (g.dtype() != DType.FLOAT32 || x.dtype() != DType.FLOAT32 || out.dtype() != DType.FLOAT32) {
            Backend.super.reluBackward(g, x, out);
            return;
        }
        walk3("relu backward", g, x, out, FloatKernels::reluBackward);
    }

    @Override
    public void binary(Binary op, Tensor a, Tensor b, Tensor out) {
        StridedWalk w = walk3Of(op.name().toLowerCase(), a, b, out);
        if (a.dtype() == DType.FLOAT32) {
            // an operand read across its rows (a transposed or permuted view) is first copied into
            // out's layout (tiled), as for unary ops, so that the row loop runs on vectors
            boolean rows = b.dtype() == DType.FLOAT32 && out.dtype() == DType.FLOAT32 && w.innerStride(2) == 1
                    && out.numel() >= STAGE_MIN;
            boolean stageA = rows && w.innerStride(0) > 1;
            boolean stageB = rows && w.innerStride(1) > 1;
            if (stageA || stageB) {
                try (Tensor sa = stageA ? Tensor.uninitialized(DType.FLOAT32, a.device(), out.shape()) : null;
                     Tensor sb = stageB ? Tensor.uninitialized(DType.FLOAT32, b.device(), out.shape()) : null) {
                    if (stageA) {
                        copy(a, sa);
                    }
                    if (stageB) {
                        copy(b, sb);
                    }
                    binary(op, stageA ? sa : a, stageB ? sb : b, out);
                }
                return;
            }
            walk3(w, a, b, out, (as, ao, sa, bs, bo, sb, os, oo, so, len) ->
                    FloatKernels.binary(op, as, ao, sa, bs, bo, sb, os, oo, so, len));
        } else {
            DType t = a.dtype();
            walk3(w, a, b, out, (as, ao, sa, bs, bo, sb, os, oo, so, len) -> {
                for (int i = 0; i < len; i++) {
                    store(os, t, oo + i * so, ScalarMath.binary(op, load(as, t, ao + i * sa), load(bs, t, bo + i * sb)));
                }
            });
        }
    }

    // ================================================================ reductions

    @Override
    public void reduce(Reduce op, Tensor x, boolean[] reduceAxes, Tensor out) {
        int rank = x.rank();
        int[] xs = x.shape();
        long[] xst = x.strides();
        int nk = 0;
        for (boolean r : reduceAxes) {
            nk += r ? 0 : 1;
        }
        // kept dims index the output; reduced dims are walked per output element
        int[] keptShape = new int[nk];
        long[] keptStride = new long[nk];
        int[] redShape = new int[rank - nk];
        long[] redStride = new long[rank - nk];
        for (int d = 0, k = 0, r = 0; d < rank; d++) {
            if (reduceAxes[d]) {
                redShape[r] = xs[d];
                redStride[r++] = xst[d];
            } else {
                keptShape[k] = xs[d];
                keptStride[k++] = xst[d];
            }
        }
        StridedWalk outer = new StridedWalk(keptShape, keptStride, contiguous(keptShape));
        StridedWalk inner = new StridedWalk(redShape, redStride);
        long innerStride = inner.innerStride(0);
        MemorySegment xsg = seg(x);
        MemorySegment os = seg(out);
        DType t = x.dtype();
        long nOut = outer.total;
        long nRed = inner.total;
        if (t == DType.FLOAT32 && outer.innerStride(0) == 1 && outer.innerStride(1) == 1 && outer.rowLength >= 16
                && nRed > 1) {
            reduceColumns(op, xsg, x.offset(), outer, inner, nRed, os, out.dtype(), out.offset());
            return;
        }
        if (nOut >= CpuThreads.threads() || nRed < (1 << 16)) {
            // a run of outputs per task worth about 2^15 input elements (each output reduces nRed)
            long grain = Math.max(1, (1 << 15) / Math.max(1, nRed));
            outer.walkParallel(new long[] {x.offset(), out.offset()}, grain, (offs, len) -> {
                long xo = offs[0];
                long oo = offs[1];
                long ks = outer.innerStride(0);
                for (int i = 0; i < len; i++) {
                    long base = xo + i * ks;
                    double[] acc = {identity(op)};
                    inner.walk(new long[] {base}, 0, nRed,
                            (ro, rl) -> acc[0] = combine(op, acc[0], reduceRow(op, t, xsg, ro[0], innerStride, rl)));
                    store(os, out.dtype(), oo + i, acc[0]);
                }
            });
        } else {
            // few outputs over long ranges: split each range into chunks of a size fixed by the
            // range alone (so the partial sums, combined in chunk order, do not depend on the
            // number of threads), taken dynamically (one slow thread no longer holds the others)
            long[] keptIdx = new long[1];
            long per = Math.max(1 << 16, (nRed + 1023) / 1024);
            int chunks = (int) ((nRed + per - 1) / per);
            outer.walk(new long[] {x.offset(), out.offset()}, 0, nOut, (offs, len) -> {
                for (int i = 0; i < len; i++) {
                    long base = offs[0] + i * outer.innerStride(0);
                    double[] partial = new double[chunks];
                    CpuThreads.parallelFor(chunks, c -> {
                        double[] acc = {identity(op)};
                        long s = Math.min(nRed, c * per);
                        long e = Math.min(nRed, s + per);
                        inner.walk(new long[] {base}, s, e,
                                (ro, rl) -> acc[0] = combine(op, acc[0], reduceRow(op, t, xsg, ro[0], innerStride, rl)));
                        partial[c] = acc[0];
                    });
                    double total = identity(op);
                    for (double p : partial) {
                        total = combine(op, total, p);
                    }
                    store(os, out.dtype(), offs[1] + i, total);
                    keptIdx[0]++;
                }
            });
        }
    }

    /** Rows of a column reduction summed in float before their block is added to the double total. */
    private static final int COLUMN_FLUSH_ROWS = 64;

    /**
     * A reduction whose outputs lie along rows that are contiguous in x (the reduced axes are outer
     * to the kept innermost one: a column sum, a mean over the batch, a sum over the channels of
     * NCHW): blocks of columns in parallel, each walking the reduced rows in order and combining
     * whole rows of its block vectorised. The per-output path walked each column with a stride, one
     * float at a time: 60-80x slower than PyTorch on a 4096x2048 column sum. Sums run in float over
     * 64 rows at a time and in double across those, so, like the per-output path, the result does
     * not depend on the number of threads.
     */
    private static void reduceColumns(Reduce op, MemorySegment xs, long xOff, StridedWalk kept, StridedWalk rows,
            long nRed, MemorySegment os, DType outType, long outOff) {
        int threads = CpuThreads.threads();
        int rowLength = (int) kept.rowLength;
        long keptRows = kept.total / rowLength;
        // blocks of whole vectors, at least four tasks per thread where the columns allow, at most 1024 floats
        long wanted = Math.max(1, 4L * threads / keptRows);
        int block = (int) Math.min(1024, Math.max(16, (rowLength / wanted + 15) / 16 * 16));
        int blocks = (rowLength + block - 1) / block;
        long rowStride = rows.innerStride(0);
        CpuThreads.parallelFor((int) (keptRows * blocks), task -> {
            long keptRow = task / blocks;
            int c0 = (int) (task % blocks) * block;
            int width = Math.min(block, rowLength - c0);
            long[] base = new long[2];
            kept.walk(new long[] {xOff, outOff}, keptRow * rowLength, keptRow * rowLength + 1,
                    (offs, len) -> System.arraycopy(offs, 0, base, 0, 2));
            float[] acc = new float[width];
            double[] total = new double[width];
            java.util.Arrays.fill(acc, (float) identity(op));
            java.util.Arrays.fill(total, identity(op));
            int[] pending = {0};
            rows.walk(new long[] {base[0] + c0}, 0, nRed, (ro, rl) -> {
                for (int r = 0; r < rl; r++) {
                    FloatKernels.combineInto(op, acc, xs, ro[0] + r * rowStride, width);
                    if (op == Reduce.SUM && ++pending[0] == COLUMN_FLUSH_ROWS) {
                        for (int j = 0; j < width; j++) {
                            total[j] += acc[j];
                            acc[j] = 0;
                        }
                        pending[0] = 0;
                    }
                }
            });
            for (int j = 0; j < width; j++) {
                store(os, outType, base[1] + c0 + j, op == Reduce.SUM ? total[j] + acc[j] : acc[j]);
            }
        });
    }

    private static long[] contiguous(int[] shape) {
        return dir4j.engine.Shape.contiguousStrides(shape);
    }

    private static double identity(Reduce op) {
        return switch (op) {
            case SUM -> 0;
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
        };
    }

    private static double combine(Reduce op, double a, double b) {
        if (Double.isNaN(a) || Double.isNaN(b)) {
            return Double.NaN;
        }
        return switch (op) {
            case SUM -> a + b;
            case MAX -> Math.max(a, b);
            case MIN -> Math.min(a, b);
        };
    }

    private static double reduceRow(Reduce op, DType t, MemorySegment s, long off, long stride, int len) {
        if (t == DType.FLOAT32) {
            return op == Reduce.SUM ? FloatKernels.sum(s, off, stride, len)
                    : FloatKernels.max(s, off, stride, len, op == Reduce.MAX);
        }
        double acc = identity(op);
        for (int i = 0; i < len; i++) {
            acc = combine(op, acc, load(s, t, off + i * stride));
        }
        return acc;
    }

    @Override
    public void cumsum(Tensor x, int axis, boolean reverse, Tensor out) {
        int rank = x.rank();
        int n = x.shape()[axis];
        long sx = x.strides()[axis];
        long so = out.strides()[axis];
        int[] lineShape = x.shape();
        lineShape[axis] = 1;
        StridedWalk lines = new StridedWalk(lineShape, x.strides(), out.strides());
        MemorySegment xs = seg(x);
        MemorySegment os = seg(out);
        DType t = x.dtype();
        lines.walkParallel(new long[] {x.offset(), out.offset()}, Math.max(1, (1 << 15) / Math.max(1, n)), (offs, len) -> {
            long ls0 = lines.innerStride(0);
            long ls1 = lines.innerStride(1);
            for (int l = 0; l < len; l++) {
                long xo = offs[0] + l * ls0;
                long oo = offs[1] + l * ls1;
                double acc = 0;
                for (int j = 0; j < n; j++) {
                    int k = reverse ? n - 1 - j : j;
                    acc += load(xs, t, xo + k * sx);
                    store(os, t, oo + k * so, acc);
                }
            }
        });
        assert rank > 0;
    }

    // ================================================================ matrix product

    @Override
    public void matmul(Tensor a, Tensor b, Tensor out) {
        int batch = a.shape()[0];
        int m = a.shape()[1];
        int k = a.shape()[2];
        int n = b.shape()[2];
        long[] as = a.strides();
        long[] bs = b.strides();
        long[] os = out.strides();
        MemorySegment asg = seg(a);
        MemorySegment bsg = seg(b);
        MemorySegment osg = seg(out);
        if (a.dtype() == DType.FLOAT32) {
            Sgemm.sgemmBatched(batch, m, n, k, 1f, asg, a.offset(), as[1], as[2], as[0],
                    bsg, b.offset(), bs[1], bs[2], bs[0], 0f, osg, out.offset(), os[1], os[0]);
            return;
        }
        DType t = a.dtype();
        CpuThreads.parallelFor(batch * m, bi -> {
            int p = bi / m;
            int i = bi % m;
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int q = 0; q < k; q++) {
                    acc += load(asg, t, a.offset() + p * as[0] + i * as[1] + q * as[2])
                            * load(bsg, t, b.offset() + p * bs[0] + q * bs[1] + j * bs[2]);
                }
                store(osg, t, out.offset() + p * os[0] + i * os[1] + j * os[2], acc);
            }
        });
    }

    // ================================================================ convolution

    static Conv2dGeometry geometry(Tensor x, Tensor w, ConvParams p) {
        int[] xs = x.shape();
        int[] ws = w.shape();
        return new Conv2dGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], p.strideH(), p.strideW(),
                p.padH(), p.padW(), p.dilationH(), p.dilationW());
    }

    @Override
    public void conv2d(Tensor x, Tensor w, ConvParams p, Tensor y) {
        Conv2dGeometry g = geometry(x, w, p);
        if (x.dtype() == DType.FLOAT32) {
            Conv2dKernels.forward(g, seg(x), x.offset(), seg(w), w.offset(), seg(y), y.offset());
        } else {
            ReferenceConv.forward(g, x, w, y);
        }
    }

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        Conv2dGeometry g = geometry(dx, w, p);
        if (dy.dtype() == DType.FLOAT32) {
            Conv2dKernels.backwardData(g, seg(dy), dy.offset(), seg(w), w.offset(), seg(dx), dx.offset());
        } else {
            ReferenceConv.backwardData(g, dy, w, dx);
        }
    }

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        Conv2dGeometry g = geometry(x, dw, p);
        if (x.dtype() == DType.FLOAT32) {
            Conv2dKernels.backwardFilter(g, seg(x), x.offset(), seg(dy), dy.offset(), seg(dw), dw.offset());
        } else {
            ReferenceConv.backwardFilter(g, x, dy, dw);
        }
    }

    // ================================================================ channels-last convolution

    @Override
    public void conv2dNhwc(Tensor x, Tensor w, Tensor bias, Tensor z, boolean relu, ConvParams p, Tensor y) {
        Backend.checkConv2dNhwc(x, w, bias, z, p, y);
        if (x.shape(0) == 0) {
            return;
        }
        if (!NhwcTraining.supports(x, w, p, false) || !NhwcTraining.forward(x, w, bias, z, relu, p, y)) {
            Backend.super.conv2dNhwc(x, w, bias, z, relu, p, y);
        }
    }

    @Override
    public void conv2dNhwcBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        Backend.checkConv2dNhwc(dx, w, null, null, p, dy);
        if (dx.shape(0) == 0) {
            return;
        }
        if (!NhwcTraining.supports(dx, w, p, true) || !NhwcTraining.backwardData(dy, w, p, dx)) {
            Backend.super.conv2dNhwcBackwardData(dy, w, p, dx);
        }
    }

    @Override
    public void conv2dNhwcBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        Backend.checkConv2dNhwc(x, dw, null, null, p, dy);
        if (!NhwcTraining.supports(x, dw, p, false)) {
            Backend.super.conv2dNhwcBackwardFilter(x, dy, p, dw);
            return;
        }
        NhwcTraining.backwardFilter(x, dy, p, dw);
    }

    // ================================================================ batch norm

    @Override
    public void batchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                            boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                            Tensor saveInvStd) {
        BatchNormKernels.forward(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y, saveMean,
                saveInvStd);
    }

    @Override
    public void batchNorm2dInference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     double eps, Tensor residual, boolean relu, Tensor y) {
        BatchNormKernels.inference(x, gamma, beta, runningMean, runningVar, eps, residual, relu, y);
    }

    @Override
    public void batchNorm2dAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                               boolean training, double momentum, double eps, Tensor residual, boolean relu, Tensor y,
                               Tensor saveMean, Tensor saveInvStd) {
        if (x.dtype() != DType.FLOAT32) {
            Backend.super.batchNorm2dAct(x, gamma, beta, runningMean, runningVar, training, momentum, eps, residual,
                    relu, y, saveMean, saveInvStd);
            return;
        }
        BatchNormKernels.forward(x, gamma, beta, runningMean, runningVar, training, momentum, eps, residual, relu, y,
                saveMean, saveInvStd);
    }

    @Override
    public void batchNorm2dActBackward(Tensor x, Tensor y, Tensor dy, Tensor gamma, Tensor saveMean,
                                       Tensor saveInvStd, boolean training, boolean relu, Tensor dx, Tensor dgamma,
                                       Tensor dbeta, Tensor dresidual) {
        if (x.dtype() != DType.FLOAT32) {
            Backend.super.batchNorm2dActBackward(x, y, dy, gamma, saveMean, saveInvStd, training, relu, dx, dgamma,
                    dbeta, dresidual);
            return;
        }
        BatchNormKernels.backwardAct(x, y, dy, gamma, saveMean, saveInvStd, training, relu, dx, dgamma, dbeta,
                dresidual);
    }

    @Override
    public void batchNorm2dBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                    boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        BatchNormKernels.backward(x, dy, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta);
    }

    @Override
    public void batchNorm2dNhwc(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                                Tensor saveInvStd) {
        if (x.dtype() != DType.FLOAT32 || y.dtype() != DType.FLOAT32 || !x.isContiguous() || !y.isContiguous()
                || x.numel() == 0) {
            Backend.super.batchNorm2dNhwc(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y,
                    saveMean, saveInvStd);
            return;
        }
        BatchNormKernels.forwardNhwc(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y, saveMean,
                saveInvStd);
    }

    @Override
    public void batchNorm2dNhwcBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                        boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        if (x.dtype() != DType.FLOAT32 || dy.dtype() != DType.FLOAT32 || dx.dtype() != DType.FLOAT32
                || !x.isContiguous() || !dy.isContiguous() || !dx.isContiguous() || x.numel() == 0) {
            Backend.super.batchNorm2dNhwcBackward(x, dy, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta);
            return;
        }
        BatchNormKernels.backwardNhwc(x, dy, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta);
    }

    // ================================================================ pooling

    @Override
    public void maxPool2d(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        PoolKernels.maxPool(x, p, y, indices);
    }

    @Override
    public void maxPool2dNhwc(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        Backend.checkMaxPool2dNhwc(x, y, indices);
        if (x.dtype() != DType.FLOAT32 || (long) x.shape(1) * x.shape(2) >= 1 << 24) {
            Backend.super.maxPool2dNhwc(x, p, y, indices);
            return;
        }
        PoolKernels.maxPoolNhwc(x, p, y, indices);
    }

    @Override
    public void maxPool2dNhwcBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx) {
        Backend.checkMaxPool2dNhwc(dx, dy, indices);
        if (dx.dtype() != DType.FLOAT32) {
            Backend.super.maxPool2dNhwcBackward(dy, indices, p, dx);
            return;
        }
        PoolKernels.maxPoolNhwcBackward(dy, indices, dx);
    }

    @Override
    public void maxPool2dBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx) {
        PoolKernels.maxPoolBackward(dy, indices, dx);
    }

    @Override
    public void avgPool2d(Tensor x, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd, boolean divisorFromWindow,
                          Tensor y) {
        PoolKernels.avgPool(x, hStart, hEnd, wStart, wEnd, divisorFromWindow, y, false);
    }

    @Override
    public void avgPool2dBackward(Tensor dy, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd,
                                  boolean divisorFromWindow, Tensor dx) {
        PoolKernels.avgPool(dx, hStart, hEnd, wStart, wEnd, divisorFromWindow, dy, true);
    }

    // ================================================================ indexing

    @Override
    public void indexSelect(Tensor x, int axis, Tensor indices, Tensor out) {
        int[] idx = indices.toIntArray();
        if (axis == 0 && x.isContiguous() && out.isContiguous() && x.dtype() == out.dtype() && x.rank() > 0) {
            // rows of contiguous tensors: one block copy per index, indices split across threads
            long rowBytes = x.numel() / Math.max(1, x.shape(0)) * x.dtype().byteSize();
            MemorySegment xs = seg(x);
            MemorySegment os = seg(out);
            long xBase = x.offset() * x.dtype().byteSize();
            long oBase = out.offset() * out.dtype().byteSize();
            CpuThreads.parallelRange(idx.length, Math.max(1, (1 << 16) / Math.max(1, rowBytes)), (s, e) -> {
                for (long i = s; i < e; i++) {
                    MemorySegment.copy(xs, xBase + idx[(int) i] * rowBytes, os, oBase + i * rowBytes, rowBytes);
                }
            });
            return;
        }
        for (int i = 0; i < idx.length; i++) {
            try (Tensor src = x.viewOf(sliceShape(x, axis), x.strides(), x.offset() + idx[i] * x.strides()[axis]);
                 Tensor dst = out.viewOf(sliceShape(out, axis), out.strides(),
                         out.offset() + (long) i * out.strides()[axis])) {
                copy(src, dst);
            }
        }
    }

    @Override
    public void indexAdd(Tensor g, int axis, Tensor indices, Tensor dx) {
        int[] idx = indices.toIntArray();
        if (axis == 0 && g.isContiguous() && dx.isContiguous() && g.dtype() == DType.FLOAT32
                && dx.dtype() == DType.FLOAT32 && g.rank() > 0) {
            // rows of contiguous tensors: every index in order (repeated indices add up in that
            // order, as before), the columns split across threads, so no two threads add to one float
            int row = (int) (g.numel() / Math.max(1, g.shape(0)));
            MemorySegment gs = seg(g);
            MemorySegment ds = seg(dx);
            long gOff = g.offset();
            long dOff = dx.offset();
            int block = Math.max(256, (row / CpuThreads.threads() + 15) / 16 * 16);
            int blocks = (row + block - 1) / block;
            CpuThreads.parallelFor(blocks, b -> {
                int c0 = b * block;
                int width = Math.min(block, row - c0);
                for (int i = 0; i < idx.length; i++) {
                    long d = dOff + (long) idx[i] * row + c0;
                    FloatKernels.binary(Binary.ADD, ds, d, 1, gs, gOff + (long) i * row + c0, 1, ds, d, 1, width);
                }
            });
            return;
        }
        for (int i = 0; i < idx.length; i++) {
            try (Tensor src = g.viewOf(sliceShape(g, axis), g.strides(), g.offset() + (long) i * g.strides()[axis]);
                 Tensor dst = dx.viewOf(sliceShape(dx, axis), dx.strides(),
                         dx.offset() + idx[i] * dx.strides()[axis])) {
                binary(Binary.ADD, dst, src, dst);
            }
        }
    }

    // ================================================================ GeM and the AP histogram

    @Override
    public void gem(Tensor x, Tensor p, double eps, Tensor y) {
        GemKernels.forward(x, p.item(), eps, y);
    }

    @Override
    public void gemBackward(Tensor x, Tensor p, double eps, Tensor y, Tensor dy, Tensor dx, Tensor dpPartial) {
        GemKernels.backward(x, p.item(), eps, y, dy, dx, dpPartial);
    }

    @Override
    public void apHistogram(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor hist) {
        labels.check("apHistogram", scores);
        ApHistogramKernels.forward(scores, labels, bins, excludedDiagonal, hist);
    }

    @Override
    public void apHistogramBackward(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal,
                                    Tensor gradHist, Tensor gradScores) {
        labels.check("apHistogramBackward", scores);
        ApHistogramKernels.backward(scores, labels, bins, excludedDiagonal, gradHist, gradScores);
    }

    @Override
    public void apHistogramBackwardSymmetric(Tensor scores, ApLabels labels, ApBins bins, int rowOffset,
                                             int excludedDiagonal, Tensor gradHist, Tensor gradScores) {
        labels.check("apHistogramBackwardSymmetric", scores);
        ApHistogramKernels.backwardSymmetric(scores, labels, bins, rowOffset, excludedDiagonal, gradHist, gradScores);
    }

    @Override
    public void apLossFromHistogram(Tensor hist, Tensor coef, Tensor ap, Tensor gradHist) {
        Backend.checkApLossFromHistogram(hist, coef, ap, gradHist);
        ApHistogramKernels.lossFromHistogram(hist, coef, ap, gradHist);
    }

    private static int[] sliceShape(Tensor t, int axis) {
        int[] s = t.shape();
        s[axis] = 1;
        return s;
    }

    // ================================================================ fused optimiser steps

    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, boolean firstStep, SgdStep h) {
        OptimizerKernels.sgd(param, grad, momentumBuffer, firstStep, h);
    }

    @Override
    public void adamStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamStep h) {
        OptimizerKernels.adam(param, grad, expAvg, expAvgSq, h);
    }

    /** A bounded heap per row ({@link TopK}), rows in parallel. */
    @Override
    public void topk(Tensor scores, int k, Tensor values, Tensor indices) {
        Backend.checkTopk(scores, k, values, indices, Integer.MAX_VALUE);
        int rows = scores.shape(0);
        int n = scores.shape(1);
        MemorySegment s = scores.segment();
        MemorySegment v = values.segment();
        MemorySegment ix = indices.segment();
        CpuThreads.parallelFor(rows, r -> {
            TopK top = new TopK(k);
            long base = scores.offset() + (long) r * scores.stride(0);
            for (int j = 0; j < n; j++) {
                top.offer(s.getAtIndex(ValueLayout.JAVA_FLOAT, base + j), j);
            }
            long[] keys = top.sortedKeys();
            for (int j = 0; j < k; j++) {
                v.setAtIndex(ValueLayout.JAVA_FLOAT, values.offset() + (long) r * k + j, ScoreOrder.score(keys[j]));
                ix.setAtIndex(ValueLayout.JAVA_INT, indices.offset() + (long) r * k + j, ScoreOrder.index(keys[j]));
            }
        });
    }
}
