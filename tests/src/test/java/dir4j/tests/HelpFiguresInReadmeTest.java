package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.cli.Main;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * A measured comparison that an option's --help quotes ("355 img/s against 258") is one the
 * README quotes too: the README's figures are kept up to date from bench/RESULTS.md, and a help
 * text left with an older session's figures (or calling measured what was not) tells the user
 * something else than the README.
 */
class HelpFiguresInReadmeTest {
    /** "A img/s against B" or "A against B img/s": a throughput beside another. */
    private static final Pattern FIGURE = Pattern.compile(
            "(\\d[\\d,]*(?:\\.\\d+)?)( img/s)? against (\\d[\\d,]*(?:\\.\\d+)?)( img/s)?");

    static List<String> figures(String text) {
        List<String> found = new ArrayList<>();
        Matcher m = FIGURE.matcher(text.replaceAll("\\s+", " "));
        while (m.find()) {
            if (m.group(2) != null || m.group(4) != null) {
                found.add(m.group(1) + " img/s against " + m.group(3));
            }
        }
        return found;
    }

    @Test
    void theFigurePatternReadsBothWordings() {
        assertEquals(List.of("323 img/s against 252", "355 img/s against 258"),
                figures("an H200: 323 against 252 img/s); or 355 img/s against\n 258 in NCHW; 3 against 4 cores"));
    }

    @Test
    void everyThroughputComparisonInAnOptionsHelpIsTheReadmes() throws IOException {
        Path readme = Path.of("..").toAbsolutePath().normalize().resolve("README.md");
        assertTrue(Files.isRegularFile(readme), "run from the tests module: " + readme);
        String readmeText = Files.readString(readme).replaceAll("\\s+", " ");
        int seen = 0;
        for (Map.Entry<String, CommandLine> command : new CommandLine(new Main()).getSubcommands().entrySet()) {
            for (OptionSpec option : command.getValue().getCommandSpec().options()) {
                for (String figure : figures(String.join(" ", option.description()))) {
                    seen++;
                    assertTrue(readmeText.contains(figure), "dir4j " + command.getKey() + " " + option.longestName()
                            + " --help quotes '" + figure + "', which the README does not");
                }
            }
        }
        assertTrue(seen > 0, "no figure found in any option's help: the scan is broken");
    }
}
