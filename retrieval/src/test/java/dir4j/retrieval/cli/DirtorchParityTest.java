package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.TorchSave;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.image.ImageFixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `dir4j extract` against descriptors made by the reference implementation itself (naver's
 * dirtorch: its image reader, Scale transforms, ResNet_RMAC network, extract_image_features and
 * multi-scale common.pool), committed by tests/fixtures/make_dirtorch_fixtures.py: a full-width
 * ResNet-18-GeM-FC whose weights are a function of each tensor's name and element index (so no
 * checkpoint is stored), saved here in the reference's checkpoint layout (module. prefixes,
 * model_options) and run through the command line as a user would: extraction at one scale and
 * three, and the revisited protocol's evaluation with cropped queries. And `dir4j aploss` against
 * dirtorch's own loss classes.
 */
class DirtorchParityTest {
    @TempDir
    Path dir;

    static long fnv1a64(String name) {
        long h = 0xcbf29ce484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    /** Element i of the tensor {@code name}: SplitMix64 of (FNV-1a-64(name) + i), top 24 bits, in [-1, 1). */
    static float uniform(long seed, long i) {
        long z = seed + i + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return (float) (z >>> 40) * 0x1p-23f - 1f;
    }

    /** The fixture script's weights, element by element, in float32 as it computes them. */
    static float[] values(String name, int[] shape) {
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        long seed = fnv1a64(name);
        float[] v = new float[n];
        float convScale = shape.length == 4 ? (float) Math.sqrt(6.0 / (shape[1] * shape[2] * shape[3])) : 0;
        for (int i = 0; i < n; i++) {
            float u = uniform(seed, i);
            v[i] = name.endsWith("num_batches_tracked") ? 0
                    : name.equals("adpool.p") ? 2.7f
                    : name.equals("fc.weight") ? u * (float) (1 / Math.sqrt(512.0))
                    : name.equals("fc.bias") ? u * 0.01f
                    : name.endsWith("running_mean") ? 0.1f * u
                    : name.endsWith("running_var") ? 1f + 0.25f * (u + 1f)
                    : shape.length == 4 ? u * convScale
                    : name.endsWith(".weight") ? 1f + 0.1f * u
                    : 0.1f * u;
        }
        return v;
    }

    /** The fixture's network as a reference-layout .pt (module. prefixes, model_options). */
    static Path checkpoint(Path fixtures, Path dir) throws IOException {
        Path ckpt = dir.resolve("resnet18-gem.pt");
        List<String> weights = Files.readAllLines(fixtures.resolve("weights.txt"));
        assertEquals(123, weights.size());
        try (MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> sd = new LinkedHashMap<>();
            for (String line : weights) {
                String[] f = line.split(" ");
                int[] shape = f[1].equals("scalar") ? new int[0]
                        : Arrays.stream(f[1].split("x")).mapToInt(Integer::parseInt).toArray();
                float[] v = values(f[0], shape);
                // the generator agrees with the script's before anything else is compared
                double sum = 0;
                double squares = 0;
                for (float x : v) {
                    sum += x;
                    squares += (double) x * x;
                }
                double want = Double.parseDouble(f[2]);
                double wantSquares = Double.parseDouble(f[3]);
                assertEquals(want, sum, 1e-9 * (1 + Math.abs(want) + wantSquares), f[0] + " sum");
                assertEquals(wantSquares, squares, 1e-9 * (1 + wantSquares), f[0] + " sum of squares");
                Tensor t;
                if (f[0].endsWith("num_batches_tracked")) {
                    t = Tensor.ofInts(new int[v.length], shape);
                } else {
                    t = Tensor.of(v, shape);
                }
                sd.put("module." + f[0], t);
            }
            Map<String, Object> options = new LinkedHashMap<>();
            options.put("arch", "resnet18_rmac");
            options.put("out_dim", 128L);
            options.put("pooling", "gem");
            options.put("gemp", 3L);
            options.put("without_fc", false);
            options.put("dropout_p", null);
            options.put("norm_features", false);
            Map<String, Object> root = new LinkedHashMap<>();
            root.put("state_dict", new TorchSave.StateDict(sd));
            root.put("model_options", options);
            TorchSave.write(ckpt, root);
        }
        return ckpt;
    }

    @Test
    void extractGivesTheReferencesDescriptors() throws IOException {
        Path fixtures = fixtures(dir);
        Path ckpt = checkpoint(fixtures, dir);
        Path list = imageList(fixtures, dir);

        compare(dir, fixtures, ckpt, list, "1", "single.npy", null, 2e-6f);
        compare(dir, fixtures, ckpt, list, "1,0.7071,0.5", "multiscale.npy", "undetermined.npy", 2e-6f);
    }

    /**
     * `dir4j eval` on a revisited-protocol ground truth over the same images: the database and the
     * queries, cropped to fractional boxes, have dirtorch's descriptors, and the mAP per protocol is
     * dirtorch's (no two scores of a query are within 2e-5 of each other, so every rank is
     * determined; the easy protocol leaves out the query without an easy image, as both do). The
     * ground truth lies in the reference's folder layout (oxford5k/gnd_roxford5k.pkl), beside the old
     * protocol's gnd_oxford5k.pkl over the same queries (ok and junk as NumPy arrays), whose mAP is
     * dirtorch's too; so is the mAP after whitening by a PCA that scikit-learn itself pickled
     * (fixtures/dirtorch/pca.pt), alpha-DBA and alpha-QE.
     */
    @Test
    void evalGivesTheReferencesCroppedQueriesAndMap() throws IOException {
        Path fixtures = fixtures(dir);
        Path ckpt = checkpoint(fixtures, dir);
        Path descs = dir.resolve("descs");
        Path json = dir.resolve("eval.json");
        Run r = run("eval", "--dataset", "roxford5k", "--data-root", fixtures.toString(), "--checkpoint",
                ckpt.toString(), "--descriptors-dir", descs.toString(), "--json", json.toString(), "--quiet");
        assertEquals(0, r.rc(), r.toString());
        for (String[] pair : new String[][] {{"roxford5k.qdescs.npy", "queries.npy"},
                {"roxford5k.dbdescs.npy", "single.npy"}}) {
            try (Tensor got = Npy.read(descs.resolve(pair[0])); Tensor want = Npy.read(fixtures.resolve(pair[1]))) {
                float[] g = got.toFloatArray();
                float[] w = want.toFloatArray();
                assertEquals(w.length, g.length, pair[0]);
                for (int i = 0; i < w.length; i++) {
                    assertEquals(w[i], g[i], 2e-6f, pair[0] + ": row " + i / 128 + ", element " + i % 128);
                }
            }
        }
        String[] maps = Files.readString(fixtures.resolve("eval.txt")).trim().split(" ");
        Map<?, ?> result = (Map<?, ?>) ((Map<?, ?>) dir4j.nn.io.Json.parse(Files.readString(json))).get("roxford5k");
        assertEquals(Double.parseDouble(maps[0]), ((Number) result.get("mAP-easy")).doubleValue(), 1e-12);
        assertEquals(Double.parseDouble(maps[1]), ((Number) result.get("mAP-medium")).doubleValue(), 1e-12);
        assertEquals(Double.parseDouble(maps[2]), ((Number) result.get("mAP-hard")).doubleValue(), 1e-12);
        assertEquals(1L, ((Map<?, ?>) result.get("queries-without-positives")).get("easy"));

        // whitened by a scikit-learn PCA that scikit-learn pickled, then aDBA and aQE (k 1, alpha 3)
        Path whitenedJson = dir.resolve("whitened.json");
        Run whitened = run("eval", "--dataset", "roxford5k", "--data-root", fixtures.toString(), "--checkpoint",
                ckpt.toString(), "--descriptors-dir", descs.toString(), "--json", whitenedJson.toString(), "--quiet",
                "--whiten", "file", fixtures.resolve("pca.pt").toString(), "--whitenp", "0.25", "--adba", "1", "3",
                "--aqe", "1", "3");
        assertEquals(0, whitened.rc(), whitened.toString());
        String[] wmaps = Files.readString(fixtures.resolve("whitened.txt")).trim().split(" ");
        Map<?, ?> w = (Map<?, ?>) ((Map<?, ?>) dir4j.nn.io.Json.parse(Files.readString(whitenedJson))).get("roxford5k");
        assertEquals(Double.parseDouble(wmaps[0]), ((Number) w.get("mAP-easy")).doubleValue(), 1e-12);
        assertEquals(Double.parseDouble(wmaps[1]), ((Number) w.get("mAP-medium")).doubleValue(), 1e-12);
        assertEquals(Double.parseDouble(wmaps[2]), ((Number) w.get("mAP-hard")).doubleValue(), 1e-12);

        Path oldJson = dir.resolve("old.json");
        Run old = run("eval", "--dataset", "oxford5k", "--data-root", fixtures.toString(), "--checkpoint",
                ckpt.toString(), "--descriptors-dir", descs.toString(), "--json", oldJson.toString(), "--quiet");
        assertEquals(0, old.rc(), old.toString());
        Map<?, ?> oldResult = (Map<?, ?>) ((Map<?, ?>) dir4j.nn.io.Json.parse(Files.readString(oldJson)))
                .get("oxford5k");
        assertEquals(Double.parseDouble(maps[3]), ((Number) oldResult.get("mAP")).doubleValue(), 1e-12);
    }

    /** The fixture files the extraction and evaluation tests read. */
    private static final List<String> FILES = List.of("weights.txt", "single.npy", "multiscale.npy",
            "undetermined.npy", "queries.npy", "eval.txt", "whitened.txt", "pca.pt", "oxford5k/gnd_roxford5k.pkl",
            "oxford5k/gnd_oxford5k.pkl", "oxford5k/jpg/img0.jpg", "oxford5k/jpg/img1.jpg", "oxford5k/jpg/img2.jpg",
            "oxford5k/jpg/img3.jpg", "oxford5k/jpg/img4.jpg", "oxford5k/jpg/img5.jpg");

    /**
     * The fixtures copied from the class path into {@code dir}/fixtures: the GPU kit carries the test
     * resources inside a jar, where they have no file path.
     */
    static Path fixtures(Path dir) throws IOException {
        Path out = dir.resolve("fixtures");
        for (String f : FILES) {
            try (java.io.InputStream in = DirtorchParityTest.class.getResourceAsStream("/fixtures/dirtorch/" + f)) {
                if (in == null) {
                    throw new IllegalStateException("missing fixture dirtorch/" + f
                            + " (tests/fixtures/make_dirtorch_fixtures.py)");
                }
                Files.createDirectories(out.resolve(f).getParent());
                Files.copy(in, out.resolve(f));
            }
        }
        return out;
    }

    /** The six fixture images as an image list in {@code dir}. */
    static Path imageList(Path fixtures, Path dir) throws IOException {
        Path jpg = fixtures.resolve("oxford5k").resolve("jpg");
        Path list = dir.resolve("images.txt");
        Files.write(list, java.util.stream.IntStream.range(0, 6)
                .mapToObj(i -> jpg.resolve("img" + i + ".jpg").toString()).toList());
        return list;
    }

    /** `dir4j extract` with these scales (and extra options) against dirtorch's descriptors. */
    static void compare(Path dir, Path fixtures, Path ckpt, Path list, String scales, String expected, String mask,
                        float tolerance, String... extra) throws IOException {
        Path out = dir.resolve("d" + scales.length() + ".npy");
        List<String> args = new java.util.ArrayList<>(List.of("extract", "--checkpoint", ckpt.toString(), "--images",
                list.toString(), "--scales", scales, "--out", out.toString(), "--quiet"));
        args.addAll(List.of(extra));
        Run r = run(args.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        try (Tensor got = Npy.read(out); Tensor want = Npy.read(fixtures.resolve(expected))) {
            assertEquals(List.of(6, 128), Arrays.stream(got.shape()).boxed().toList());
            float[] g = got.toFloatArray();
            float[] w = want.toFloatArray();
            double[] skip = new double[w.length];
            if (mask != null) {
                try (Tensor m = Npy.read(fixtures.resolve(mask))) {
                    skip = m.toDoubleArray();
                }
            }
            int compared = 0;
            for (int i = 0; i < w.length; i++) {
                if (skip[i] == 0) {
                    assertEquals(w[i], g[i], tolerance, "scales " + scales + ", image " + i / 128 + ", element "
                            + i % 128);
                    compared++;
                }
            }
            assertTrue(compared > w.length * 0.9, compared + " elements compared of " + w.length);
        }
    }

    /**
     * `dir4j aploss` against dirtorch's own loss classes (APLoss, TAPLoss full and simplified, the
     * distance forms), run by the fixture script in float64: the loss and every query's AP to 2e-6,
     * and dL/dD within 1e-4 of its largest element, or twice the distance of dirtorch's own float32
     * run if that is more (the full tie-aware form divides small count differences); rows of images
     * in a pair whose score lies on a bin centre (the quantiser's kink; a copied row scores 1 with
     * its original) are left out of the gradient check.
     */
    @Test
    void aplossGivesTheReferencesLossApsAndGradients() throws IOException {
        Path loss = ImageFixtures.path("dirtorch/loss");
        List<String> cases = Files.readAllLines(loss.resolve("cases.txt"));
        assertEquals(6, cases.size());
        for (String line : cases) {
            String[] f = line.split(" ");
            String name = f[0];
            String cls = f[1];
            List<String> args = new java.util.ArrayList<>(List.of("aploss", "--descriptors",
                    loss.resolve("x.npy").toString(), "--labels", loss.resolve("labels.npy").toString(), "--nq", f[2],
                    "--min", f[3], "--max", f[4], "--out", dir.resolve(name).toString(), "--show", "0", "--quiet"));
            if (cls.startsWith("TAP")) {
                args.addAll(List.of("--tie-aware", f[5].equals("True") ? "simplified" : "full"));
            }
            if (cls.endsWith("_dist")) {
                args.add("--distance");
            }
            Run r = run(args.toArray(String[]::new));
            assertEquals(0, r.rc(), r.toString());
            String printed = r.out().lines().filter(l -> l.contains(" loss (")).findFirst().orElseThrow();
            assertEquals(Double.parseDouble(f[6]), Double.parseDouble(printed.substring(printed.lastIndexOf(':') + 1)),
                    2e-6, name + ": " + printed);
            double[] ap = read(dir.resolve(name).resolve("ap.npy"));
            double[] wantAp = read(loss.resolve(name + ".ap.npy"));
            for (int i = 0; i < wantAp.length; i++) {
                assertEquals(wantAp[i], ap[i], 2e-6, name + ": AP of query " + i);
            }
            double[] g = read(dir.resolve(name).resolve("grad.npy"));
            double[] want = read(loss.resolve(name + ".grad.npy"));
            double[] want32 = read(loss.resolve(name + ".grad32.npy"));
            double[] kink = read(loss.resolve(name + ".kink.npy"));
            int dim = want.length / kink.length;
            double scale = Arrays.stream(want).map(Math::abs).max().orElseThrow();
            double spread = 0;
            for (int i = 0; i < want.length; i++) {
                if (kink[i / dim] == 0) {
                    spread = Math.max(spread, Math.abs(want32[i] - want[i]));
                }
            }
            double tolerance = Math.max(1e-4 * scale, 2 * spread);
            int compared = 0;
            for (int i = 0; i < want.length; i++) {
                if (kink[i / dim] == 0) {
                    assertEquals(want[i], g[i], tolerance, name + ": dL/dD[" + i / dim + "][" + i % dim + "]");
                    compared++;
                }
            }
            assertTrue(compared >= want.length / 2, name + ": " + compared + " gradient elements compared");
        }
    }

    private static double[] read(Path npy) throws IOException {
        try (Tensor t = Npy.read(npy)) {
            return t.toDoubleArray();
        }
    }
}
