package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * What {@code --help} promises a user who reads it literally: every exit status a command can
 * end with, no option a command does not take, and what an option's absence means where the
 * command then refuses or forgets something.
 */
class HelpTextTest {
    /**
     * train and demo stopped by Ctrl-C or SIGTERM end with the signal's status (130, 143) once
     * their checkpoint is written, as the README says: their --help lists both.
     */
    @Test
    void trainAndDemoHelpListTheStatusesOfARunStoppedBySignal() {
        for (String command : new String[] {"train", "demo"}) {
            CliRun.Run r = CliRun.run(command, "--help");
            assertEquals(0, r.rc(), r.toString());
            String exits = r.out().substring(r.out().indexOf("Exit status:"));
            assertTrue(exits.matches("(?s).*\\n  130 +stopped by Ctrl-C \\(SIGINT\\).*"), command + ": " + exits);
            assertTrue(exits.matches("(?s).*\\n  143 +stopped by SIGTERM.*"), command + ": " + exits);
        }
    }

    /** The tool commands that cannot be stopped that way do not claim those statuses. */
    @Test
    void otherCommandsDoNotListSignalStatuses() {
        for (String command : new String[] {"extract", "eval", "search", "index"}) {
            CliRun.Run r = CliRun.run(command, "--help");
            assertFalse(r.out().matches("(?s).*\\n  130 .*"), command + ": " + r.out());
        }
    }

    /** info takes no --device: its exit statuses do not send the reader looking for one. */
    @Test
    void infoHelpNamesNoOptionItDoesNotTake() {
        CliRun.Run r = CliRun.run("info", "--help");
        assertEquals(0, r.rc(), r.toString());
        assertFalse(r.out().contains("--device"), r.out());
        assertTrue(r.out().contains("2   bad command line"), r.out());
        CliRun.Run bad = CliRun.run("info", "--device", "cuda");
        assertEquals(2, bad.rc(), bad.toString());
    }

    /** extract --dataset without --data-root is refused, and --data-root's help says it is needed there. */
    @Test
    void extractDataRootHelpSaysDatasetNeedsIt(@TempDir Path tmp) {
        String described = description("extract", "--data-root");
        assertTrue(described.contains("With --dataset (which needs it; not with --images)"), described);
        CliRun.Run r = CliRun.run("extract", "--dataset", "synth", "--arch", "resnet18", "--random-init",
                "--out", tmp.resolve("d.npy").toString(), "--quiet");
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--dataset needs --data-root"), r.err());
    }

    /** eval's --descriptors-dir says what happens without it: nothing is kept between runs. */
    @Test
    void evalDescriptorsDirHelpSaysWhatHappensWithoutIt() {
        String described = description("eval", "--descriptors-dir");
        assertTrue(described.contains("Without it every eval extracts them again and keeps none."), described);
    }

    /** train --tf32 decides TF32 for both kinds of product: its help says the -D defaults do not apply. */
    @Test
    void trainTf32HelpSaysThePropertiesDoNotApply() {
        String described = description("train", "--tf32");
        assertTrue(described.contains("Default: strict float32, for both, whatever -Ddir4j.cuda.tf32* say."),
                described);
    }

    /**
     * A validation set alone validates nothing (--validate-every defaults to 0, never): --synth and
     * --val-dataset say so instead of promising a validation.
     */
    @Test
    void trainValidationSetHelpSaysItNeedsValidateEvery() {
        assertTrue(description("train", "--synth").contains("is the validation set (used every --validate-every steps)"),
                description("train", "--synth"));
        assertTrue(description("train", "--val-dataset").contains("(by default 0: never, so give both)"),
                description("train", "--val-dataset"));
        assertTrue(description("train", "--validate-every").contains("(0: never). Default: 0."),
                description("train", "--validate-every"));
    }

    private static String description(String command, String option) {
        return String.join(" ", new CommandLine(new Main()).getSubcommands().get(command).getCommandSpec()
                .findOption(option).description());
    }
}
