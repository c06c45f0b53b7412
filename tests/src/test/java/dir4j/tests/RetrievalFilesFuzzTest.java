package dir4j.tests;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.data.LabelledImageList;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.train.TrainConfig;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Damaged and hostile files of the retrieval pipeline ({@link FileFuzzing}): ground-truth pickles
 * of both protocols, network checkpoints (the reference's legacy .pt and dir4j's safetensors),
 * stored whitenings, saved exact indexes, a training configuration and a labelled image list each
 * take seeded mutations of a valid file and must
 * load or be refused with a message (IOException or IllegalArgumentException), never an Error,
 * another exception or a hang.
 */
class RetrievalFilesFuzzTest {
    private static final String DATASETS = "retrieval/src/test/resources/fixtures/datasets/";

    @TempDir
    Path dir;

    /** Each ground truth read as eval reads it, and its judgements built (images not checked). */
    @ParameterizedTest
    @CsvSource({"roxford5k, REVISITED", "oxford5k, CLASSIC"})
    void groundTruth(String dataset, RetrievalDataset.Protocol protocol) throws Exception {
        String gnd = "gnd_" + dataset + ".pkl";
        Path root = FileFuzzing.fixture(DATASETS + dataset + "/" + gnd).getParent();
        FileFuzzing.fuzz(dir, gnd, root.resolve(gnd), file -> {
            RetrievalDataset d = RetrievalDataset.read(dataset, protocol, file, root.resolve("jpg"), false);
            if (protocol == RetrievalDataset.Protocol.REVISITED) {
                d.revisitedGroundTruth();
            } else {
                d.classicGroundTruth();
            }
        }, false);
    }

    @Test
    void referenceCheckpoint() throws Exception {
        FileFuzzing.fuzz(dir, "tiny_resnet18_w2.pt", FileFuzzing.fixture(DATASETS + "checkpoint/tiny_resnet18_w2.pt"),
                RetrievalFilesFuzzTest::loadNetwork, false, 120);
    }

    @Test
    void dir4jCheckpoint() throws Exception {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 2);
        Path file = dir.resolve("seed.safetensors");
        try (RetrievalNet net = new RetrievalNet(o, new Random(9))) {
            Safetensors.write(file, net.stateDict(), Map.of("model_options",
                    "{\"arch\": \"resnet18_rmac\", \"pooling\": \"gem\", \"without_fc\": false}"));
        }
        FileFuzzing.fuzz(dir, "net.safetensors", file, RetrievalFilesFuzzTest::loadNetwork, false, 120);
    }

    @Test
    void whitening() throws Exception {
        Path file = dir.resolve("seed-whitening.safetensors");
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = Tensor.randn(new Random(3), 40, 6);
            WhiteningFile.write(file, "synth", PcaWhitening.learn(x).parameters(), new WhiteningOptions(0.5, 4, 1.0),
                    Map.of("learned_on", "random"));
        }
        FileFuzzing.fuzz(dir, "whitening.safetensors", file, f -> {
            for (WhiteningFile.Stored w : WhiteningFile.read(f).values()) {
                PcaWhitening.of(w.pca());
            }
        }, false);
    }

    @Test
    void exactIndex() throws Exception {
        Path saved = dir.resolve("index");
        try (ExactIndex index = new ExactIndex(4); MemoryScope s = MemoryScope.open()) {
            index.add(Tensor.randn(new Random(5), 12, 4), List.of("a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
                    "k", "l"));
            index.save(saved);
        }
        for (String part : List.of(ExactIndex.DESCRIPTORS, ExactIndex.IDS)) {
            FileFuzzing.fuzz(dir, "index/" + part, saved.resolve(part), f -> {
                Path folder = dir.resolve("damaged-index");
                Files.createDirectories(folder);
                for (String other : List.of(ExactIndex.DESCRIPTORS, ExactIndex.IDS)) {
                    Files.copy(other.equals(part) ? f : saved.resolve(other), folder.resolve(other),
                            StandardCopyOption.REPLACE_EXISTING);
                }
                try (ExactIndex index = ExactIndex.load(folder); MemoryScope s = MemoryScope.open()) {
                    index.search(Tensor.randn(new Random(6), 2, 4), 3);
                }
            }, false, 120);
        }
    }

    @Test
    void trainingConfig() throws Exception {
        FileFuzzing.fuzz(dir, "train-synth.json", FileFuzzing.fixture("examples/train-synth.json"),
                f -> TrainConfig.defaults().withFile(f), false);
    }

    @Test
    void labelledList() throws Exception {
        Path images = dir.resolve("images");
        Files.createDirectories(images);
        StringBuilder list = new StringBuilder();
        for (int i = 0; i < 12; i++) {
            Files.write(images.resolve("im" + i + ".jpg"), new byte[] {1});
            list.append("im").append(i).append(".jpg ").append(i / 3).append('\n');
        }
        Path file = dir.resolve("seed-train.txt");
        Files.writeString(file, list);
        FileFuzzing.fuzz(dir, "train.txt", file, f -> LabelledImageList.read(f, images, true), false);
    }

    private static void loadNetwork(Path file) throws IOException {
        NetworkCheckpoint.Loaded l = NetworkCheckpoint.load(file);
        l.net().close();
    }
}
