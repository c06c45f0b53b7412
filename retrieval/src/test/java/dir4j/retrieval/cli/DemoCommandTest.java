package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code dir4j demo}'s command line: a bad --steps is a usage error (status 2) naming --steps, and
 * only the options demo has, before the benchmark or OUT is made. (The demo itself:
 * DemoEndToEndTest in tests/.)
 */
class DemoCommandTest {
    @Test
    void stepsOutOfRangeIsAUsageErrorNamingDemosOwnOption(@TempDir Path tmp) {
        for (String steps : new String[] {"0", "-3"}) {
            CliRun.Run r = CliRun.run("demo", "--steps", steps, "--data-root", tmp.resolve("data").toString(),
                    "--out", tmp.resolve("out").toString(), "--quiet");
            assertEquals(2, r.rc(), r.toString());
            assertTrue(r.err().startsWith("dir4j demo: --steps must be at least 1, got " + steps + "\n"), r.err());
            assertTrue(r.err().contains("Try 'dir4j demo --help'"), r.err());
            for (String other : new String[] {"subBatch", "checkpointEvery", "validateEvery", "steps,"}) {
                assertFalse(r.err().contains(other), "names " + other + ", which demo does not offer: " + r.err());
            }
            assertTrue(Files.notExists(tmp.resolve("data")) && Files.notExists(tmp.resolve("out")),
                    "nothing written");
        }
    }

    @Test
    void helpDocumentsEveryOption() {
        CliRun.assertHelpDocumentsEveryOption("demo");
    }
}
