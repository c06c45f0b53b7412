package dir4j.retrieval.cli;

import dir4j.engine.EngineInfo;
import dir4j.retrieval.whiten.SymmetricEigen;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code dir4j info}: what this machine offers dir4j. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print the Java version, the CPU backend's vector width and threads, whether CUDA is usable, "
                + "which decoder reads JPEGs (libjpeg-turbo or the JDK's) and which eigensolver learns whitenings (LAPACK or "
                + "EJML).",
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {"0:done (also when CUDA is not usable: the report says why)",
            "2:bad command line: an option or argument info does not take (it takes none but --help and --version)"})
final class InfoCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        System.out.print(EngineInfo.report());
        System.out.println("dir4j retrieval");
        System.out.println("  jpeg decoding   " + dir4j.retrieval.image.TurboJpeg.backend());
        System.out.println("  whitening       learned by " + SymmetricEigen.backend());
        return 0;
    }
}
