package dir4j.retrieval.image;

import static dir4j.retrieval.image.ImageFixtures.assertColour;
import static dir4j.retrieval.image.ImageFixtures.assertSameImage;
import static dir4j.retrieval.image.ImageFixtures.expected;
import static dir4j.retrieval.image.ImageFixtures.maxDiff;
import static dir4j.retrieval.image.ImageFixtures.meanDiff;
import static dir4j.retrieval.image.ImageFixtures.path;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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
        "rgba8", "gray_alpha", "resize_src", "palette_short", "palette2_short", "interlaced", "interlaced_rgba",
        "iccp"})
    void pngDecodesExactlyAsPil(String name) throws IOException {
        RgbImage img = ImageDecoder.read(path("images/" + name + ".png"));
        assertSameImage(name, expected("images/" + name + ".npy"), img);
    }

    /** JPEG tolerances: the largest per-channel difference and the mean one, in 8-bit levels. */
    @ParameterizedTest
    @ValueSource(strings = {"baseline", "progressive", "baseline444", "gray", "cmyk", "cmyk_no_adobe", "icc_linear",
        "ycck"})
    void jpegDecodesAsPilWithinTwoLevels(String name) throws IOException {
        RgbImage img = ImageDecoder.read(path("images/" + name + ".jpg"));
        RgbImage want = expected("images/" + name + ".npy");
        int max = maxDiff(want, img);
        double mean = meanDiff(want, img);
        assertTrue(max <= 2, name + ": max difference to PIL " + max + " levels");
        assertTrue(mean <= 0.5, name + ": mean difference to PIL " + mean + " levels");
    }

    /**
     * icc_linear.jpg is baseline.jpg's picture with a linear-RGB colour profile embedded: PIL's
     * convert('RGB') ignores it, and so does dir4j (converted through the profile, as TwelveMonkeys
     * alone does, the pixels moved by up to 73 levels).
     */
    @Test
    void anEmbeddedColourProfileIsIgnoredAsPilIgnoresIt() throws IOException {
        byte[] file = Files.readAllBytes(path("images/icc_linear.jpg"));
        byte[] stripped = ImageDecoder.withoutIccProfile(file);
        assertTrue(new String(file, StandardCharsets.ISO_8859_1).contains("ICC_PROFILE\0"), "the fixture's profile");
        assertFalse(new String(stripped, StandardCharsets.ISO_8859_1).contains("ICC_PROFILE"), "stripped");
        // the APP2 segment (marker, length, "ICC_PROFILE\0", sequence numbers, the 508-byte profile) and nothing else
        assertEquals(file.length - (2 + 2 + 12 + 2 + 508), stripped.length);
        RgbImage img = ImageDecoder.read(path("images/icc_linear.jpg"));
        assertTrue(maxDiff(expected("images/icc_linear.npy"), img) <= 2, "max difference to PIL "
                + maxDiff(expected("images/icc_linear.npy"), img));
        assertTrue(maxDiff(ImageDecoder.read(path("images/baseline.jpg")), img) <= 1, "same picture as baseline.jpg");
    }

    /**
     * A profile split over two APP2 segments, with APP2 segments that are no profile (MPF, as
     * cameras write, and FlashPix) around them, in a progressive file: exactly the two profile
     * segments go, the others stay byte for byte, and the pixels are the progressive file's own.
     */
    @Test
    void aProfileInSeveralSegmentsOfAProgressiveFileGoesAndOtherApp2SegmentsStay(@TempDir Path tmp)
            throws IOException {
        byte[] icc = Files.readAllBytes(path("images/icc_linear.jpg"));
        byte[] profile = null;
        for (int p = 2; profile == null; ) { // the fixture's one ICC segment
            int end = p + 2 + ((icc[p + 2] & 0xff) << 8 | (icc[p + 3] & 0xff));
            if ((icc[p + 1] & 0xff) == 0xe2) {
                profile = java.util.Arrays.copyOfRange(icc, p + 4 + 14, end);
            }
            p = end;
        }
        int half = profile.length / 2;
        byte[] mpf = app2("MPF\0", new byte[] {'I', 'I', 42, 0, 8, 0, 0, 0});
        byte[] fpxr = app2("FPXR\0", new byte[] {0, 1, 2, 3});
        byte[] first = app2("ICC_PROFILE\0", concat(new byte[] {1, 2}, java.util.Arrays.copyOfRange(profile, 0, half)));
        byte[] second = app2("ICC_PROFILE\0",
                concat(new byte[] {2, 2}, java.util.Arrays.copyOfRange(profile, half, profile.length)));
        byte[] progressive = Files.readAllBytes(path("images/progressive.jpg"));
        byte[] rest = java.util.Arrays.copyOfRange(progressive, 2, progressive.length);
        byte[] soi = {(byte) 0xff, (byte) 0xd8};
        byte[] file = concat(soi, mpf, first, fpxr, second, rest);
        org.junit.jupiter.api.Assertions.assertArrayEquals(concat(soi, mpf, fpxr, rest),
                ImageDecoder.withoutIccProfile(file));
        Path f = Files.write(tmp.resolve("profiled_progressive.jpg"), file);
        assertEquals(0, maxDiff(ImageDecoder.read(path("images/progressive.jpg")), ImageDecoder.read(f)));
    }

    private static byte[] app2(String signature, byte[] data) {
        byte[] payload = concat(signature.getBytes(StandardCharsets.ISO_8859_1), data);
        return concat(new byte[] {(byte) 0xff, (byte) 0xe2, (byte) ((payload.length + 2) >> 8),
            (byte) (payload.length + 2)}, payload);
    }

    private static byte[] concat(byte[]... parts) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    /**
     * The palette's size is looked up by walking the PNG's chunks: a chunk claiming nearly 4 GiB
     * before the palette ends the walk (no palette found), not an index wrapped past 2^31.
     */
    @Test
    void aHugeChunkLengthBeforeThePaletteEndsTheWalk() {
        byte[] png = concat(new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a},
                new byte[] {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 3, 0, 0, 0, 0, 0, 0, 0},
                new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xf0, 'z', 'z', 'z', 'z', 0, 0, 0, 0},
                new byte[] {0, 0, 0, 3, 'P', 'L', 'T', 'E', 1, 2, 3, 0, 0, 0, 0});
        assertEquals(0, ImageDecoder.pngPaletteEntries(png));
        byte[] plain = concat(java.util.Arrays.copyOf(png, 33), java.util.Arrays.copyOfRange(png, 45, png.length));
        assertEquals(1, ImageDecoder.pngPaletteEntries(plain), "the same file without that chunk");
    }

    @Test
    void jpegsWithoutAColourProfileAreNotCopied() throws IOException {
        for (String name : List.of("baseline", "progressive", "cmyk", "gray", "exif_6")) {
            byte[] file = Files.readAllBytes(path("images/" + name + ".jpg"));
            assertSame(file, ImageDecoder.withoutIccProfile(file), name);
        }
        byte[] header = Files.readAllBytes(path("images/header_only.jpg"));
        assertSame(header, ImageDecoder.withoutIccProfile(header), "a cut file is left to the reader");
        byte[] odd = {(byte) 0xff, (byte) 0xd8, (byte) 0xff, (byte) 0xe2, 0x7f, 0x7f, 'I', 'C', 'C'};
        assertSame(odd, ImageDecoder.withoutIccProfile(odd), "a segment longer than the file is left alone");
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

    /**
     * probe refuses, from the first bytes, what read refuses for the same reason, with read's
     * message; what only decoding shows (truncation) passes it, and so do good images.
     */
    @Test
    void probeGivesReadsMessageForWhatTheFirstBytesShow(@TempDir Path tmp) throws IOException {
        Path link = tmp.resolve("link.jpg");
        Files.createSymbolicLink(link, tmp.resolve("gone.jpg"));
        List<Path> bads = new java.util.ArrayList<>(List.of(path("images/empty.jpg"), path("images/not_an_image.jpg"),
                path("images/picture.gif"), tmp.resolve("missing.jpg"), tmp, link));
        Path statedEmpty = Path.of("/proc/self/status"); // a stated size of 0 (as on some file systems), text inside
        if (Files.isReadable(statedEmpty) && Files.size(statedEmpty) == 0) {
            bads.add(statedEmpty);
        }
        for (Path bad : bads) {
            IOException read = assertThrows(IOException.class, () -> ImageDecoder.read(bad));
            IOException probe = assertThrows(IOException.class, () -> ImageDecoder.probe(bad));
            assertEquals(read.getMessage(), probe.getMessage());
        }
        assertEquals(link + ": no such file (a symbolic link to " + tmp.resolve("gone.jpg") + ", which does not exist)",
                assertThrows(IOException.class, () -> ImageDecoder.probe(link)).getMessage());
        assertEquals(path("images/picture.gif") + ": a GIF image; dir4j reads JPEG and PNG only (convert it first)",
                assertThrows(IOException.class, () -> ImageDecoder.probe(path("images/picture.gif"))).getMessage());
        for (String good : List.of("baseline.jpg", "cmyk.jpg", "rgb8.png", "gray1.png", "truncated.jpg",
                "truncated.png")) {
            ImageDecoder.probe(path("images/" + good)); // does not throw
        }
    }

    @Test
    void imagesOverThePixelLimitAreRefusedFromTheHeader() {
        IOException e = assertThrows(IOException.class, () -> ImageDecoder.read(path("images/baseline.jpg"),
                ImageDecoder.Options.defaults().withMaxPixels(1000)));
        assertTrue(e.getMessage().contains("40x30 = 1200 pixels, over the limit of 1000"), e.getMessage());
    }

    /**
     * A 4000x4000 PNG (under the default pixel limit; a few tens of kilobytes, since it is one
     * colour) needs about 96 MiB of heap to decode: a JVM of 64 MiB refuses it naming the image and
     * the fix, from the header, instead of an OutOfMemoryError naming nothing; a JVM with room
     * decodes it, and one with room for one at a time says which of three decoding at once did not
     * fit, not that their data is corrupt.
     */
    @Test
    void anImageLargerThanTheHeapIsRefusedNamingItNotAnOutOfMemoryError(@TempDir Path tmp)
            throws IOException, InterruptedException {
        byte[] png = flatPng(4000, 4000, 10, 20, 30);
        assertTrue(png.length < 200_000, png.length + " bytes");
        RgbImage img = ImageDecoder.decode(png, "flat.png", ImageDecoder.Options.defaults());
        assertEquals(4000, img.width());
        assertColour("flat", img, 3999, 3999, 10, 20, 30, 0);
        Path file = tmp.resolve("flat.png");
        Files.write(file, png);
        String out = decodeInSmallHeap(64, file, 1);
        assertTrue(out.contains("IOException: " + file + ": 4000x4000 pixels need at least 91 MiB of Java heap to "
                + "decode, more than this JVM's "), out);
        assertTrue(out.contains("(-Xmx); give it more heap or lower the pixel limit"), out);
        assertTrue(out.strip().endsWith("then decoded 20x10"), out);
        // room for one, not for three at once: those that find no room say so (the JDK's PNG reader wraps
        // the OutOfMemoryError in an IIOException, which is not "corrupt data")
        out = decodeInSmallHeap(128, file, 3);
        assertTrue(out.contains("IOException: " + file + ": 4000x4000 pixels did not fit in the free Java heap"), out);
        for (String line : out.strip().split("\n")) {
            assertTrue(line.startsWith("decoded RgbImage 4000x4000") || line.startsWith("then decoded 20x10")
                    || line.contains("pixels did not fit in the free Java heap") || line.startsWith("WARNING"), out);
        }
    }

    /**
     * A grayscale image's decoder raster is one byte a pixel, not three: a 6000x6000 grayscale PNG
     * needs about 137 MiB (that raster and the RGB copy), which a JVM of 190 MiB decodes; it was
     * refused there, counted as 206 MiB at an RGB raster's six bytes a pixel.
     */
    @Test
    void aGrayscaleImageIsCountedAtItsOwnRasterNotRefusedAsIfRgb(@TempDir Path tmp)
            throws IOException, InterruptedException {
        Path file = tmp.resolve("gray.png");
        Files.write(file, flatPng(6000, 6000, 0, 77));
        String out = decodeInSmallHeap(190, file, 1);
        assertTrue(out.contains("decoded RgbImage 6000x6000"), out);
        assertTrue(out.strip().endsWith("then decoded 20x10"), out);
    }

    /** What {@link DecodeInSmallHeap} prints in a JVM of {@code heapMiB}. */
    private static String decodeInSmallHeap(int heapMiB, Path file, int atOnce)
            throws IOException, InterruptedException {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + heapMiB + "m", "-cp", System.getProperty("java.class.path"), DecodeInSmallHeap.class.getName(),
                file.toString(), Integer.toString(atOnce));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    /**
     * Decodes the file named by that many threads at once (reporting each outcome), then a small
     * image: the JVM stays usable.
     */
    static final class DecodeInSmallHeap {
        public static void main(String[] args) throws Exception {
            int threads = Integer.parseInt(args[1]);
            java.util.concurrent.CyclicBarrier together = new java.util.concurrent.CyclicBarrier(threads);
            List<Thread> running = new java.util.ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread decoder = new Thread(() -> {
                    String outcome;
                    try {
                        together.await();
                        outcome = "decoded " + ImageDecoder.read(Path.of(args[0]));
                    } catch (Throwable e) {
                        outcome = e.toString();
                    }
                    synchronized (DecodeInSmallHeap.class) {
                        System.out.println(outcome);
                    }
                });
                decoder.start();
                running.add(decoder);
            }
            for (Thread decoder : running) {
                decoder.join();
            }
            RgbImage small = ImageDecoder.decode(flatPng(20, 10, 1, 2, 3), "small.png",
                    ImageDecoder.Options.defaults());
            System.out.println("then decoded " + small.width() + "x" + small.height());
        }
    }

    /** An 8-bit RGB PNG of one colour. */
    static byte[] flatPng(int w, int h, int r, int g, int b) throws IOException {
        return flatPng(w, h, 2, r, g, b);
    }

    /** An 8-bit PNG of one colour: colour type 2 (RGB, three values) or 0 (grayscale, one). */
    static byte[] flatPng(int w, int h, int colourType, int... value) throws IOException {
        java.io.ByteArrayOutputStream idat = new java.io.ByteArrayOutputStream();
        try (var z = new java.util.zip.DeflaterOutputStream(idat, new java.util.zip.Deflater(9))) {
            byte[] row = new byte[1 + value.length * w]; // filter 0, then the pixels
            for (int x = 0; x < w; x++) {
                for (int c = 0; c < value.length; c++) {
                    row[1 + value.length * x + c] = (byte) value[c];
                }
            }
            for (int y = 0; y < h; y++) {
                z.write(row);
            }
        }
        java.nio.ByteBuffer header = java.nio.ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8)
                .put((byte) colourType);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        chunk(out, "IHDR", header.array());
        chunk(out, "IDAT", idat.toByteArray());
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(java.io.ByteArrayOutputStream out, String type, byte[] data) throws IOException {
        byte[] t = type.getBytes(StandardCharsets.ISO_8859_1);
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        crc.update(t);
        crc.update(data);
        out.write(java.nio.ByteBuffer.allocate(4).putInt(data.length).array());
        out.write(t);
        out.write(data);
        out.write(java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
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
