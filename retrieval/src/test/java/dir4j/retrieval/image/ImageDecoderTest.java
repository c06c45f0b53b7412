package dir4j.retrieval.image;

import static dir4j.retrieval.image.ImageFixtures.assertColour;
import static dir4j.retrieval.image.ImageFixtures.assertSameImage;
import static dir4j.retrieval.image.ImageFixtures.expected;
import static dir4j.retrieval.image.ImageFixtures.maxDiff;
import static dir4j.retrieval.image.ImageFixtures.meanDiff;
import static dir4j.retrieval.image.ImageFixtures.path;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Decoded pixels against PIL's {@code Image.open(f).convert('RGB')} (fixtures/images, made by
 * tests/fixtures/make_image_fixtures.py): PNG exactly, JPEG within a stated tolerance (the
 * decoders' IDCT and chroma upsampling may differ by a level or two).
 */
class ImageDecoderTest {

    @ParameterizedTest
    @ValueSource(strings = {"rgb8", "rgb16", "gray8", "gray16", "gray4", "gray1", "palette4", "palette_trns",
        "rgba8", "gray_alpha", "resize_src"})
    void pngDecodesExactlyAsPil(String name) throws IOException {
        RgbImage img = ImageDecoder.read(path("images/" + name + ".png"));
        assertSameImage(name, expected("images/" + name + ".npy"), img);
    }

    /** JPEG tolerances: the largest per-channel difference and the mean one, in 8-bit levels. */
    @ParameterizedTest
    @ValueSource(strings = {"baseline", "progressive", "baseline444", "gray", "cmyk", "cmyk_no_adobe"})
    void jpegDecodesAsPilWithinTwoLevels(String name) throws IOException {
        RgbImage img = ImageDecoder.read(path("images/" + name + ".jpg"));
        RgbImage want = expected("images/" + name + ".npy");
        int max = maxDiff(want, img);
        double mean = meanDiff(want, img);
        assertTrue(max <= 2, name + ": max difference to PIL " + max + " levels");
        assertTrue(mean <= 0.5, name + ": mean difference to PIL " + mean + " levels");
    }

    @Test
    void progressiveAndBaselineJpegsOfOnePictureAgree() throws IOException {
        RgbImage base = ImageDecoder.read(path("images/baseline.jpg"));
        RgbImage prog = ImageDecoder.read(path("images/progressive.jpg"));
        // same quantisation tables, so the same coefficients: identical pixels
        assertTrue(maxDiff(base, prog) <= 1, "max difference " + maxDiff(base, prog));
        RgbImage truth = expected("images/gradient_source.npy");
        assertTrue(meanDiff(truth, base) < 4, "baseline JPEG far from its source: " + meanDiff(truth, base));
    }

    /**
     * The stored picture is red top-left, green top-right, blue bottom-left, white bottom-right
     * (32×16). Where red shows after each EXIF orientation (PIL's exif_transpose):
     * 1 TL, 2 TR, 3 BR, 4 BL, 5 TL, 6 TR, 7 BR, 8 BL; 5..8 swap width and height.
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8})
    void exifOrientationMovesTheRedCornerWherePilPutsIt(int orientation) throws IOException {
        RgbImage img = ImageDecoder.read(path("images/exif_" + orientation + ".jpg"));
        boolean swapped = orientation >= 5;
        assertEquals(swapped ? 16 : 32, img.width(), "width");
        assertEquals(swapped ? 32 : 16, img.height(), "height");
        int[][] corners = {{0, 0}, {img.width() - 1, 0}, {img.width() - 1, img.height() - 1}, {0, img.height() - 1}};
        int[] redCorner = {0, 0, 1, 2, 3, 0, 1, 2, 3}; // index into corners (TL, TR, BR, BL) per orientation
        int[] red = corners[redCorner[orientation]];
        assertColour("orientation " + orientation + " red corner", img, red[0], red[1], 255, 0, 0, 12);
        RgbImage pil = expected("images/exif_" + orientation + ".npy");
        for (int[] c : corners) {
            assertColour("orientation " + orientation + " vs PIL", img, c[0], c[1],
                    pil.get(c[0], c[1], 0), pil.get(c[0], c[1], 1), pil.get(c[0], c[1], 2), 4);
        }
        assertTrue(maxDiff(pil, img) <= 4, "orientation " + orientation + ": max difference to PIL "
                + maxDiff(pil, img));
    }

    @Test
    void exifOrientationOfAPngEXIfChunkIsApplied() throws IOException {
        RgbImage img = ImageDecoder.read(path("images/exif6.png"));
        assertSameImage("exif6.png", expected("images/exif6_png.npy"), img);
        assertColour("red after rotating 90° clockwise", img, img.width() - 1, 0, 255, 0, 0, 0);
    }

    @Test
    void exifOrientationCanBeIgnored() throws IOException {
        RgbImage img = ImageDecoder.read(path("images/exif_6.jpg"), ImageDecoder.Options.defaults()
                .withExifOrientation(false));
        assertEquals(32, img.width());
        assertEquals(16, img.height());
        assertColour("stored red corner", img, 0, 0, 255, 0, 0, 12);
    }

    @Test
    void badFilesAreClearErrorsNamingTheFile(@TempDir Path tmp) throws IOException {
        assertError(path("images/empty.jpg"), "empty");
        assertError(path("images/not_an_image.jpg"), "not a JPEG or PNG");
        assertError(path("images/picture.gif"), "GIF");
        assertError(path("images/truncated.jpg"), "truncated");
        assertError(path("images/header_only.jpg"), "truncated");
        assertError(path("images/truncated.png"), "truncated");
        assertError(tmp.resolve("missing.jpg"), "no such file");
        assertError(tmp, "directory");
    }

    @Test
    void imagesOverThePixelLimitAreRefusedFromTheHeader() {
        IOException e = assertThrows(IOException.class, () -> ImageDecoder.read(path("images/baseline.jpg"),
                ImageDecoder.Options.defaults().withMaxPixels(1000)));
        assertTrue(e.getMessage().contains("40x30 = 1200 pixels, over the limit of 1000"), e.getMessage());
    }

    /** Random byte damage never crashes, hangs or escapes as anything but an IOException. */
    @Test
    void corruptedJpegAndPngBytesNeverCrashOrHang() throws IOException {
        byte[] jpeg = Files.readAllBytes(path("images/baseline.jpg"));
        byte[] png = Files.readAllBytes(path("images/rgb8.png"));
        Random rng = new Random(7);
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            for (int trial = 0; trial < 200; trial++) {
                byte[] src = trial % 2 == 0 ? jpeg : png;
                byte[] bad = src.clone();
                int flips = 1 + rng.nextInt(8);
                for (int i = 0; i < flips; i++) {
                    int at = (trial % 2 == 0 ? 2 : 8) + rng.nextInt(bad.length - (trial % 2 == 0 ? 2 : 8));
                    bad[at] = (byte) rng.nextInt(256);
                }
                try {
                    RgbImage img = ImageDecoder.decode(bad, "trial" + trial, ImageDecoder.Options.defaults());
                    assertTrue(img.width() > 0 && img.height() > 0);
                } catch (IOException e) {
                    assertTrue(e.getMessage().startsWith("trial" + trial + ": "), e.getMessage());
                }
            }
        });
    }

    private static void assertError(Path file, String problem) {
        IOException e = assertThrows(IOException.class, () -> ImageDecoder.read(file));
        assertTrue(e.getMessage().startsWith(file.toString()), "message should start with the file: " + e.getMessage());
        assertTrue(e.getMessage().toLowerCase().contains(problem.toLowerCase()),
                "message should say '" + problem + "': " + e.getMessage());
    }
}
