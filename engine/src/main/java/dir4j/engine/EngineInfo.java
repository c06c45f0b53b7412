package dir4j.engine;

import dir4j.engine.cpu.CpuThreads;
import dir4j.engine.cpu.CpuVectors;

/** A plain-text report of the runtime and the backends (for {@code dir4j info} and bug reports). */
public final class EngineInfo {
    private EngineInfo() {}

    /** The report, one fact per line. */
    public static String report() {
        StringBuilder sb = new StringBuilder();
        sb.append("dir4j engine\n");
        sb.append(String.format("  java            %s (%s, %s)%n", Runtime.version(),
                System.getProperty("java.vm.name"), System.getProperty("java.home")));
        String missing = dir4j.engine.cpu.CpuSettings.problem();
        if (missing != null) {
            sb.append(String.format("  cores           %d available%n", Runtime.getRuntime().availableProcessors()));
            sb.append("  CPU backend     unavailable: ").append(missing).append('\n');
        } else {
            sb.append(String.format("  cores           %d available, CPU backend uses %d threads%n",
                    Runtime.getRuntime().availableProcessors(), CpuThreads.threads()));
            sb.append(String.format("  vector width    %d bits (%d float lanes; CPU preferred %d bits)%n",
                    CpuVectors.bits(), CpuVectors.FLOAT.length(), CpuVectors.preferredBits()));
            boolean oob = !"0".equals(System.getProperty("jdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK"));
            sb.append("  vector checks   ").append(oob
                    ? "bounds checks ON (GEMM ~2.6x slower; pass -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0)"
                    : "bounds checks off in kernels (indexing proven by tests)").append('\n');
        }
        sb.append("  cuda            ").append(cudaStatus()).append('\n');
        return sb.toString();
    }

    /** Whether CUDA is usable (devices, driver, cuBLAS, cuDNN, kernels), and why not. */
    public static String cudaStatus() {
        return dir4j.engine.cuda.CudaStatus.describe();
    }
}
