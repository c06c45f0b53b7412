package dir4j.retrieval.cli;

import dir4j.engine.Device;
import picocli.CommandLine.Option;

/** {@code --device}: the tool commands run on the CPU; CUDA is refused with status 2 until it is built. */
final class DeviceOption {
    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the work runs. Only cpu is built for this command; cuda exits with status 2 "
                    + "saying so. Default: ${DEFAULT-VALUE}.")
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
                    + " on CUDA is not built yet; use --device cpu");
        }
    }
}
