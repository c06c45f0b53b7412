package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j whiten`: learn, store, apply; the reference's options; errors. */
class WhitenCommandTest {
    @TempDir
    Path dir;
    Path train;
    Path queries;

    /** Unit rows with unequal variance per axis, so that whitening changes them. */
    static Tensor descriptors(Random rng, int n, int d) {
        float[] v = new float[n * d];
        for (int i = 0; i < n; i++) {
            double sq = 0;
            for (int j = 0; j < d; j++) {
                v[i * d + j] = (float) (rng.nextGaussian() * (j + 1) + 0.3);
                sq += v[i * d + j] * v[i * d + j];
            }
            for (int j = 0; j < d; j++) {
                v[i * d + j] /= (float) Math.sqrt(sq);
            }
        }
        return Tensor.of(v, n, d);
    }

    @BeforeEach
    void files() throws IOException {
        train = dir.resolve("train.npy");
        queries = dir.resolve("q.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(train, descriptors(new Random(1), 40, 8));
            Npy.write(queries, descriptors(new Random(2), 5, 8));
        }
        Files.write(dir.resolve("q.ids.txt"), List.of("a", "b", "c", "d", "e"));
    }

    @Test
    void learnedWhiteningIsStoredWithItsOptionsAndAppliedAsTheLibraryApplies() throws IOException {
        Path w = dir.resolve("w.safetensors");
        Run learn = run("whiten", "--learn", train.toString(), "--out", w.toString(), "--whitenv", "5", "--whitenp",
                "0.5");
        assertEquals(0, learn.rc(), learn.toString());
        assertTrue(learn.out().startsWith("learned whitening 'learned' from 40 descriptors of dimension 8 "
                + "(5 of its 8 components kept)"), learn.out());
        WhiteningFile.Stored s = WhiteningFile.read(w).get("learned");
        assertEquals(new WhiteningOptions(0.5, 5, 1), s.options());
        try (dir4j.nn.io.Safetensors.Contents c = dir4j.nn.io.Safetensors.read(w)) {
            assertTrue(c.metadata().get("pca.learned").contains("\"eigensolver\":\""
                    + dir4j.retrieval.whiten.SymmetricEigen.backend().replace("\"", "\\\"") + "\""),
                    c.metadata().toString());
        }

        Path out = dir.resolve("out/qw.npy");
        Run apply = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--out", out.toString());
        assertEquals(0, apply.rc(), apply.toString());
        assertTrue(apply.out().contains("5x5 float32"), apply.out());
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor want = PcaWhitening.learn(Npy.read(train)).apply(Npy.read(queries), new WhiteningOptions(0.5, 5, 1));
            assertArrayEquals(want.toFloatArray(), Npy.read(out).toFloatArray(), 1e-6f);
        }
        assertEquals(List.of("a", "b", "c", "d", "e"), Files.readAllLines(dir.resolve("out/qw.ids.txt")));

        // flags override the stored options
        Run all = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--whitenv", "8", "--out",
                dir.resolve("q8.npy").toString(), "--quiet");
        assertEquals(0, all.rc(), all.toString());
        assertEquals("", all.out());
        try (Tensor t = Npy.read(dir.resolve("q8.npy"))) {
            assertArrayEquals(new int[] {5, 8}, t.shape());
        }
    }

    @Test
    void moreComponentsThanTheWhiteningHasAreReportedAsTheNumberKept() throws IOException {
        Path w = dir.resolve("w.safetensors");
        Run learn = run("whiten", "--learn", train.toString(), "--out", w.toString(), "--whitenv", "100");
        assertEquals(0, learn.rc(), learn.toString());
        assertTrue(learn.out().contains("whitenv 8,"), learn.out());
        assertEquals("whitenv 100 is more than the whitening's 8 components: keeping all 8\n", learn.err());
        assertEquals(8, WhiteningFile.read(w).get("learned").options().components(), "stored as the number kept");

        Path out = dir.resolve("q100.npy");
        Run apply = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--whitenv", "100",
                "--out", out.toString());
        assertEquals(0, apply.rc(), apply.toString());
        assertTrue(apply.out().contains("5x8 float32, whitened with whitenp 0.25, whitenv 8, whitenm"), apply.out());
        assertEquals("whitenv 100 is more than the whitening's 8 components: keeping all 8\n", apply.err());
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor want = PcaWhitening.learn(Npy.read(train)).apply(Npy.read(queries),
                    new WhiteningOptions(0.25, 8, 1));
            assertArrayEquals(want.toFloatArray(), Npy.read(out).toFloatArray(), 1e-6f);
        }
        Run quiet = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--whitenv", "100",
                "--out", out.toString(), "--quiet");
        assertEquals(0, quiet.rc(), quiet.toString());
        assertEquals("", quiet.out() + quiet.err());
    }

    @Test
    void theReferenceCheckpointsPcaAppliesWithTheReferenceDefaults() throws IOException {
        Path ckpt = ImageFixtures.path("whiten/reference_pca/retrieval_zip.pt");
        Path six = dir.resolve("six.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(six, descriptors(new Random(3), 4, 6));
        }
        Path out = dir.resolve("w6.npy");
        Run r = run("whiten", "--apply", six.toString(), "--whitening", ckpt.toString(), "--whitening-name",
                "Landmarks_clean", "--out", out.toString());
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.out().contains("whitenp 0.25, whitenv all, whitenm 1.0"), r.out());
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor want = PcaWhitening.of(WhiteningFile.read(ckpt).get("Landmarks_clean").pca())
                    .apply(Npy.read(six), WhiteningOptions.DEFAULTS);
            assertArrayEquals(want.toFloatArray(), Npy.read(out).toFloatArray(), 1e-6f);
        }
        Run wrongName = run("whiten", "--apply", six.toString(), "--whitening", ckpt.toString(), "--whitening-name",
                "Paris", "--out", out.toString());
        assertEquals(1, wrongName.rc());
        assertTrue(wrongName.err().contains("[Landmarks_clean], not 'Paris'"), wrongName.err());
        Run wrongDim = run("whiten", "--apply", queries.toString(), "--whitening", ckpt.toString(), "--out",
                out.toString());
        assertEquals(1, wrongDim.rc());
        assertTrue(wrongDim.err().contains("8-d descriptors") && wrongDim.err().contains("6-d"), wrongDim.err());
    }

    /** Whitened descriptors written over the ones read (or over them through a link) are refused. */
    @Test
    void theOutputCannotReplaceTheInput() throws IOException {
        Path w = dir.resolve("w.safetensors");
        assertEquals(0, run("whiten", "--learn", train.toString(), "--out", w.toString(), "--quiet").rc());
        byte[] before = Files.readAllBytes(queries);
        Run same = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--out",
                queries.toString());
        assertEquals(2, same.rc(), same.toString());
        assertTrue(same.err().startsWith("dir4j whiten: --out " + queries + " is --apply " + queries
                + ": writing it would replace an input; name another file"), same.err());
        Path link = Files.createSymbolicLink(dir.resolve("link.npy"), queries);
        Run viaLink = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--out",
                dir.resolve("sub/../link.npy").toString());
        assertEquals(2, viaLink.rc(), viaLink.toString());
        Path hard = Files.createLink(dir.resolve("hard.npy"), queries);
        Run viaHardLink = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--out",
                hard.toString());
        assertEquals(2, viaHardLink.rc(), viaHardLink.toString());
        assertArrayEquals(before, Files.readAllBytes(queries));
        assertTrue(Files.isSymbolicLink(link));
    }

    @Test
    void badCommandLinesExitWithTwoAndBadInputsWithOne() {
        Path w = dir.resolve("w.safetensors");
        assertEquals(2, run("whiten", "--learn", train.toString(), "--out", dir.resolve("w.npy").toString()).rc());
        assertEquals(2, run("whiten", "--learn", train.toString(), "--apply", queries.toString(), "--out",
                w.toString()).rc(), "one mode only");
        assertEquals(2, run("whiten", "--apply", queries.toString(), "--out", dir.resolve("x.npy").toString()).rc(),
                "--apply needs --whitening");
        assertEquals(2, run("whiten", "--learn", train.toString(), "--whitening", w.toString(), "--out",
                w.toString()).rc());
        assertEquals(2, run("whiten", "--learn", train.toString(), "--out", w.toString(), "--whitenv", "0").rc());
        assertEquals(2, run("whiten", "--learn", train.toString(), "--out", w.toString(), "--name", "a.b").rc());
        Run missing = run("whiten", "--learn", dir.resolve("nope.npy").toString(), "--out", w.toString());
        assertEquals(1, missing.rc());
        assertTrue(missing.err().contains("nope.npy"), missing.err());
        assertTrue(Files.notExists(w));
        CliRun.assertCudaIsRefused("whiten", "--learn", train.toString(), "--out", w.toString());
        CliRun.assertHelpDocumentsEveryOption("whiten");
    }

    /**
     * Descriptors with repeats span fewer directions than the PCA has components: learning keeps
     * the ones with variance (noted), a stored PCA's zero-variance components are left out when
     * applied, a PCA of identical rows is refused, and a descriptor that whitens to zero is an
     * error, not NaN.
     */
    @Test
    void componentsWithoutVarianceAreLeftOutAndNothingWhitensToNan() throws IOException {
        Path repeats = dir.resolve("repeats.npy");
        Path same = dir.resolve("same.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            float[] three = descriptors(new Random(3), 3, 8).toFloatArray();
            float[] rows = new float[23 * 8];
            for (int r = 0; r < 23; r++) {
                System.arraycopy(three, (r % 3) * 8, rows, r * 8, 8);
            }
            Npy.write(repeats, Tensor.of(rows, 23, 8));
            float[] five = new float[5 * 8];
            for (int r = 0; r < 5; r++) {
                System.arraycopy(three, 0, five, r * 8, 8);
            }
            Npy.write(same, Tensor.of(five, 5, 8));
        }
        Path w = dir.resolve("w.safetensors");
        Run learn = run("whiten", "--learn", repeats.toString(), "--out", w.toString());
        assertEquals(0, learn.rc(), learn.toString());
        assertTrue(learn.err().contains("(3 distinct) of dimension 8: keeping 2 components"), learn.err());
        assertTrue(learn.out().contains("(2 of its 8 components kept)") && learn.out().contains("whitenv 2"),
                learn.out());
        Path y = dir.resolve("y.npy");
        Run apply = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--out", y.toString());
        assertEquals(0, apply.rc(), apply.toString());
        try (Tensor t = Npy.read(y)) {
            assertArrayEquals(new int[] {5, 2}, t.shape());
            assertEquals(-1, FiniteValues.firstNonFinite(t));
        }
        // asking for every component of that PCA: the ones without variance are still left out
        Run all = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--whitenv", "8", "--out",
                y.toString());
        assertEquals(0, all.rc(), all.toString());
        assertTrue(all.err().contains("components from number 3 on have no variance"), all.err());
        // more than the PCA has, of which fewer have variance: one note, naming the number kept
        Run more = run("whiten", "--apply", queries.toString(), "--whitening", w.toString(), "--whitenv", "32", "--out",
                y.toString());
        assertEquals(0, more.rc(), more.toString());
        assertEquals("whitenv 32 is more than the whitening's 8 components, of which the first 2 have variance: "
                + "keeping those 2\n", more.err());
        try (Tensor t = Npy.read(y)) {
            assertArrayEquals(new int[] {5, 2}, t.shape());
        }

        Run identical = run("whiten", "--learn", same.toString(), "--out", dir.resolve("x.safetensors").toString());
        assertEquals(1, identical.rc(), identical.toString());
        assertTrue(identical.err().contains("are all the same"), identical.err());

        // a PCA of two opposite rows has one component, e1; a descriptor orthogonal to it whitens to exactly zero
        Path two = dir.resolve("two.npy");
        Path mean = dir.resolve("mean.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            float[] ab = new float[16];
            ab[0] = 1;
            ab[8] = -1;
            float[] m = new float[8];
            m[1] = 1;
            Npy.write(two, Tensor.of(ab, 2, 8));
            Npy.write(mean, Tensor.of(m, 1, 8));
        }
        Path w2 = dir.resolve("w2.safetensors");
        assertEquals(0, run("whiten", "--learn", two.toString(), "--out", w2.toString(), "--quiet").rc());
        Run zero = run("whiten", "--apply", mean.toString(), "--whitening", w2.toString(), "--out",
                dir.resolve("z.npy").toString());
        assertEquals(1, zero.rc(), zero.toString());
        assertTrue(zero.err().contains("descriptor 0 whitens to zero"), zero.err());
        assertFalse(Files.exists(dir.resolve("z.npy")));
    }
}
