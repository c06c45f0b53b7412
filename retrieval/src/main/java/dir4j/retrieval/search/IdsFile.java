package dir4j.retrieval.search;

import dir4j.engine.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** The ids of an index's rows: one per line, UTF-8, row order; written atomically. */
final class IdsFile {
    private IdsFile() {}

    /** Refuses ids that would not survive one-per-line storage. */
    static void check(List<String> ids) {
        for (String id : ids) {
            if (id.indexOf('\n') >= 0 || id.indexOf('\r') >= 0) {
                throw new IllegalArgumentException("id contains a line break: '" + id.strip() + "'");
            }
        }
    }

    static void write(Path file, List<String> ids) throws IOException {
        StringBuilder text = new StringBuilder();
        for (String id : ids) {
            text.append(id).append('\n');
        }
        writeAtomically(file, text.toString().getBytes(StandardCharsets.UTF_8));
    }

    static List<String> read(Path file) throws IOException {
        return Files.readAllLines(file, StandardCharsets.UTF_8);
    }

    /** Writes to a temporary file beside {@code file}, then renames it into place. */
    static void writeAtomically(Path file, byte[] bytes) throws IOException {
        AtomicFiles.write(file, bytes);
    }
}
