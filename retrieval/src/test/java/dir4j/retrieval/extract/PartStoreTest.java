package dir4j.retrieval.extract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a refused resume says what changed between the parts' extraction and this one, and what to
 * do; the order that keeps a descriptor file and its ids a pair through a kill; write failures
 * naming the file.
 */
class PartStoreTest {
    /**
     * The way out of a refused resume names the caller's option only when it offers one (dir4j
     * extract: --no-resume; eval has none): never another command's.
     */
    @Test
    void aRefusedResumeSaysHowToStartOverInTheCallersTerms(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("feats.npy");
        Path parts = Files.createDirectories(dir.resolve("feats.npy.parts"));
        Files.writeString(parts.resolve(PartStore.MANIFEST), "dir4j extraction parts v1\nimages=9\n");
        Files.write(parts.resolve("part-000000.npy"), new byte[0]);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        Map<String, String> manifest = Map.of("images", "4");
        IOException plain = assertThrows(IOException.class,
                () -> new PartStore(out, manifest, 8, quiet, ExtractionOptions.Remedies.NONE).open(true));
        assertEquals(parts + " holds parts of a different extraction: images (was 9, now 4). Delete the folder to "
                + "start over", plain.getMessage());
        IOException extract = assertThrows(IOException.class, () -> new PartStore(out, manifest, 8, quiet,
                new ExtractionOptions.Remedies("--on-error skip", "--no-resume")).open(true));
        assertTrue(extract.getMessage().endsWith(". Delete the folder or rerun with --no-resume to start over"),
                extract.getMessage());
    }

    /** An unreadable image's error offers skipping only where the caller can skip. */
    @Test
    void anImageFailureOffersSkippingOnlyWhereTheCallerCanSkip() {
        String decoder = "q.jpg: corrupt or truncated JPEG data: premature end";
        assertEquals(decoder, FeatureExtractor.imageFailure(decoder, ExtractionOptions.Remedies.NONE));
        assertEquals(decoder + " (fix or remove the image, or rerun with --on-error skip to leave unreadable images "
                + "out)", FeatureExtractor.imageFailure(decoder, new ExtractionOptions.Remedies("--on-error skip",
                "--no-resume")));
        assertEquals(ExtractionOptions.Remedies.NONE, ExtractionOptions.defaults().remedies());
    }

    @Test
    void aChangeIsShownWhereTheValuesDifferNotFromTheirCommonStart() {
        String was = "preprocessing=maxSide=128 upscale=true filter=BILINEAR means=[0.485, 0.456, 0.406] "
                + "stds=[0.229, 0.224, 0.225]; scales=[1.0]; scalePoolingP=3.0";
        String now = was.replace("scalePoolingP=3.0", "scalePoolingP=1.0");
        // the first difference is at the 3/1; shown from 20 characters before it
        assertEquals("(was ...1.0]; scalePoolingP=3.0, now ...1.0]; scalePoolingP=1.0)",
                PartStore.change(was, now));
        assertEquals("(was 32, now 16)", PartStore.change("32", "16"));
        assertEquals("(was absent, now 16)", PartStore.change(null, "16"));
        String net = "Options[arch=resnet18, outDim=32] weights sha256 " + "ab".repeat(32);
        String other = net.substring(0, net.length() - 1) + "c";
        String shown = PartStore.change(net, other);
        assertEquals("(was ..." + net.substring(net.length() - 21) + ", now ..." + other.substring(other.length() - 21)
                + ")", shown);
    }

    static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    /** A store of 2-d descriptors for ids a, b (part 0) and c (part 1), both parts written. */
    private static PartStore written(Path out) throws IOException {
        PartStore s = new PartStore(out, Map.of("images", "3"), 2, QUIET, ExtractionOptions.Remedies.NONE);
        s.open(true);
        s.write(0, new float[] {1, 2, 3, 4}, List.of("a", "b"), List.of());
        s.write(1, new float[] {5, 6}, List.of("c"), List.of());
        return s;
    }

    /**
     * A descriptor file given as a symbolic link (to a larger disk, say) is assembled where the
     * link points, the link kept, as AtomicFiles.throughLinks does for other outputs: deleting the
     * previous .npy must not delete the link and leave the old file at the far end.
     */
    @Test
    void anOutputGivenAsALinkIsAssembledWhereItPoints(@TempDir Path dir) throws IOException {
        Path far = Files.createDirectories(dir.resolve("big"));
        Path real = far.resolve("feats.npy");
        try (Tensor old = Tensor.of(new float[] {9, 9}, 1, 2)) {
            Npy.write(real, old);
        }
        Path out = Files.createSymbolicLink(dir.resolve("feats.npy"), real);
        written(out).assemble(2, true);
        assertTrue(Files.isSymbolicLink(out), "the link is kept");
        assertEquals(real, Files.readSymbolicLink(out));
        assertPair(out, new float[] {1, 2, 3, 4, 5, 6}, List.of("a", "b", "c"));
        try (Tensor t = Npy.read(real)) {
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, t.toFloatArray(), 0f, "written where the link points");
        }
    }

    private static void assertPair(Path out, float[] values, List<String> ids) throws IOException {
        try (Tensor t = Npy.read(out)) {
            assertArrayEquals(new int[] {ids.size(), 2}, t.shape());
            assertArrayEquals(values, t.toFloatArray(), 0f);
        }
        assertEquals(ids, Files.readAllLines(PartStore.idsFile(out)));
    }

    /**
     * The .npy and its ids file are replaced in two steps; a kill at any step of the joining
     * (simulated by a failure there) never leaves a descriptor file beside ids that are not its
     * own: before the renames the previous pair is intact, after the first one there is no .npy
     * until its ids are in place. A rerun then joins the kept parts into the right pair, from a
     * mismatched pair of an older version too.
     */
    @Test
    void aKillWhileJoiningNeverLeavesAMismatchedPairAndARerunRepairsIt(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("feats.npy").toAbsolutePath();
        Path ids = PartStore.idsFile(out);
        String[][] steps = {{"write", "assembled.npy"}, {"write", "assembled.ids.txt"}, {"publish", "feats.ids.txt"},
            {"publish", "feats.npy"}};
        for (String[] step : steps) {
            // the previous run's pair: one row, id "old"
            try (Tensor t = Tensor.of(new float[] {9, 9}, 1, 2)) {
                Npy.write(out, t);
            }
            Files.writeString(ids, "old\n");
            PartStore s = written(out);
            s.fault = (what, file) -> {
                if (what.equals(step[0]) && file.getFileName().toString().equals(step[1])) {
                    throw new IOException("killed");
                }
            };
            IOException e = assertThrows(IOException.class, () -> s.assemble(2, true), String.join(" ", step));
            assertTrue(e.getMessage().contains("/" + step[1] + ": killed ("), e.getMessage());
            if (step[0].equals("write")) {
                assertPair(out, new float[] {9, 9}, List.of("old")); // nothing replaced yet
            } else {
                assertFalse(Files.exists(out), String.join(" ", step) + ": no descriptors until their ids are in place");
                assertEquals(step[1].equals("feats.npy") ? List.of("a", "b", "c") : List.of("old"),
                        Files.readAllLines(ids));
            }
            assertTrue(Files.exists(s.dir().resolve("part-000001.npy")), "the parts are kept");

            PartStore again = new PartStore(out, Map.of("images", "3"), 2, QUIET, ExtractionOptions.Remedies.NONE);
            again.open(true);
            assertTrue(again.isDone(0, List.of("a", "b")) && again.isDone(1, List.of("c")));
            again.assemble(2, true);
            assertPair(out, new float[] {1, 2, 3, 4, 5, 6}, List.of("a", "b", "c"));
            assertFalse(Files.exists(again.dir()), "parts removed");
        }

        // what an older version could leave: 3 rows beside 2 stale ids, and the parts
        written(out);
        Files.writeString(ids, "a\nb\n");
        PartStore again = new PartStore(out, Map.of("images", "3"), 2, QUIET, ExtractionOptions.Remedies.NONE);
        again.open(true);
        again.assemble(2, true);
        assertPair(out, new float[] {1, 2, 3, 4, 5, 6}, List.of("a", "b", "c"));
    }

    /**
     * A full disk surfaces from the channel as a bare "No space left on device" (or naming a
     * temporary file): the error names the file being written, what was being done, and that the
     * finished parts are kept. Errors that name their file already are left as they are.
     */
    @Test
    void aFullDiskNamesTheFileBeingWritten(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("feats.npy").toAbsolutePath();
        PartStore s = new PartStore(out, Map.of("images", "3"), 2, QUIET, ExtractionOptions.Remedies.NONE);
        s.open(true);
        Path parts = s.dir();
        String kept = "; free some space and rerun: the finished parts in " + parts + " are kept)";
        s.fault = (what, file) -> {
            if (file.getFileName().toString().equals("part-000000.npy")) {
                throw new IOException("No space left on device");
            }
        };
        IOException e = assertThrows(IOException.class,
                () -> s.write(0, new float[] {1, 2, 3, 4}, List.of("a", "b"), List.of()));
        assertEquals(parts.resolve("part-000000.npy") + ": no space left on device (writing a part's descriptors"
                + kept, e.getMessage());
        assertFalse(Files.exists(parts.resolve("part-000000.npy")));

        s.fault = (what, file) -> {
            if (file.getFileName().toString().equals("part-000001.ids.txt")) {
                throw new FileSystemException(parts.resolve(".part-000001.ids.txt.abc.tmp").toString(), null,
                        "No space left on device");
            }
        };
        e = assertThrows(IOException.class, () -> s.write(1, new float[] {5, 6}, List.of("c"), List.of()));
        assertEquals(parts.resolve("part-000001.ids.txt") + ": no space left on device (writing a part's ids" + kept,
                e.getMessage());

        s.fault = PartStore.Fault.NONE;
        s.write(0, new float[] {1, 2, 3, 4}, List.of("a", "b"), List.of());
        s.write(1, new float[] {5, 6}, List.of("c"), List.of());
        s.fault = (what, file) -> {
            if (file.getFileName().toString().equals("assembled.npy")) {
                throw new IOException("No space left on device");
            }
        };
        e = assertThrows(IOException.class, () -> s.assemble(2, true));
        assertEquals(parts.resolve("assembled.npy") + ": no space left on device (joining the parts into feats.npy"
                + kept, e.getMessage());
        assertFalse(Files.exists(out));

        // named already: left alone (the command words a permission error from its file)
        AccessDeniedException denied = new AccessDeniedException(parts.resolve("part-000000.npy").toString());
        assertSame(denied, s.naming(parts.resolve("part-000000.npy"), "writing", denied));
        IOException other = new IOException("Input/output error");
        assertEquals(out + ": input/output error (writing)", s.naming(out, "writing", other).getMessage());
    }
}
