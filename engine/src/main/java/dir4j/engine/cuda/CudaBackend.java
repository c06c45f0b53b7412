package dir4j.engine.cuda;

import static dir4j.engine.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD16Async;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuMemsetD8Async;

import dir4j.engine.Backend;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Shape;
import dir4j.engine.Storage;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.CpuBackend;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The CUDA backend of one device: hand-written kernels (dir4j-kernels) for elementwise ops,
 * reductions, cumulative sums, GeM, the AP histogram, pooling, indexing and the fused optimiser
 * steps; cuBLAS for matrix
 * products; cuDNN for convolutions (NCHW, and channels-last with the bias, residual and ReLU fused
 * for inference) and batch norm. Every op is queued on the device's stream;
 * the host waits only when it reads (a copy to the CPU, {@link #synchronize()}).
 *
 * <p>Status: written and built without a GPU; nothing here has run on one yet. The gpu-tagged
 * tests (CudaBackendGpuTest) and bench/gpu/run_gpu_checks.sh are the first check.
 *
 * <p>dtypes: float32 everywhere; float64 (the CPU's gradient-check path) in elementwise ops,
 * reductions, cumulative sums and matrix products; fill and copy handle every dtype.
 * Average pooling, indexSelect/indexAdd and the fused optimiser steps also take float64.
 *
 * <p>TF32 (tensor cores on float32 data, ≈1e-3 relative error) follows PyTorch's defaults:
 * <b>on for cuDNN convolutions</b> ({@code torch.backends.cudnn.allow_tf32 = True}) and <b>off
 * for cuBLAS matrix products</b> ({@code torch.backends.cuda.matmul.allow_tf32 = False}). The
 * switches: {@link #setConvTf32}, {@link #setMatmulTf32}, {@link #setTf32} (both), or the system
 * properties {@code dir4j.cuda.tf32.conv} (default true), {@code dir4j.cuda.tf32.matmul} (default
 * false) and {@code dir4j.cuda.tf32} (both; overrides the other two when set). Parity tests
 * against the CPU turn both off.
 *
 * <p>Other system properties: {@code dir4j.cuda.sync} (synchronise after
 * every launch to name a failing kernel), {@code dir4j.cuda.cudnn.search} (find | heuristic),
 * {@code dir4j.cuda.cudnn.workspaceMiB}.
 */
public final class CudaBackend implements Backend {
    private static final int BLOCK = 256;

    private final Device device;
    private final CudaContext ctx;
    private final CachingAllocator allocator;
    private final CudaModules kernels;
    private final CudaProfiler profiler;
    private final PinnedStaging staging;
    private volatile boolean convTf32 = tf32Default("dir4j.cuda.tf32.conv", true);
    private volatile boolean matmulTf32 = tf32Default("dir4j.cuda.tf32.matmul", false);
    private Cublas cublas;
    private Boolean cublasTf32;
    private Cudnn cudnn;
    private CudnnConvolutions convolutions;
    private final Map<List<Integer>, MemorySegment[]> bnDescriptors = new ConcurrentHashMap<>();

    private CudaBackend(Device device, CudaContext ctx) {
        this.device = device;
        this.ctx = ctx;
        this.allocator = new CachingAllocator(device.toString(), new DriverMemory(ctx));
        this.profiler = new CudaProfiler(ctx);
        this.kernels = new CudaModules(ctx, profiler);
        this.staging = new PinnedStaging(ctx);
    }

    /**
     * The backend of a CUDA device (the factory {@link dir4j.engine.Backends} registers for
     * {@link Device.Kind#CUDA}); an error says why when CUDA is not usable.
     */
    public static Backend create(Device device) {
        if (device.kind() != Device.Kind.CUDA) {
            throw new IllegalArgumentException("CudaBackend.create: " + device + " is not a CUDA device");
        }
        CudaDriver.Availability a = CudaDriver.availability();
        if (!a.usable()) {
            throw new IllegalStateException("no backend for " + device + ": CUDA is not usable: " + a.reason()
                    + "; run with --device cpu");
        }
        return new CudaBackend(device, CudaContext.open(device.index()));
    }

    @Override
    public Device device() {
        return device;
    }

    /** "cuda:0 NVIDIA H200 (compute 9.0, 132 SMs, 139.8 GiB)". */
    public String describe() {
        return ctx.describe();
    }

    /** A TF32 default: {@code dir4j.cuda.tf32} when set, else {@code property} when set, else {@code fallback}. */
    static boolean tf32Default(String property, boolean fallback) {
        String both = System.getProperty("dir4j.cuda.tf32");
        String own = System.getProperty(property);
        return both != null ? Boolean.parseBoolean(both) : own != null ? Boolean.parseBoolean(own) : fallback;
    }

    /**
     * TF32 tensor cores for float32 matrix products and convolutions both (≈1e-3 relative
     * error), or strict float32 for both.
     */
    public void setTf32(boolean on) {
        convTf32 = on;
        matmulTf32 = on;
    }

    /** TF32 for float32 cuDNN convolutions (forward and both backward directions); default on, as PyTorch. */
    public void setConvTf32(boolean on) {
        convTf32 = on;
    }

    /** TF32 for float32 cuBLAS matrix products; default off (strict float32), as PyTorch. */
    public void setMatmulTf32(boolean on) {
        matmulTf32 = on;
    }

    /** Whether float32 convolutions may use TF32 tensor cores. */
    public boolean convTf32() {
        return convTf32;
    }

    /** Whether float32 matrix products may use TF32 tensor cores. */
    public boolean matmulTf32() {
        return matmulTf32;
    }

    /** Waits for every queued op of this device. */
    public void synchronize() {
        ctx.synchronize("synchronize");
    }

    /**
     * Captures the work {@code body} queues on this device's stream into a CUDA graph
     * (cuStreamBeginCapture in relaxed mode, cuStreamEndCapture, cuGraphInstantiate); nothing
     * runs until {@link Backend.Recording#replay} (cuGraphLaunch). Memory freed during the capture
     * (cuDNN workspaces) stays reserved for the graph until it is closed. Refused while the device
     * profiler is on (its events would be captured). On failure the capture is ended, its memory
     * returned, and a {@link CudaException} names the call that failed.
     */
    @Override
    public Backend.Recording record(Runnable body) {
        if (profiler.enabled()) {
            throw new IllegalStateException("CUDA graph capture while the device profiler is on");
        }
        ctx.bind();
        allocator.beginCapture();
        ctx.capturing = true;
        jcuda.driver.CUgraph graph = new jcuda.driver.CUgraph();
        boolean begun = false;
        try {
            check(jcuda.driver.JCudaDriver.cuStreamBeginCapture(ctx.stream,
                    jcuda.driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED), "cuStreamBeginCapture");
            begun = true;
            body.run();
            begun = false;
            check(jcuda.driver.JCudaDriver.cuStreamEndCapture(ctx.stream, graph), "cuStreamEndCapture");
            jcuda.driver.CUgraphExec exec = new jcuda.driver.CUgraphExec();
            check(jcuda.driver.JCudaDriver.cuGraphInstantiate(exec, graph, 0), "cuGraphInstantiate");
            ctx.capturing = false;
            return new GraphRecording(graph, exec, allocator.endCapture());
        } catch (RuntimeException | Error e) {
            if (begun) {
                jcuda.driver.JCudaDriver.cuStreamEndCapture(ctx.stream, graph);
            }
            ctx.capturing = false;
            jcuda.driver.JCudaDriver.cuGraphDestroy(graph);
            CachingAllocator.CapturePool pool = allocator.endCapture();
            if (pool != null) {
                allocator.release(pool);
            }
            throw e;
        }
    }

    /** A captured and instantiated CUDA graph with the memory its capture freed. */
    private final class GraphRecording implements Backend.Recording {
        private final jcuda.driver.CUgraph graph;
        private final jcuda.driver.CUgraphExec exec;
        private final CachingAllocator.CapturePool pool;
        private boolean closed;

        GraphRecording(jcuda.driver.CUgraph graph, jcuda.driver.CUgraphExec exec, CachingAllocator.CapturePool pool) {
            this.graph = graph;
            this.exec = exec;
            this.pool = pool;
        }

        @Override
        public synchronized void replay() {
            if (closed) {
                throw new IllegalStateException("this CUDA graph is closed");
            }
            ctx.bind();
            check(jcuda.driver.JCudaDriver.cuGraphLaunch(exec, ctx.stream), "cuGraphLaunch");
        }

        @Override
        public synchronized void close() {
            if (closed) {
                return;
            }
            ctx.bind();
            boolean drained = false;
            try {
                // queued replays still use the pool's memory: wait for them before it is handed out again
                ctx.synchronize("closing a CUDA graph");
                drained = true;
            } finally {
                // the handles go even when the wait reports an earlier failure (an executable graph
                // still in flight is freed by the driver when it completes); the pool's blocks go
                // back to the cache only when nothing can still be using them
                closed = true;
                jcuda.driver.JCudaDriver.cuGraphExecDestroy(exec);
                jcuda.driver.JCudaDriver.cuGraphDestroy(graph);
                if (drained) {
                    allocator.release(pool);
                }
            }
        }
    }

    /** The allocator's counters. */
    public CachingAllocator.Stats memoryStats() {
        return allocator.stats();
    }

    /** The most device memory in use at once (caching allocator, bytes handed out) since the backend started. */
    public long peakMemoryBytes() {
        return allocator.stats().peakInUseBytes();
    }

    /** Starts {@link #peakMemoryBytes} afresh from the memory in use now, to measure one workload's peak. */
    public void resetPeakMemory() {
        allocator.resetPeak();
    }

    /**
     * Starts (true) or stops recording device time per operation ({@link CudaProfiler}: two CUDA
     * events around each kernel, cuDNN call, cuBLAS product and copy; for diagnosis, off by default).
     */
    public void profile(boolean on) {
        profiler.enable(on);
    }

    /**
     * The device time recorded since the last call, as {@link CudaProfiler#format}: by category,
     * then the {@code top} longest operations; waits for the recorded work.
     */
    public String profileReport(int top) {
        return CudaProfiler.format(profiler.collect(), top);
    }

    /** The recorded device time per operation, longest first (and the totals start afresh). */
    public java.util.List<CudaProfiler.Entry> profileEntries() {
        return profiler.collect();
    }

    private CudaProfiler.Span span(String name) {
        return profiler.enabled() ? profiler.time(name) : CudaProfiler.none();
    }

    /** Gives cached device memory back to the driver; returns the bytes released. */
    public long emptyCache() {
        ctx.bind();
        return allocator.releaseCached();
    }

    /** Loads every kernel file now and reports how long each took ("elementwise 12 ms, ..."). */
    public String loadKernels() {
        kernels.loadAll();
        return kernels.loadReport();
    }

    /** The cuDNN algorithms chosen so far, one line per convolution shape. */
    public String convolutionChoices() {
        return convolutions == null ? "" : convolutions.describe();
    }

    private static UnsupportedOperationException unsupported(String op) {
        return new UnsupportedOperationException(op + " on CUDA is not implemented yet");
    }

    // ================================================================ memory

    /** cuMemAlloc / cuMemFree under the caching allocator. */
    private static final class DriverMemory implements DeviceMemory {
        private final CudaContext ctx;

        DriverMemory(CudaContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public long allocate(long bytes) {
            ctx.bind();
            CudaDeviceptr p = new CudaDeviceptr();
            int rc = cuMemAlloc(p, bytes);
            if (rc == jcuda.driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
                return 0;
            }
            check(rc, "cuMemAlloc(" + bytes + ")");
            return p.address();
        }

        @Override
        public void free(long address) {
            ctx.bind();
            check(cuMemFree(CudaDeviceptr.at(address)), "cuMemFree");
        }

        @Override
        public void synchronize() {
            ctx.synchronize("releasing cached memory");
        }

        @Override
        public String describe() {
            long[] m = ctx.memoryInfo();
            return CachingAllocator.bytes(m[0]) + " free of " + CachingAllocator.bytes(m[1]);
        }
    }

    @Override
    public Storage allocate(long bytes) {
        CudaStorage s = (CudaStorage) allocateUninitialized(bytes);
        long n = Math.max(1, bytes);
        if (n % 4 == 0) {
            check(cuMemsetD32Async(CudaDeviceptr.at(s.address()), 0, n / 4, ctx.stream), "cuMemsetD32Async");
        } else {
            check(cuMemsetD8Async(CudaDeviceptr.at(s.address()), (byte) 0, n, ctx.stream), "cuMemsetD8Async");
        }
        return s;
    }

    @Override
    public Storage allocateUninitialized(long bytes) {
        ctx.bind();
        long n = Math.max(1, bytes);
        return new CudaStorage(allocator, allocator.allocate(n), n, device);
    }

    /** Device memory for an op's temporaries, returned to the cache on close (stream-ordered, so safe at once). */
    private final class Scratch implements AutoCloseable {
        final CachingAllocator.Block block;

        Scratch(long bytes, boolean zero) {
            ctx.bind();
            block = allocator.allocate(Math.max(4, bytes));
            if (zero) {
                long words = (Math.max(4, bytes) + 3) / 4;
                check(cuMemsetD32Async(CudaDeviceptr.at(block.address()), 0, words, ctx.stream), "cuMemsetD32Async");
            }
        }

        long address() {
            return block.address();
        }

        @Override
        public void close() {
            allocator.free(block);
        }
    }

    /** The device address of a tensor's element 0. */
    private long address(Tensor t) {
        t.checkAlive("CUDA op");
        if (!(t.storage() instanceof CudaStorage s) || !t.device().equals(device)) {
            throw new IllegalArgumentException("CUDA op on " + device + ": tensor " + Shape.str(t.shape()) + " is on "
                    + t.device() + "; move it with .to(" + device + ")");
        }
        return s.address() + t.offset() * t.dtype().byteSize();
    }

    private static void requireFloat(String op, Tensor t, boolean float64Allowed) {
        if (t.dtype() != DType.FLOAT32 && !(float64Allowed && t.dtype() == DType.FLOAT64)) {
            throw new UnsupportedOperationException(op + " on CUDA takes float32" + (float64Allowed ? " or float64" : "")
                    + ", not " + t.dtype());
        }
    }

    private static void sameShape(String op, Tensor a, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(op + ": shapes differ: " + Shape.str(a.shape()) + " and "
                    + Shape.str(b.shape()));
        }
    }

    private static boolean aligned16(long... addresses) {
        for (long a : addresses) {
            if ((a & 15) != 0) {
                return false;
            }
        }
        return true;
    }

    // ================================================================ fill and copy

    /** The value as the dtype's bit pattern (Java's casts for int32; round-to-nearest-even for bfloat16). */
    static long bits(DType t, double value) {
        return switch (t) {
            case FLOAT32 -> Float.floatToRawIntBits((float) value) & 0xffffffffL;
            case FLOAT64 -> Double.doubleToRawLongBits(value);
            case INT32 -> ((int) value) & 0xffffffffL;
            case FLOAT16 -> Float.floatToFloat16((float) value) & 0xffffL;
            case BFLOAT16 -> {
                int f = Float.floatToRawIntBits((float) value);
                yield Float.isNaN((float) value) ? 0x7fc0 : ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
            }
        };
    }

    @Override
    public void fill(Tensor out, double value) {
        if (out.numel() == 0) {
            return;
        }
        long dst = address(out);
        int width = out.dtype().byteSize();
        long b = bits(out.dtype(), value);
        if (out.isContiguous() && width == 4) {
            check(cuMemsetD32Async(CudaDeviceptr.at(dst), (int) b, out.numel(), ctx.stream), "cuMemsetD32Async");
            return;
        }
        if (out.isContiguous() && width == 2 && (dst & 1) == 0) {
            check(cuMemsetD16Async(CudaDeviceptr.at(dst), (short) b, out.numel(), ctx.stream), "cuMemsetD16Async");
            return;
        }
        StridedGeometry g = StridedGeometry.of("fill", out.shape(), out.strides());
        boolean i32 = g.fitsInt32();
        Kernel k = switch (width) {
            case 2 -> i32 ? Kernel.FILL_STRIDED_B16_I32 : Kernel.FILL_STRIDED_B16_I64;
            case 4 -> i32 ? Kernel.FILL_STRIDED_B32_I32 : Kernel.FILL_STRIDED_B32_I64;
            default -> i32 ? Kernel.FILL_STRIDED_B64_I32 : Kernel.FILL_STRIDED_B64_I64;
        };
        kernels.launch(k, kernels.gridFor(g.numel, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(dst).geometry(g).bits(b));
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        sameShape("copy", src, dst);
        if (src.numel() == 0) {
            return;
        }
        boolean fromHost = src.device().kind() == Device.Kind.CPU;
        boolean toHost = dst.device().kind() == Device.Kind.CPU;
        try (CudaProfiler.Span span = span(fromHost ? (toHost ? "copy/host" : "copy/to device")
                : toHost ? "copy/to host" : "copy/on device")) {
            copyBetween(src, dst, fromHost, toHost);
        }
    }

    private void copyBetween(Tensor src, Tensor dst, boolean fromHost, boolean toHost) {
        if (fromHost && toHost) {
            CpuBackend.instance().copy(src, dst);
        } else if (fromHost) {
            upload(src, dst);
        } else if (toHost) {
            download(src, dst);
        } else if (!src.device().equals(dst.device())) {
            throw unsupported("copy between " + src.device() + " and " + dst.device()
                    + " (copy through the CPU: .to(Device.CPU).to(" + dst.device() + "))");
        } else {
            copyOnDevice(src, dst);
        }
    }

    private void copyOnDevice(Tensor src, Tensor dst) {
        long s = address(src);
        long d = address(dst);
        if (src.dtype() == dst.dtype() && src.isContiguous() && dst.isContiguous()) {
            check(cuMemcpyDtoDAsync(CudaDeviceptr.at(d), CudaDeviceptr.at(s), src.numel() * src.dtype().byteSize(),
                    ctx.stream), "cuMemcpyDtoDAsync");
            return;
        }
        StridedGeometry g = StridedGeometry.of("copy", dst.shape(), src.strides(), dst.strides());
        long grid = kernels.gridFor(g.numel, BLOCK);
        if (src.dtype() != dst.dtype()) {
            kernels.launch(Kernel.CAST_STRIDED, grid, 1, BLOCK, 0, new KernelArgs().ptr(s).i32(src.dtype().ordinal())
                    .ptr(d).i32(dst.dtype().ordinal()).geometry(g));
            return;
        }
        boolean i32 = g.fitsInt32();
        Kernel k = switch (src.dtype().byteSize()) {
            case 2 -> i32 ? Kernel.COPY_STRIDED_B16_I32 : Kernel.COPY_STRIDED_B16_I64;
            case 4 -> i32 ? Kernel.COPY_STRIDED_B32_I32 : Kernel.COPY_STRIDED_B32_I64;
            default -> i32 ? Kernel.COPY_STRIDED_B64_I32 : Kernel.COPY_STRIDED_B64_I64;
        };
        kernels.launch(k, grid, 1, BLOCK, 0, new KernelArgs().ptr(s).ptr(d).geometry(g));
    }

    /** CPU → this device: contiguous bytes travel through pinned staging; layouts and dtypes are fixed on either side. */
    private void upload(Tensor src, Tensor dst) {
        if (src.isContiguous() && dst.isContiguous() && src.dtype() == dst.dtype()) {
            staging.upload(src.segment(), src.offset() * src.dtype().byteSize(), src.numel() * src.dtype().byteSize(),
                    address(dst));
            return;
        }
        // a contiguous host copy in the source dtype, uploaded, then a device copy into dst's layout/dtype
        Tensor host = src.isContiguous() ? null : Tensor.uninitialized(src.dtype(), Device.CPU, src.shape());
        Tensor staged = Tensor.uninitialized(src.dtype(), device, src.shape());
        try {
            Tensor h = src;
            if (host != null) {
                CpuBackend.instance().copy(src, host);
                h = host;
            }
            staging.upload(h.segment(), h.offset() * h.dtype().byteSize(), h.numel() * h.dtype().byteSize(),
                    address(staged));
            copyOnDevice(staged, dst);
        } finally {
            staged.close();
            if (host != null) {
                host.close();
            }
        }
    }

    /** This device → CPU; waits for the data. */
    private void download(Tensor src, Tensor dst) {
        if (src.isContiguous() && dst.isContiguous() && src.dtype() == dst.dtype()) {
            staging.download(address(src), dst.segment(), dst.offset() * dst.dtype().byteSize(),
                    src.numel() * src.dtype().byteSize());
            return;
        }
        Tensor staged = Tensor.uninitialized(dst.dtype(), device, dst.shape());
        Tensor host = dst.isContiguous() ? null : Tensor.uninitialized(dst.dtype(), Device.CPU, dst.shape());
        try {
            copyOnDevice(src, staged);
            Tensor h = host != null ? host : dst;
            staging.download(address(staged), h.segment(), h.offset() * h.dtype().byteSize(),
                    staged.numel() * staged.dtype().byteSize());
            if (host != null) {
                CpuBackend.instance().copy(host, dst);
            }
        } finally {
            staged.close();
            if (host != null) {
                host.close();
            }
        }
    }

    // ================================================================ elementwise

    @Override
    public void unary(Unary op, Tensor x, double alpha, double beta, Tensor out) {
        String name = op.name().toLowerCase(Locale.ROOT);
        sameShape(name, x, out);
        requireFloat(name, x, true);
        if (out.dtype() != x.dtype()) {
            throw new IllegalArgumentException(name + ": output " + out.dtype() + " differs from input " + x.dtype());
        }
        if (x.numel() == 0) {
            return;
        }
        long xa = address(x);
        long oa = address(out);
        if (x.dtype() == DType.FLOAT32 && x.isContiguous() && out.isContiguous() && aligned16(xa, oa)) {
            kernels.launch(Kernel.UNARY_CONTIG4_F32, kernels.gridFor((x.numel() + 3) / 4, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(xa).ptr(oa).i64(x.numel()).i32(op.ordinal()).f64(alpha).f64(beta));
            return;
        }
        StridedGeometry g = StridedGeometry.of(name, out.shape(), x.strides(), out.strides());
        boolean f32 = x.dtype() == DType.FLOAT32;
        boolean i32 = g.fitsInt32();
        Kernel k = f32 ? (i32 ? Kernel.UNARY_STRIDED_F32_I32 : Kernel.UNARY_STRIDED_F32_I64)
                : (i32 ? Kernel.UNARY_STRIDED_F64_I32 : Kernel.UNARY_STRIDED_F64_I64);
        kernels.launch(k, kernels.gridFor(g.numel, BLOCK), 1, BLOCK, 0,
                new KernelArgs().ptr(xa).ptr(oa).geometry(g).i32(op.ordinal()).f64(alpha).f64(beta));
    }

    @Override
    public void binary(Binary op, Tensor a, Tensor b, Tensor out) {
        String name = op.name().toLowerCase(Locale.ROOT);
        sameShape(name, a, out);
        sameShape(name, b, out);
        requireFloat(name, a, true);
        if (b.dtype() != a.dtype() || out.dtype() != a.dtype()) {
            throw new IllegalArgumentException(name + ": dtypes differ: " + a.dtype() + ", " + b.dtype() + " -> "
                    + out.dtype());
        }
        if (out.numel() == 0) {
            return;
        }
        long aa = address(a);
        long ba = address(b);
        long oa = address(out);
        if (a.dtype() == DType.FLOAT32 && a.isContiguous() && b.isContiguous() && out.isContiguous()
                && aligned16(aa, ba, oa)) {
            kernels.launch(Kernel.BINARY_CONTIG4_F32, kernels.gridFor((out.numel() + 3) / 4, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(aa).ptr(ba).ptr(oa).i64(out.numel()).i32(op.ordinal()));
            return;
        }
        if (a.dtype() == DType.FLOAT32 && op.ordinal() <= Binary.DIV.ordinal() && out.isContiguous()
                && out.numel() < Integer.MAX_VALUE && aligned16(oa)) {
            // add, sub, mul, div with one operand contiguous, the other a vector repeated over runs (bias, scale)
            boolean swap = !(a.isContiguous() && aligned16(aa));
            Tensor c = swap ? b : a;
            long[] rep = c.isContiguous() && aligned16(swap ? ba : aa) ? RepeatedVector.of(out.shape(), (swap ? a : b).strides())
                    : null;
            if (rep != null) {
                long ra = swap ? aa : ba;
                // kernels/src/main/cuda/elementwise.cu RepeatMode: one value per float4, a float4 of a row, any
                int mode = rep[0] % 4 == 0 ? 0 : rep[0] == 1 && rep[1] % 4 == 0 && aligned16(ra) ? 1 : 2;
                // 4 float4s a thread per round (REPEAT_UNROLL)
                kernels.launch(Kernel.BINARY_REPEAT4_F32, kernels.gridFor((out.numel() + 15) / 16, BLOCK), 1, BLOCK, 0,
                        new KernelArgs().ptr(swap ? ba : aa).ptr(ra).ptr(oa).i32((int) out.numel())
                                .i32((int) rep[0]).i32((int) rep[1]).i32(op.ordinal()).i32(swap ? 1 : 0).i32(mode));
                return;
            }
        }
        StridedGeometry g = StridedGeometry.of(name, out.shape(), a.strides(), b.strides(), out.strides());
        boolean f32 = a.dtype() == DType.FLOAT32;
        boolean i32 = g.fitsInt32();
        Kernel k = f32 ? (i32 ? Kernel.BINARY_STRIDED_F32_I32 : Kernel.BINARY_STRIDED_F32_I64)
                : (i32 ? Kernel.BINARY_STRIDED_F64_I32 : Kernel.BINARY_STRIDED_F64_I64);
        kernels.launch(k, kernels.gridFor(g.numel, BLOCK), 1, BLOCK, 0,
                new KernelArgs().ptr(aa).ptr(ba).ptr(oa).geometry(g).i32(op.ordinal()));
    }

    // ================================================================ reductions

    @Override
    public void reduce(Reduce op, Tensor x, boolean[] reduceAxes, Tensor out) {
        String name = "reduce " + op.name().toLowerCase(Locale.ROOT);
        requireFloat(name, x, true);
        if (!out.isContiguous() || out.dtype() != x.dtype()) {
            throw new IllegalArgumentException(name + ": output must be a contiguous " + x.dtype() + " tensor");
        }
        if (out.numel() == 0) {
            return;
        }
        boolean f32 = x.dtype() == DType.FLOAT32;
        ReducePlan plan = ReducePlan.of(name, x.shape(), x.strides(), reduceAxes, ctx.multiprocessors);
        long xa = address(x);
        long oa = address(out);
        long outputs = plan.kept().numel;
        switch (plan.kind()) {
            case ROWS -> reduceRows(f32, xa, oa, plan.kept(), outputs, plan.reduced().numel, op);
            case COLUMNS -> kernels.launch(f32 ? Kernel.REDUCE_COLUMNS_F32 : Kernel.REDUCE_COLUMNS_F64,
                    kernels.gridFor(outputs, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(xa).ptr(oa).geometry(plan.kept()).geometry(plan.reduced()).i32(op.ordinal()));
            case BLOCKS -> {
                int splits = plan.splits();
                long grid = Math.min(outputs, 65535L * 32);
                Kernel k = f32 ? Kernel.REDUCE_BLOCKS_F32 : Kernel.REDUCE_BLOCKS_F64;
                if (splits == 1) {
                    kernels.launch(k, grid, 1, BLOCK, 0, new KernelArgs().ptr(xa).ptr(oa).geometry(plan.kept())
                            .geometry(plan.reduced()).i32(op.ordinal()).ptr(0));
                } else {
                    try (Scratch partial = new Scratch(outputs * splits * x.dtype().byteSize(), false)) {
                        kernels.launch(k, grid, splits, BLOCK, 0, new KernelArgs().ptr(xa).ptr(oa)
                                .geometry(plan.kept()).geometry(plan.reduced()).i32(op.ordinal())
                                .ptr(partial.address()));
                        StridedGeometry rows = StridedGeometry.of(name, new long[] {outputs}, new long[] {splits});
                        reduceRows(f32, partial.address(), oa, rows, outputs, splits, op);
                    }
                }
            }
        }
    }

    private void reduceRows(boolean f32, long x, long out, StridedGeometry rows, long count, long len, Reduce op) {
        // a warp per row for short rows, the whole block for long ones
        int threadsPerRow = len >= 2048 ? BLOCK : 32;
        long rowsPerBlock = BLOCK / threadsPerRow;
        long grid = Math.min((count + rowsPerBlock - 1) / rowsPerBlock, (long) ctx.multiprocessors * 32);
        kernels.launch(f32 ? Kernel.REDUCE_ROWS_F32 : Kernel.REDUCE_ROWS_F64, Math.max(1, grid), 1, BLOCK, 0,
                new KernelArgs().ptr(x).ptr(out).geometry(rows).i64(count).i64(len).i32(op.ordinal())
                        .i32(threadsPerRow));
    }

    @Override
    public void cumsum(Tensor x, int axis, boolean reverse, Tensor out) {
        requireFloat("cumsum", x, true);
        sameShape("cumsum", x, out);
        if (x.numel() == 0) {
            return;
        }
        int[] lineShape = x.shape();
        int n = lineShape[axis];
        lineShape[axis] = 1;
        StridedGeometry lines = StridedGeometry.of("cumsum", lineShape, x.strides(), out.strides());
        boolean f32 = x.dtype() == DType.FLOAT32;
        KernelArgs args = new KernelArgs().ptr(address(x)).ptr(address(out)).geometry(lines).i64(n)
                .i64(x.stride(axis)).i64(out.stride(axis)).i32(reverse ? 1 : 0);
        if (n > 256) { // long lines: a block scans each
            kernels.launch(f32 ? Kernel.CUMSUM_BLOCK_F32 : Kernel.CUMSUM_BLOCK_F64,
                    Math.min(lines.numel, (long) ctx.multiprocessors * 32), 1, BLOCK, 0, args);
        } else {
            kernels.launch(f32 ? Kernel.CUMSUM_LINES_F32 : Kernel.CUMSUM_LINES_F64, kernels.gridFor(lines.numel, BLOCK),
                    1, BLOCK, 0, args);
        }
    }

    // ================================================================ matrix product

    private synchronized Cublas cublas() {
        if (cublas == null) {
            ctx.bind();
            cublas = new Cublas(ctx.stream.address());
        }
        boolean tf32 = matmulTf32;
        if (cublasTf32 == null || cublasTf32 != tf32) {
            cublas.setTf32(tf32);
            cublasTf32 = tf32;
        }
        return cublas;
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor out) {
        try (CudaProfiler.Span span = profiler.enabled() ? profiler.time("gemm/" + a.shape(0) + " x " + a.shape(1) + "x"
                + b.shape(2) + "x" + a.shape(2) + (matmulTf32 ? " tf32" : "")) : CudaProfiler.none()) {
            matmulOnDevice(a, b, out);
        }
    }

    private void matmulOnDevice(Tensor a, Tensor b, Tensor out) {
        requireFloat("matmul", a, true);
        int batch = a.shape(0);
        int m = a.shape(1);
        int k = a.shape(2);
        int n = b.shape(2);
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            fill(out, 0);
            return;
        }
        boolean dbl = a.dtype() == DType.FLOAT64;
        Tensor ac = null;
        Tensor bc = null;
        try {
            GemmLayout la = GemmLayout.of(m, k, a.stride(1), a.stride(2));
            if (la == null) {
                ac = contiguousCopy(a);
                la = GemmLayout.of(m, k, ac.stride(1), ac.stride(2));
            }
            GemmLayout lb = GemmLayout.of(k, n, b.stride(1), b.stride(2));
            if (lb == null) {
                bc = contiguousCopy(b);
                lb = GemmLayout.of(k, n, bc.stride(1), bc.stride(2));
            }
            Tensor aa = ac != null ? ac : a;
            Tensor bb = bc != null ? bc : b;
            Cublas blas = cublas();
            ctx.bind();
            // row-major C = A·B as column-major Cᵀ = Bᵀ·Aᵀ (see GemmLayout)
            if (batch == 1) {
                blas.gemm(dbl, lb.op(), la.op(), n, m, k, 1, address(bb), lb.ld(), address(aa), la.ld(), 0,
                        address(out), n);
            } else {
                blas.gemmStridedBatched(dbl, lb.op(), la.op(), n, m, k, 1, address(bb), lb.ld(), bb.stride(0),
                        address(aa), la.ld(), aa.stride(0), 0, address(out), n, (long) m * n, batch);
            }
        } finally {
            if (ac != null) {
                ac.close();
            }
            if (bc != null) {
                bc.close();
            }
        }
    }

    private Tensor contiguousCopy(Tensor t) {
        Tensor c = Tensor.uninitialized(t.dtype(), device, t.shape());
        copyOnDevice(t, c);
        return c;
    }

    // ================================================================ convolution (cuDNN)

    private synchronized CudnnConvolutions convolutions() {
        if (convolutions == null) {
            ctx.bind();
            cudnn = new Cudnn(ctx.stream.address());
            convolutions = new CudnnConvolutions(cudnn, allocator, ctx::memoryInfo, profiler);
        }
        return convolutions;
    }

    private CudnnConvolutions.Plan plan(Tensor x, int[] w, ConvParams p, int[] y) {
        requireFloat("conv2d", x, false);
        int[] xs = x.shape();
        CudnnConvolutions.Key key = new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, xs[0], xs[1], xs[2], xs[3], w[0],
                w[2], w[3], p, convTf32, false);
        return convolutions().plan(key, y);
    }

    @Override
    public void conv2d(Tensor x, Tensor w, ConvParams p, Tensor y) {
        CudnnConvolutions.Plan plan = plan(x, w.shape(), p, y.shape());
        ctx.bind();
        convolutions.run(plan, Cudnn.Direction.FORWARD, false, plan.key.tf32(), new long[] {address(x), address(w), address(y)});
    }

    @Override
    public void conv2dBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        CudnnConvolutions.Plan plan = plan(dx, w.shape(), p, dy.shape());
        ctx.bind();
        convolutions.run(plan, Cudnn.Direction.BACKWARD_DATA, false, plan.key.tf32(),
                new long[] {address(w), address(dy), address(dx)});
    }

    @Override
    public void conv2dBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        CudnnConvolutions.Plan plan = plan(x, dw.shape(), p, dy.shape());
        ctx.bind();
        convolutions.run(plan, Cudnn.Direction.BACKWARD_FILTER, false, plan.key.tf32(),
                new long[] {address(x), address(dy), address(dw)});
    }

    /**
     * cuDNN's channels-last convolution (TF32 tensor cores when {@link #convTf32}) with the bias, z
     * and ReLU fused into its epilogue (CudnnConvolutions#runFused; where cuDNN refuses the fusion
     * for a shape, the ReLU runs here after it).
     */
    @Override
    public void conv2dNhwc(Tensor x, Tensor w, Tensor bias, Tensor z, boolean relu, ConvParams p, Tensor y) {
        Backend.checkConv2dNhwc(x, w, bias, z, p, y);
        if (y.numel() == 0) {
            return;
        }
        CudnnConvolutions.Plan plan = nhwcPlan(x, w, y, p);
        ctx.bind();
        if (bias != null && relu && convolutions.runFused(plan, address(x), address(w), address(bias),
                z == null ? 0 : address(z), address(y))) {
            return;
        }
        // the searched forward, then the epilogue with this backend's kernels (cudnnAddTensor has
        // been much slower on channels-last tensors): the bias as a row vector repeated over the
        // pixels, z, the ReLU
        convolutions.run(plan, Cudnn.Direction.FORWARD, false, plan.key.tf32(),
                new long[] {address(x), address(w), address(y)});
        if (bias != null) {
            int[] ys = y.shape();
            try (Tensor rows = bias.viewOf(ys, new long[] {0, 0, 0, bias.stride(0)}, bias.offset())) {
                binary(Binary.ADD, y, rows, y);
            }
        }
        if (z != null) {
            binary(Binary.ADD, y, z, y);
        }
        if (relu) {
            unary(Unary.RELU, y, 0, 0, y);
        }
    }

    /** The channels-last plan of x [N, H, W, Ci], w [Co, kh, kw, Ci] and y [N, Ho, Wo, Co]. */
    private CudnnConvolutions.Plan nhwcPlan(Tensor x, Tensor w, Tensor y, ConvParams p) {
        requireFloat("conv2dNhwc", x, false);
        int[] xs = x.shape();
        int[] ws = w.shape();
        int[] ys = y.shape();
        CudnnConvolutions.Key key = new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, xs[0], xs[3], xs[1], xs[2], ws[0],
                ws[1], ws[2], p, convTf32, true);
        return convolutions().plan(key, new int[] {ys[0], ys[3], ys[1], ys[2]});
    }

    /** cuDNN's backward data on NHWC descriptors, the algorithm searched and cached per shape as the NCHW one. */
    @Override
    public void conv2dNhwcBackwardData(Tensor dy, Tensor w, ConvParams p, Tensor dx) {
        Backend.checkConv2dNhwc(dx, w, null, null, p, dy);
        if (dx.numel() == 0) {
            return;
        }
        CudnnConvolutions.Plan plan = nhwcPlan(dx, w, dy, p);
        ctx.bind();
        convolutions.run(plan, Cudnn.Direction.BACKWARD_DATA, false, plan.key.tf32(),
                new long[] {address(w), address(dy), address(dx)});
    }

    /** cuDNN's backward filter on NHWC descriptors (dw [Co, kh, kw, Ci]). */
    @Override
    public void conv2dNhwcBackwardFilter(Tensor x, Tensor dy, ConvParams p, Tensor dw) {
        Backend.checkConv2dNhwc(x, dw, null, null, p, dy);
        if (dw.numel() == 0) {
            return;
        }
        CudnnConvolutions.Plan plan = nhwcPlan(x, dw, dy, p);
        ctx.bind();
        convolutions.run(plan, Cudnn.Direction.BACKWARD_FILTER, false, plan.key.tf32(),
                new long[] {address(x), address(dy), address(dw)});
    }

    // ================================================================ batch norm (cuDNN)

    /**
     * The x descriptor and the per-channel descriptor [1, C, 1, 1] of cuDNN's NCHW batch norm for
     * x [N, C, H, W].
     */
    private MemorySegment[] bnDescriptors(int[] s) {
        convolutions();
        int n = s[0];
        int c = s[1];
        int h = s[2];
        int w = s[3];
        return bnDescriptors.computeIfAbsent(List.of(n, c, h, w), k -> new MemorySegment[] {
            Cudnn.tensor4d(Cudnn.FORMAT_NCHW, Cudnn.DATA_FLOAT, n, c, h, w),
            Cudnn.tensor4d(Cudnn.DATA_FLOAT, 1, c, 1, 1)});
    }

    @Override
    public void batchNorm2d(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                            boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                            Tensor saveInvStd) {
        try (CudaProfiler.Span span = span(training ? "batchnorm/train NCHW" : "batchnorm/eval NCHW")) {
            batchNorm(x, gamma, beta, runningMean, runningVar, training, momentum, eps, y, saveMean, saveInvStd);
        }
    }

    /** {@link #batchNorm2dNhwcAct} without residual or ReLU. */
    @Override
    public void batchNorm2dNhwc(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                                Tensor saveInvStd) {
        batchNorm2dNhwcAct(x, gamma, beta, runningMean, runningVar, training, momentum, eps, null, false, y, saveMean,
                saveInvStd);
    }

    /**
     * Channels-last batch norm in either mode with the residual add and ReLU fused: batchnorm.cu's
     * bn_nhwc kernels (in training a partial-sum pass, a per-channel finalize, one apply pass;
     * in eval the finalize from the running statistics and the apply pass), float32. cuDNN's NHWC
     * batch norm is not used: on the H200 (cuDNN 9.14, 2026-11-30) its training calls took about
     * 1 ms forward and 1.5 ms backward per ResNet-101 layer at 512² (a 16-image step 300 ms, against
     * 64 ms in NCHW), and a ResNet-50 training step through them gave a wrong stem gradient.
     */
    @Override
    public void batchNorm2dNhwcAct(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                   boolean training, double momentum, double eps, Tensor residual, boolean relu,
                                   Tensor y, Tensor saveMean, Tensor saveInvStd) {
        String op = "batchNorm2dNhwc";
        requireFloat(op, x, false);
        requireBatchNormOperands(op, true, x, y, gamma, beta, saveMean, saveInvStd);
        if (residual != null) {
            requireBatchNormOperands(op, true, x, residual);
        }
        if (!training && (runningMean == null || runningVar == null)) {
            throw new IllegalArgumentException(op + ": eval mode needs the running mean and variance");
        }
        int c = x.shape(3);
        long n = x.numel();
        if (n == 0) {
            return;
        }
        long m = n / c;
        try (CudaProfiler.Span span = span(training ? "batchnorm/train NHWC" : "batchnorm/eval NHWC");
             Scratch scaleShift = new Scratch(2L * c * Float.BYTES, false)) {
            long rows = bnNhwcRowsPerChunk(m, c);
            int chunks = training ? (int) ((m + rows - 1) / rows) : 0;
            // eval reads no partial sums
            try (Scratch partial = training ? new Scratch(2L * chunks * c * Double.BYTES, false) : null) {
                if (training) {
                    kernels.launch(Kernel.BN_NHWC_PARTIAL_F32, (c + BN_TILE_C - 1) / BN_TILE_C, chunks, BLOCK, 0,
                            new KernelArgs().ptr(address(x)).ptr(0).ptr(0).ptr(0).i64(m).i32(c).i64(rows).i32(0)
                                    .ptr(partial.address()));
                }
                kernels.launch(Kernel.BN_NHWC_FINALIZE_F32, kernels.gridFor(c, BLOCK), 1, BLOCK, 0,
                        new KernelArgs().ptr(partial == null ? 0 : partial.address()).i32(chunks).i64(m).i32(c)
                                .ptr(address(x)).ptr(address(gamma)).ptr(address(beta))
                                .ptr(runningMean == null ? 0 : address(runningMean))
                                .ptr(runningVar == null ? 0 : address(runningVar)).f64(momentum).f64(eps)
                                .i32(training ? 1 : 0).ptr(address(saveMean)).ptr(address(saveInvStd))
                                .ptr(scaleShift.address()));
            }
            boolean vec4 = c % 4 == 0 && address(x) % 16 == 0 && address(y) % 16 == 0
                    && (residual == null || address(residual) % 16 == 0);
            kernels.launch(Kernel.BN_NHWC_APPLY_F32, kernels.gridFor(vec4 ? n / 4 : n, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(address(x)).ptr(scaleShift.address())
                            .ptr(residual == null ? 0 : address(residual)).ptr(address(y)).i64(n).i32(c)
                            .i32(relu ? 1 : 0).i32(vec4 ? 1 : 0));
        }
    }

    /** Channels of a block of bn_nhwc_partial_f32 (batchnorm.cu's BN_TILE_C). */
    private static final int BN_TILE_C = 32;

    /**
     * Rows per chunk of bn_nhwc_partial_f32: about eight blocks per SM (full occupancy) over the
     * channel tiles, at least 64 rows a chunk (kernels/emu/batchnorm_vs_reference.cpp repeats this).
     */
    private long bnNhwcRowsPerChunk(long m, int c) {
        long tiles = (c + BN_TILE_C - 1) / BN_TILE_C;
        long chunks = Math.max(1, Math.min(65535, 8L * ctx.multiprocessors / tiles));
        chunks = Math.max(1, Math.min(chunks, (m + 63) / 64));
        return (m + chunks - 1) / chunks;
    }

    /** cuDNN's NCHW batch norm (spatial mode), either mode. */
    private void batchNorm(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                           boolean training, double momentum, double eps, Tensor y, Tensor saveMean,
                           Tensor saveInvStd) {
        String op = "batchNorm2d";
        requireFloat(op, x, false);
        if (eps < Cudnn.BN_MIN_EPSILON) {
            throw new UnsupportedOperationException(op + " on CUDA: eps " + eps + " is below cuDNN's minimum "
                    + Cudnn.BN_MIN_EPSILON);
        }
        requireBatchNormOperands(op, false, x, y, gamma, beta, saveMean, saveInvStd);
        MemorySegment[] d = bnDescriptors(x.shape());
        int c = x.shape(1);
        ctx.bind();
        if (training) {
            if (runningMean != null && runningVar != null) {
                batchNormTraining(d, address(x), address(y), address(gamma), address(beta), momentum,
                        address(runningMean), address(runningVar), eps, address(saveMean), address(saveInvStd));
                return;
            }
            // cuDNN updates both running statistics or neither: a missing one gets a scratch buffer
            try (Scratch rm = new Scratch(c * 4L, true); Scratch rv = new Scratch(c * 4L, true)) {
                long mean = runningMean != null ? address(runningMean) : rm.address();
                long var = runningVar != null ? address(runningVar) : rv.address();
                batchNormTraining(d, address(x), address(y), address(gamma), address(beta), momentum, mean, var,
                        eps, address(saveMean), address(saveInvStd));
            }
            return;
        }
        cudnn.batchNormInference(false, d[0], address(x), address(y), d[1], address(gamma), address(beta),
                address(runningMean), address(runningVar), eps);
        copyOnDevice(runningMean, saveMean);
        unary(Unary.AFFINE, runningVar, 1, eps, saveInvStd);
        unary(Unary.POW, saveInvStd, -0.5, 0, saveInvStd);
    }

    /** A block per row: radix select, an ordered collection, a bitonic sort (kernels/src/main/cuda/topk.cu). */
    @Override
    public void topk(Tensor scores, int k, Tensor values, Tensor indices) {
        Backend.checkTopk(scores, k, values, indices, TOPK_MAX);
        int rows = scores.shape(0);
        if (rows == 0) {
            return;
        }
        kernels.launch(Kernel.TOPK_ROWS_F32, rows, 1, 256, 0,
                new KernelArgs().ptr(address(scores)).i64(scores.stride(0)).i64(scores.shape(1)).i32(k)
                        .ptr(address(values)).ptr(address(indices)));
    }

    /**
     * Two launches (per-channel scale and shift, then one pass over x) instead of cuDNN's
     * inference call, the statistics copies and a separate add and ReLU. float32; float64 takes
     * the composed default.
     */
    @Override
    public void batchNorm2dInference(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
                                     double eps, Tensor residual, boolean relu, Tensor y) {
        if (x.dtype() != DType.FLOAT32) {
            Backend.super.batchNorm2dInference(x, gamma, beta, runningMean, runningVar, eps, residual, relu, y);
            return;
        }
        int c = x.shape(1);
        long hw = (long) x.shape(2) * x.shape(3);
        long n = x.numel();
        if (n == 0) {
            return;
        }
        try (Scratch ss = new Scratch(2L * c * Float.BYTES, false)) {
            kernels.launch(Kernel.BN_SCALE_SHIFT_F32, kernels.gridFor(c, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(address(gamma)).ptr(address(beta)).ptr(address(runningMean))
                            .ptr(address(runningVar)).f64(eps).i32(c).ptr(ss.address()));
            kernels.launch(Kernel.BN_APPLY_F32, kernels.gridFor(n, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(address(x)).ptr(ss.address()).ptr(residual == null ? 0 : address(residual))
                            .ptr(address(y)).i64(n).i64(hw).i32(c).i32(relu ? 1 : 0));
        }
    }

    private void batchNormTraining(MemorySegment[] d, long x, long y, long gamma, long beta, double momentum,
                                   long runningMean, long runningVar, double eps, long saveMean, long saveInvStd) {
        Cudnn.check(cudnn.batchNormTraining(Cudnn.BATCHNORM_SPATIAL, false, d[0], x, y, d[1], gamma, beta, momentum,
                runningMean, runningVar, eps, saveMean, saveInvStd), "cudnnBatchNormalizationForwardTraining");
    }

    /** Contiguous x, y (or dy, dx) of x's shape and contiguous per-channel [C] operands, named when not. */
    private static void requireBatchNormOperands(String op, boolean nhwc, Tensor x, Tensor y, Tensor... perChannel) {
        int c = x.rank() == 4 ? x.shape(nhwc ? 3 : 1) : -1;
        boolean ok = c >= 0 && x.isContiguous() && y.isContiguous() && java.util.Arrays.equals(x.shape(), y.shape());
        for (Tensor t : perChannel) {
            ok &= t.rank() == 1 && t.shape(0) == c && t.isContiguous();
        }
        if (!ok) {
            throw new IllegalArgumentException(op + ": expected contiguous x " + (nhwc ? "[N, H, W, C]" : "[N, C, H, W]")
                    + " and output of x's shape and contiguous [C] per-channel operands; got x " + Shape.str(x.shape())
                    + ", output " + Shape.str(y.shape()));
        }
    }

    @Override
    public void batchNorm2dBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                    boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        try (CudaProfiler.Span span = span(training ? "batchnorm/backward train NCHW" : "batchnorm/backward eval NCHW")) {
            batchNormBackward(x, dy, gamma, saveMean, saveInvStd, training, dx, dgamma, dbeta);
        }
    }

    /** {@link #batchNorm2dNhwcActBackward} without ReLU or residual. */
    @Override
    public void batchNorm2dNhwcBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                        boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        batchNorm2dNhwcActBackward(x, null, dy, gamma, saveMean, saveInvStd, training, false, dx, dgamma, dbeta, null);
    }

    /**
     * The backward of {@link #batchNorm2dNhwcAct}, either mode, the ReLU's mask applied inside the
     * passes (batchnorm.cu: partial sums of dz and dz·(x − μ), a per-channel finalize, one pass for
     * dx and dresidual).
     */
    @Override
    public void batchNorm2dNhwcActBackward(Tensor x, Tensor y, Tensor dy, Tensor gamma, Tensor saveMean,
                                           Tensor saveInvStd, boolean training, boolean relu, Tensor dx,
                                           Tensor dgamma, Tensor dbeta, Tensor dresidual) {
        String op = "batchNorm2dNhwcBackward";
        requireFloat(op, x, false);
        requireBatchNormOperands(op, true, x, dy, gamma, saveMean, saveInvStd, dgamma, dbeta);
        requireBatchNormOperands(op, true, x, dx);
        if (relu) {
            requireBatchNormOperands(op, true, x, y);
        }
        if (dresidual != null) {
            requireBatchNormOperands(op, true, x, dresidual);
        }
        int c = x.shape(3);
        long n = x.numel();
        if (n == 0) {
            fill(dgamma, 0);
            fill(dbeta, 0);
            return;
        }
        long m = n / c;
        long rows = bnNhwcRowsPerChunk(m, c);
        int chunks = (int) ((m + rows - 1) / rows);
        long yAddress = relu ? address(y) : 0;
        try (CudaProfiler.Span span = span(training ? "batchnorm/backward train NHWC" : "batchnorm/backward eval NHWC");
             Scratch partial = new Scratch(2L * chunks * c * Double.BYTES, false);
             Scratch coef = new Scratch(3L * c * Float.BYTES, false)) {
            kernels.launch(Kernel.BN_NHWC_PARTIAL_F32, (c + BN_TILE_C - 1) / BN_TILE_C, chunks, BLOCK, 0,
                    new KernelArgs().ptr(address(x)).ptr(yAddress).ptr(address(dy)).ptr(address(saveMean)).i64(m)
                            .i32(c).i64(rows).i32(relu ? 1 : 0).ptr(partial.address()));
            kernels.launch(Kernel.BN_NHWC_BACKWARD_FINALIZE_F32, kernels.gridFor(c, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(partial.address()).i32(chunks).i64(m).i32(c).ptr(address(gamma))
                            .ptr(address(saveMean)).ptr(address(saveInvStd)).i32(training ? 1 : 0)
                            .ptr(address(dgamma)).ptr(address(dbeta)).ptr(coef.address()));
            long dresidualAddress = dresidual == null ? 0 : address(dresidual);
            boolean vec4 = c % 4 == 0 && aligned16(address(x), yAddress, address(dy), coef.address(), address(dx),
                    dresidualAddress);
            kernels.launch(Kernel.BN_NHWC_BACKWARD_APPLY_F32, kernels.gridFor(vec4 ? n / 4 : n, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(address(x)).ptr(yAddress).ptr(address(dy)).ptr(coef.address())
                            .ptr(address(dx)).ptr(dresidualAddress).i64(n).i32(c).i32(relu ? 1 : 0)
                            .i32(vec4 ? 1 : 0));
        }
    }

    /** cuDNN's NCHW batch-norm backward (training), or the composed eval backward. */
    private void batchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
                                   boolean training, Tensor dx, Tensor dgamma, Tensor dbeta) {
        String op = "batchNorm2dBackward";
        requireFloat(op, x, false);
        requireBatchNormOperands(op, false, x, dy, gamma, saveMean, saveInvStd, dgamma, dbeta);
        requireBatchNormOperands(op, false, x, dx);
        int[] s = x.shape();
        if (training) {
            MemorySegment[] d = bnDescriptors(s);
            ctx.bind();
            // the saved mean and 1/√(var+eps) are given, so cuDNN does not recompute them from eps;
            // it still requires eps ≥ its minimum
            Cudnn.check(cudnn.batchNormBackward(Cudnn.BATCHNORM_SPATIAL, false, d[0], address(x), address(dy),
                    address(dx), d[1], address(gamma), address(dgamma), address(dbeta), Cudnn.BN_MIN_EPSILON,
                    address(saveMean), address(saveInvStd)), "cudnnBatchNormalizationBackward");
            return;
        }
        // eval: the statistics are constants. dβ = Σ dy, dγ = Σ dy·(x − μ)·invStd, dx = dy·γ·invStd
        int c = s[1];
        long[] perChannel = {0, 1, 0, 0};
        boolean[] overNhw = {true, false, true, true};
        int[] keep = {1, c, 1, 1};
        long[] keepStrides = {c, 1, 1, 1};
        try (Tensor mean = saveMean.viewOf(s, perChannel, saveMean.offset());
             Tensor inv = saveInvStd.viewOf(s, perChannel, saveInvStd.offset());
             Tensor t = Tensor.uninitialized(x.dtype(), device, s);
             Tensor dgK = dgamma.viewOf(keep, keepStrides, dgamma.offset());
             Tensor dbK = dbeta.viewOf(keep, keepStrides, dbeta.offset());
             Tensor scale = Tensor.uninitialized(x.dtype(), device, c);
             Tensor scaleB = scale.viewOf(s, perChannel, 0)) {
            binary(Binary.SUB, x, mean, t);
            binary(Binary.MUL, t, inv, t);
            binary(Binary.MUL, t, dy, t);
            reduce(Reduce.SUM, t, overNhw, dgK);
            reduce(Reduce.SUM, dy, overNhw, dbK);
            binary(Binary.MUL, gamma, saveInvStd, scale);
            binary(Binary.MUL, dy, scaleB, dx);
        }
    }

    // ================================================================ pooling

    @Override
    public void maxPool2d(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        requireFloat("maxPool2d", x, false);
        int[] xs = x.shape();
        int[] ys = y.shape();
        long planes = (long) xs[0] * xs[1];
        kernels.launch(Kernel.MAXPOOL2D_FORWARD_F32, kernels.gridFor(planes * ys[2] * ys[3], BLOCK), 1, BLOCK, 0,
                new KernelArgs().ptr(address(x)).ptr(address(y)).ptr(indices == null ? 0 : address(indices))
                        .i64(planes).i32(xs[2]).i32(xs[3]).i32(ys[2]).i32(ys[3]).i32(p.kernelH()).i32(p.kernelW())
                        .i32(p.strideH()).i32(p.strideW()).i32(p.padH()).i32(p.padW()));
    }

    /** A thread per output element, channels fastest (coalesced); kernels/src/main/cuda/pool.cu. */
    @Override
    public void maxPool2dNhwc(Tensor x, PoolParams p, Tensor y, Tensor indices) {
        requireFloat("maxPool2dNhwc", x, false);
        Backend.checkMaxPool2dNhwc(x, y, indices);
        int[] xs = x.shape();
        int[] ys = y.shape();
        if (y.numel() == 0) {
            return;
        }
        long indicesAddress = indices == null ? 0 : address(indices);
        boolean vec4 = xs[3] % 4 == 0 && aligned16(address(x), address(y), indicesAddress);
        kernels.launch(Kernel.MAXPOOL2D_NHWC_F32, kernels.gridFor(vec4 ? y.numel() / 4 : y.numel(), BLOCK), 1, BLOCK,
                0, new KernelArgs().ptr(address(x)).ptr(address(y)).ptr(indicesAddress)
                        .i64(xs[0]).i32(xs[1]).i32(xs[2]).i32(xs[3]).i32(ys[1]).i32(ys[2]).i32(p.kernelH())
                        .i32(p.kernelW()).i32(p.strideH()).i32(p.strideW()).i32(p.padH()).i32(p.padW())
                        .i32(vec4 ? 1 : 0));
    }

    /**
     * A thread per input element, channels fastest, gathers the gradients of the outputs whose
     * window covers it in scan order: deterministic, the CPU's bits (kernels/src/main/cuda/pool.cu).
     */
    @Override
    public void maxPool2dNhwcBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx) {
        requireFloat("maxPool2dNhwcBackward", dy, false);
        if (indices == null) {
            throw new IllegalArgumentException("maxPool2dNhwcBackward: needs the forward's indices");
        }
        Backend.checkMaxPool2dNhwc(dx, dy, indices);
        int[] xs = dx.shape();
        int[] ys = dy.shape();
        if (dx.numel() == 0 || dy.numel() == 0) {
            return;
        }
        boolean vec4 = xs[3] % 4 == 0 && aligned16(address(dy), address(indices), address(dx));
        kernels.launch(Kernel.MAXPOOL2D_NHWC_BACKWARD_F32, kernels.gridFor(vec4 ? dx.numel() / 4 : dx.numel(), BLOCK),
                1, BLOCK, 0, new KernelArgs().ptr(address(dy)).ptr(address(indices)).ptr(address(dx)).i64(xs[0])
                        .i32(xs[1]).i32(xs[2]).i32(xs[3]).i32(ys[1]).i32(ys[2]).i32(p.kernelH()).i32(p.kernelW())
                        .i32(p.strideH()).i32(p.strideW()).i32(p.padH()).i32(p.padW()).i32(vec4 ? 1 : 0));
    }

    /**
     * A thread per input gathers the gradients of the outputs whose window covers it, in scan
     * order: deterministic, and the CPU's bits (see kernels/src/main/cuda/pool.cu).
     */
    @Override
    public void maxPool2dBackward(Tensor dy, Tensor indices, PoolParams p, Tensor dx) {
        requireFloat("maxPool2dBackward", dy, false);
        int[] ds = dy.shape();
        int[] xs = dx.shape();
        long planes = (long) ds[0] * ds[1];
        kernels.launch(Kernel.MAXPOOL2D_BACKWARD_F32, kernels.gridFor(planes * xs[2] * xs[3], BLOCK), 1, BLOCK, 0,
                new KernelArgs().ptr(address(dy)).ptr(address(indices)).ptr(address(dx)).i64(planes).i32(xs[2])
                        .i32(xs[3]).i32(ds[2]).i32(ds[3]).i32(p.kernelH()).i32(p.kernelW()).i32(p.strideH())
                        .i32(p.strideW()).i32(p.padH()).i32(p.padW()));
    }

    /** An int32 array on this device (freed on close; stream-ordered, so at once after the launch that reads it). */
    private Tensor deviceInts(int[] values) {
        Tensor d = Tensor.uninitialized(DType.INT32, device, Math.max(1, values.length));
        if (values.length > 0) {
            try (Tensor host = Tensor.ofInts(values, values.length)) {
                upload(host, d);
            }
        }
        return d;
    }

    /** The windows as avgpool2d's int32 table: hStart, hEnd, wStart, wEnd (and, for the backward, the CSR of covers). */
    private static int[] avgPoolTable(int h, int w, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd,
                                      boolean covers) {
        int ho = hStart.length;
        int wo = wStart.length;
        int[][] rows = covers ? coverLists(h, hStart, hEnd) : new int[][] {{}, {}};
        int[][] cols = covers ? coverLists(w, wStart, wEnd) : new int[][] {{}, {}};
        int[] t = new int[2 * ho + 2 * wo + rows[0].length + cols[0].length + rows[1].length + cols[1].length];
        int o = 0;
        for (int[] part : new int[][] {hStart, hEnd, wStart, wEnd, rows[0], cols[0], rows[1], cols[1]}) {
            System.arraycopy(part, 0, t, o, part.length);
            o += part.length;
        }
        return t;
    }

    /** For each input position a in [0, n): the windows (ascending) whose clipped range holds a, as {ptr[n + 1], list}. */
    private static int[][] coverLists(int n, int[] start, int[] end) {
        int[] ptr = new int[n + 1];
        for (int i = 0; i < start.length; i++) {
            for (int a = Math.max(start[i], 0); a < Math.min(end[i], n); a++) {
                ptr[a + 1]++;
            }
        }
        for (int a = 0; a < n; a++) {
            ptr[a + 1] += ptr[a];
        }
        int[] list = new int[ptr[n]];
        int[] fill = Arrays.copyOf(ptr, n);
        for (int i = 0; i < start.length; i++) {
            for (int a = Math.max(start[i], 0); a < Math.min(end[i], n); a++) {
                list[fill[a]++] = i;
            }
        }
        return new int[][] {ptr, list};
    }

    private void avgPool(boolean backward, Tensor x, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd,
                         boolean divisorFromWindow, Tensor y) {
        String op = backward ? "avgPool2dBackward" : "avgPool2d";
        requireFloat(op, x, true);
        int[] xs = x.shape();
        int ho = hStart.length;
        int wo = wStart.length;
        if (hEnd.length != ho || wEnd.length != wo || y.shape(2) != ho || y.shape(3) != wo) {
            throw new IllegalArgumentException(op + ": " + ho + "x" + wo + " windows for output " + Shape.str(y.shape()));
        }
        long planes = (long) xs[0] * xs[1];
        long work = backward ? planes * xs[2] * xs[3] : planes * ho * wo;
        if (work == 0) {
            return;
        }
        boolean dbl = x.dtype() == DType.FLOAT64;
        Kernel k = backward ? (dbl ? Kernel.AVGPOOL2D_BACKWARD_F64 : Kernel.AVGPOOL2D_BACKWARD_F32)
                : (dbl ? Kernel.AVGPOOL2D_FORWARD_F64 : Kernel.AVGPOOL2D_FORWARD_F32);
        try (Tensor table = deviceInts(avgPoolTable(xs[2], xs[3], hStart, hEnd, wStart, wEnd, backward))) {
            // forward: (x, y); backward: (dy, dx), here y is dy and x is dx
            long first = backward ? address(y) : address(x);
            long second = backward ? address(x) : address(y);
            kernels.launch(k, kernels.gridFor(work, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(first).ptr(second)
                    .ptr(address(table)).i64(planes).i32(xs[2]).i32(xs[3]).i32(ho).i32(wo)
                    .i32(divisorFromWindow ? 1 : 0));
        }
    }

    @Override
    public void avgPool2d(Tensor x, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd, boolean divisorFromWindow,
                          Tensor y) {
        avgPool(false, x, hStart, hEnd, wStart, wEnd, divisorFromWindow, y);
    }

    /** Deterministic: a thread per input gathers over the windows covering it (the CPU's bits). */
    @Override
    public void avgPool2dBackward(Tensor dy, int[] hStart, int[] hEnd, int[] wStart, int[] wEnd,
                                  boolean divisorFromWindow, Tensor dx) {
        avgPool(true, dx, hStart, hEnd, wStart, wEnd, divisorFromWindow, dy);
    }

    // ================================================================ indexing

    /** Elements after the axis (the stride of the axis in a contiguous tensor of this shape). */
    private static long inner(int[] shape, int axis) {
        long n = 1;
        for (int d = axis + 1; d < shape.length; d++) {
            n *= shape[d];
        }
        return n;
    }

    /** The strides with the axis's set to 0 (the geometry gives the offset of every other coordinate). */
    private static long[] withoutAxis(long[] strides, int axis) {
        long[] s = strides.clone();
        s[axis] = 0;
        return s;
    }

    @Override
    public void indexSelect(Tensor x, int axis, Tensor indices, Tensor out) {
        if (!out.isContiguous()) {
            throw new IllegalArgumentException("indexSelect on CUDA: out " + Shape.str(out.shape()) + " must be contiguous");
        }
        int k = out.shape(axis);
        if (out.numel() == 0) {
            return;
        }
        Kernel kernel = switch (x.dtype().byteSize()) {
            case 2 -> Kernel.INDEX_SELECT_B16;
            case 4 -> Kernel.INDEX_SELECT_B32;
            case 8 -> Kernel.INDEX_SELECT_B64;
            default -> throw new UnsupportedOperationException("indexSelect on CUDA: dtype " + x.dtype());
        };
        StridedGeometry g = StridedGeometry.of("indexSelect", out.shape(), withoutAxis(x.strides(), axis));
        boolean onDevice = indices.device().equals(device) && indices.isContiguous();
        try (Tensor uploaded = onDevice ? null : deviceInts(indices.toIntArray())) {
            long idx = onDevice ? address(indices) : address(uploaded);
            kernels.launch(kernel, kernels.gridFor(g.numel, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(address(x))
                    .ptr(address(out)).ptr(idx).geometry(g).i64(inner(out.shape(), axis)).i64(k)
                    .i64(x.strides()[axis]));
        }
    }

    /**
     * Deterministic, without atomics: the host groups the positions of indices by target (a
     * counting sort, O(K + D)), and a thread per dx element adds its slices of g in the order
     * they appear in indices, as the CPU does (so the same bits).
     */
    @Override
    public void indexAdd(Tensor g, int axis, Tensor indices, Tensor dx) {
        requireFloat("indexAdd", dx, true);
        if (!dx.isContiguous()) {
            throw new IllegalArgumentException("indexAdd on CUDA: dx " + Shape.str(dx.shape()) + " must be contiguous");
        }
        int[] idx = indices.toIntArray();
        int d = dx.shape(axis);
        if (dx.numel() == 0 || idx.length == 0) {
            return;
        }
        int[] csr = new int[d + 1 + idx.length];
        for (int i : idx) {
            if (i < 0 || i >= d) {
                throw new IndexOutOfBoundsException("indexAdd on CUDA: index " + i + " out of range for dimension "
                        + axis + " of " + Shape.str(dx.shape()));
            }
            csr[i + 1]++;
        }
        for (int t = 0; t < d; t++) {
            csr[t + 1] += csr[t];
        }
        int[] fill = Arrays.copyOf(csr, d);
        for (int s = 0; s < idx.length; s++) {
            csr[d + 1 + fill[idx[s]]++] = s;
        }
        StridedGeometry geo = StridedGeometry.of("indexAdd", dx.shape(), withoutAxis(g.strides(), axis));
        Kernel kernel = dx.dtype() == DType.FLOAT64 ? Kernel.INDEX_ADD_F64 : Kernel.INDEX_ADD_F32;
        try (Tensor table = deviceInts(csr)) {
            kernels.launch(kernel, kernels.gridFor(geo.numel, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(address(g))
                    .ptr(address(dx)).ptr(address(table)).geometry(geo).i64(inner(dx.shape(), axis)).i64(d)
                    .i64(g.strides()[axis]));
        }
    }

    // ================================================================ fused optimiser steps

    private void requireStepOperands(String op, Tensor param, Tensor... others) {
        requireFloat(op, param, true);
        // the kernels run over each operand's span in storage order: one dense layout for all
        for (Tensor t : others) {
            if (t != null && (t.dtype() != param.dtype() || t.numel() != param.numel() || !t.laidOutAs(param))) {
                throw new IllegalArgumentException(op + " on CUDA: every buffer must be a " + param.dtype()
                        + " tensor of " + param.numel() + " elements laid out as the parameter "
                        + Shape.str(param.shape()) + " " + java.util.Arrays.toString(param.strides()) + ", got "
                        + t.dtype() + " " + Shape.str(t.shape()) + " " + java.util.Arrays.toString(t.strides()));
            }
        }
        if (!param.isDense()) {
            throw new IllegalArgumentException(op + " on CUDA: the parameter " + Shape.str(param.shape())
                    + " is not dense (gaps or overlapping elements)");
        }
    }

    @Override
    public void sgdStep(Tensor param, Tensor grad, Tensor momentumBuffer, boolean firstStep, SgdStep h) {
        if (h.momentum() != 0 && momentumBuffer == null) {
            throw new IllegalArgumentException("sgdStep: momentum " + h.momentum() + " needs a momentum buffer");
        }
        requireStepOperands("sgdStep", param, grad, momentumBuffer);
        long n = param.numel();
        if (n == 0) {
            return;
        }
        Kernel k = param.dtype() == DType.FLOAT64 ? Kernel.SGD_STEP_F64 : Kernel.SGD_STEP_F32;
        long buf = h.momentum() != 0 ? address(momentumBuffer) : 0;
        kernels.launch(k, kernels.gridFor(n, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(address(param))
                .ptr(address(grad)).ptr(buf).i64(n).f64(h.lr()).f64(h.momentum()).f64(h.dampening())
                .f64(h.weightDecay()).i32(h.nesterov() ? 1 : 0).i32(firstStep ? 1 : 0));
    }

    /** Elements per chunk of sgd_steps_f32 (optim.cu's SGD_CHUNK): a block each. */
    static final int SGD_CHUNK = 4096;

    /**
     * float32 parameters in one launch of sgd_steps_f32 (a block per chunk of {@link #SGD_CHUNK}
     * elements of one tensor, each element as sgd_step_f32 computes it), from a table of
     * addresses, sizes, first-step flags and chunks uploaded with it; float64 ones, or a single
     * parameter, as {@link #sgdStep}.
     */
    @Override
    public void sgdSteps(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBuffers, boolean[] firstSteps,
                         SgdStep h) {
        boolean fused = params.size() > 1 && grads.size() == params.size()
                && momentumBuffers.size() == params.size() && firstSteps.length == params.size();
        for (int i = 0; fused && i < params.size(); i++) {
            fused = params.get(i).dtype() == DType.FLOAT32;
        }
        // its table of addresses goes up through the staging buffers, which a CUDA graph cannot
        // record: while capturing, one launch per parameter (their arguments travel by value)
        if (!fused || ctx.capturing) {
            Backend.super.sgdSteps(params, grads, momentumBuffers, firstSteps, h);
            return;
        }
        int t = params.size();
        long chunkCount = 0;
        for (int i = 0; i < t; i++) {
            Tensor buf = momentumBuffers.get(i);
            if (h.momentum() != 0 && buf == null) {
                throw new IllegalArgumentException("sgdSteps: momentum " + h.momentum() + " needs a momentum buffer");
            }
            requireStepOperands("sgdSteps", params.get(i), grads.get(i), buf);
            chunkCount += (params.get(i).numel() + SGD_CHUNK - 1) / SGD_CHUNK;
        }
        if (chunkCount == 0) {
            return;
        }
        if (chunkCount > Integer.MAX_VALUE / 2) {
            throw new IllegalArgumentException("sgdSteps: " + chunkCount + " chunks of " + SGD_CHUNK + " elements");
        }
        int chunks = (int) chunkCount;
        // the table: addresses (params, grads, buffers), counts, then ints: first flags, chunk tensor, chunk number
        long longs = 4L * t;
        long ints = t + 2L * chunks;
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined();
             Scratch onDevice = new Scratch(longs * 8 + ints * 4, false)) {
            java.lang.foreign.MemorySegment table = arena.allocate(longs * 8 + ints * 4, 8);
            fillSgdTable(table, params, grads, momentumBuffers, firstSteps, h, chunks);
            staging.upload(table, 0, table.byteSize(), onDevice.address()); // copied out before it returns
            kernels.launch(Kernel.SGD_STEPS_F32, Math.min(chunks, (long) ctx.multiprocessors * 32), 1, BLOCK, 0,
                    new KernelArgs().ptr(onDevice.address()).i32(t).i32(chunks).f64(h.lr()).f64(h.momentum())
                            .f64(h.dampening()).f64(h.weightDecay()).i32(h.nesterov() ? 1 : 0));
        }
    }

    /** sgd_steps_f32's table (see optim.cu) for these operands. */
    private void fillSgdTable(java.lang.foreign.MemorySegment table, List<Tensor> params, List<Tensor> grads,
                              List<Tensor> momentumBuffers, boolean[] firstSteps, SgdStep h, int chunks) {
        int t = params.size();
        long longs = 4L * t;
        int c = 0;
        for (int i = 0; i < t; i++) {
            long n = params.get(i).numel();
            table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, i, address(params.get(i)));
            table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, t + i, address(grads.get(i)));
            table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, 2L * t + i,
                    h.momentum() != 0 ? address(momentumBuffers.get(i)) : 0);
            table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, 3L * t + i, n);
            table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, 2 * longs + i, firstSteps[i] ? 1 : 0);
            for (long k = 0; k * SGD_CHUNK < n; k++, c++) {
                table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, 2 * longs + t + c, i);
                table.setAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, 2 * longs + t + chunks + c, (int) k);
            }
        }
    }

    @Override
    public void adamStep(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamStep h) {
        if (expAvg == null || expAvgSq == null) {
            throw new IllegalArgumentException("adamStep: exp_avg and exp_avg_sq are required");
        }
        requireStepOperands("adamStep", param, grad, expAvg, expAvgSq);
        long n = param.numel();
        if (n == 0) {
            return;
        }
        int mode = h.weightDecay() == 0 ? 0 : h.decoupled() ? 2 : 1;
        Kernel k = param.dtype() == DType.FLOAT64 ? Kernel.ADAM_STEP_F64 : Kernel.ADAM_STEP_F32;
        kernels.launch(k, kernels.gridFor(n, BLOCK), 1, BLOCK, 0, new KernelArgs().ptr(address(param))
                .ptr(address(grad)).ptr(address(expAvg)).ptr(address(expAvgSq)).i64(n).f64(h.weightDecay())
                .f64(h.decayFactor()).f64(h.beta1()).f64(1 - h.beta1()).f64(h.beta2()).f64(1 - h.beta2())
                .f64(h.biasCorrection2Sqrt()).f64(h.eps()).f64(-h.stepSize()).i32(mode));
    }

    // ================================================================ GeM

    private int planeBlock(long hw) {
        return hw >= 2048 ? 256 : hw >= 512 ? 128 : 64;
    }

    /** Threads of the warp-per-plane GeM kernels' blocks (8 planes a block). */
    private static final int GEM_WARP_BLOCK = 256;

    /**
     * A warp per plane when there are planes enough to fill the device that way (ResNet feature
     * maps: thousands of planes of 49 to a few thousand values), else a block per plane.
     */
    private boolean gemWarpPerPlane(long planes) {
        return planes >= (long) ctx.multiprocessors * 8;
    }

    /** Streaming multiprocessors of the device (tests size their inputs to reach each kernel path). */
    int multiprocessors() {
        return ctx.multiprocessors;
    }

    private static long gemWarpGrid(long planes) {
        return Math.min((planes + GEM_WARP_BLOCK / 32 - 1) / (GEM_WARP_BLOCK / 32), Integer.MAX_VALUE);
    }

    @Override
    public void gem(Tensor x, Tensor p, double eps, Tensor y) {
        requireFloat("gem", x, false);
        long planes = (long) x.shape(0) * x.shape(1);
        long hw = (long) x.shape(2) * x.shape(3);
        long xa = address(x);
        int vec4 = hw % 4 == 0 && aligned16(xa) ? 1 : 0;
        KernelArgs args = new KernelArgs().ptr(xa).ptr(address(p)).f64(eps).ptr(address(y)).i64(planes).i64(hw).i32(vec4);
        if (gemWarpPerPlane(planes)) {
            kernels.launch(Kernel.GEM_FORWARD_WARP_F32, gemWarpGrid(planes), 1, GEM_WARP_BLOCK, 0, args);
        } else {
            kernels.launch(Kernel.GEM_FORWARD_F32, Math.min(planes, (long) ctx.multiprocessors * 64), 1, planeBlock(hw),
                    0, args);
        }
    }

    @Override
    public void gemBackward(Tensor x, Tensor p, double eps, Tensor y, Tensor dy, Tensor dx, Tensor dpPartial) {
        requireFloat("gemBackward", x, false);
        long planes = (long) x.shape(0) * x.shape(1);
        long hw = (long) x.shape(2) * x.shape(3);
        long xa = address(x);
        long dxa = address(dx);
        int vec4 = hw % 4 == 0 && aligned16(xa, dxa) ? 1 : 0;
        KernelArgs args = new KernelArgs().ptr(xa).ptr(address(p)).f64(eps).ptr(address(y)).ptr(address(dy)).ptr(dxa)
                .ptr(address(dpPartial)).i64(planes).i64(hw).i32(vec4);
        if (gemWarpPerPlane(planes)) {
            kernels.launch(Kernel.GEM_BACKWARD_WARP_F32, gemWarpGrid(planes), 1, GEM_WARP_BLOCK, 0, args);
        } else {
            kernels.launch(Kernel.GEM_BACKWARD_F32, Math.min(planes, (long) ctx.multiprocessors * 64), 1,
                    planeBlock(hw), 0, args);
        }
    }

    // ================================================================ AP histogram

    /** Columns per block split so that rows × splits fills the device. */
    private long apColumnsPerSplit(long rows, long cols) {
        long target = (long) ctx.multiprocessors * 8;
        long splits = Math.max(1, Math.min((target + rows - 1) / rows, (cols + 1023) / 1024));
        splits = Math.min(splits, 65535);
        return (cols + splits - 1) / splits;
    }

    /**
     * Whether {@link #apHistogram} gives each thread a private copy of the bins (default) or each
     * warp one copy updated by shared atomics (the first kernel); both give the same histograms.
     * For benchmarks; {@code -Ddir4j.cuda.apHistogramAtomic=true} starts with the atomics.
     */
    public void setApHistogramAtomic(boolean on) {
        this.apHistogramAtomic = on;
    }

    private volatile boolean apHistogramAtomic = Boolean.getBoolean("dir4j.cuda.apHistogramAtomic");

    /** The labels as kernel arguments: dense (pointer, row and column strides) then class numbers. */
    private final class ApLabelArgs implements AutoCloseable {
        final long labels;
        final long lRow;
        final long lCol;
        final long rowIds;
        final long colIds;
        private final Tensor[] copies = new Tensor[2];

        ApLabelArgs(String op, Tensor scores, ApLabels l) {
            l.check(op, scores);
            if (l.dense() != null) {
                requireFloat(op + " labels", l.dense(), false);
                labels = address(l.dense());
                lRow = l.dense().stride(0);
                lCol = l.dense().stride(1);
                rowIds = 0;
                colIds = 0;
            } else {
                labels = 0;
                lRow = 0;
                lCol = 0;
                rowIds = address(unitStride(l.rowIds(), 0));
                colIds = address(unitStride(l.colIds(), 1));
            }
        }

        private Tensor unitStride(Tensor ids, int slot) {
            requireFloat("AP class numbers", ids, false);
            if (ids.shape(0) <= 1 || ids.stride(0) == 1) {
                return ids;
            }
            copies[slot] = contiguousCopy(ids);
            return copies[slot];
        }

        KernelArgs into(KernelArgs a) {
            return a.ptr(labels).i64(lRow).i64(lCol).ptr(rowIds).ptr(colIds);
        }

        @Override
        public void close() {
            for (Tensor c : copies) {
                if (c != null) {
                    c.close();
                }
            }
        }
    }

    @Override
    public void apHistogram(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal, Tensor hist) {
        requireFloat("apHistogram", scores, false);
        long n = scores.shape(0);
        long m = scores.shape(1);
        int nq = bins.nq();
        if (m >= (1L << 22)) {
            throw new UnsupportedOperationException("apHistogram on CUDA: " + m + " columns; the fixed-point "
                    + "histogram takes fewer than 2^22");
        }
        if (n == 0) {
            return;
        }
        long cols = Math.max(1, apColumnsPerSplit(n, m));
        int splits = (int) Math.max(1, (m + cols - 1) / cols);
        // the private kernel: 2·nq·threads·8 bytes of shared memory within the default 48 KiB
        int threads = 128;
        while (threads > 32 && 2L * nq * threads * 8 > 48 * 1024) {
            threads /= 2;
        }
        boolean priv = !apHistogramAtomic && 2L * nq * threads * 8 <= 48 * 1024;
        try (ApLabelArgs lab = new ApLabelArgs("apHistogram", scores, labels);
             Scratch acc = new Scratch(n * 2 * nq * 8, true); Scratch nanRows = new Scratch(n * 4, true)) {
            KernelArgs args = lab.into(new KernelArgs().ptr(address(scores)).i64(scores.stride(0)).i64(scores.stride(1)))
                    .i64(m).i32(nq).f64(bins.min()).f64(bins.max()).i64(excludedDiagonal).i64(cols)
                    .ptr(acc.address()).ptr(nanRows.address());
            if (priv) {
                kernels.launch(Kernel.AP_HIST_ACCUMULATE_PRIVATE_F32, n, splits, threads, 2 * nq * threads * 8, args);
            } else {
                kernels.launch(Kernel.AP_HIST_ACCUMULATE_F32, n, splits, BLOCK, (BLOCK / 32) * 2 * nq * 8, args);
            }
            kernels.launch(Kernel.AP_HIST_FINALIZE_F32, kernels.gridFor(n * 2 * nq, BLOCK), 1, BLOCK, 0,
                    new KernelArgs().ptr(acc.address()).ptr(nanRows.address()).ptr(address(hist)).i64(n).i32(nq));
        }
    }

    @Override
    public void apHistogramBackward(Tensor scores, ApLabels labels, ApBins bins, int excludedDiagonal,
                                    Tensor gradHist, Tensor gradScores) {
        requireFloat("apHistogramBackward", scores, false);
        long n = scores.shape(0);
        long m = scores.shape(1);
        int nq = bins.nq();
        if (n == 0 || m == 0) {
            return;
        }
        long cols = Math.max(1, apColumnsPerSplit(n, m));
        int splits = (int) Math.max(1, (m + cols - 1) / cols);
        try (ApLabelArgs lab = new ApLabelArgs("apHistogramBackward", scores, labels)) {
            kernels.launch(Kernel.AP_HIST_BACKWARD_F32, n, splits, BLOCK, 2 * nq * 8,
                    lab.into(new KernelArgs().ptr(address(scores)).i64(scores.stride(0)).i64(scores.stride(1)))
                            .ptr(address(gradHist)).i64(gradHist.stride(0)).i64(gradHist.stride(1))
                            .i64(gradHist.stride(2)).ptr(address(gradScores)).i64(m).i32(nq).f64(bins.min())
                            .f64(bins.max()).i64(excludedDiagonal).i64(cols));
        }
    }

    @Override
    public void apHistogramBackwardSymmetric(Tensor scores, ApLabels labels, ApBins bins, int rowOffset,
                                             int excludedDiagonal, Tensor gradHist, Tensor gradScores) {
        requireFloat("apHistogramBackwardSymmetric", scores, false);
        long n = scores.shape(0);
        long m = scores.shape(1);
        int nq = bins.nq();
        if (gradHist.shape(0) != m || rowOffset < 0 || rowOffset + n > m) {
            throw new IllegalArgumentException("apHistogramBackwardSymmetric: rows " + rowOffset + " … "
                    + (rowOffset + n - 1) + " of " + m + " queries, gradient " + Shape.str(gradHist.shape()));
        }
        if (n == 0 || m == 0) {
            return;
        }
        // a tile: tileCols columns (one thread each) × rowsPerTile rows, both queries' bins in
        // shared memory (float, 2·nq·(tileCols + 1 + rowsPerTile)·4 bytes ≤ 48 KiB)
        int width = 2 * nq;
        int tileCols = 128;
        while (tileCols > 32 && (long) width * (tileCols + 1) * 4 > 32 * 1024) {
            tileCols /= 2;
        }
        long colBytes = (long) width * (tileCols + 1) * 4;
        int rowsPerTile = (int) Math.max(1, Math.min(64, (48 * 1024 - colBytes) / (width * 4L)));
        long shared = colBytes + (long) width * rowsPerTile * 4;
        long gridX = (m + tileCols - 1) / tileCols;
        long gridY = (n + rowsPerTile - 1) / rowsPerTile;
        try (ApLabelArgs lab = new ApLabelArgs("apHistogramBackwardSymmetric", scores, labels)) {
            kernels.launch(Kernel.AP_HIST_BACKWARD_SYM_F32, gridX, (int) gridY, tileCols, (int) shared,
                    lab.into(new KernelArgs().ptr(address(scores)).i64(scores.stride(0)).i64(scores.stride(1)))
                            .ptr(address(gradHist)).i64(gradHist.stride(0)).i64(gradHist.stride(1))
                            .i64(gradHist.stride(2)).ptr(address(gradScores)).i64(n).i64(m).i32(nq)
                            .f64(bins.min()).f64(bins.max()).i64(rowOffset).i64(excludedDiagonal).i32(rowsPerTile));
        }
    }

    @Override
    public void apLossFromHistogram(Tensor hist, Tensor coef, Tensor ap, Tensor gradHist) {
        Backend.checkApLossFromHistogram(hist, coef, ap, gradHist);
        requireFloat("apLossFromHistogram", hist, false);
        long n = hist.shape(0);
        if (n == 0) {
            return;
        }
        kernels.launch(Kernel.AP_LOSS_FROM_HIST_F32, kernels.gridFor(n, 128), 1, 128, 0,
                new KernelArgs().ptr(address(hist)).ptr(address(coef)).ptr(address(ap)).ptr(address(gradHist)).i64(n)
                        .i32(hist.shape(2)));
    }
}
