package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dir4j.retrieval.cli.Main;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Every {@code ./dir4j …} command line the README shows, in a code block or inline, is one the
 * command line accepts: its command and options exist and take the values given. Placeholders
 * (a {@code $VARIABLE}, {@code …}, {@code <root>}) stand for a value, an optional part in
 * brackets is kept, and {@code ./dir4j CMD --help} (CMD: any command) is left out. Running them
 * (the data, the GPU) is for the other tests; a renamed option the README still names is caught
 * here.
 */
class ReadmeCommandLinesTest {
    /** An inline code span holding a dir4j command line (it may wrap onto the next line). */
    private static final Pattern INLINE = Pattern.compile("`(?:[A-Z0-9_]+=\\S+ )*\\./dir4j( [^`]*)?`");
    /** A line of a code block that runs dir4j (continuations already joined). */
    private static final Pattern BLOCK = Pattern.compile("(?m)^(?:[A-Z0-9_]+=\\S+ )*\\./dir4j( .*)?$");

    static List<List<String>> commandLines(String readme) {
        List<List<String>> found = new ArrayList<>();
        String[] parts = readme.split("(?m)^```.*$");
        for (int i = 0; i < parts.length; i++) {
            boolean block = i % 2 == 1; // the text between a fence and the next
            String text = block ? parts[i].replace("\\\n", " ") : parts[i];
            Matcher m = (block ? BLOCK : INLINE).matcher(text);
            while (m.find()) {
                String args = m.group(1) == null ? "" : m.group(1);
                args = args.replaceAll("\\s+", " ").replaceAll("\\[([^\\]]*)]", "$1").replaceAll("\\$[A-Z_]+", "x")
                        .replace("…", "x").replaceAll("<[a-z]+>", "x").strip();
                found.add(args.isEmpty() ? List.of() : Arrays.asList(args.split(" ")));
            }
        }
        return found;
    }

    @Test
    void theScanFindsBlockAndInlineLinesWithTheirPlaceholdersFilledIn() {
        String readme = """
                Run `./dir4j info` or
                ```
                ./dir4j eval --data-root $DB_ROOT \\
                    --scales 1 [--device cuda]
                ./dir4j demo
                ```
                then `DIR4J_JAVA_OPTS=-Dx=1 ./dir4j extract --root <root>/jpg --checkpoint …
                --out a.npy`; `mvn test` is not one.
                """;
        assertEquals(List.of(List.of("info"),
                List.of("eval", "--data-root", "x", "--scales", "1", "--device", "cuda"), List.of("demo"),
                List.of("extract", "--root", "x/jpg", "--checkpoint", "x", "--out", "a.npy")), commandLines(readme));
    }

    @Test
    void everyCommandLineOfTheReadmeParses() throws IOException {
        Path readme = Path.of("..").toAbsolutePath().normalize().resolve("README.md");
        assertTrue(Files.isRegularFile(readme), "run from the tests module: " + readme);
        List<List<String>> lines = commandLines(Files.readString(readme));
        int checked = 0;
        for (List<String> args : lines) {
            if (args.contains("CMD")) {
                continue;
            }
            try {
                new CommandLine(new Main()).parseArgs(args.toArray(String[]::new));
                checked++;
            } catch (CommandLine.ParameterException e) {
                fail("the README's './dir4j " + String.join(" ", args) + "' does not parse: " + e.getMessage());
            }
        }
        assertTrue(checked >= 8, "found too few dir4j command lines in the README to trust the scan: " + lines);
    }
}
