package dir4j.retrieval.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading the text files a user names: lines as Files.readAllLines gives them, errors naming the file. */
class InputFilesTest {
    @TempDir
    Path dir;

    private Path file(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    @Test
    void linesAreSplitAsReadAllLinesSplitsThemLessAByteOrderMark() throws IOException {
        for (String text : new String[] {"", "a", "a\n", "a\nb", "a\r\nb\r\n", "a\rb", "a\n\nb\n\n", "\n", "é\n∑\n"}) {
            Path p = file("t.txt", text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(Files.readAllLines(p), InputFiles.readLines(p, "list"), "'" + text + "'");
        }
        Path bom = file("bom.txt", "\uFEFFa\nb\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertEquals(List.of("a", "b"), InputFiles.readLines(bom, "list"));
    }

    @Test
    void textThatIsNotUtf8IsNamedWithTheLineOfItsFirstBadByte() throws IOException {
        Path latin1 = file("latin1.txt", new byte[] {'a', '\n', 'b', '\n', 'c', (byte) 0xe9, '\n'});
        IOException e = assertThrows(IOException.class, () -> InputFiles.readLines(latin1, "ids"));
        assertEquals(latin1 + ": not UTF-8 text (byte 0xe9 on line 3); an ids file must be UTF-8 text",
                e.getMessage());
        Path cut = file("cut.txt", new byte[] {'a', '\n', (byte) 0xe2, (byte) 0x88}); // a 3-byte character cut short
        e = assertThrows(IOException.class, () -> InputFiles.readLines(cut, "labels"));
        assertEquals(cut + ": not UTF-8 text (byte 0xe2 on line 2); a labels file must be UTF-8 text", e.getMessage());
    }

    @Test
    void aDirectoryOrAMissingFileIsNamedWithWhatWasExpected() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("folder"));
        IOException e = assertThrows(IOException.class, () -> InputFiles.readLines(folder, "list"));
        assertEquals(folder + ": a directory, not a list file", e.getMessage());
        e = assertThrows(IOException.class, () -> InputFiles.requireFile(folder, "ids"));
        assertEquals(folder + ": a directory, not an ids file", e.getMessage());
        e = assertThrows(IOException.class, () -> InputFiles.readLines(dir.resolve("none.txt"), "labels"));
        assertEquals(dir.resolve("none.txt") + ": no such labels file", e.getMessage());
    }
}
