package dir4j.retrieval.cli;

import dir4j.engine.Device;
import picocli.CommandLine.Option;

/**
 * {@code --device}: where a command runs. Commands with a CUDA path take it through
 * {@link #usable}; the others ({@link #requireCpu}) refuse CUDA with status 2, naming the command.
 */
final class DeviceOption {
    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the work runs: cpu, or cuda[:N] for the commands with a GPU path (describe: the "
                    + "network; search: the query network and an exact index's similarity products, not hnsw). "
                    + "whiten and index run on the CPU only. A GPU that cannot start, or cuda for a CPU-only "
                    + "command, exits with status 2 saying why. Default: ${DEFAULT-VALUE}.")
    String device;

    /**
     * A device for a command that runs on CUDA too: parsed, and for CUDA the backend started now,
     * so that an unusable GPU is a usage error (status 2) saying why, before any work.
     */
    static Device usable(String text) {
        Device d;
        try {
            d = Device.parse(text);
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException("--device: " + e.getMessage());
        }
        if (!d.equals(Device.CPU)) {
            try {
                dir4j.engine.Backends.of(d);
            } catch (IllegalStateException | LinkageError e) {
                throw new ToolCommand.UsageException("--device " + text + ": " + e.getMessage());
            }
        }
        return d;
    }

    /** Checks that the device is the CPU. */
    void requireCpu(String command) {
        Device d;
        try {
            d = Device.parse(device);
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException("--device: " + e.getMessage());
        }
        if (!d.equals(Device.CPU)) {
            throw new ToolCommand.UsageException("--device " + device + ": dir4j " + command
                    + " runs on the CPU only (its work is I/O and small linear algebra); use --device cpu");
        }
    }
}
