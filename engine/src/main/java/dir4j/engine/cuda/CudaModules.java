package dir4j.engine.cuda;

import static dir4j.engine.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import dir4j.kernels.Ptx;
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
 */
final class CudaModules {
    static final boolean SYNC_EACH_LAUNCH = Boolean.getBoolean("dir4j.cuda.sync");

    private final CudaContext ctx;
    private final Map<String, CUmodule> modules = new LinkedHashMap<>();
    private final Map<String, Long> loadMillis = new LinkedHashMap<>();
    private final EnumMap<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);

    CudaModules(CudaContext ctx) {
        this.ctx = ctx;
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
        f = new CUfunction();
        check(cuModuleGetFunction(f, m, k.function), "cuModuleGetFunction(" + k.module + ", " + k.function + ")");
        functions.put(k, f);
        return f;
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
        if (!k.signature.equals(args.signature())) {
            throw new IllegalStateException("launch of " + k.function + ": arguments " + args.signature()
                    + " do not match its parameters " + k.signature);
        }
        if (gridX < 1 || gridX > Integer.MAX_VALUE || gridY < 1 || gridY > 65535 || block < 1 || block > 1024) {
            throw new IllegalArgumentException("launch of " + k.function + ": grid " + gridX + "x" + gridY + ", block "
                    + block + " out of range");
        }
        ctx.bind();
        CUfunction f = function(k);
        check(cuLaunchKernel(f, (int) gridX, gridY, 1, block, 1, 1, sharedBytes, ctx.stream, args.kernelParams(), null),
                "cuLaunchKernel(" + k.function + ", grid " + gridX + "x" + gridY + ", block " + block + ")");
        if (SYNC_EACH_LAUNCH) {
            int rc = cuStreamSynchronize(ctx.stream);
            if (rc != 0) {
                throw new CudaException("kernel " + k.function + " (grid " + gridX + "x" + gridY + ", block " + block
                        + ") failed: " + CudaDriver.describe(rc));
            }
        }
    }

    /** Blocks for a grid-stride kernel over {@code work} items: enough to fill the device, no more. */
    long gridFor(long work, int block) {
        long needed = Math.max(1, (work + block - 1) / block);
        return Math.min(needed, (long) ctx.multiprocessors * 32);
    }
}
