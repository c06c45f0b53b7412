package dir4j.engine.cuda;

/** What gpu-tagged tests outside this package need of it: the GPU check, and the TF32 switch. */
public final class GpuTests {
    private GpuTests() {}

    /** Skips the calling test class where CUDA is not usable (fails it under -Ddir4j.gpu.required=true). */
    public static void requireGpu() {
        GpuParity.requireGpu();
    }

    /** Sets TF32 for the CUDA backend's convolutions; returns the previous setting. */
    public static boolean convTf32(boolean on) {
        boolean was = GpuParity.backend().convTf32();
        GpuParity.backend().setConvTf32(on);
        return was;
    }
}
