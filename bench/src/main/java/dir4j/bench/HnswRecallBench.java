package dir4j.bench;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.HnswIndex;
import dir4j.retrieval.search.Neighbours;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * Recall@k of the Lucene HNSW index ({@link HnswIndex}) against exact search ({@link ExactIndex})
 * and its queries per second, for N database descriptors of dimension D and Q held-out queries.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
 *     -cp bench/target/benchmarks.jar dir4j.bench.HnswRecallBench --n 100000 --dim 2048
 * </pre>
 *
 * Options (defaults in brackets): --n [100000] database size; --dim [2048]; --queries [1000];
 * --k [10]; --ef [10,20,50,100,200,400] candidates per query, each measured; --m [16] and
 * --beam-width [100] graph parameters; --threads [2] indexing threads and the parallel search
 * pass; --data [clustered] clustered|random, or --descriptors FILE.npy (real descriptors, the last
 * Q rows held out as queries); --clusters [N/100] and --intrinsic-dim [64] of clustered data;
 * --seed [42]; --dir [a temporary folder] where the index is built; --keep to leave it there.
 *
 * <p>Data. "random": unit vectors uniform on the sphere: no structure at all, the hardest case
 * for any graph index (in 2048 dimensions all distances are nearly equal). "clustered": a
 * stand-in for CNN descriptors, which have low intrinsic dimension: z from a mixture of Gaussian
 * clusters in an r-dimensional space (centres N(0, I), spread 0.5), mapped into D dimensions by a
 * fixed random Gaussian matrix, plus isotropic noise of 10% of the signal's norm, L2-normalised.
 * Queries are fresh draws from the same distribution, never database rows.
 *
 * <p>Timing. Each search pass runs the Q queries once after a warm-up pass over them; single
 * thread passes also report queries per CPU-second of the searching thread, which discounts
 * other processes on a shared machine.
 */
public final class HnswRecallBench {
    private HnswRecallBench() {}

    record Args(int n, int dim, int queries, int k, int[] efs, int m, int beamWidth, int threads, String data,
                Path descriptors, int clusters, int intrinsicDim, long seed, Path dir, boolean keep) {}

    public static void main(String[] argv) throws Exception {
        Args a = parse(argv);
        System.out.printf(Locale.ROOT, "HnswRecallBench: n=%d dim=%d queries=%d k=%d ef=%s M=%d beam=%d threads=%d "
                        + "data=%s%s seed=%d; Java %s, %d cores%n", a.n(), a.dim(), a.queries(), a.k(),
                Arrays.toString(a.efs()), a.m(), a.beamWidth(), a.threads(), a.data(), a.data().equals("clustered")
                        ? " (clusters=" + a.clusters() + ", intrinsic-dim=" + a.intrinsicDim() + ")" : "", a.seed(),
                Runtime.version(), Runtime.getRuntime().availableProcessors());
        Path dir = a.dir() != null ? a.dir() : Files.createTempDirectory("hnsw-bench");
        Path indexDir = dir.resolve("index");
        try (MemoryScope scope = MemoryScope.open()) {
            long t0 = System.nanoTime();
            Tensor[] data = data(a);
            Tensor db = data[0];
            Tensor queries = data[1];
            int n = db.shape(0);
            int d = db.shape(1);
            int q = queries.shape(0);
            System.out.printf(Locale.ROOT, "data: %s, %d x %d database, %d queries (%.1f s)%n", a.data(), n, d, q,
                    seconds(t0));

            t0 = System.nanoTime();
            Neighbours truth;
            try (ExactIndex exact = new ExactIndex(d)) {
                exact.add(db);
                exact.search(queries.slice(0, 0, Math.min(q, 64)), a.k()); // warm-up (JIT)
                long t1 = System.nanoTime();
                truth = exact.search(queries, a.k());
                double s = seconds(t1);
                System.out.printf(Locale.ROOT, "exact: %d queries in %.2f s = %.1f QPS (blocked SGEMM, all cores)%n", q,
                        s, q / s);
            }

            List<String> ids = IntStream.range(0, n).mapToObj(Integer::toString).toList();
            t0 = System.nanoTime();
            long cpu0 = processCpu();
            HnswIndex.Options options = new HnswIndex.Options(a.m(), a.beamWidth(), a.threads());
            try (HnswIndex index = HnswIndex.build(indexDir, db, ids, options)) {
                double build = seconds(t0);
                double buildCpu = (processCpu() - cpu0) / 1e9;
                System.out.printf(Locale.ROOT, "hnsw build: M=%d beam=%d threads=%d: %.1f s wall, %.1f s CPU, %.0f MB "
                                + "on disk%n", a.m(), a.beamWidth(), a.threads(), build, buildCpu,
                        folderBytes(indexDir) / 1e6);
                System.out.println();
                System.out.println("| ef | recall@" + a.k() + " | QPS, 1 thread | queries per CPU-s, 1 thread | QPS, "
                        + a.threads() + " threads |");
                System.out.println("| ---: | ---: | ---: | ---: | ---: |");
                for (int ef : a.efs()) {
                    int candidates = Math.max(ef, a.k());
                    index.search(queries, a.k(), candidates, 1); // warm-up
                    ThreadMXBean tm = ManagementFactory.getThreadMXBean();
                    long c0 = tm.getCurrentThreadCpuTime();
                    long w0 = System.nanoTime();
                    Neighbours got = index.search(queries, a.k(), candidates, 1);
                    double wall = seconds(w0);
                    double cpu = (tm.getCurrentThreadCpuTime() - c0) / 1e9;
                    long w1 = System.nanoTime();
                    index.search(queries, a.k(), candidates, a.threads());
                    double par = seconds(w1);
                    System.out.printf(Locale.ROOT, "| %d | %.4f | %.0f | %.0f | %.0f |%n", candidates,
                            recall(truth, got, a.k()), q / wall, q / cpu, q / par);
                }
            }
        } finally {
            if (!a.keep() && Files.exists(dir)) {
                deleteTree(a.dir() != null ? indexDir : dir);
            }
        }
    }

    /** {database, queries}. */
    static Tensor[] data(Args a) throws IOException {
        if (a.descriptors() != null) {
            Tensor all = Npy.read(a.descriptors());
            int rows = all.shape(0);
            if (rows <= a.queries()) {
                throw new IllegalArgumentException(a.descriptors() + " has " + rows + " rows, not more than --queries "
                        + a.queries());
            }
            int n = Math.min(a.n(), rows - a.queries());
            return new Tensor[] {all.slice(0, 0, n).contiguous(), all.slice(0, rows - a.queries(), rows).contiguous()};
        }
        Generator g = switch (a.data()) {
            case "random" -> new Generator(a.dim(), 0, 0, a.seed());
            case "clustered" -> new Generator(a.dim(), a.clusters(), a.intrinsicDim(), a.seed());
            default -> throw new IllegalArgumentException("--data must be clustered or random, got " + a.data());
        };
        return new Tensor[] {g.rows(a.n(), 1), g.rows(a.queries(), 2)};
    }

    /** Draws unit vectors: uniform on the sphere, or a clustered low-dimensional mixture embedded in D dimensions. */
    static final class Generator {
        private final int dim;
        private final int clusters;
        private final int latent;
        private final long seed;
        private final float[] centres; // clusters x latent
        private final float[] embedding; // latent x dim

        Generator(int dim, int clusters, int latent, long seed) {
            this.dim = dim;
            this.clusters = clusters;
            this.latent = latent;
            this.seed = seed;
            SplittableRandom r = new SplittableRandom(seed);
            centres = gaussians(r, clusters * latent, 1);
            embedding = gaussians(r, latent * dim, 1 / Math.sqrt(latent));
        }

        /** {@code count} rows; {@code stream} separates the database from the queries. */
        Tensor rows(int count, int stream) {
            float[] out = new float[count * dim];
            int chunk = 1024;
            IntStream.range(0, (count + chunk - 1) / chunk).parallel().forEach(c -> {
                SplittableRandom r = new SplittableRandom(seed * 1_000_003L + stream * 7919L + c);
                float[] z = new float[latent];
                for (int i = c * chunk; i < Math.min(count, (c + 1) * chunk); i++) {
                    int o = i * dim;
                    if (clusters == 0) {
                        for (int j = 0; j < dim; j++) {
                            out[o + j] = (float) gaussian(r);
                        }
                    } else {
                        int k = r.nextInt(clusters);
                        for (int l = 0; l < latent; l++) {
                            z[l] = centres[k * latent + l] + 0.5f * (float) gaussian(r);
                        }
                        double signal = 0;
                        for (int l = 0; l < latent; l++) {
                            float zl = z[l];
                            int e = l * dim;
                            for (int j = 0; j < dim; j++) {
                                out[o + j] += zl * embedding[e + j];
                            }
                        }
                        for (int j = 0; j < dim; j++) {
                            signal += out[o + j] * out[o + j];
                        }
                        double noise = 0.1 * Math.sqrt(signal / dim);
                        for (int j = 0; j < dim; j++) {
                            out[o + j] += (float) (noise * gaussian(r));
                        }
                    }
                    double sq = 0;
                    for (int j = 0; j < dim; j++) {
                        sq += out[o + j] * out[o + j];
                    }
                    float inv = (float) (1 / Math.sqrt(sq));
                    for (int j = 0; j < dim; j++) {
                        out[o + j] *= inv;
                    }
                }
            });
            return Tensor.of(out, count, dim);
        }

        private static float[] gaussians(SplittableRandom r, int count, double scale) {
            float[] v = new float[count];
            for (int i = 0; i < count; i++) {
                v[i] = (float) (gaussian(r) * scale);
            }
            return v;
        }

        private static double gaussian(SplittableRandom r) {
            return r.nextGaussian();
        }
    }

    static double recall(Neighbours truth, Neighbours got, int k) {
        long hit = 0;
        for (int q = 0; q < truth.queries(); q++) {
            Set<Integer> t = new HashSet<>();
            for (int r = 0; r < Math.min(k, truth.indices()[q].length); r++) {
                t.add(truth.indices()[q][r]);
            }
            for (int r = 0; r < Math.min(k, got.indices()[q].length); r++) {
                hit += t.contains(got.indices()[q][r]) ? 1 : 0;
            }
        }
        return hit / (double) ((long) truth.queries() * k);
    }

    private static double seconds(long since) {
        return (System.nanoTime() - since) / 1e9;
    }

    private static long processCpu() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static long folderBytes(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    static Args parse(String[] argv) {
        int n = 100_000;
        int dim = 2048;
        int queries = 1000;
        int k = 10;
        int[] efs = {10, 20, 50, 100, 200, 400};
        int m = 16;
        int beam = 100;
        int threads = 2;
        String data = "clustered";
        Path descriptors = null;
        Integer clusters = null;
        int intrinsic = 64;
        long seed = 42;
        Path dir = null;
        boolean keep = false;
        List<String> rest = new ArrayList<>(Arrays.asList(argv));
        while (!rest.isEmpty()) {
            String opt = rest.removeFirst();
            if (opt.equals("--keep")) {
                keep = true;
                continue;
            }
            if (rest.isEmpty()) {
                throw new IllegalArgumentException(opt + " needs a value");
            }
            String v = rest.removeFirst();
            switch (opt) {
                case "--n" -> n = Integer.parseInt(v);
                case "--dim" -> dim = Integer.parseInt(v);
                case "--queries" -> queries = Integer.parseInt(v);
                case "--k" -> k = Integer.parseInt(v);
                case "--ef" -> efs = Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray();
                case "--m" -> m = Integer.parseInt(v);
                case "--beam-width" -> beam = Integer.parseInt(v);
                case "--threads" -> threads = Integer.parseInt(v);
                case "--data" -> data = v;
                case "--descriptors" -> descriptors = Path.of(v);
                case "--clusters" -> clusters = Integer.parseInt(v);
                case "--intrinsic-dim" -> intrinsic = Integer.parseInt(v);
                case "--seed" -> seed = Long.parseLong(v);
                case "--dir" -> dir = Path.of(v);
                default -> throw new IllegalArgumentException("unknown option " + opt + " (see the class comment)");
            }
        }
        return new Args(n, dim, queries, k, efs, m, beam, threads, descriptors != null ? "npy" : data, descriptors,
                clusters != null ? clusters : Math.max(1, n / 100), intrinsic, seed, dir, keep);
    }
}
