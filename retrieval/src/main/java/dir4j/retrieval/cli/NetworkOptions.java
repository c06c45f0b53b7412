package dir4j.retrieval.cli;

import dir4j.engine.MemoryScope;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import picocli.CommandLine.Option;

/** Which network describes images: a checkpoint, or a random one for testing the pipeline. */
final class NetworkOptions {
    @Option(names = "--checkpoint", paramLabel = "FILE",
            description = "Network weights: the reference's PyTorch .pt/.pth (read without running any of it) or a "
                    + ".safetensors written by dir4j convert or dir4j train (model.safetensors, or "
                    + "checkpoint.safetensors while a run goes on). Architecture, descriptor size and pooling come "
                    + "from the weights and the checkpoint's model_options.")
    Path checkpoint;

    @Option(names = "--arch", paramLabel = "NAME",
            description = "With --random-init: resnet18, resnet34, resnet50, resnet101 or resnet152.")
    String arch;

    @Option(names = "--random-init",
            description = "Use a randomly initialised network (with --arch) instead of --checkpoint: for testing the "
                    + "pipeline, not for retrieval.")
    boolean randomInit;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "N",
            description = "Seed of --random-init. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--out-dim", defaultValue = "2048", paramLabel = "D",
            description = "Descriptor size of --random-init. Default: ${DEFAULT-VALUE}.")
    int outDim;

    @Option(names = "--base-width", defaultValue = "64", paramLabel = "W",
            description = "Backbone width of --random-init (64 as torchvision; smaller for quick tests). "
                    + "Default: ${DEFAULT-VALUE}.")
    int baseWidth;

    /** Whether a network was named at all. */
    boolean given() {
        return checkpoint != null || randomInit || arch != null;
    }

    /** Checks that exactly one network source is named. */
    void check() {
        if (checkpoint != null && (randomInit || arch != null)) {
            throw new ToolCommand.UsageException("give either --checkpoint or --arch with --random-init, not both");
        }
        if (checkpoint == null && (!randomInit || arch == null)) {
            throw new ToolCommand.UsageException("a network is needed: --checkpoint FILE, or --arch NAME --random-init");
        }
        if (randomInit && (outDim < 1 || baseWidth < 1)) {
            throw new ToolCommand.UsageException("--out-dim and --base-width must be positive");
        }
    }

    /**
     * Loads the network (the caller closes it), outside any open memory scope: its parameters
     * live until the network is closed, whatever scope the caller is in.
     */
    NetworkCheckpoint.Loaded load() throws IOException {
        check();
        IOException[] failure = new IOException[1];
        NetworkCheckpoint.Loaded loaded = MemoryScope.detached(() -> {
            try {
                return loadHere();
            } catch (IOException e) {
                failure[0] = e;
                return null;
            }
        });
        if (failure[0] != null) {
            throw failure[0];
        }
        return loaded;
    }

    /**
     * Fails unless --checkpoint (when given) names a file: a missing path or a folder is reported
     * as such, naming the option, before any work that could be wasted.
     */
    void requireCheckpointFile() throws IOException {
        if (checkpoint == null) {
            return;
        }
        if (Files.isDirectory(checkpoint)) {
            // a dir4j train output folder: point at the network file in it
            Path inside = Files.isRegularFile(checkpoint.resolve("model.safetensors"))
                    ? checkpoint.resolve("model.safetensors") : checkpoint.resolve("checkpoint.safetensors");
            throw new IOException(checkpoint + ": a directory, not a checkpoint file (--checkpoint takes a .pt/.pth "
                    + "or .safetensors file" + (Files.isRegularFile(inside) ? ", such as " + inside : "") + ")");
        }
        if (!Files.exists(checkpoint)) {
            throw new IOException(checkpoint + ": no such checkpoint file (--checkpoint)");
        }
    }

    private NetworkCheckpoint.Loaded loadHere() throws IOException {
        if (checkpoint != null) {
            requireCheckpointFile();
            return NetworkCheckpoint.load(checkpoint);
        }
        RetrievalNet.Options o = new RetrievalNet.Options(arch, outDim, "gem", 3, false, false, baseWidth);
        try {
            return new NetworkCheckpoint.Loaded(new RetrievalNet(o, new Random(seed)), null, null, List.of());
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException("--arch " + arch + ": " + e.getMessage());
        }
    }

    /** What the network is, for provenance records: the checkpoint file, or the random one's settings. */
    String describe() throws IOException {
        if (checkpoint != null) {
            Path abs = checkpoint.toAbsolutePath().normalize();
            return abs + " (" + Files.size(abs) + " bytes, modified " + Files.getLastModifiedTime(abs) + ")";
        }
        return "random-init " + arch + " out-dim " + outDim + " base-width " + baseWidth + " seed " + seed;
    }

    /**
     * Puts the loaded network on {@code dev} (a FeatureExtractor sends each batch to the network's
     * device) and, unless quiet, prints the checkpoint's notes and the network on stderr.
     */
    static void ready(NetworkCheckpoint.Loaded loaded, RetrievalNet net, dir4j.engine.Device dev, boolean quiet) {
        if (!dev.equals(dir4j.engine.Device.CPU)) {
            net.to(dev);
        }
        if (!quiet) {
            loaded.notes().forEach(n -> System.err.println("note: " + n));
            System.err.println("network: " + net.options() + ", " + net.dimension() + "-d descriptors");
        }
    }
}
