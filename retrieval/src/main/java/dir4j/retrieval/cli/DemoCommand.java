package dir4j.retrieval.cli;

import dir4j.retrieval.demo.Demo;
import dir4j.retrieval.train.TrainConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dir4j demo}: the main job on its built-in default. */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate the synthetic landmarks benchmark (if absent), evaluate an untrained AP-GeM network, "
                + "train it with the AP loss, evaluate again and write OUT/report.html (mAP before/after, loss and "
                + "validation curves, top-10 results of a few queries).",
            "Sized to finish in minutes on two CPU cores; an interrupted demo resumes its training."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE, ToolCommand.EXIT_SIGINT,
                ToolCommand.EXIT_SIGTERM})
final class DemoCommand extends ToolCommand {
    @Option(names = "--data-root", defaultValue = "data", paramLabel = "DIR",
            description = "Where synth/ is kept. Default: ${DEFAULT-VALUE}.")
    Path dataRoot;

    @Option(names = "--out", defaultValue = "demo-out", paramLabel = "DIR",
            description = "Output folder. Default: ${DEFAULT-VALUE}.")
    Path out;

    @Option(names = "--steps", paramLabel = "N", description = "Training steps. Default: 300.")
    Integer steps;

    @Option(names = "--fresh", description = "Ignore an earlier demo's checkpoint and train from the start.")
    boolean fresh;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the network evaluates and trains (images are decoded and augmented on the host). "
                    + "Default: ${DEFAULT-VALUE}.")
    String device;

    @Option(names = "--quiet", description = "Only the summary.")
    boolean quiet;

    @Override
    int run() throws IOException {
        Demo.Settings s = Demo.Settings.defaults(dataRoot, out);
        if (steps != null) {
            try {
                s = new Demo.Settings(s.dataRoot(), s.out(), s.synth(), s.net(),
                        s.train().with(Map.of("steps", steps.toString())), s.imageSize(), s.resume());
            } catch (TrainConfig.InvalidSetting e) {
                // only --steps is the user's: the demo's other settings are its own, and valid
                throw new UsageException(e.message(k -> k.equals("steps") ? "--steps" : "the demo's " + k));
            }
        }
        dir4j.engine.Device dev = DeviceOption.usable(device);
        if (fresh) {
            s = new Demo.Settings(s.dataRoot(), s.out(), s.synth(), s.net(), s.train(), s.imageSize(), false);
        }
        // the training's progress bar (redrawn on a terminal, a line every 10 s in a log)
        TrainCommand.Progress progress = new TrainCommand.Progress(quiet, s.train().steps());
        Demo.Outcome o = Demo.run(s, dev, progress);
        progress.end();
        if (o == null) {
            return 130; // stopped by a signal after a checkpoint; the JVM's exit status is the signal's
        }
        System.out.printf("mAP (Medium) %.2f -> %.2f; Easy %.2f -> %.2f; Hard %.2f -> %.2f%n",
                100 * o.before().medium().map(), 100 * o.after().medium().map(), 100 * o.before().easy().map(),
                100 * o.after().easy().map(), 100 * o.before().hard().map(), 100 * o.after().hard().map());
        System.out.printf("report: %s (%.0f s)%n", o.report().toAbsolutePath(), o.seconds());
        return 0;
    }
}
