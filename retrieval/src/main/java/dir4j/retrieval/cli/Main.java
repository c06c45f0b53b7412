package dir4j.retrieval.cli;

import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code dir4j} command line. */
@Command(name = "dir4j", mixinStandardHelpOptions = true, version = "dir4j 0.1.0-SNAPSHOT",
        description = "Deep image retrieval (AP-GeM) on the JVM.",
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE},
        subcommands = {InfoCommand.class, AplossCommand.class, SynthCommand.class, DemoCommand.class, TrainCommand.class, ConvertCommand.class, ExtractCommand.class, EvalCommand.class, WhitenCommand.class, IndexCommand.class, SearchCommand.class, DescribeCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    /**
     * Lucene announces its vector setup at INFO on stderr at the first HNSW index or search; that
     * line is for Lucene's developers, not for dir4j's users (held here: JUL keeps loggers weakly).
     */
    private static final java.util.logging.Logger LUCENE = java.util.logging.Logger.getLogger("org.apache.lucene");

    static {
        LUCENE.setLevel(java.util.logging.Level.WARNING);
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /**
     * {@code dir4j} without a command: a bad command line (status 2), reported as picocli reports
     * one, the message and the usage on stderr; {@code dir4j --help} prints the usage on stdout
     * with status 0 (picocli answers it before this runs).
     */
    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "dir4j: a command is needed: "
                + String.join(", ", spec.subcommands().keySet()));
    }

    /** Entry point; exits with the command's status. */
    public static void main(String[] args) {
        // a JVM without the Vector API module, or a bad -Ddir4j.threads / -Ddir4j.vector.bits: one sentence, before
        // any command loads the engine (info reports it; help needs no engine)
        String problem = dir4j.engine.cpu.CpuSettings.problem();
        List<String> a = List.of(args);
        if (problem != null && !a.isEmpty() && !List.of("info", "help", "--version", "-V").contains(a.get(0))
                && !a.contains("--help") && !a.contains("-h")) {
            System.err.println("dir4j: " + problem);
            System.exit(2);
        }
        OutOfMemoryExit.install(); // an OutOfMemoryError in a worker thread would otherwise leave the JVM hanging
        System.exit(new CommandLine(new Main()).execute(args));
    }
}
