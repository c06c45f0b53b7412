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
        FACTORIES.put(Device.Kind.CUDA, dir4j.engine.cuda.CudaBackend::create);
    }

    private Backends() {}

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
