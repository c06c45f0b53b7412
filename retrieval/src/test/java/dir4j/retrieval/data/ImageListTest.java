package dir4j.retrieval.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Plain and labelled image lists: parsing, roots, comments, and errors that name lines. */
class ImageListTest {
    @TempDir
    Path dir;

    private Path touch(String name) throws IOException {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, new byte[] {1});
        return p;
    }

    private Path list(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text, StandardCharsets.UTF_8);
        return p;
    }

    @Test
    void plainListSkipsCommentsAndBlanksAndResolvesAgainstItsFolder() throws IOException {
        touch("a.jpg");
        touch("sub/b.png");
        Path abs = touch("elsewhere/c.jpg");
        Path l = list("list.txt", "\uFEFF# images\r\n a.jpg \r\n\r\nsub/b.png\n  # indented comment\n" + abs + "\n");
        List<ImageRef> refs = ImageList.read(l);
        assertEquals(List.of("a.jpg", "sub/b.png", abs.toString()), refs.stream().map(ImageRef::id).toList());
        assertEquals(dir.resolve("a.jpg"), refs.get(0).path());
        assertEquals(dir.resolve("sub/b.png"), refs.get(1).path());
        assertEquals(abs, refs.get(2).path());
        assertNull(refs.get(0).crop());
    }

    /**
     * A line that is no file name on this system fails naming the list and the line, with the
     * reason (an IOException, not the bare InvalidPathException that a command line took for a
     * usage error).
     */
    @Test
    void aLineThatCannotBeAFileNameIsAnErrorNamingTheLine() throws IOException {
        touch("ok.jpg");
        Path plain = list("plain.txt", "ok.jpg\nbad\u0000name.jpg\n");
        IOException e = assertThrows(IOException.class, () -> ImageList.read(plain));
        assertEquals(plain + ": line 2: 'bad\u0000name.jpg' is not a file name this system can open (Nul character "
                + "not allowed)", e.getMessage());
        Path labelled = list("labelled.txt", "ok.jpg 1\n\n# c\nbad\u0000name.jpg 2\n");
        e = assertThrows(IOException.class, () -> LabelledImageList.read(labelled));
        assertEquals(labelled + ": line 4: 'bad\u0000name.jpg' is not a file name this system can open (Nul character "
                + "not allowed)", e.getMessage());
    }

    /**
     * Under the C/POSIX locale the JVM reads file names as ASCII and cannot name 'Köln.jpg' at all:
     * the error says so and how to run instead (the dir4j launcher itself switches to C.UTF-8).
     */
    @Test
    void aNonAsciiNameUnderTheCLocaleSaysToUseAUtf8Locale() throws IOException, InterruptedException {
        Path l = list("list.txt", "K\u00f6ln.jpg\n");
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dstdout.encoding=UTF-8", "-cp", System.getProperty("java.class.path"), ReadList.class.getName(),
                l.toString()).redirectErrorStream(true);
        pb.environment().keySet().removeIf(k -> k.startsWith("LC_") || k.equals("LANG"));
        pb.environment().put("LC_ALL", "C");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.contains(l + ": line 1: 'K\u00f6ln.jpg' is not a file name this system can open ("), out);
        assertTrue(out.contains("; the JVM reads file names as ASCII (ANSI_X3.4-1968, the C/POSIX locale): run it "
                + "under a UTF-8 locale, e.g. LC_ALL=C.UTF-8"), out);
    }

    /** Reads the list named (in a JVM of the test's choosing) and prints the error. */
    static final class ReadList {
        public static void main(String[] args) {
            try {
                ImageList.read(Path.of(args[0]), null, false);
                System.out.println("read");
            } catch (IOException e) {
                System.out.println(e.getMessage());
            }
        }
    }

    @Test
    void plainListResolvesAgainstAGivenRoot() throws IOException {
        Path root = dir.resolve("root");
        Files.createDirectories(root);
        Files.write(root.resolve("x.jpg"), new byte[] {1});
        Path l = list("list.txt", "x.jpg\n");
        List<ImageRef> refs = ImageList.read(l, root, true);
        assertEquals(root.resolve("x.jpg"), refs.get(0).path());
        // without the root, x.jpg is looked for beside the list and reported missing
        IOException e = assertThrows(IOException.class, () -> ImageList.read(l));
        assertTrue(e.getMessage().contains("line 1: x.jpg"), e.getMessage());
    }

    @Test
    void missingFilesAreReportedTogetherWithTheirLineNumbers() throws IOException {
        touch("a.jpg");
        Files.createDirectories(dir.resolve("folder.jpg"));
        Path l = list("list.txt", "a.jpg\n# c\nmissing1.jpg\n\nfolder.jpg\nmissing2.jpg\n");
        IOException e = assertThrows(IOException.class, () -> ImageList.read(l));
        String m = e.getMessage();
        assertTrue(m.startsWith(l + ": 3 of 4 images are missing:"), m);
        assertTrue(m.contains("line 3: missing1.jpg"), m);
        assertTrue(m.contains("line 5: folder.jpg (" + dir.resolve("folder.jpg") + " is a directory)"), m);
        assertTrue(m.contains("line 6: missing2.jpg"), m);
        // not checking files: the list is taken as written
        assertEquals(4, ImageList.read(l, null, false).size());
    }

    @Test
    void longListsOfMissingFilesAreCut() throws IOException {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 30; i++) {
            s.append("m").append(i).append(".jpg\n");
        }
        IOException e = assertThrows(IOException.class, () -> ImageList.read(list("l.txt", s.toString())));
        assertTrue(e.getMessage().contains("line 20: m19.jpg"), e.getMessage());
        assertTrue(!e.getMessage().contains("line 21:"), e.getMessage());
        assertTrue(e.getMessage().contains("… and 10 more"), e.getMessage());
    }

    @Test
    void emptyAndMissingListsAreErrors() throws IOException {
        IOException empty = assertThrows(IOException.class, () -> ImageList.read(list("e.txt", "# nothing\n\n")));
        assertTrue(empty.getMessage().contains("names no image"), empty.getMessage());
        IOException missing = assertThrows(IOException.class, () -> ImageList.read(dir.resolve("nope.txt")));
        assertTrue(missing.getMessage().contains("no such list file"), missing.getMessage());
    }

    @Test
    void labelledListGivesLabelsAndClassesInOrderOfFirstAppearance() throws IOException {
        touch("a.jpg");
        touch("b.jpg");
        touch("my photos/c d.jpg");
        touch("e.jpg");
        Path l = list("train.txt", "a.jpg 17\nb.jpg tower\n# skip\nmy photos/c d.jpg 17\ne.jpg\tbridge\n");
        LabelledImageList t = LabelledImageList.read(l);
        assertEquals(List.of("a.jpg", "b.jpg", "my photos/c d.jpg", "e.jpg"),
                t.images().stream().map(ImageRef::id).toList());
        assertEquals(List.of("17", "tower", "17", "bridge"), t.labels());
        assertEquals(List.of("17", "tower", "bridge"), t.classes());
        assertArrayEquals(new int[] {0, 1, 0, 2}, t.classIndex());
        assertEquals(List.of(List.of(0, 2), List.of(1), List.of(3)), t.imagesPerClass());
    }

    @Test
    void labelledLinesWithoutLabelAreErrorsWithLineNumbers() throws IOException {
        touch("a.jpg");
        Path l = list("train.txt", "a.jpg 1\nb.jpg\n\nc.jpg\n");
        IOException e = assertThrows(IOException.class, () -> LabelledImageList.read(l));
        assertTrue(e.getMessage().contains("2 malformed lines"), e.getMessage());
        assertTrue(e.getMessage().contains("line 2: 'b.jpg' has no label"), e.getMessage());
        assertTrue(e.getMessage().contains("line 4: 'c.jpg' has no label"), e.getMessage());
        Path l2 = list("train2.txt", "a.jpg 1\n\nz.jpg 2\n");
        IOException missing = assertThrows(IOException.class, () -> LabelledImageList.read(l2));
        assertTrue(missing.getMessage().contains("line 3: z.jpg"), missing.getMessage());
    }
}
