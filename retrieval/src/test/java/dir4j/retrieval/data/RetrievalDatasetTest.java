package dir4j.retrieval.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.eval.Judgement;
import dir4j.retrieval.eval.RevisitedGroundTruth;
import dir4j.retrieval.image.BoundingBox;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.image.RgbImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The miniature data root of make_image_fixtures.py: roxford5k (revisited ground truth as
 * Python lists) and oxford5k (old ground truth as NumPy arrays), pickle protocol 2.
 */
class RetrievalDatasetTest {
    static final List<String> NAMES = List.of("all_souls_000001", "all_souls_000002", "radcliffe_camera_000003");

    static Path root() {
        return ImageFixtures.path("datasets");
    }

    @Test
    void revisitedGroundTruthIsRead() throws IOException {
        RetrievalDataset d = RetrievalDataset.load("ROxford5k", root());
        assertEquals("roxford5k", d.name());
        assertEquals(RetrievalDataset.Protocol.REVISITED, d.protocol());
        assertEquals(NAMES, d.imageNames());
        assertEquals(List.of("all_souls_000001", "radcliffe_camera_000003"), d.queryNames());
        assertEquals(new BoundingBox(2.0, 3.5, 20.0, 14.0), d.queryBoxes().get(0));
        assertEquals(new BoundingBox(0, 0, 16, 12), d.queryBoxes().get(1));
        List<RevisitedGroundTruth> g = d.revisitedGroundTruth();
        assertArrayEquals(new int[] {1}, g.get(0).easy());
        assertArrayEquals(new int[] {}, g.get(0).hard());
        assertArrayEquals(new int[] {2}, g.get(0).junk());
        assertArrayEquals(new int[] {0, 1}, g.get(1).hard());
        assertThrows(IllegalStateException.class, d::classicGroundTruth);

        List<ImageRef> db = d.databaseImages();
        assertEquals(root().resolve("roxford5k/jpg/all_souls_000002.jpg"), db.get(1).path());
        assertEquals("all_souls_000002", db.get(1).id());
        assertNull(db.get(1).crop());
        List<ImageRef> q = d.queryImages();
        assertEquals("radcliffe_camera_000003", q.get(1).id());
        assertEquals(root().resolve("roxford5k/jpg/radcliffe_camera_000003.jpg"), q.get(1).path());
        assertEquals(new BoundingBox(0, 0, 16, 12), q.get(1).crop());
    }

    @Test
    void queryCropMatchesThePilCropOfTheReference() throws IOException {
        RetrievalDataset d = RetrievalDataset.load("roxford5k", root());
        ImageRef q = d.queryImages().get(0);
        RgbImage crop = q.crop().crop(ImageDecoder.read(q.path()));
        RgbImage pil = ImageFixtures.expected("datasets/roxford5k_q0_crop.npy");
        // (2, 3.5, 20, 14) rounds half to even: (2, 4, 20, 14), an 18x10 crop; JPEG decoders within 2 levels
        assertEquals(18, crop.width());
        assertEquals(10, crop.height());
        assertTrue(ImageFixtures.maxDiff(pil, crop) <= 2, "max difference " + ImageFixtures.maxDiff(pil, crop));
    }

    @Test
    void classicGroundTruthWithNumpyArraysIsRead() throws IOException {
        RetrievalDataset d = RetrievalDataset.load("oxford5k", root());
        assertEquals(RetrievalDataset.Protocol.CLASSIC, d.protocol());
        assertEquals(List.of("all_souls_000002"), d.queryNames());
        assertEquals(new BoundingBox(1, 1, 18.5, 19), d.queryBoxes().get(0));
        List<Judgement> g = d.classicGroundTruth();
        assertArrayEquals(new int[] {0, 2}, g.get(0).positives());
        assertArrayEquals(new int[] {}, g.get(0).junk());
        assertThrows(IllegalStateException.class, d::revisitedGroundTruth);
    }

    @Test
    void theReferenceLayoutWithRevisitedPicklesBesideTheOldOnesIsFound(@TempDir Path tmp) throws IOException {
        // dirtorch: <root>/oxford5k/gnd_roxford5k.pkl, images in <root>/oxford5k/jpg
        Path ox = tmp.resolve("oxford5k");
        Files.createDirectories(ox.resolve("jpg"));
        Files.copy(root().resolve("roxford5k/gnd_roxford5k.pkl"), ox.resolve("gnd_roxford5k.pkl"));
        for (String n : NAMES) {
            Files.copy(root().resolve("roxford5k/jpg/" + n + ".jpg"), ox.resolve("jpg/" + n + ".jpg"));
        }
        RetrievalDataset d = RetrievalDataset.load("roxford5k", tmp);
        assertEquals(ox.resolve("jpg/all_souls_000001.jpg"), d.databaseImages().get(0).path());
    }

    @Test
    void missingRootGroundTruthOrImagesSayWhatWasExpectedWhere(@TempDir Path tmp) throws IOException {
        IOException noRoot = assertThrows(IOException.class, () -> RetrievalDataset.load("roxford5k", tmp.resolve("x")));
        assertTrue(noRoot.getMessage().contains("data root " + tmp.resolve("x") + " does not exist"), noRoot.getMessage());

        IOException noGnd = assertThrows(IOException.class, () -> RetrievalDataset.load("rparis6k", tmp));
        assertTrue(noGnd.getMessage().contains(tmp.resolve("rparis6k/gnd_rparis6k.pkl").toString()), noGnd.getMessage());
        assertTrue(noGnd.getMessage().contains(tmp.resolve("paris6k/gnd_rparis6k.pkl").toString()), noGnd.getMessage());

        Path rox = tmp.resolve("roxford5k");
        Files.createDirectories(rox.resolve("jpg"));
        Files.copy(root().resolve("roxford5k/gnd_roxford5k.pkl"), rox.resolve("gnd_roxford5k.pkl"));
        Files.copy(root().resolve("roxford5k/jpg/all_souls_000001.jpg"), rox.resolve("jpg/all_souls_000001.jpg"));
        IOException noImages = assertThrows(IOException.class, () -> RetrievalDataset.load("roxford5k", tmp));
        String m = noImages.getMessage();
        assertTrue(m.contains("2 of the images"), m);
        assertTrue(m.contains(rox.resolve("jpg/all_souls_000002.jpg").toString()), m);
        assertTrue(m.contains(rox.resolve("jpg/radcliffe_camera_000003.jpg").toString()), m);

        assertThrows(IllegalArgumentException.class, () -> RetrievalDataset.load("holidays", tmp));
    }

    @Test
    void malformedGroundTruthIsAClearError(@TempDir Path tmp) throws IOException {
        Path broken = root().resolve("broken/gnd_roxford5k.pkl");
        IOException range = assertThrows(IOException.class, () -> RetrievalDataset.read("roxford5k",
                RetrievalDataset.Protocol.REVISITED, broken, tmp, false));
        assertTrue(range.getMessage().contains("gnd[0]['easy'][1] = 7.0 is not an index of the 3 database images"),
                range.getMessage());

        Path revisited = root().resolve("roxford5k/gnd_roxford5k.pkl");
        IOException protocol = assertThrows(IOException.class, () -> RetrievalDataset.read("x",
                RetrievalDataset.Protocol.CLASSIC, revisited, tmp, false));
        assertTrue(protocol.getMessage().contains("gnd[0] has no 'ok'"), protocol.getMessage());

        Path notPickle = Files.writeString(tmp.resolve("gnd.pkl"), "hello");
        IOException p = assertThrows(IOException.class, () -> RetrievalDataset.read("x",
                RetrievalDataset.Protocol.REVISITED, notPickle, tmp, false));
        assertTrue(p.getMessage().contains(notPickle.toString()), p.getMessage());
    }

    @Test
    void everyFixtureImageDecodes() throws IOException {
        try (Stream<Path> s = Files.walk(root())) {
            for (Path p : s.filter(f -> f.toString().endsWith(".jpg")).toList()) {
                RgbImage img = ImageDecoder.read(p);
                assertTrue(img.width() >= 16 && img.height() >= 16, p.toString());
            }
        }
    }

    @Test
    void theSyntheticBenchmarksTwoSplitsAreKnownDatasetsSharingOneImageFolder(@TempDir Path tmp) throws IOException {
        assertEquals(RetrievalDataset.Protocol.REVISITED, RetrievalDataset.KNOWN.get("synth"));
        assertEquals(RetrievalDataset.Protocol.REVISITED, RetrievalDataset.KNOWN.get("synth-val"));
        // val: 1 landmark, 1 query, 2 easy + 1 hard + 1 junk views, 2 distractors; test: 2 landmarks
        dir4j.retrieval.synth.SyntheticLandmarks.generate(tmp,
                new dir4j.retrieval.synth.SyntheticLandmarks.Config(3, 32, 2, 2, 1, 2, 2, 1, 1, 2), null);
        RetrievalDataset val = RetrievalDataset.load("synth-val", tmp);
        RetrievalDataset test = RetrievalDataset.load("SYNTH", tmp);
        assertEquals("synth-val", val.name());
        assertEquals(tmp.resolve("synth/gnd_synth-val.pkl"), val.groundTruthFile());
        assertEquals(tmp.resolve("synth/jpg"), val.imageDir());
        assertEquals(tmp.resolve("synth/gnd_synth.pkl"), test.groundTruthFile());
        assertEquals(tmp.resolve("synth/jpg"), test.imageDir());
        assertEquals(1, val.queryNames().size());
        assertEquals(2 + 1 + 1 + 2, val.imageNames().size());
        assertEquals(2, test.queryNames().size());
        assertEquals(2 * 4 + 2, test.imageNames().size());
        RevisitedGroundTruth g = val.revisitedGroundTruth().get(0);
        assertEquals(2, g.easy().length);
        assertEquals(1, g.hard().length);
        assertEquals(1, g.junk().length);

        IOException missing = assertThrows(IOException.class, () -> RetrievalDataset.load("synth", tmp.resolve("synth")));
        assertTrue(missing.getMessage().contains("synth/gnd_synth.pkl"), missing.getMessage());
    }
}
