package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.BadInputTest.assertOneLineError;
import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.image.ImageFixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Files that are not what an option expects (not UTF-8, a directory, a folder that is not an
 * index, an output that is a directory, a bad image, a bad ids file): one line naming the file
 * and what was expected, with the documented status, and advice that fits the command printing it.
 */
class FileErrorMessagesTest {
    static final String[] NET = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "8"};

    @TempDir
    Path dir;
    Path descs;
    Path index;
    Path notUtf8;
    Path folder;

    @BeforeEach
    void files() throws IOException {
        descs = dir.resolve("d.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(descs, Tensor.of(SearchCommandTest.unitRows(new Random(3), 4, 8), 4, 8));
        }
        index = dir.resolve("idx");
        assertEquals(0, run("index", "--descriptors", descs.toString(), "--out", index.toString(), "--quiet").rc());
        // Latin-1 text, as an editor on another system might save it
        notUtf8 = Files.write(dir.resolve("latin1.txt"), new byte[] {'a', '\n', 'b', (byte) 0xe9, '\n', 'c', '\n',
            'd', '\n'});
        folder = Files.createDirectories(dir.resolve("folder"));
        Files.writeString(folder.resolve("x.txt"), "not an index");
    }

    static String[] concat(String[] a, String... b) {
        return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
    }

    @Test
    void textThatIsNotUtf8IsNamedWithItsLine() {
        String[] what = {notUtf8 + ": not UTF-8 text (byte 0xe9 on line 2)"};
        assertOneLineError(1, run("index", "--descriptors", descs.toString(), "--ids", notUtf8.toString(), "--out",
                dir.resolve("i").toString()), what);
        assertOneLineError(1, run("search", "--index", index.toString(), "--descriptors", descs.toString(),
                "--query-ids", notUtf8.toString()), what);
        assertOneLineError(1, run("aploss", "--descriptors", descs.toString(), "--labels", notUtf8.toString()), what);
        assertOneLineError(1, run(concat(new String[] {"extract", "--images", notUtf8.toString(), "--out",
            dir.resolve("x.npy").toString()}, NET)), what);
        assertOneLineError(1, run(concat(new String[] {"search", "--index", index.toString(), "--image-list",
            notUtf8.toString()}, NET)), what);
    }

    @Test
    void aDirectoryGivenForAFileIsNamedAsOne() {
        assertOneLineError(1, run(concat(new String[] {"extract", "--images", folder.toString(), "--out",
            dir.resolve("x.npy").toString()}, NET)), folder + ": a directory, not a list file");
        assertOneLineError(1, run("aploss", "--descriptors", descs.toString(), "--labels", folder.toString()),
                folder + ": a directory, not a labels file");
        assertOneLineError(1, run("index", "--descriptors", descs.toString(), "--ids", folder.toString(), "--out",
                dir.resolve("i").toString()), folder + ": a directory, not an ids file");
        assertOneLineError(1, run("convert", folder.toString(), dir.resolve("x.safetensors").toString()),
                "dir4j convert: " + folder + ": a directory, not a checkpoint file");
        assertOneLineError(1, run("convert", dir.resolve("none.pt").toString(), dir.resolve("x.safetensors")
                .toString()), "dir4j convert: " + dir.resolve("none.pt") + ": no such checkpoint file");
    }

    @Test
    void pathsThatExistAreNotCalledMissing() throws IOException {
        assertOneLineError(1, run("search", "--index", folder.toString(), "--descriptors", descs.toString()),
                folder + ": not an index folder: it holds neither descriptors.npy", "hnsw.properties",
                "dir4j index makes one");
        assertOneLineError(1, run("search", "--index", descs.toString(), "--descriptors", descs.toString()),
                descs + ": a file, not an index folder");
        assertOneLineError(1, run("search", "--index", dir.resolve("none").toString(), "--descriptors",
                descs.toString()), dir.resolve("none") + ": no such index folder");
        // a checkpoint folder: said before the index is read or any image described
        Run checkpoint = run("search", "--index", index.toString(), "--image", "q.jpg", "--checkpoint",
                folder.toString());
        assertOneLineError(1, checkpoint, folder + ": a directory, not a checkpoint file");
        assertFalse(checkpoint.err().contains("no such"), checkpoint.toString());
        assertOneLineError(1, run("search", "--index", index.toString(), "--descriptors", descs.toString(),
                "--whitening", folder.toString()), folder + ": a directory, not a whitening file");
        // a dir4j train output folder: the network file in it is suggested
        Path trained = Files.createDirectories(dir.resolve("run"));
        Files.writeString(trained.resolve("model.safetensors"), "");
        assertOneLineError(1, run("search", "--index", index.toString(), "--image", "q.jpg", "--checkpoint",
                trained.toString()), trained + ": a directory", "such as " + trained.resolve("model.safetensors"));
        // the library's NoSuchFileException for a folder that is there but not what was looked for
        assertEquals(folder + ": exists (a directory), but not an index folder", ToolCommand.message(
                new NoSuchFileException(folder.toString(), null, "not an index folder")));
    }

    @Test
    void anOutputThatIsADirectoryIsRefusedBeforeAnyWork() throws IOException {
        Run search = run("search", "--index", index.toString(), "--descriptors", descs.toString(), "--out",
                folder.toString());
        assertOneLineError(2, search, "--out " + folder + " is a directory: name a file");
        assertFalse(search.err().contains(".tmp") || search.err().contains("searched"), search.toString());
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file left");
        }
        assertOneLineError(2, run("convert", descs.toString(), Files.createDirectories(dir.resolve("o.safetensors"))
                .toString()), "OUT " + dir.resolve("o.safetensors") + " is a directory");
        assertOneLineError(2, run("aploss", "--descriptors", descs.toString(), "--labels", notUtf8.toString(), "--out",
                descs.toString()), "--out " + descs + " is a file");
    }

    /** search has no --on-error: the failure of a query image says what is wrong, and offers no skipping. */
    @Test
    void anUnreadableQueryImageIsNotAdvisedAnOptionSearchLacks() throws IOException {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg/all_souls_000001.jpg");
        byte[] whole = Files.readAllBytes(jpg);
        Path cut = Files.write(dir.resolve("cut.jpg"), java.util.Arrays.copyOf(whole, 100));
        Run r = run(concat(new String[] {"search", "--index", index.toString(), "--image", cut.toString(),
            "--image-size", "32", "--quiet"}, NET));
        assertOneLineError(1, r, "dir4j search: " + cut + ": corrupt or truncated JPEG");
        assertFalse(r.err().contains("skip") || r.err().contains("--on-error"), r.toString());
    }

    /** The refusal to resume another extraction's parts reads as a sentence, with no other command's option. */
    @Test
    void aRefusedResumeSaysHowToStartOver() throws IOException {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"), "all_souls_000001.jpg\n");
        Path parts = Files.createDirectories(dir.resolve("f.npy.parts"));
        Files.writeString(parts.resolve("manifest.txt"), "dir4j extraction parts v1\nimages=9\n");
        Files.write(parts.resolve("part-000000.npy"), new byte[0]);
        Run r = run(concat(new String[] {"extract", "--images", list.toString(), "--root", jpg.toString(), "--out",
            dir.resolve("f.npy").toString(), "--image-size", "32", "--quiet"}, NET));
        assertOneLineError(1, r, "holds parts of a different extraction: images (was 9, now 1)", ". Delete the folder",
                " to start over");
        assertFalse(r.err().contains("(dir4j extract:"), r.toString());
    }

    @Test
    void maxPixelsIsNamedAsTheUserTypedIt() throws IOException {
        Path jpg = ImageFixtures.path("datasets/roxford5k/jpg");
        Path list = Files.writeString(dir.resolve("list.txt"), "all_souls_000001.jpg\n");
        Run r = run(concat(new String[] {"extract", "--images", list.toString(), "--root", jpg.toString(), "--out",
            dir.resolve("f.npy").toString(), "--max-pixels", "0", "--quiet"}, NET));
        assertOneLineError(2, r, "--max-pixels", "must be at least 1, got 0");
        assertFalse(r.err().contains("maxPixels"), r.toString());
    }

    @Test
    void idsFilesIgnoreBlankLinesAtTheEndAndRefuseEmptyAndTabbedIds() throws IOException {
        Path trailing = Files.writeString(dir.resolve("trailing.txt"), "a\nb\nc\nd\n\n\n", StandardCharsets.UTF_8);
        Run ok = run("index", "--descriptors", descs.toString(), "--ids", trailing.toString(), "--out",
                dir.resolve("t").toString(), "--quiet");
        assertEquals(0, ok.rc(), ok.toString());
        assertEquals(List.of("a", "b", "c", "d"), Files.readAllLines(dir.resolve("t").resolve("ids.txt")));
        String[][] bad = {{"a\n\nc\nd\n", "line 2: blank"},
            {"a\nb\tx\nc\nd\n", "line 2: 'b\\tx' contains a tab"}};
        for (String[] b : bad) {
            Path ids = Files.writeString(dir.resolve("bad.txt"), b[0], StandardCharsets.UTF_8);
            Run r = run("index", "--descriptors", descs.toString(), "--ids", ids.toString(), "--out",
                    dir.resolve("b").toString());
            assertOneLineError(1, r, ids + ": 1 bad id");
            assertTrue(r.err().contains("\n  " + b[1]), r.toString());
            assertTrue(Files.notExists(dir.resolve("b")), "no index built");
            Run q = run("search", "--index", index.toString(), "--descriptors", descs.toString(), "--query-ids",
                    ids.toString());
            assertOneLineError(1, q, ids + ": 1 bad id");
            assertTrue(q.err().contains("\n  " + b[1]), q.toString());
        }
        // the count still has to match, and says so in ids
        Path five = Files.write(dir.resolve("five.txt"), IntStream.range(0, 5).mapToObj(i -> "n" + i).toList());
        assertOneLineError(1, run("index", "--descriptors", descs.toString(), "--ids", five.toString(), "--out",
                dir.resolve("f").toString()), five + " has 5 ids but " + descs + " has 4 rows");
    }
}
