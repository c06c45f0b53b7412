package dir4j.retrieval.cli;

import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.net.NetworkCheckpoint;
import java.util.List;
import picocli.CommandLine.Option;

/** How images become descriptors in the commands that extract on the way (eval, search). */
final class ExtractionSettings {
    @Option(names = "--image-size", paramLabel = "PIXELS", defaultValue = "1024",
            description = "Longer side of the resized images (the reference's Scale(size, largest=True), bilinear); "
                    + "smaller images are kept as they are; 0 keeps every image's size. Default: ${DEFAULT-VALUE}.")
    int imageSize;

    @Option(names = "--scales", defaultValue = "1", paramLabel = "S", split = ",",
            description = "Scale factors for multi-scale extraction, comma-separated numbers or fractions (1,0.7071,0.5 "
                    + "or 1,1/2), combined by a generalized mean and renormalised. Default: ${DEFAULT-VALUE}.")
    List<String> scales;

    @Option(names = "--scale-pooling-p", defaultValue = "3", paramLabel = "P|net",
            description = "Exponent of the generalized mean combining the scales (the reference's --gemp), or 'net' for "
                    + "the network's learned GeM p. Default: ${DEFAULT-VALUE}.")
    String scalePoolingP;

    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N",
            description = "Most images of one size run through the network together. Default: ${DEFAULT-VALUE}.")
    int batchSize;

    @Option(names = "--threads", paramLabel = "N",
            description = "Image decoding threads. Default: the number of cores, at most 4.")
    Integer threads;

    /** Extraction options for a loaded network (its checkpoint's mean/std, when it has them). */
    ExtractionOptions options(NetworkCheckpoint.Loaded loaded, boolean quiet) {
        if (imageSize < 0) {
            throw new ToolCommand.UsageException("--image-size must be >= 0, got " + imageSize);
        }
        if (batchSize < 1 || (threads != null && threads < 1)) {
            throw new ToolCommand.UsageException("--batch-size and --threads must be at least 1");
        }
        double[] s;
        double p;
        try {
            s = ExtractCommand.parseScales(scales);
            p = scalePoolingP.equalsIgnoreCase("net") ? Double.NaN
                    : ExtractCommand.parseNumber("--scale-pooling-p", scalePoolingP);
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException(e.getMessage());
        }
        Preprocessing pre = loaded.preprocessing(imageSize);
        ExtractionOptions o;
        try {
            o = ExtractionOptions.defaults().withPreprocessing(pre).withScales(s).withScalePoolingP(p)
                    .withBatchSize(batchSize).withQuiet(quiet);
        } catch (IllegalArgumentException e) {
            throw new ToolCommand.UsageException(e.getMessage());
        }
        return threads == null ? o : o.withThreads(threads);
    }

    /** The settings that change descriptors, for provenance records. */
    String describe() {
        return "image-size " + imageSize + ", scales " + String.join(",", scales) + ", scale-pooling-p " + scalePoolingP;
    }
}
