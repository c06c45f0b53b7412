package dir4j.retrieval;

import static org.junit.jupiter.api.Assertions.fail;

import dir4j.engine.Backends;
import dir4j.engine.Device;
import dir4j.engine.cuda.CudaBackend;
import org.junit.jupiter.api.Assumptions;

/** The precondition of retrieval's gpu-tagged tests. */
public final class Gpu {
    /** The device the GPU tests run on. */
    public static final Device DEVICE = Device.cuda(0);

    private Gpu() {}

    /**
     * The CUDA backend of cuda:0. Where CUDA is not usable the calling tests are skipped with the
     * reason, or fail with it under {@code -Ddir4j.gpu.required=true} (as the GPU check script runs them).
     */
    public static CudaBackend require() {
        try {
            return (CudaBackend) Backends.of(DEVICE);
        } catch (RuntimeException | LinkageError e) {
            String why = "CUDA is not usable here: " + e.getMessage();
            if (Boolean.getBoolean("dir4j.gpu.required")) {
                fail(why);
            }
            Assumptions.abort(why);
            throw new AssertionError(why); // not reached
        }
    }
}
