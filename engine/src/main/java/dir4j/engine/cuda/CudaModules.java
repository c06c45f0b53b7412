package dir4j.engine.cuda;

import static dir4j.engine.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import dir4j.kernels.Ptx;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

/**
 * The kernel files of one device, loaded on first use (the sm_90 fat binary where it was built,
 * else the PTX for the driver to JIT-compile), and the launches of their kernels on the
 * device's stream. With {@code -Ddir4j.cuda.sync=true} every launch is followed by a stream
 * synchronisation, so that a failing kernel is named (slow: for debugging and first runs).
 *
 * <p>Launches call the driver's cuLaunchKernel through FFM with the arguments laid out in a
 * per-thread native buffer ({@link KernelArgs#writeTo}): JCuda's cuLaunchKernel marshals every
 * argument through JNI (a Java array and Pointer object each, pinned one by one), which was
 * most of the 12 µs a tiny op cost from Java. Modules and functions still load through JCuda.
 */
final class CudaModules {
    static final boolean SYNC_EACH_LAUNCH = Boolean.getBoolean("dir4j.cuda.sync");

    private final CudaContext ctx;

    private final CudaProfiler profiler;
    private static final String[] PROFILE_NAMES = java.util.Arrays.stream(Kernel.values()).map(k -> "kernel/" + k.function)
            .toArray(String[]::new);
    private final Map<String, CUmodule> modules = new LinkedHashMap<>();
    private final Map<String, Long> loadMillis = new LinkedHashMap<>();
    private final EnumMap<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);
    /** CUfunction handles by Kernel ordinal (0 until loaded): the launch path reads them without a lock. */
    private final long[] handles = new long[Kernel.values().length];

    /** cuLaunchKernel(f, gx, gy, gz, bx, by, bz, sharedBytes, stream, kernelParams, extra). */
    private static final class Driver {
        static final MethodHandle LAUNCH = Linker.nativeLinker().downcallHandle(
                SymbolLookup.libraryLookup(NativeLibraries.DRIVER, Arena.global()).find("cuLaunchKernel")
                        .orElseThrow(() -> new IllegalStateException(NativeLibraries.DRIVER + " exports no cuLaunchKernel")),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_LONG));
    }

    /** Argument words a thread's launch buffer holds (a Geometry is 26). */
    private static final int BUFFER_WORDS = 256;
    private static final ThreadLocal<MemorySegment> BUFFER = ThreadLocal.withInitial(
            () -> Arena.ofAuto().allocate(KernelArgs.bytesFor(BUFFER_WORDS), 8));

    /** A CUfunction whose raw handle the FFM launch passes (JCuda keeps it protected). */
    private static final class Function extends CUfunction {
        long address() {
            return getNativePointer();
        }
    }

    CudaModules(CudaContext ctx, CudaProfiler profiler) {
        this.ctx = ctx;
        this.profiler = profiler;
    }

    private synchronized CUfunction function(Kernel k) {
        CUfunction f = functions.get(k);
        if (f != null) {
            return f;
        }
        CUmodule m = modules.get(k.module);
        if (m == null) {
            byte[] image = Ptx.loadModuleImage(k.module)
                    .orElseThrow(() -> new IllegalStateException(Ptx.notBuiltMessage(k.module)));
            long t0 = System.nanoTime();
            m = new CUmodule();
            check(cuModuleLoadData(m, image), "cuModuleLoadData(" + k.module + ")");
            loadMillis.put(k.module, (System.nanoTime() - t0) / 1_000_000);
            modules.put(k.module, m);
        }
        Function fn = new Function();
        check(cuModuleGetFunction(fn, m, k.function), "cuModuleGetFunction(" + k.module + ", " + k.function + ")");
        functions.put(k, fn);
        handles[k.ordinal()] = fn.address();
        return fn;
    }

    /** Loads every kernel file now (a startup check; launches load them lazily otherwise). */
    synchronized void loadAll() {
        ctx.bind();
        for (Kernel k : Kernel.values()) {
            function(k);
        }
    }

    /** "elementwise 12 ms, reduce 3 ms, ..." for the modules loaded so far. */
    synchronized String loadReport() {
        StringBuilder sb = new StringBuilder();
        loadMillis.forEach((m, ms) -> sb.append(sb.isEmpty() ? "" : ", ").append(m).append(' ').append(ms).append(" ms"));
        return sb.toString();
    }

    /**
     * Queues kernel {@code k} on the stream over a grid of gridX × gridY blocks of {@code block}
     * threads with {@code sharedBytes} of dynamic shared memory.
     */
    void launch(Kernel k, long gridX, int gridY, int block, int sharedBytes, KernelArgs args) {
        if (!args.matches(k.signature)) {
            throw new IllegalStateException("launch of " + k.function + ": arguments " + args.signature()
                    + " do not match its parameters " + k.signature);
        }
        if (gridX < 1 || gridX > Integer.MAX_VALUE || gridY < 1 || gridY > 65535 || block < 1 || block > 1024) {
            throw new IllegalArgumentException("launch of " + k.function + ": grid " + gridX + "x" + gridY + ", block "
                    + block + " out of range");
        }
        ctx.bind();
        long f = handles[k.ordinal()];
        if (f == 0) {
            function(k);
            f = handles[k.ordinal()];
        }
        int rc;
        try (CudaProfiler.Span span = profiler.enabled() ? profiler.time(PROFILE_NAMES[k.ordinal()]) : CudaProfiler.none()) {
            if (args.words() <= BUFFER_WORDS) {
                rc = launch(f, (int) gridX, gridY, block, sharedBytes, args.writeTo(BUFFER.get()));
            } else {
                try (Arena a = Arena.ofConfined()) {
                    rc = launch(f, (int) gridX, gridY, block, sharedBytes,
                            args.writeTo(a.allocate(KernelArgs.bytesFor(args.words()), 8)));
                }
            }
        }
        if (rc != 0) {
            throw new CudaException("cuLaunchKernel(" + k.function + ", grid " + gridX + "x" + gridY + ", block " + block
                    + ") failed: " + CudaDriver.describe(rc));
        }
        if (SYNC_EACH_LAUNCH && !ctx.capturing) {
            rc = cuStreamSynchronize(ctx.stream);
            if (rc != 0) {
                throw new CudaException("kernel " + k.function + " (grid " + gridX + "x" + gridY + ", block " + block
                        + ") failed: " + CudaDriver.describe(rc));
            }
        }
    }

    private int launch(long f, int gridX, int gridY, int block, int sharedBytes, long params) {
        try {
            return (int) Driver.LAUNCH.invokeExact(f, gridX, gridY, 1, block, 1, 1, sharedBytes, ctx.stream.address(),
                    params, 0L);
        } catch (Throwable t) {
            throw new CudaException("cuLaunchKernel through FFM failed: " + t, t);
        }
    }

    /** Blocks for a grid-stride kernel over {@code work} items: enough to fill the device, no more. */
    long gridFor(long work, int block) {
        long needed = Math.max(1, (work + block - 1) / block);
        return Math.min(needed, (long) ctx.multiprocessors * 32);
    }
}
