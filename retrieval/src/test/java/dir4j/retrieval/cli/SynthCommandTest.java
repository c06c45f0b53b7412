package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.cli.CliRun.Run;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j synth`: its progress on a stderr that is not a terminal. */
class SynthCommandTest {
    static final String[] SMALL = {"--image-size", "48", "--train-landmarks", "2", "--train-views", "2",
        "--val-landmarks", "1", "--test-landmarks", "1", "--easy", "1", "--hard", "1", "--junk", "0",
        "--distractors", "1"};

    static String[] args(Path root, String... more) {
        return Stream.concat(Stream.of("synth", "--data-root", root.toString()),
                Stream.concat(Stream.of(SMALL), Stream.of(more))).toArray(String[]::new);
    }

    @Test
    void progressToALogIsPlainLinesEndingWithTheImageCount(@TempDir Path dir) throws IOException {
        // stderr is captured here, not a terminal: no carriage returns, whole lines only
        Run r = run(args(dir.resolve("data")));
        assertEquals(0, r.rc(), r.toString());
        assertFalse(r.err().contains("\r"), r.err());
        assertTrue(r.err().endsWith("\n"), r.err());
        long images;
        try (Stream<Path> jpgs = Files.list(dir.resolve("data/synth/jpg"))) {
            images = jpgs.count();
        }
        List<String> lines = r.err().lines().toList();
        // a line at the start, one per 30 s (none in so small a run), one at the end
        assertTrue(lines.size() >= 2, r.err());
        assertTrue(lines.get(0).startsWith("synth [") && lines.get(0).contains(" 1/" + images + " "), r.err());
        assertTrue(lines.subList(0, lines.size() - 1).stream().allMatch(l -> l.startsWith("synth [")), r.err());
        Matcher last = Pattern.compile("synth: (\\d+) images in \\d+:\\d\\d:\\d\\d \\(.* img/s\\)")
                .matcher(lines.getLast());
        assertTrue(last.matches(), r.err());
        assertEquals(images, Long.parseLong(last.group(1)));

        Run quiet = run(args(dir.resolve("other"), "--quiet"));
        assertEquals(0, quiet.rc(), quiet.toString());
        assertEquals("", quiet.err());
    }
}
