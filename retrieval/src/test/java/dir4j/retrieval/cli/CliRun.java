package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** Runs `dir4j ...` in-process with stdout and stderr captured. */
final class CliRun {
    record Run(int rc, String out, String err) {
        @Override
        public String toString() {
            return "rc " + rc + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    private CliRun() {}

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        int rc;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            rc = new CommandLine(new Main()).execute(args);
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
        return new Run(rc, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** `dir4j COMMAND --help` exits 0 and documents every option, the exit statuses and --device cuda. */
    static void assertHelpDocumentsEveryOption(String command) {
        Run r = run(command, "--help");
        assertEquals(0, r.rc(), r.toString());
        CommandLine sub = new CommandLine(new Main()).getSubcommands().get(command);
        List<OptionSpec> options = sub.getCommandSpec().options();
        assertTrue(options.size() > 3, command + " has options");
        for (OptionSpec o : options) {
            String shown = o.negatable() ? "--[no-]" + o.longestName().substring(2) : o.longestName();
            assertTrue(r.out().contains(shown), command + " --help lists " + shown + "\n" + r.out());
            assertFalse(String.join(" ", o.description()).isBlank(), command + " " + o.longestName() + " is described");
        }
        assertTrue(r.out().contains("Exit status:"), r.out());
        for (String code : new String[] {"0 done", "1 failed", "2 bad command line"}) {
            // picocli widens the column to the longest status (train's and demo's 130 and 143)
            assertTrue(java.util.regex.Pattern.compile("(?m)^  " + code.replace(" ", " +")).matcher(r.out()).find(),
                    command + " --help documents exit status '" + code + "'\n" + r.out());
        }
        assertTrue(r.out().contains("--device"), r.out());
    }

    /** Where no GPU is usable: `--device cuda` is refused with status 2 and says to use the CPU. */
    static void assertCudaIsRefused(String... commandAndArgs) {
        try {
            dir4j.engine.Backends.of(dir4j.engine.Device.cuda(0));
            return; // a usable GPU here: the commands' GPU paths are checked by the gpu-tagged tests
        } catch (RuntimeException | LinkageError e) {
            // no GPU: every command must refuse --device cuda with status 2
        }
        String[] args = java.util.Arrays.copyOf(commandAndArgs, commandAndArgs.length + 2);
        args[commandAndArgs.length] = "--device";
        args[commandAndArgs.length + 1] = "cuda";
        Run r = run(args);
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--device cpu"), r.err());
    }
}
