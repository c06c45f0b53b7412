package dir4j.retrieval.extract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How a refused resume says what changed between the parts' extraction and this one, and what to do. */
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
}
