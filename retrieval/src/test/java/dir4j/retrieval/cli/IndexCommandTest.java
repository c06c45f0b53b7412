package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.search.DescriptorIndex;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.HnswIndex;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j index`: exact and HNSW folders from descriptors and ids. */
class IndexCommandTest {
    @TempDir
    Path dir;
    Path descs;

    @BeforeEach
    void files() throws IOException {
        descs = dir.resolve("db.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(descs, Tensor.of(SearchCommandTest.unitRows(new Random(3), 200, 16), 200, 16));
        }
        Files.write(dir.resolve("db.ids.txt"), IntStream.range(0, 200).mapToObj(i -> "img_" + i).toList());
    }

    @Test
    void exactAndHnswIndexesHoldTheDescriptorsWithTheirIds() throws IOException {
        Run exact = run("index", "--descriptors", descs.toString(), "--out", dir.resolve("exact").toString());
        assertEquals(0, exact.rc(), exact.toString());
        assertTrue(exact.out().startsWith("built exact index of 200 descriptors (16-d) in "), exact.out());
        try (DescriptorIndex idx = DescriptorIndex.open(dir.resolve("exact"));
             Tensor want = Npy.read(descs)) {
            ExactIndex e = assertInstanceOf(ExactIndex.class, idx);
            assertEquals("img_199", e.id(199));
            try (Tensor got = e.descriptors()) {
                assertArrayEquals(want.toFloatArray(), got.toFloatArray());
            }
        }
        Run hnsw = run("index", "--descriptors", descs.toString(), "--out", dir.resolve("hnsw").toString(), "--type",
                "hnsw", "--max-conn", "8", "--beam-width", "50", "--threads", "2", "--quiet");
        assertEquals(0, hnsw.rc(), hnsw.toString());
        assertEquals("", hnsw.out());
        try (DescriptorIndex idx = DescriptorIndex.open(dir.resolve("hnsw"))) {
            HnswIndex h = assertInstanceOf(HnswIndex.class, idx);
            assertEquals(new HnswIndex.Options(8, 50, 1), h.options());
            assertEquals(200, h.size());
            assertEquals("img_5", h.id(5));
        }
        // an explicit ids file, and row numbers without any
        Path ids = Files.write(dir.resolve("names.txt"), IntStream.range(0, 200).mapToObj(i -> "n" + i).toList());
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--ids", ids.toString(), "--out",
                dir.resolve("named").toString(), "--quiet").rc());
        try (DescriptorIndex idx = DescriptorIndex.open(dir.resolve("named"))) {
            assertEquals("n7", idx.id(7));
        }
        Files.delete(dir.resolve("db.ids.txt"));
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", dir.resolve("rows").toString(),
                "--type", "hnsw", "--quiet").rc());
        try (DescriptorIndex idx = DescriptorIndex.open(dir.resolve("rows"))) {
            assertEquals("7", idx.id(7));
        }
    }

    @Test
    void anExistingIndexIsReplacedOnlyWithOverwriteAndOtherFoldersNever() throws IOException {
        Path out = dir.resolve("idx");
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--quiet").rc());
        Run again = run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--type", "hnsw");
        assertEquals(1, again.rc());
        assertTrue(again.err().contains("already holds an exact index") && again.err().contains("--overwrite"),
                again.err());
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--type", "hnsw",
                "--overwrite", "--quiet").rc());
        assertEquals("hnsw", DescriptorIndex.kind(out));
        assertTrue(Files.notExists(out.resolve(ExactIndex.DESCRIPTORS)), "the exact index's files are gone");
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--overwrite",
                "--quiet").rc());
        assertEquals("exact", DescriptorIndex.kind(out));
        assertTrue(Files.notExists(out.resolve(HnswIndex.PROPERTIES)));

        Path photos = Files.createDirectories(dir.resolve("photos"));
        Files.writeString(photos.resolve("a.jpg"), "not mine");
        Run foreign = run("index", "--descriptors", descs.toString(), "--out", photos.toString(), "--overwrite");
        assertEquals(1, foreign.rc());
        assertTrue(foreign.err().contains("not an index folder"), foreign.err());
        assertEquals(List.of("a.jpg"), Files.list(photos).map(p -> p.getFileName().toString()).toList());
    }

    /**
     * An --out that is a link to a folder elsewhere (a larger disk): every build, replacement and
     * append happens where the link points, the link stays, and nothing of an old index is left
     * behind at either end.
     */
    @Test
    void anOutThatIsALinkIsBuiltWhereItPoints() throws IOException {
        Path far = Files.createDirectories(dir.resolve("far"));
        Path near = Files.createDirectories(dir.resolve("near"));
        Path link = Files.createSymbolicLink(near.resolve("idx"), far.resolve("idx"));
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", link.toString(), "--quiet").rc());
        assertEquals("exact", DescriptorIndex.kind(far.resolve("idx")), "built at the far end of a dangling link");
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", link.toString(), "--type", "hnsw",
                "--overwrite", "--quiet").rc());
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", link.toString(), "--append",
                "--quiet").rc());
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        try (DescriptorIndex idx = DescriptorIndex.open(link)) {
            assertEquals(400, idx.size());
        }
        assertEquals("hnsw", DescriptorIndex.kind(far.resolve("idx")));
        assertTrue(Files.notExists(far.resolve("idx").resolve(ExactIndex.DESCRIPTORS)), "no file of the old index");
        try (var s = Files.list(near)) {
            assertEquals(List.of(link), s.toList(), "nothing beside the link");
        }
        try (var s = Files.list(far)) {
            assertEquals(List.of("idx", ".idx.lock"), s.map(p -> p.getFileName().toString()).sorted(
                    java.util.Comparator.reverseOrder()).toList(), "the index and its lock only");
        }
    }

    /**
     * A relative --out link lying in a linked folder: its {@code ..} leads from where the link
     * really lies, and the build's lock is the one beside the index there (a build through the
     * index's real path is held off by it), not one in a folder that dropping {@code a/..} by name
     * would give.
     */
    @Test
    void aRelativeLinkInALinkedFolderIsLockedBesideTheIndex() throws IOException {
        Path deep = Files.createDirectories(dir.resolve("deep/x"));
        Path far = Files.createDirectories(dir.resolve("deep/far"));
        Path decoy = Files.createDirectories(dir.resolve("far")); // dir/a/../far by name
        Path linked = Files.createSymbolicLink(dir.resolve("a"), deep);
        Files.createSymbolicLink(deep.resolve("idx"), Path.of("../far/idx"));
        String via = linked.resolve("idx").toString();
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", via, "--quiet").rc());
        assertEquals("exact", DescriptorIndex.kind(far.resolve("idx")));
        try (var busy = dir4j.engine.io.OutputLock.acquire(far.resolve(".idx.lock"), "busy")) {
            Run second = run("index", "--descriptors", descs.toString(), "--out", via, "--append");
            assertEquals(1, second.rc(), second.toString());
            assertTrue(second.err().contains("is being written by another task of this process"), second.err());
        }
        try (var s = Files.list(decoy)) {
            assertEquals(List.of(), s.toList(), "nothing in the folder of the same name");
        }
    }

    /**
     * One build per index folder: a second is refused while the first holds it, the index left
     * whole; the next build removes what a killed one left beside the folder; an --overwrite from
     * the index's own files is refused (they would be read from what it replaces).
     */
    @Test
    void oneBuildAtATimeAndKilledBuildsLeftoversGo() throws IOException {
        Path out = dir.resolve("idx");
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--quiet").rc());
        byte[] before = Files.readAllBytes(out.resolve(ExactIndex.DESCRIPTORS));
        try (var busy = dir4j.engine.io.OutputLock.acquire(dir.resolve(".idx.lock"), "busy")) {
            Run second = run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--overwrite");
            assertEquals(1, second.rc(), second.toString());
            assertTrue(second.err().contains(out + " (an index) is being written by another task of this process"),
                    second.err());
        }
        assertArrayEquals(before, Files.readAllBytes(out.resolve(ExactIndex.DESCRIPTORS)));
        Path killed = Files.createDirectories(dir.resolve(".idx.dir4j-k1lled.tmp"));
        Files.write(killed.resolve(ExactIndex.DESCRIPTORS), new byte[100]);
        // rebuilding from the index's own files would read what it replaces (and lose the ids without --ids)
        Run inPlace = run("index", "--descriptors", out.resolve(ExactIndex.DESCRIPTORS).toString(), "--out",
                out.toString(), "--overwrite", "--quiet");
        assertEquals(2, inPlace.rc(), inPlace.toString());
        assertTrue(inPlace.err().contains("--descriptors " + out.resolve(ExactIndex.DESCRIPTORS) + " lies inside --out "
                + out + ", which this command replaces: copy it out first"), inPlace.err());
        Run rebuilt = run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--overwrite", "--quiet");
        assertEquals(0, rebuilt.rc(), rebuilt.toString());
        assertArrayEquals(before, Files.readAllBytes(out.resolve(ExactIndex.DESCRIPTORS)));
        assertTrue(Files.notExists(killed), "the killed build's folder is gone");
        try (var files = Files.list(dir)) {
            assertEquals(List.of(".idx.lock", "db.ids.txt", "db.npy", "idx"),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no temporary folder left");
        }
    }

    @Test
    void badCommandLinesExitWithTwoAndBadInputsWithOne() throws IOException {
        String out = dir.resolve("x").toString();
        assertEquals(2, run("index", "--descriptors", descs.toString(), "--out", out, "--type", "ivf").rc());
        assertEquals(2, run("index", "--descriptors", descs.toString(), "--out", out, "--max-conn", "8").rc(),
                "--max-conn is for hnsw");
        assertEquals(2, run("index", "--descriptors", descs.toString(), "--out", out, "--type", "hnsw",
                "--max-conn", "1").rc());
        assertEquals(2, run("index", "--out", out).rc(), "--descriptors is required");
        Files.write(dir.resolve("short.txt"), List.of("a", "b"));
        Run ids = run("index", "--descriptors", descs.toString(), "--ids", dir.resolve("short.txt").toString(), "--out",
                out);
        assertEquals(1, ids.rc());
        assertTrue(ids.err().contains("has 2 ids but") && ids.err().contains("200 rows"), ids.err());
        Path big = dir.resolve("big.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(big, Tensor.of(new float[] {3, 4, 0, 1}, 2, 2));
        }
        Run notUnit = run("index", "--descriptors", big.toString(), "--out", out, "--type", "hnsw");
        assertEquals(1, notUnit.rc());
        assertTrue(notUnit.err().contains("descriptor row 0 has L2 norm 5.0"), notUnit.err());
        assertTrue(Files.notExists(dir.resolve("x")));
        CliRun.assertCudaIsRefused("index", "--descriptors", descs.toString(), "--out", out);
        CliRun.assertHelpDocumentsEveryOption("index");
    }

    /** Lucene's INFO line about its vector setup stays off the user's stderr. */
    @Test
    void lucenesSetupNoteIsNotPrinted() {
        new Main();
        assertEquals(java.util.logging.Level.WARNING,
                java.util.logging.Logger.getLogger("org.apache.lucene").getLevel());
    }

    /** Writes rows [from, to) of db.npy (with ids "img_i" when named) as NAME.npy (and NAME.ids.txt). */
    private Path part(String name, int from, int to, boolean named) throws IOException {
        Path p = dir.resolve(name + ".npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor all = Npy.read(descs);
            Npy.write(p, all.slice(0, from, to).contiguous());
        }
        if (named) {
            Files.write(dir.resolve(name + ".ids.txt"), IntStream.range(from, to).mapToObj(i -> "img_" + i).toList());
        }
        return p;
    }

    /**
     * An index built from 120 rows and then given 80 more holds what one built from all 200 holds:
     * the same rows and ids (exact), the same ids and nearest neighbours (hnsw, whose graph took
     * the new rows in); row numbers continue the index's when there are no ids.
     */
    @Test
    void appendedRowsFollowTheIndexsOwn() throws IOException {
        Path a = part("a", 0, 120, true);
        Path b = part("b", 120, 200, true);
        for (String type : List.of("exact", "hnsw")) {
            Path out = dir.resolve(type);
            assertEquals(0, run("index", "--descriptors", a.toString(), "--out", out.toString(), "--type", type,
                    "--quiet").rc());
            Run more = run("index", "--descriptors", b.toString(), "--out", out.toString(), "--append");
            assertEquals(0, more.rc(), more.toString());
            assertTrue(more.out().startsWith("added 80 descriptors to the " + type + " index in ")
                    && more.out().contains("(200 rows now)"), more.out());
            try (DescriptorIndex idx = DescriptorIndex.open(out); ExactIndex whole = new ExactIndex(16);
                 MemoryScope scope = MemoryScope.open()) {
                Tensor all = Npy.read(descs);
                whole.add(all, IntStream.range(0, 200).mapToObj(i -> "img_" + i).toList());
                assertEquals(whole.ids(), idx.ids(), type);
                if (idx instanceof ExactIndex e) {
                    assertArrayEquals(all.toFloatArray(), e.descriptors().toFloatArray());
                } else {
                    assertEquals(new HnswIndex.Options(16, 100, 1), ((HnswIndex) idx).options());
                    int[][] got = idx.search(all, 10).indices();
                    int[][] want = whole.search(all, 10).indices();
                    int found = 0;
                    for (int q = 0; q < 200; q++) {
                        assertEquals(q, got[q][0], "each row finds itself first, old and new");
                        for (int r : want[q]) {
                            found += java.util.Arrays.stream(got[q]).anyMatch(g -> g == r) ? 1 : 0;
                        }
                    }
                    assertTrue(found >= 0.98 * 2000, "recall@10 " + found / 2000.0);
                }
            }
        }
        // without ids: the row numbers go on
        Path c = part("c", 0, 120, false);
        Path d = part("d", 120, 200, false);
        Path rows = dir.resolve("rows");
        assertEquals(0, run("index", "--descriptors", c.toString(), "--out", rows.toString(), "--type", "hnsw",
                "--quiet").rc());
        assertEquals(0, run("index", "--descriptors", d.toString(), "--out", rows.toString(), "--append", "--type",
                "hnsw", "--quiet").rc());
        try (DescriptorIndex idx = DescriptorIndex.open(rows)) {
            assertEquals(IntStream.range(0, 200).mapToObj(Integer::toString).toList(), idx.ids());
        }
    }

    /** What --append refuses, and a failed append leaving the index as it was (no leftovers). */
    @Test
    void anAppendThatCannotBeDoneLeavesTheIndex() throws IOException {
        Path a = part("a", 0, 120, true);
        Path out = dir.resolve("idx");
        Run none = run("index", "--descriptors", a.toString(), "--out", out.toString(), "--append");
        assertEquals(2, none.rc());
        assertTrue(none.err().contains("--append: " + out + " holds no index; build one first"), none.err());
        assertEquals(0, run("index", "--descriptors", a.toString(), "--out", out.toString(), "--type", "hnsw",
                "--quiet").rc());
        for (List<String> extra : List.of(List.of("--overwrite"), List.of("--type", "exact"), List.of("--max-conn", "8"))) {
            List<String> args = new java.util.ArrayList<>(List.of("index", "--descriptors", a.toString(), "--out",
                    out.toString(), "--append"));
            args.addAll(extra);
            Run r = run(args.toArray(String[]::new));
            assertEquals(2, r.rc(), extra + ": " + r);
        }
        Path wide = dir.resolve("wide.npy");
        Path bad = dir.resolve("bad.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(wide, Tensor.of(SearchCommandTest.unitRows(new Random(5), 4, 8), 4, 8));
            float[] v = SearchCommandTest.unitRows(new Random(6), 4, 16);
            v[2 * 16] *= 3; // row 2 is not a unit vector
            Npy.write(bad, Tensor.of(v, 4, 16));
        }
        Run narrow = run("index", "--descriptors", wide.toString(), "--out", out.toString(), "--append");
        assertEquals(1, narrow.rc());
        assertTrue(narrow.err().contains("holds 16-d descriptors; these are 8-d"), narrow.err());
        Run notUnit = run("index", "--descriptors", bad.toString(), "--out", out.toString(), "--append");
        assertEquals(1, notUnit.rc());
        assertTrue(notUnit.err().startsWith("dir4j index: " + bad + ": descriptor row 2 has L2 norm "), notUnit.err());
        assertTrue(narrow.err().startsWith("dir4j index: " + wide + ": "), "the file named: " + narrow.err());
        Run notUnitBuild = run("index", "--descriptors", bad.toString(), "--out", dir.resolve("nu").toString(), "--type",
                "hnsw");
        assertEquals(1, notUnitBuild.rc());
        assertTrue(notUnitBuild.err().startsWith("dir4j index: " + bad + ": descriptor row 2 has L2 norm "),
                notUnitBuild.err());
        try (DescriptorIndex idx = DescriptorIndex.open(out)) {
            assertEquals(120, idx.size());
            assertEquals("img_119", idx.id(119));
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.filter(p -> p.getFileName().toString().contains(".dir4j-")).toList(),
                    "no temporary folder left");
        }
        // an exact index: the dimension named too
        Path exact = dir.resolve("exact");
        assertEquals(0, run("index", "--descriptors", a.toString(), "--out", exact.toString(), "--quiet").rc());
        Run exactNarrow = run("index", "--descriptors", wide.toString(), "--out", exact.toString(), "--append");
        assertEquals(1, exactNarrow.rc());
        assertTrue(exactNarrow.err().startsWith("dir4j index: " + wide + ": the index in " + exact
                + " holds 16-d descriptors; these are 8-d"), exactNarrow.err());
    }

    /**
     * A write that fails (a full disk; here the file-size limit of `ulimit -f`, which fails the
     * same writes with "File too large", in a dir4j process of its own) ends with exit status 1 and
     * a message saying what failed and that the index is as it was; and it is: the same rows and
     * ids, nothing left beside it.
     */
    @Test
    void aWriteThatFailsSaysWhatFailedAndKeepsTheIndex() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/bash")), "no /bin/bash here");
        Path big = dir.resolve("big.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(big, Tensor.of(SearchCommandTest.unitRows(new Random(8), 2000, 16), 2000, 16)); // 128 KB
        }
        for (String type : List.of("exact", "hnsw")) {
            Path out = dir.resolve(type);
            assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", out.toString(), "--type", type,
                    "--quiet").rc());
            for (List<String> how : List.of(List.of("--append"), List.of("--overwrite", "--type", type))) {
                List<String> args = new java.util.ArrayList<>(List.of("index", "--descriptors", big.toString(), "--out",
                        out.toString()));
                args.addAll(how);
                Run r = runLimited(64, args);
                assertEquals(1, r.rc(), type + " " + how + ": " + r);
                String what = how.contains("--append") ? "adding " + big + " to the index in " + out
                        : "building the index in " + out;
                assertTrue(r.err().contains("dir4j index: " + what + " failed (the index there is as it was): File too "
                        + "large"), type + " " + how + ": " + r.err());
                try (DescriptorIndex idx = DescriptorIndex.open(out)) {
                    assertEquals(IntStream.range(0, 200).mapToObj(i -> "img_" + i).toList(), idx.ids());
                }
                try (var left = Files.list(dir)) {
                    assertEquals(List.of(), left.filter(p -> p.getFileName().toString().contains(".dir4j-")).toList());
                }
            }
        }
    }

    /** `dir4j ARGS` in a JVM of its own whose files may not grow beyond kb KiB (bash's ulimit -f). */
    private static Run runLimited(int kb, List<String> args) throws Exception {
        String javaCommand = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new java.util.ArrayList<>(List.of("/bin/bash", "-c", "ulimit -f " + kb + "; exec \"$@\"",
                "bash", javaCommand, "-XX:-UsePerfData", "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                Main.class.getName()));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String err = new String(p.getErrorStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "finished: " + err);
        return new Run(p.exitValue(), "", err);
    }

    /**
     * `dir4j search` opening an index while `dir4j index --append` puts the extended copy in its
     * place: every open gives the index before an append or after it, whole (its ids the first
     * rows' ids, an exact index's rows those rows), never "rebuild it" or "not an index folder"
     * (an open that met the swap read the old index's properties and the new one's files, or found
     * no folder between the two renames).
     */
    @Test
    void opensDuringAppendsSeeTheIndexBeforeOrAfterOne() throws Exception {
        int first = 100;
        int step = 5;
        int appends = 16;
        List<String> ids = IntStream.range(0, 200).mapToObj(i -> "img_" + i).toList();
        float[] rows;
        try (MemoryScope scope = MemoryScope.open()) {
            rows = Npy.read(descs).toFloatArray();
        }
        for (String type : List.of("exact", "hnsw")) {
            Path out = dir.resolve(type);
            assertEquals(0, run("index", "--descriptors", part(type + "-a", 0, first, true).toString(), "--out",
                    out.toString(), "--type", type, "--quiet").rc());
            List<Path> parts = new java.util.ArrayList<>();
            for (int i = 0; i < appends; i++) {
                parts.add(part(type + "-p" + i, first + i * step, first + (i + 1) * step, true));
            }
            java.util.concurrent.atomic.AtomicReference<String> appendFailed = new java.util.concurrent.atomic
                    .AtomicReference<>();
            Thread writer = new Thread(() -> {
                for (Path part : parts) {
                    Run r = run("index", "--descriptors", part.toString(), "--out", out.toString(), "--append",
                            "--quiet");
                    if (r.rc() != 0) {
                        appendFailed.set(r.toString());
                        return;
                    }
                }
            });
            writer.start();
            List<String> failures = new java.util.ArrayList<>();
            java.util.Set<Integer> sizes = new java.util.TreeSet<>();
            int opens = 0;
            while (writer.isAlive() || opens == 0) {
                opens++;
                try (MemoryScope scope = MemoryScope.open(); DescriptorIndex idx = DescriptorIndex.open(out)) {
                    int n = idx.size();
                    sizes.add(n);
                    assertTrue(n >= first && n <= first + appends * step && (n - first) % step == 0, "size " + n);
                    assertEquals(ids.subList(0, n), idx.ids());
                    if (idx instanceof ExactIndex e) {
                        assertArrayEquals(java.util.Arrays.copyOf(rows, n * 16), e.descriptors().toFloatArray());
                    }
                } catch (IOException | RuntimeException e) {
                    failures.add(e.toString());
                }
            }
            writer.join();
            assertEquals(null, appendFailed.get());
            assertEquals(List.of(), failures, type + ": " + failures.size() + " of " + opens + " opens failed");
            assertTrue(sizes.size() > 1, type + ": opens saw " + sizes);
            try (DescriptorIndex idx = DescriptorIndex.open(out)) {
                assertEquals(ids.subList(0, first + appends * step), idx.ids());
            }
        }
    }

    /**
     * A build killed between its two renames left no folder in place and the old index aside: the
     * next run puts it back (noted) and goes on, here appending to it.
     */
    @Test
    void anIndexSetAsideByAKilledBuildIsPutBack() throws IOException {
        Path b = part("b", 120, 200, true);
        Path out = dir.resolve("idx");
        Path aside = indexSetAsideByAKill(out);
        Run more = run("index", "--descriptors", b.toString(), "--out", out.toString(), "--append");
        assertEquals(0, more.rc(), more.toString());
        assertTrue(more.err().contains("note: put back the index a stopped build had set aside (" + aside + ")"),
                more.err());
        try (DescriptorIndex idx = DescriptorIndex.open(out)) {
            assertEquals(200, idx.size());
            assertEquals("img_0", idx.id(0));
            assertEquals("img_199", idx.id(199));
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.filter(p -> p.getFileName().toString().contains(".dir4j-")).toList());
        }
    }

    /**
     * The index put back is an index like any other: a build without --overwrite refuses to replace
     * it (the check ran before the index was put back, so the build replaced it unasked).
     */
    @Test
    void anIndexPutBackIsNotReplacedWithoutOverwrite() throws IOException {
        Path b = part("b", 120, 200, true);
        Path out = dir.resolve("idx");
        Path aside = indexSetAsideByAKill(out);
        Run again = run("index", "--descriptors", b.toString(), "--out", out.toString());
        assertEquals(1, again.rc(), again.toString());
        assertTrue(again.err().contains("note: put back the index a stopped build had set aside (" + aside + ")"),
                again.err());
        assertTrue(again.err().contains(out + " already holds an exact index; pass --overwrite to replace it"),
                again.err());
        try (DescriptorIndex idx = DescriptorIndex.open(out)) {
            assertEquals(120, idx.size());
            assertEquals("img_0", idx.id(0));
        }
    }

    /**
     * An index of rows 0..119 in {@code out}, then the state a kill between a replacement's two
     * renames leaves: no folder in place, the index aside, the unfinished replacement beside it.
     */
    private Path indexSetAsideByAKill(Path out) throws IOException {
        Path a = part("a", 0, 120, true);
        assertEquals(0, run("index", "--descriptors", a.toString(), "--out", out.toString(), "--quiet").rc());
        Path aside = out.resolveSibling("." + out.getFileName() + ".dir4j-k1ll3d.old");
        Files.move(out, aside);
        Files.createDirectory(out.resolveSibling("." + out.getFileName() + ".dir4j-n3w.tmp"));
        return aside;
    }
}
