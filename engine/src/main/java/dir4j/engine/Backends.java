package dir4j.engine;

import dir4j.engine.cpu.CpuBackend;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

/** Finds the backend of a device. The CUDA backend registers itself when it is available. */
public final class Backends {
    private static final Map<Device.Kind, Function<Device, Backend>> FACTORIES = new ConcurrentHashMap<>();
    private static final Map<Device, Backend> INSTANCES = new ConcurrentHashMap<>();

    static {
        FACTORIES.put(Device.Kind.CPU, d -> CpuBackend.instance());
        // CUDA initialises on the first use of a CUDA device and says why when it cannot
        FACTORIES.put(Device.Kind.CUDA, Backends::cuda);
    }

    private Backends() {}

    /**
     * The CUDA backend, looked up by name on first use: CPU-only code never links the CUDA
     * classes, so it runs without the JCuda jars on the class path.
     */
    private static Backend cuda(Device d) {
        try {
            return (Backend) Class.forName("dir4j.engine.cuda.CudaBackend").getMethod("create", Device.class)
                    .invoke(null, d);
        } catch (java.lang.reflect.InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException("CUDA backend failed to start: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("the CUDA backend cannot be loaded (" + e
                    + "); is the JCuda jar on the class path? Run with --device cpu", e);
        }
    }

    /** The backend for {@code device}, or an error that says why it is unavailable. */
    public static Backend of(Device device) {
        Backend b = INSTANCES.get(device);
        if (b != null) {
            return b;
        }
        Function<Device, Backend> f = FACTORIES.get(device.kind());
        if (f == null) {
            throw new IllegalStateException("no backend for " + device
                    + ": the CUDA backend is not available in this build; run with --device cpu");
        }
        return INSTANCES.computeIfAbsent(device, f);
    }

    /** Registers the factory of a device kind (used by the CUDA backend). */
    public static void register(Device.Kind kind, Function<Device, Backend> factory) {
        FACTORIES.put(kind, factory);
    }
}
