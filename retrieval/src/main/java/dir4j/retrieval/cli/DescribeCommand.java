package dir4j.retrieval.cli;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.Npy;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code dir4j describe}: the network on an already preprocessed image tensor, for checking against other code. */
@Command(name = "describe", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run the retrieval network on an already preprocessed N x 3 x H x W float tensor (.npy, "
                + "normalised as the network expects) and write the N x D descriptors (.npy, float32), in evaluation "
                + "mode without gradients: for checking dir4j against another implementation on identical input.",
            "The backbone runs compiled as extraction runs it (batch norms folded, channels-last convolutions "
                + "with the bias, residual and ReLU fused, on the CPU and on CUDA; the same to float rounding, TF32 "
                + "on CUDA as the module); DIR4J_JAVA_OPTS=-Ddir4j.compiledInference=false runs the plain module "
                + "instead."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class DescribeCommand extends ToolCommand {
    @Mixin
    NetworkOptions network;

    @Option(names = "--input", required = true, paramLabel = "X.npy",
            description = "The images, N x 3 x H x W float32 (float64 is narrowed).")
    Path input;

    @Option(names = "--out", required = true, paramLabel = "D.npy",
            description = "The descriptors, N x D float32, written as they come and renamed into place at the end.")
    Path out;

    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N",
            description = "Images per forward pass (the result does not depend on it). Default: ${DEFAULT-VALUE}.")
    int batchSize;

    @Option(names = "--quiet", description = "Print nothing on success.")
    boolean quiet;

    @Mixin
    DeviceOption device;

    @Override
    int run() throws IOException {
        Device dev = DeviceOption.usable(device.device);
        if (batchSize < 1) {
            throw new UsageException("--batch-size must be at least 1, got " + batchSize);
        }
        if (!out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".npy")) {
            throw new UsageException("--out must name a .npy file, got " + out);
        }
        requireOutputNotInput(out, "--out", input, "--input");
        requireOutputNotInput(out, "--out", network.checkpoint, "--checkpoint");
        network.check();
        long t0 = System.nanoTime();
        NetworkCheckpoint.Loaded loaded = network.load();
        if (!quiet) {
            loaded.notes().forEach(n -> System.err.println("note: " + n));
        }
        try (RetrievalNet net = loaded.net(); MemoryScope scope = MemoryScope.open()) {
            Tensor x = Npy.read(input);
            if (x.rank() != 4 || x.shape(1) != 3 || !x.dtype().isFloating()) {
                throw new IOException(input + ": expected an N x 3 x H x W float tensor, found "
                        + Shape.str(x.shape()) + " " + x.dtype());
            }
            FiniteValues.require(input, x, "image"); // a NaN pixel would give a NaN descriptor
            if (x.dtype() != DType.FLOAT32) {
                x = x.to(DType.FLOAT32);
            }
            int n = x.shape(0);
            net.eval();
            if (!dev.equals(Device.CPU)) {
                net.to(dev);
            }
            try (RetrievalNet.Inference inference = net.inference();
                 Npy.Writer w = Npy.Writer.create(out, DType.FLOAT32, n, net.dimension())) {
                for (int b = 0; b < n; b += batchSize) {
                    try (MemoryScope batch = MemoryScope.open(); Autograd.NoGrad noGrad = Autograd.noGrad()) {
                        Tensor in = x.slice(0, b, Math.min(n, b + batchSize)).contiguous();
                        Tensor d = inference.describe(dev.equals(Device.CPU) ? in : in.to(dev));
                        w.write(d.device().equals(Device.CPU) ? d : d.to(Device.CPU));
                    }
                }
                w.finish();
            }
            if (!quiet) {
                System.out.printf(Locale.ROOT, "wrote %s (%dx%d float32) from %s (%s) in %.1f s%n", out, n,
                        net.dimension(), input, Shape.str(x.shape()), (System.nanoTime() - t0) / 1e9);
            }
        }
        return 0;
    }
}
