package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.whiten.PcaParameters;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.SymmetricEigen;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Seconds to learn a PCA whitening ({@link PcaWhitening#learn}: the covariance's products and the
 * eigendecomposition) from N x D descriptors, each repetition timed, and the explained variances
 * of the last one written as float64 .npy for comparison. Run by
 * {@code bench/whitening_side_by_side.py} beside sklearn and numpy on the same descriptors, once
 * with the default eigensolver (LAPACK where installed) and once with {@code -Ddir4j.lapack=false}
 * (EJML).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -cp bench/target/benchmarks.jar dir4j.bench.WhiteningLearnTiming DESCS.npy VARIANCES_OUT.npy [reps 3]
 * </pre>
 */
public final class WhiteningLearnTiming {
    private WhiteningLearnTiming() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: WhiteningLearnTiming DESCS.npy VARIANCES_OUT.npy [reps 3]");
            System.exit(2);
        }
        int reps = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        System.out.println("# eigensolver: " + SymmetricEigen.backend());
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Npy.read(Path.of(args[0]));
            PcaParameters learned = null;
            for (int i = 0; i < reps; i++) {
                long t = System.nanoTime();
                learned = PcaWhitening.learn(x).parameters();
                System.out.printf(Locale.ROOT, "learn %d %.3f s%n", i + 1, (System.nanoTime() - t) / 1e9);
            }
            Npy.write(Path.of(args[1]), Tensor.ofDoubles(learned.explainedVariance(), learned.componentCount()));
        }
    }
}
