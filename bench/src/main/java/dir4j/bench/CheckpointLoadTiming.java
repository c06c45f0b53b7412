package dir4j.bench;

import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Random;

/**
 * Seconds to open a retrieval checkpoint as a ready network, each repetition timed: what every
 * {@code dir4j extract / describe / eval / search} and every embedding service pays before its
 * first image. {@code load}: {@link NetworkCheckpoint#load} (the weights straight into a network
 * left uninitialised); {@code init}: drawing the same network's weights from a Random, which load
 * also did before it copied the checkpoint over them. Run by
 * {@code bench/checkpoint_load_side_by_side.py} beside PyTorch on the same file.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -cp bench/target/benchmarks.jar dir4j.bench.CheckpointLoadTiming FILE.pt [reps 5]
 * </pre>
 */
public final class CheckpointLoadTiming {
    private CheckpointLoadTiming() {}

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        RetrievalNet.Options options = null;
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            try (RetrievalNet net = NetworkCheckpoint.load(file).net()) {
                System.out.printf(Locale.ROOT, "load %d %.3f s%n", i + 1, (System.nanoTime() - t) / 1e9);
                options = net.options();
            }
        }
        System.out.println("# " + options);
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            try (RetrievalNet net = new RetrievalNet(options, new Random(i))) {
                System.out.printf(Locale.ROOT, "init %d %.3f s%n", i + 1, (System.nanoTime() - t) / 1e9);
            }
        }
    }
}
