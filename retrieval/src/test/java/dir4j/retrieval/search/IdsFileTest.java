package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The rules of a user's ids file: one non-blank, tab-free id per line (repeats allowed); blank lines at the end ignored. */
class IdsFileTest {
    @TempDir
    Path dir;

    private Path ids(String text) throws IOException {
        return Files.writeString(dir.resolve("ids.txt"), text, StandardCharsets.UTF_8);
    }

    @Test
    void blankLinesAtTheEndAreNotRowsAndIdsAreTakenAsTheyAre() throws IOException {
        assertEquals(List.of("a", "b c", " d"), IdsFile.readIds(ids("a\nb c\n d\n")));
        assertEquals(List.of("a", "b"), IdsFile.readIds(ids("a\r\nb\r\n\r\n")));
        assertEquals(List.of("a", "b"), IdsFile.readIds(ids("\uFEFFa\nb\n\n  \n")));
        assertEquals(List.of(), IdsFile.readIds(ids("\n\n")));
    }

    @Test
    void blankAndTabbedIdsAreRefusedNamingEachLineAndRepeatsAreKept() throws IOException {
        Path p = ids("a\n\nb\na\nc\td\n\ne\n");
        IOException e = assertThrows(IOException.class, () -> IdsFile.readIds(p));
        assertEquals(p + ": 3 bad ids (ids must be non-blank and free of tabs, one per line):"
                + "\n  line 2: blank (every line before the last id must hold one)"
                + "\n  line 5: 'c\\td' contains a tab"
                + "\n  line 6: blank (every line before the last id must hold one)", e.getMessage());
        // a list that names an image twice gives its id twice (dir4j extract writes them so)
        assertEquals(List.of("a", "b", "a"), IdsFile.readIds(ids("a\nb\na\n")));
        StringBuilder many = new StringBuilder();
        for (int i = 0; i < 30; i++) {
            many.append("tab\tbed\n");
        }
        Path q = ids(many.toString());
        e = assertThrows(IOException.class, () -> IdsFile.readIds(q));
        assertTrue(e.getMessage().startsWith(q + ": 30 bad ids") && e.getMessage().endsWith("… and 10 more"),
                e.getMessage());
    }

    @Test
    void anIndexsOwnIdsFileIsReadBackAsWritten() throws IOException {
        Path p = dir.resolve("stored.txt");
        List<String> stored = List.of("a", "", "a", "b\tc", "");
        IdsFile.write(p, stored);
        assertEquals(stored, IdsFile.read(p));
    }
}
