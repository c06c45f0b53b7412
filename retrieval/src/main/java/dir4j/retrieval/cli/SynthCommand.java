package dir4j.retrieval.cli;

import dir4j.retrieval.extract.ProgressBar;
import dir4j.retrieval.synth.SyntheticLandmarks;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code dir4j synth}: generate the built-in synthetic landmarks benchmark. */
@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate dir4j's synthetic instance-retrieval benchmark (procedural landmarks photographed "
                + "under viewpoint, scale, lighting, blur, occlusion and clutter, plus distractors) under "
                + "DATA_ROOT/synth: jpg/, train.txt, gnd_synth-val.pkl, gnd_synth.pkl (revisited-protocol format).",
            "Deterministic from --seed; an existing benchmark made from the same settings is kept as is, and a "
                    + "generation stopped part-way (killed, out of disk) is resumed by the next run with the same "
                    + "settings, which renders only the missing images (in DATA_ROOT/.synth.dir4j-partial/ until done)."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class SynthCommand extends ToolCommand {
    private static final SyntheticLandmarks.Config D = SyntheticLandmarks.Config.demo();

    @Option(names = "--data-root", defaultValue = "data", paramLabel = "DIR",
            description = "Where to write synth/. Default: ${DEFAULT-VALUE}.")
    Path root;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of everything. Default: 2019.")
    long seed = D.seed();

    @Option(names = "--image-size", paramLabel = "PIXELS", description = "Image side in pixels. Default: 128.")
    int imageSize = D.imageSize();

    @Option(names = "--train-landmarks", paramLabel = "N", description = "Landmarks in the training list. Default: 60.")
    int trainLandmarks = D.trainLandmarks();

    @Option(names = "--train-views", paramLabel = "N", description = "Photographs per training landmark. Default: 8.")
    int trainViews = D.trainViews();

    @Option(names = "--val-landmarks", paramLabel = "N",
            description = "Queried landmarks in the validation split. Default: 8.")
    int valLandmarks = D.valLandmarks();

    @Option(names = "--test-landmarks", paramLabel = "N",
            description = "Queried landmarks in the test split. Default: 20.")
    int testLandmarks = D.testLandmarks();

    @Option(names = "--easy", paramLabel = "N", description = "Easy database views per queried landmark. Default: 3.")
    int easy = D.easyViews();

    @Option(names = "--hard", paramLabel = "N", description = "Hard database views per queried landmark. Default: 2.")
    int hard = D.hardViews();

    @Option(names = "--junk", paramLabel = "N", description = "Junk database views per queried landmark. Default: 1.")
    int junk = D.junkViews();

    @Option(names = "--distractors", paramLabel = "N",
            description = "Distractor images per database (val and test). Default: 60.")
    int distractors = D.distractors();

    @Option(names = "--quiet", description = "No progress output.")
    boolean quiet;

    @Override
    int run() throws IOException {
        var config = new SyntheticLandmarks.Config(seed, imageSize, trainLandmarks, trainViews, valLandmarks,
                testLandmarks, easy, hard, junk, distractors);
        try {
            config.validate();
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        long t0 = System.nanoTime();
        ProgressBar[] bar = {null};
        Path dir = SyntheticLandmarks.generate(root, config, quiet ? null : (done, total) -> {
            if (bar[0] == null) { // a resumed generation's first report counts the images it found made
                bar[0] = new ProgressBar("synth", total, done - 1, System.err, true);
            }
            bar[0].update(done);
            if (done.equals(total)) {
                bar[0].finish();
            }
        }, n -> {
            if (!quiet) {
                System.err.println("note: " + n);
            }
        });
        System.out.printf("synthetic benchmark at %s (%.1f s)%n", dir, (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
