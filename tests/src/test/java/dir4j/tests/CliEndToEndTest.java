package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.Main;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The user's journey through the command line at toy size: generate the benchmark, train two
 * steps, evaluate the trained network (keeping its descriptors), index the database descriptors
 * and search them with the query descriptors. Each step reads what the one before wrote; the
 * search results are checked against dot products computed here from the descriptor files.
 */
class CliEndToEndTest {
    @TempDir
    Path tmp;

    private static int dir4j(String... args) {
        return new CommandLine(new Main()).execute(args);
    }

    @Test
    void synthTrainEvalIndexSearch() throws IOException {
        String data = tmp.resolve("data").toString();
        assertEquals(0, dir4j("synth", "--data-root", data, "--seed", "5", "--train-landmarks", "6", "--train-views",
                "4", "--val-landmarks", "3", "--test-landmarks", "4", "--easy", "2", "--hard", "1", "--junk", "1",
                "--distractors", "4", "--image-size", "64", "--quiet"));
        Path run = tmp.resolve("run");
        // the benchmark's training list, as a user's own labelled list ('path label', relative to the list)
        String trainList = tmp.resolve("data/synth/train.txt").toString();
        assertEquals(0, dir4j("train", "--train-list", trainList, "--arch", "resnet18", "--base-width", "8",
                "--out-dim", "16", "--steps", "2", "--classes-per-batch", "3", "--images-per-class", "2",
                "--sub-batch", "4", "--crop-size", "48", "--min-size", "48", "--max-size", "56",
                "--validate-every", "0", "--checkpoint-every", "2", "--out", run.toString(), "--quiet"));
        Path model = run.resolve("model.safetensors");
        assertTrue(Files.isRegularFile(model), "train wrote the network");
        assertEquals(3, Files.readAllLines(run.resolve("log.csv")).size(), "a header and two steps");

        Path descs = tmp.resolve("descs");
        Path json = tmp.resolve("eval.json");
        assertEquals(0, dir4j("eval", "--dataset", "synth", "--data-root", data, "--checkpoint", model.toString(),
                "--image-size", "64", "--descriptors-dir", descs.toString(), "--json", json.toString(), "--quiet"));
        String report = Files.readString(json);
        Matcher m = Pattern.compile("\"mAP-(easy|medium|hard)\"\\s*:\\s*([0-9.eE+-]+)").matcher(report);
        int maps = 0;
        while (m.find()) {
            double v = Double.parseDouble(m.group(2));
            assertTrue(v >= 0 && v <= 1, "mAP " + v + " in " + report);
            maps++;
        }
        assertEquals(3, maps, "Easy, Medium and Hard mAP in " + report);
        assertTrue(report.contains("\"queries\": 4"), report);

        Path q;
        Path db;
        try (Stream<Path> files = Files.list(descs)) {
            List<Path> npy = files.filter(p -> p.toString().endsWith(".npy")).sorted().toList();
            q = npy.stream().filter(p -> p.toString().endsWith(".qdescs.npy")).findFirst().orElseThrow();
            db = npy.stream().filter(p -> p.toString().endsWith(".dbdescs.npy")).findFirst().orElseThrow();
        }
        Path index = tmp.resolve("index");
        assertEquals(0, dir4j("index", "--descriptors", db.toString(), "--out", index.toString(), "--quiet"));
        Path results = tmp.resolve("results.txt");
        assertEquals(0, dir4j("search", "--index", index.toString(), "--descriptors", q.toString(), "-k", "3",
                "--out", results.toString(), "--quiet"));
        List<String> dbIds = Files.readAllLines(Path.of(db.toString().replaceAll("\\.npy$", ".ids.txt")));
        List<String> lines = Files.readAllLines(results);
        try (Tensor qd = Npy.read(q); Tensor dd = Npy.read(db)) {
            float[] qa = qd.toFloatArray();
            float[] da = dd.toFloatArray();
            int d = qd.shape(1);
            int nq = qd.shape(0);
            int n = dd.shape(0);
            int query = -1;
            for (int l = 0; l < lines.size(); l++) {
                if (lines.get(l).startsWith("query ")) {
                    query++;
                    // the first result line after the header is the best database image
                    String[] best = lines.get(l + 1).split("\t");
                    int want = 0;
                    double wantScore = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int c = 0; c < d; c++) {
                            s += qa[query * d + c] * da[j * d + c];
                        }
                        if (s > wantScore + 1e-6) {
                            wantScore = s;
                            want = j;
                        }
                    }
                    assertEquals("1", best[0], lines.get(l + 1));
                    assertEquals(wantScore, Double.parseDouble(best[1]), 1e-5, "query " + query + " best score");
                    assertEquals(dbIds.get(want), best[2], "query " + query + " best image");
                }
            }
            assertEquals(nq - 1, query, "every query answered");

            // the README's embedding example on the trained checkpoint: one database image's
            // descriptor equals its row in the files eval wrote
            Path image = tmp.resolve("data/synth/jpg/" + dbIds.get(0) + ".jpg");
            assertTrue(Files.isRegularFile(image), image.toString());
            NetworkCheckpoint.Loaded loaded = NetworkCheckpoint.load(model);
            try (RetrievalNet net = loaded.net(); FeatureExtractor describer = new FeatureExtractor(net,
                    ExtractionOptions.defaults().withPreprocessing(loaded.preprocessing(64)))) {
                float[] one = describer.describe(ImageDecoder.read(image), null);
                assertEquals(d, one.length);
                for (int c = 0; c < d; c++) {
                    assertEquals(da[c], one[c], 1e-5, "component " + c + " of " + dbIds.get(0));
                }
            }
        }
    }
}
