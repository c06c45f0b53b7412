package dir4j.retrieval.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Opening the files a user names, with failures that say which file and what it should have
 * been, instead of the JDK's bare {@code Is a directory} or {@code Input length = 1}: every
 * {@link IOException} thrown here starts with the file's path.
 *
 * <ul>
 * <li>{@code <file>: no such <what> file}</li>
 * <li>{@code <file>: a directory, not a <what> file}</li>
 * <li>{@code <file>: not UTF-8 text (byte 0xff on line 3); a <what> file must be UTF-8 text}</li>
 * </ul>
 * {@code what} names the kind of file the caller expects ("list", "ids", "labels", "checkpoint").
 */
public final class InputFiles {
    private InputFiles() {}

    /** Fails unless {@code file} exists and is not a directory. */
    public static void requireFile(Path file, String what) throws IOException {
        if (Files.isDirectory(file)) {
            throw new IOException(file + ": a directory, not " + article(what) + " " + what + " file");
        }
        if (!Files.exists(file)) {
            throw new IOException(file + ": no such " + what + " file");
        }
    }

    /**
     * The lines of a UTF-8 text file, as {@link Files#readAllLines} gives them (LF, CRLF or CR end
     * a line; a final line end adds no empty line), less a byte-order mark at the start.
     *
     * @throws IOException naming the file: missing, a directory, unreadable, or not UTF-8 (with
     *                     the line of the first byte that is not)
     */
    public static List<String> readLines(Path file, String what) throws IOException {
        requireFile(file, what);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such " + what + " file");
        } catch (AccessDeniedException e) {
            throw new IOException(file + ": permission denied");
        } catch (IOException e) {
            String m = e.getMessage();
            throw m != null && m.contains(file.toString()) ? e
                    : new IOException(file + ": cannot be read (" + (m == null ? e.getClass().getSimpleName() : m)
                            + ")", e);
        }
        return lines(decode(bytes, file, what));
    }

    /** The text of UTF-8 bytes; the error names the first byte that is not UTF-8, and its line. */
    private static CharSequence decode(byte[] bytes, Path file, String what) throws IOException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never gives more chars than bytes
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) {
            r = decoder.flush(out);
        }
        if (r.isError()) {
            int at = Math.min(in.position(), bytes.length - 1);
            int line = 1;
            for (int i = 0; i < at; i++) {
                if (bytes[i] == '\n') {
                    line++;
                }
            }
            throw new IOException(String.format(Locale.ROOT, "%s: not UTF-8 text (byte 0x%02x on line %d); %s %s file "
                    + "must be UTF-8 text", file, bytes[at] & 0xff, line, article(what), what));
        }
        return out.flip();
    }

    private static List<String> lines(CharSequence text) {
        List<String> out = new ArrayList<>();
        int start = 0;
        int n = text.length();
        if (n > 0 && text.charAt(0) == '\uFEFF') {
            start = 1;
        }
        int i = start;
        while (i < n) {
            char c = text.charAt(i);
            if (c == '\n' || c == '\r') {
                out.add(text.subSequence(start, i).toString());
                i += c == '\r' && i + 1 < n && text.charAt(i + 1) == '\n' ? 2 : 1;
                start = i;
            } else {
                i++;
            }
        }
        if (start < n) {
            out.add(text.subSequence(start, n).toString());
        }
        return out;
    }

    /** One message listing problems ("line 4: …"), at most {@code max} of them, the rest counted. */
    public static String listing(List<String> problems, int max) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(problems.size(), max); i++) {
            s.append("\n  ").append(problems.get(i));
        }
        if (problems.size() > max) {
            s.append("\n  … and ").append(problems.size() - max).append(" more");
        }
        return s.toString();
    }

    private static String article(String noun) {
        return !noun.isEmpty() && "aeiou".indexOf(Character.toLowerCase(noun.charAt(0))) >= 0 ? "an" : "a";
    }
}
