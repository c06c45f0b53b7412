package dir4j.retrieval.cli;

import dir4j.engine.EngineInfo;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code dir4j info}: what this machine offers dir4j. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print the Java version, the CPU backend's vector width and threads, and whether CUDA is usable.",
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {"0:done (also when CUDA is not usable: the report says why)", ToolCommand.EXIT_USAGE})
final class InfoCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        System.out.print(EngineInfo.report());
        return 0;
    }
}
