package dir4j.retrieval.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Reading list files: numbered content lines, and errors that name lines. */
final class ListFiles {
    /** At most this many problems are spelled out in one message; the rest are counted. */
    static final int MAX_LISTED = 20;

    private ListFiles() {}

    /** A content line of a list file: its 1-based number and its trimmed text. */
    record Line(int number, String text) {}

    /**
     * The lines of a UTF-8 list file that are neither blank nor comments ({@code #} as the first
     * non-blank character), trimmed; a byte-order mark and CR line ends are tolerated. A missing
     * file, a directory or text that is not UTF-8 fails naming the file ({@link InputFiles}).
     */
    static List<Line> contentLines(Path file) throws IOException {
        List<String> raw = InputFiles.readLines(file, "list");
        List<Line> out = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            String s = raw.get(i).strip();
            if (s.isEmpty() || s.startsWith("#")) {
                continue;
            }
            out.add(new Line(i + 1, s));
        }
        return out;
    }

    /**
     * {@code root.resolve(p)} unless p is absolute; a path this system cannot name (a NUL, or
     * characters the file-name encoding lacks: any non-ASCII name under the C/POSIX locale) fails
     * naming the list, the line and the encoding.
     */
    static Path resolve(Path root, String p, Path listFile, Line line) throws IOException {
        Path path;
        try {
            path = Path.of(p);
        } catch (java.nio.file.InvalidPathException e) {
            String encoding = System.getProperty("sun.jnu.encoding", "?");
            boolean ascii = encoding.equals("ANSI_X3.4-1968") || encoding.equalsIgnoreCase("US-ASCII");
            throw new IOException(listFile + ": line " + line.number() + ": '" + p + "' is not a file name this "
                    + "system can open (" + e.getReason() + ")" + (ascii ? "; the JVM reads file names as ASCII ("
                    + encoding + ", the C/POSIX locale): run it under a UTF-8 locale, e.g. LC_ALL=C.UTF-8" : ""), e);
        }
        return path.isAbsolute() || root == null ? path : root.resolve(path);
    }

    /** One message listing problems ("line 4: …"), at most {@link #MAX_LISTED} of them. */
    static String listing(List<String> problems) {
        return InputFiles.listing(problems, MAX_LISTED);
    }

    /** Fails with every missing file of {@code refs} (numbered by {@code lines}) in one message. */
    static void checkFilesExist(Path listFile, List<ImageRef> refs, List<Line> lines) throws IOException {
        List<String> missing = new ArrayList<>();
        for (int i = 0; i < refs.size(); i++) {
            Path p = refs.get(i).path();
            if (!Files.isRegularFile(p)) {
                missing.add("line " + lines.get(i).number() + ": " + refs.get(i).id()
                        + (Files.isDirectory(p) ? " (" + p + " is a directory)" : " (" + p + " not found)"));
            }
        }
        if (!missing.isEmpty()) {
            throw new IOException(listFile + ": " + missing.size() + " of " + refs.size() + " images "
                    + (missing.size() == 1 ? "is" : "are") + " missing:" + listing(missing));
        }
    }
}
