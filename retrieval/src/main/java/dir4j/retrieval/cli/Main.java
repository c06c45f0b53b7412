package dir4j.retrieval.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code dir4j} command line. */
@Command(name = "dir4j", mixinStandardHelpOptions = true, version = "dir4j 0.1.0-SNAPSHOT",
        description = "Deep image retrieval (AP-GeM) on the JVM.",
        subcommands = {InfoCommand.class, AplossCommand.class, SynthCommand.class, DemoCommand.class, TrainCommand.class, ConvertCommand.class, ExtractCommand.class, EvalCommand.class, WhitenCommand.class, IndexCommand.class, SearchCommand.class, DescribeCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    /** Entry point; exits with the command's status. */
    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }
}
