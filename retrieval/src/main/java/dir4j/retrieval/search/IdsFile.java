package dir4j.retrieval.search;

import dir4j.engine.io.AtomicFiles;
import dir4j.retrieval.data.InputFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Ids files: the names of the rows of a descriptor matrix, one per line, UTF-8, in row order.
 * An index keeps its ids in one ({@value ExactIndex#IDS}, written atomically); {@code dir4j
 * extract} writes one beside its descriptors ({@code X.ids.txt}); {@code dir4j index --ids} and
 * {@code dir4j search --query-ids} read one.
 *
 * <p>An ids file a user gives ({@link #readIds}) follows these rules, and one that breaks them is
 * refused with every offending line named:
 * <ul>
 * <li>UTF-8 text (a byte-order mark at the start is ignored), lines ended by LF or CRLF;</li>
 * <li>the first line holds the id of the first row (row 0), the second line the second row's,
 *     and so on; each id is taken as it is, inner and surrounding spaces kept;</li>
 * <li>blank lines at the end of the file are ignored (an editor's final empty line is not a row);
 *     a blank line anywhere else is refused, since it would be an empty id;</li>
 * <li>ids contain no tab ({@code dir4j search} prints tab-separated columns). An id may repeat
 *     (a list that names an image twice gives two rows of the same id, as dir4j extract writes
 *     them).</li>
 * </ul>
 * An index's own ids file is read back as it was written ({@link #read}).
 */
public final class IdsFile {
    /** At most this many offending lines are spelled out in one message; the rest are counted. */
    static final int MAX_LISTED = 20;

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

    /** An index's ids file, line for line as {@link #write} wrote it. */
    static List<String> read(Path file) throws IOException {
        return InputFiles.readLines(file, "ids");
    }

    /**
     * The ids of a user's ids file, by the rules of the {@linkplain IdsFile class description}.
     *
     * @throws IOException naming the file and, for each broken rule, the line: missing, a
     *                     directory, not UTF-8, a blank line before the end, an id with a tab
     */
    public static List<String> readIds(Path file) throws IOException {
        List<String> lines = new ArrayList<>(InputFiles.readLines(file, "ids"));
        while (!lines.isEmpty() && lines.getLast().isBlank()) {
            lines.removeLast();
        }
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String id = lines.get(i);
            if (id.isBlank()) {
                problems.add("line " + (i + 1) + ": blank (every line before the last id must hold one)");
            } else if (id.indexOf('\t') >= 0) {
                problems.add("line " + (i + 1) + ": '" + id.replace("\t", "\\t") + "' contains a tab");
            }
        }
        if (!problems.isEmpty()) {
            throw new IOException(file + ": " + problems.size() + " bad id" + (problems.size() == 1 ? "" : "s")
                    + " (ids must be non-blank and free of tabs, one per line):"
                    + InputFiles.listing(problems, MAX_LISTED));
        }
        return List.copyOf(lines);
    }

    /** Writes to a temporary file beside {@code file}, then renames it into place. */
    static void writeAtomically(Path file, byte[] bytes) throws IOException {
        AtomicFiles.write(file, bytes);
    }
}
