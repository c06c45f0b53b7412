package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Json;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.Neighbours;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j search`: descriptor and image queries against exact and HNSW indexes, text and JSON. */
class SearchCommandTest {
    @TempDir
    Path dir;
    Path db;
    Path queries;

    static float[] unitRows(Random rng, int n, int d) {
        float[] v = new float[n * d];
        for (int i = 0; i < n; i++) {
            double sq = 0;
            for (int j = 0; j < d; j++) {
                v[i * d + j] = (float) rng.nextGaussian();
                sq += v[i * d + j] * v[i * d + j];
            }
            for (int j = 0; j < d; j++) {
                v[i * d + j] /= (float) Math.sqrt(sq);
            }
        }
        return v;
    }

    @BeforeEach
    void files() throws IOException {
        db = dir.resolve("db.npy");
        queries = dir.resolve("q.npy");
        float[] rows = unitRows(new Random(3), 300, 16);
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(db, Tensor.of(rows, 300, 16));
            float[] q = new float[3 * 16];
            System.arraycopy(rows, 10 * 16, q, 0, 16);         // database row 10
            System.arraycopy(rows, 20 * 16, q, 16, 16);        // row 20
            System.arraycopy(unitRows(new Random(9), 1, 16), 0, q, 32, 16);
            Npy.write(queries, Tensor.of(q, 3, 16));
        }
        Files.write(dir.resolve("db.ids.txt"), IntStream.range(0, 300).mapToObj(i -> "img_" + i).toList());
        Files.write(dir.resolve("q.ids.txt"), List.of("ten", "twenty", "new"));
        assertEquals(0, run("index", "--descriptors", db.toString(), "--out", dir.resolve("exact").toString(),
                "--quiet").rc());
        assertEquals(0, run("index", "--descriptors", db.toString(), "--out", dir.resolve("hnsw").toString(),
                "--type", "hnsw", "--quiet").rc());
    }

    @Test
    void descriptorQueriesGiveTheExactRankingAsTextForBothIndexKinds() throws IOException {
        Neighbours want;
        try (ExactIndex e = ExactIndex.load(dir.resolve("exact")); Tensor q = Npy.read(queries)) {
            want = e.search(q, 5);
        }
        StringBuilder text = new StringBuilder();
        String[] names = {"ten", "twenty", "new"};
        for (int q = 0; q < 3; q++) {
            text.append("query ").append(names[q]).append('\n');
            for (int r = 0; r < 5; r++) {
                text.append(r + 1).append('\t').append(String.format(Locale.ROOT, "%.6f", want.scores()[q][r]))
                        .append('\t').append("img_").append(want.indices()[q][r]).append('\n');
            }
        }
        assertTrue(text.toString().startsWith("query ten\n1\t1.000000\timg_10\n"), text.toString());
        Run exact = run("search", "--index", dir.resolve("exact").toString(), "--descriptors", queries.toString(), "-k",
                "5", "--quiet");
        assertEquals(0, exact.rc(), exact.toString());
        assertEquals(text.toString(), exact.out());
        // HNSW finds the same rows here; its scores come back through Lucene's (1 + s) / 2, equal to ~1e-7
        Run hnsw = run("search", "--index", dir.resolve("hnsw").toString(), "--descriptors", queries.toString(), "-k",
                "5", "--quiet");
        assertEquals(0, hnsw.rc(), hnsw.toString());
        assertSameResults(text.toString(), hnsw.out());
        Run ef = run("search", "--index", dir.resolve("hnsw").toString(), "--descriptors", queries.toString(), "-k", "5",
                "--ef", "300", "--quiet", "--out", dir.resolve("res.txt").toString());
        assertEquals(0, ef.rc(), ef.toString());
        assertEquals("", ef.out());
        assertSameResults(text.toString(), Files.readString(dir.resolve("res.txt")));
    }

    @Test
    void outReplacesTheFileWholeInsteadOfRewritingItInPlace() throws IOException {
        // a reader holding the previous results (here a hard link to them) keeps them whole: the new results
        // go to a temporary file renamed over --out, never into the old file, half-written on a crash
        Path res = Files.createDirectories(dir.resolve("out")).resolve("res.txt");
        Files.writeString(res, "earlier results\n");
        Path held = Files.createLink(dir.resolve("held.txt"), res);
        Run r = run("search", "--index", dir.resolve("exact").toString(), "--descriptors", queries.toString(), "-k",
                "5", "--quiet", "--out", res.toString());
        assertEquals(0, r.rc(), r.toString());
        Run stdout = run("search", "--index", dir.resolve("exact").toString(), "--descriptors", queries.toString(),
                "-k", "5", "--quiet");
        assertEquals(stdout.out(), Files.readString(res));
        assertEquals("earlier results\n", Files.readString(held));
        try (var files = Files.list(res.getParent())) {
            assertEquals(List.of(res), files.toList(), "no temporary file left");
        }
    }

    /**
     * Results written over an input are refused before any work, naming both: a file of the index
     * (which the next search would find broken), the query descriptors or their ids.
     */
    @Test
    void resultsCannotReplaceAnInput() throws IOException {
        Path index = dir.resolve("exact");
        Map<Path, byte[]> before = new java.util.LinkedHashMap<>();
        try (var files = Files.list(index)) {
            for (Path f : files.toList()) {
                before.put(f, Files.readAllBytes(f));
            }
        }
        before.put(queries, Files.readAllBytes(queries));
        for (Path f : List.copyOf(before.keySet())) {
            Run r = run("search", "--index", index.toString(), "--descriptors", queries.toString(), "--quiet", "--out",
                    f.toString());
            assertEquals(2, r.rc(), f + ": " + r);
            String what = f.equals(queries) ? " is --descriptors " + queries + ": writing it would replace"
                    : " lies inside --index " + index + ": writing it would change";
            assertTrue(r.err().startsWith("dir4j search: --out " + f + what + " an input"), r.err());
        }
        // a new file inside the index reached through a link to its folder
        Path link = Files.createSymbolicLink(dir.resolve("link"), index);
        Run viaLink = run("search", "--index", index.toString(), "--descriptors", queries.toString(), "--quiet",
                "--out", link.resolve("new.txt").toString());
        assertEquals(2, viaLink.rc(), viaLink.toString());
        assertTrue(viaLink.err().contains(" lies inside --index " + index), viaLink.err());
        assertTrue(Files.notExists(index.resolve("new.txt")));
        Run ids = run("search", "--index", index.toString(), "--descriptors", queries.toString(), "--quiet", "--out",
                dir.resolve("q.ids.txt").toString());
        assertEquals(2, ids.rc(), ids.toString());
        assertTrue(ids.err().contains(" is the query ids "), ids.err());
        for (Map.Entry<Path, byte[]> e : before.entrySet()) {
            assertArrayEquals(e.getValue(), Files.readAllBytes(e.getKey()), e.getKey().toString());
        }
        assertEquals(List.of("ten", "twenty", "new"), Files.readAllLines(dir.resolve("q.ids.txt")));
    }

    /** Same lines, ids and ranks; scores equal to 2e-6. */
    static void assertSameResults(String want, String got) {
        String[] w = want.split("\n");
        String[] g = got.split("\n");
        assertEquals(w.length, g.length, got);
        for (int i = 0; i < w.length; i++) {
            String[] a = w[i].split("\t");
            String[] b = g[i].split("\t");
            if (a.length == 3 && b.length == 3) {
                assertEquals(a[0] + "\t" + a[2], b[0] + "\t" + b[2], "line " + i + "\n" + got);
                assertEquals(Double.parseDouble(a[1]), Double.parseDouble(b[1]), 2e-6, "line " + i);
            } else {
                assertEquals(w[i], g[i]);
            }
        }
    }

    @Test
    void jsonOutputListsRankIdAndScorePerQuery() {
        Run r = run("search", "--index", dir.resolve("hnsw").toString(), "--descriptors", queries.toString(),
                "--top-k", "2", "--format", "json");
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("searched 3 queries"), r.err());
        Map<?, ?> all = (Map<?, ?>) Json.parse(r.out());
        assertEquals(2L, all.get("k"));
        List<?> results = (List<?>) all.get("results");
        assertEquals(3, results.size());
        Map<?, ?> second = (Map<?, ?>) results.get(1);
        assertEquals("twenty", second.get("query"));
        Map<?, ?> top = (Map<?, ?>) ((List<?>) second.get("neighbours")).get(0);
        assertEquals(1L, top.get("rank"));
        assertEquals("img_20", top.get("id"));
        assertEquals(1.0, (Double) top.get("score"), 1e-6);
    }

    @Test
    void imageQueriesAreDescribedWithTheNetworkAndFindThemselves() throws IOException {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"),
                "all_souls_000001.jpg\nall_souls_000002.jpg\nradcliffe_camera_000003.jpg\n");
        String[] net = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "8", "--seed", "5"};
        Path feats = dir.resolve("imgs.npy");
        Run extract = run(EvalCommandTest.concat(new String[] {"extract", "--images", list.toString(), "--root",
            jpg.toString(), "--image-size", "32", "--out", feats.toString(), "--quiet"}, net));
        assertEquals(0, extract.rc(), extract.toString());
        assertEquals(0, run("index", "--descriptors", feats.toString(), "--out", dir.resolve("imgs").toString(),
                "--quiet").rc());
        Path image = jpg.resolve("radcliffe_camera_000003.jpg");
        Run one = run(EvalCommandTest.concat(new String[] {"search", "--index", dir.resolve("imgs").toString(),
            "--image", image.toString(), "--image-size", "32", "-k", "3", "--quiet"}, net));
        assertEquals(0, one.rc(), one.toString());
        String[] lines = one.out().split("\n");
        assertEquals("query " + image, lines[0]);
        assertEquals("1\t1.000000\tradcliffe_camera_000003.jpg", lines[1]);
        assertEquals(4, lines.length);
        Run fromList = run(EvalCommandTest.concat(new String[] {"search", "--index", dir.resolve("imgs").toString(),
            "--image-list", list.toString(), "--root", jpg.toString(), "--image-size", "32", "-k", "1", "--quiet"},
                net));
        assertEquals(0, fromList.rc(), fromList.toString());
        assertEquals("query all_souls_000001.jpg\n1\t1.000000\tall_souls_000001.jpg\n"
                + "query all_souls_000002.jpg\n1\t1.000000\tall_souls_000002.jpg\n"
                + "query radcliffe_camera_000003.jpg\n1\t1.000000\tradcliffe_camera_000003.jpg\n", fromList.out());
        Run missingImage = run(EvalCommandTest.concat(new String[] {"search", "--index", dir.resolve("imgs").toString(),
            "--image", dir.resolve("gone.jpg").toString(), "--quiet"}, net));
        assertEquals(1, missingImage.rc());
        assertTrue(missingImage.err().contains("gone.jpg"), missingImage.err());
        // --on-error skip: the unreadable query is left out, noted, and listed in the JSON
        Path empty = Files.write(dir.resolve("empty.jpg"), new byte[0]);
        Run skip = run(EvalCommandTest.concat(new String[] {"search", "--index", dir.resolve("imgs").toString(),
            "--image", dir.resolve("gone.jpg").toString(), image.toString(), "--image-size", "32", "-k", "1",
            "--on-error", "skip", "--format", "json"}, net));
        assertEquals(0, skip.rc(), skip.toString());
        @SuppressWarnings("unchecked")
        java.util.Map<String, Object> doc = (java.util.Map<String, Object>) Json.parse(skip.out());
        List<?> results = (List<?>) doc.get("results");
        assertEquals(1, results.size());
        assertEquals(image.toString(), ((java.util.Map<?, ?>) results.getFirst()).get("query"));
        List<?> skipped = (List<?>) doc.get("skipped");
        assertEquals(1, skipped.size());
        java.util.Map<?, ?> left = (java.util.Map<?, ?>) skipped.getFirst();
        assertEquals(dir.resolve("gone.jpg").toString(), left.get("query"));
        assertTrue(String.valueOf(left.get("reason")).contains("gone.jpg"), String.valueOf(left.get("reason")));
        assertTrue(skip.err().contains("note: left out query " + dir.resolve("gone.jpg")), skip.err());
        Run none = run(EvalCommandTest.concat(new String[] {"search", "--index", dir.resolve("imgs").toString(),
            "--image", dir.resolve("gone.jpg").toString(), empty.toString(), "--image-size", "32", "--on-error",
            "skip", "--quiet"}, net));
        assertEquals(1, none.rc());
        assertTrue(none.err().contains("every query image was unreadable") && none.err().contains(", ...)"),
                none.err());
        Run descriptors = run("search", "--index", dir.resolve("imgs").toString(), "--descriptors", feats.toString(),
                "--on-error", "skip");
        assertEquals(2, descriptors.rc());
        assertTrue(descriptors.err().contains("--on-error goes with query images"), descriptors.err());
    }

    @Test
    void whitenedIndexesAreSearchedWithTheSameWhitening() throws IOException {
        Path w = dir.resolve("w.safetensors");
        assertEquals(0, run("whiten", "--learn", db.toString(), "--out", w.toString(), "--whitenv", "12", "--quiet")
                .rc());
        Path dbw = dir.resolve("dbw.npy");
        assertEquals(0, run("whiten", "--apply", db.toString(), "--whitening", w.toString(), "--out", dbw.toString(),
                "--quiet").rc());
        assertEquals(0, run("index", "--descriptors", dbw.toString(), "--out", dir.resolve("w").toString(), "--type",
                "hnsw", "--quiet").rc());
        Run r = run("search", "--index", dir.resolve("w").toString(), "--descriptors", queries.toString(),
                "--whitening", w.toString(), "-k", "1", "--quiet");
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.out().startsWith("query ten\n1\t1.000000\timg_10\nquery twenty\n1\t1.000000\timg_20\n"), r.out());
        Run unwhitened = run("search", "--index", dir.resolve("w").toString(), "--descriptors", queries.toString());
        assertEquals(1, unwhitened.rc());
        assertTrue(unwhitened.err().contains("16-d but the index holds 12-d") && unwhitened.err().contains("--whitening"),
                unwhitened.err());
    }

    /**
     * An index folder missing because a swap has it (dir4j index --append or --overwrite renaming
     * the new one in): the search waits for it instead of calling the folder absent; one that a
     * stopped swap set aside is named, with how to get it back; a folder still absent after the
     * wait is called absent; a link loop is named as one.
     */
    @Test
    void aFolderInASwapsHandsIsWaitedForOrNamedAndALinkLoopIsNamed() throws Exception {
        Path exact = dir.resolve("exact");
        Path replacement = dir.resolve(".exact.dir4j-n3w.tmp");
        Files.move(exact, replacement); // between the swap's two renames: the new index not yet in place
        Thread swap = new Thread(() -> {
            try {
                Thread.sleep(150);
                Files.move(replacement, exact);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        swap.start();
        Run waited = run("search", "--index", exact.toString(), "--descriptors", queries.toString(), "--quiet");
        swap.join();
        assertEquals(0, waited.rc(), waited.toString());
        assertTrue(waited.out().contains("img_10"), waited.out());
        // stopped between the renames: the old index aside, the unfinished new one beside it
        Path aside = dir.resolve(".exact.dir4j-0ld.old");
        Files.move(exact, aside);
        Files.createDirectories(replacement);
        Run setAside = run("search", "--index", exact.toString(), "--descriptors", queries.toString());
        assertEquals(1, setAside.rc(), setAside.toString());
        assertTrue(setAside.err().contains("left the index set aside as " + aside), setAside.err());
        // a first build killed before its rename: its unfinished folder alone, waited for, then the folder is absent
        Files.createDirectories(dir.resolve(".fresh.dir4j-k1ll.tmp"));
        Run absent = run("search", "--index", dir.resolve("fresh").toString(), "--descriptors", queries.toString());
        assertEquals(1, absent.rc(), absent.toString());
        assertTrue(absent.err().contains(dir.resolve("fresh") + ": no such index folder"), absent.err());
        Path loop = dir.resolve("loop");
        Files.createSymbolicLink(loop, loop);
        Run looped = run("search", "--index", loop.toString(), "--descriptors", queries.toString());
        assertEquals(1, looped.rc(), looped.toString());
        assertTrue(looped.err().contains(loop + ": too many levels of symbolic links"), looped.err());
    }

    @Test
    void badCommandLinesExitWithTwoAndBadInputsWithOne() throws IOException {
        String exact = dir.resolve("exact").toString();
        String hnsw = dir.resolve("hnsw").toString();
        String q = queries.toString();
        assertEquals(2, run("search", "--index", exact, "--descriptors", q, "--ef", "50").rc(), "--ef is for hnsw");
        assertEquals(2, run("search", "--index", hnsw, "--descriptors", q, "-k", "20", "--ef", "10").rc());
        assertEquals(2, run("search", "--index", hnsw, "--descriptors", q, "--format", "xml").rc());
        assertEquals(2, run("search", "--index", hnsw, "--descriptors", q, "-k", "0").rc());
        assertEquals(2, run("search", "--index", hnsw).rc(), "queries are required");
        assertEquals(2, run("search", "--index", hnsw, "--descriptors", q, "--checkpoint", "net.pt").rc());
        assertEquals(2, run("search", "--index", hnsw, "--image", "a.jpg", "--arch", "resnet18", "--random-init",
                "--query-ids", "ids.txt").rc());
        assertEquals(2, run("search", "--index", hnsw, "--image", "a.jpg").rc(), "images need a network");
        assertEquals(2, run("search", "--index", hnsw, "--descriptors", q, "--whitenp", "0.5").rc());
        Run noIndex = run("search", "--index", dir.resolve("nothing").toString(), "--descriptors", q);
        assertEquals(1, noIndex.rc());
        assertTrue(noIndex.err().contains("no such index folder"), noIndex.err());
        Path wide = dir.resolve("wide.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(wide, Tensor.of(unitRows(new Random(1), 2, 32), 2, 32));
        }
        Run dims = run("search", "--index", exact, "--descriptors", wide.toString());
        assertEquals(1, dims.rc());
        assertTrue(dims.err().contains("32-d but the index holds 16-d"), dims.err());
        Files.writeString(dir.resolve("two.txt"), "a\nb\n", StandardCharsets.UTF_8);
        assertEquals(1, run("search", "--index", exact, "--descriptors", q, "--query-ids",
                dir.resolve("two.txt").toString()).rc());
        CliRun.assertCudaIsRefused("search", "--index", hnsw, "--descriptors", q); // hnsw: Lucene, CPU only
        CliRun.assertHelpDocumentsEveryOption("search");
    }
}
