package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * No CPU kernel hands a vector species to a lambda through a local variable. C2 treats a captured
 * value as a field, not a constant, and then intrinsifies none of the Vector API calls that take
 * it: every vector is boxed. The channels-last max pool ran 5.6× slower that way
 * (bench/RESULTS.md, session 14) while computing the right values, so no other test could notice.
 * Lambdas must use the static final species (CpuVectors.FLOAT, or a class's SPECIES) directly.
 */
class VectorSpeciesCaptureTest {
    /** A species local: declared inside a method body (8 or more spaces in), without modifiers. */
    private static final Pattern LOCAL_SPECIES = Pattern.compile("(?m)^ {8,}VectorSpecies<\\w+> (\\w+) = ");
    private static final Pattern COMMENT = Pattern.compile("(?s)/\\*.*?\\*/|//[^\n]*");
    private static final Pattern LAMBDA = Pattern.compile("->\\s*\\{");

    /** The names of species locals that a lambda of the same method uses, as "name (line n)". */
    static List<String> capturedSpecies(String code) {
        String source = withoutComments(code);
        List<String> found = new ArrayList<>();
        Matcher m = LOCAL_SPECIES.matcher(source);
        while (m.find()) {
            String name = m.group(1);
            int methodEnd = source.indexOf("\n    }\n", m.end());
            String rest = source.substring(m.end(), methodEnd < 0 ? source.length() : methodEnd);
            Matcher l = LAMBDA.matcher(rest);
            while (l.find()) {
                String body = rest.substring(l.end(), closingBrace(rest, l.end()));
                if (Pattern.compile("\\b" + name + "\\b").matcher(body).find()) {
                    int line = 1 + (int) source.substring(0, m.start()).chars().filter(c -> c == '\n').count();
                    found.add(name + " (line " + line + ")");
                    break;
                }
            }
        }
        return found;
    }

    /** The source with its comments blanked, line breaks kept (so that line numbers hold). */
    private static String withoutComments(String code) {
        Matcher c = COMMENT.matcher(code);
        StringBuilder out = new StringBuilder();
        while (c.find()) {
            c.appendReplacement(out, c.group().replaceAll("[^\n]", ""));
        }
        c.appendTail(out);
        return out.toString();
    }

    /** The index of the brace closing the block opened just before {@code from}. */
    private static int closingBrace(String s, int from) {
        int depth = 1;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '{') {
                depth++;
            } else if (c == '}' && --depth == 0) {
                return i;
            }
        }
        return s.length();
    }

    @Test
    void theScanFindsACapturedSpeciesAndPassesTheStaticOne() {
        String captured = """
                class A {
                    static void f(float[] x) {
                        VectorSpecies<Float> s = SPECIES;
                        CpuThreads.parallelFor(4, u -> {
                            // the row's lanes, as's and s's in comments do not count
                            FloatVector.fromArray(s, x, u * 16);
                        });
                    }
                }
                """;
        assertEquals(List.of("s (line 3)"), capturedSpecies(captured));
        String direct = captured.replace("fromArray(s,", "fromArray(SPECIES,");
        assertEquals(List.of(), capturedSpecies(direct));
    }

    @Test
    void noCpuKernelCapturesASpecies() throws IOException {
        Path dir = Path.of("src/main/java/dir4j/engine/cpu");
        assertTrue(Files.isDirectory(dir), "run from the engine module: " + dir.toAbsolutePath());
        List<String> offenders = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                for (String hit : capturedSpecies(Files.readString(f))) {
                    offenders.add(f.getFileName() + ": " + hit);
                }
            }
        }
        assertEquals(List.of(), offenders, "species captured by a lambda (use the static species inside it)");
    }
}
