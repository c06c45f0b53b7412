package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * {@code dir4j} itself: without a command it is a bad command line (status 2, the usage on
 * stderr, nothing on stdout); asking for help is not (status 0, the usage on stdout).
 */
class MainTest {
    @Test
    void noCommandIsABadCommandLineWithTheUsageOnStderr() {
        CliRun.Run r = CliRun.run();
        assertEquals(2, r.rc(), r.toString());
        assertEquals("", r.out(), r.toString());
        assertTrue(r.err().startsWith("dir4j: a command is needed: info, aploss, synth, demo, train"), r.err());
        assertTrue(r.err().contains("Usage: dir4j [-hV] [COMMAND]"), r.err());
        assertTrue(r.err().contains("Exit status:") && r.err().contains("2   bad command line"), r.err());
    }

    @Test
    void helpIsAskedForAndExitsZeroOnStdout() {
        for (String[] args : new String[][] {{"--help"}, {"-h"}, {"help"}}) {
            CliRun.Run r = CliRun.run(args);
            assertEquals(0, r.rc(), String.join(" ", args) + ": " + r);
            assertTrue(r.out().contains("Usage: dir4j [-hV] [COMMAND]"), r.out());
            assertTrue(r.out().contains("train"), r.out());
            assertEquals("", r.err(), r.toString());
        }
        CliRun.Run v = CliRun.run("--version");
        assertEquals(0, v.rc(), v.toString());
        assertTrue(v.out().startsWith("dir4j "), v.out());
    }

    /** An unknown command stays picocli's usage error (status 2), naming it. */
    @Test
    void anUnknownCommandIsABadCommandLine() {
        CliRun.Run r = CliRun.run("trian");
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("trian"), r.err());
    }
}
