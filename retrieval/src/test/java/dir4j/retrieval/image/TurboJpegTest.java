package dir4j.retrieval.image;

import static dir4j.retrieval.image.ImageFixtures.assertSameImage;
import static dir4j.retrieval.image.ImageFixtures.expected;
import static dir4j.retrieval.image.ImageFixtures.path;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * libjpeg-turbo's decoding (where this machine has libturbojpeg) against PIL's pixels
 * (tests/fixtures/make_image_fixtures.py) and the JDK path's, its refusals, and the setting.
 */
class TurboJpegTest {
    private static final TurboJpeg.SizeCheck ANY_SIZE = (w, h) -> { };

    private static TurboJpeg turbo() {
        Optional<TurboJpeg> t = TurboJpeg.find(null);
        Assumptions.assumeTrue(t.isPresent(), "no libturbojpeg on this machine");
        return t.get();
    }

    /** YCbCr (4:2:0, 4:4:4, progressive), grey, a colour profile, EXIF-carrying files: PIL's pixels exactly. */
    @Test
    void decodesAsPilDoesAndAsTheJdkPathDoes() throws IOException {
        TurboJpeg t = turbo();
        for (String name : List.of("baseline", "progressive", "baseline444", "gray", "icc_linear", "exif_1")) {
            byte[] jpeg = Files.readAllBytes(path("images/" + name + ".jpg"));
            RgbImage got = t.decode(jpeg, name, ANY_SIZE);
            assertSameImage(name + " against PIL", expected("images/" + name + ".npy"), got);
            assertSameImage(name + " against the JDK path", ImageDecoder.decodeWithImageIo(
                    jpeg, name, ImageFormat.JPEG, ImageDecoder.Options.defaults().withExifOrientation(false)), got);
        }
    }

    /** CMYK and YCCK samples, and headers it cannot read, are the JDK path's to convert or refuse. */
    @Test
    void leavesInkSamplesAndUnreadableHeadersToTheJdkPath() throws IOException {
        TurboJpeg t = turbo();
        for (String name : List.of("cmyk", "cmyk_no_adobe", "ycck", "header_only", "not_an_image")) {
            assertNull(t.decode(Files.readAllBytes(path("images/" + name + ".jpg")), name, ANY_SIZE), name);
        }
    }

    @Test
    void truncatedAndCorruptDataAreErrorsNamingTheImage() throws IOException {
        TurboJpeg t = turbo();
        byte[] jpeg = Files.readAllBytes(path("images/baseline.jpg"));
        int sos = 0;
        while (!(jpeg[sos] == (byte) 0xFF && jpeg[sos + 1] == (byte) 0xDA)) {
            sos++;
        }
        // cut in the middle of the scan (truncated.jpg is cut inside its tables: the JDK path's)
        byte[] half = java.util.Arrays.copyOf(jpeg, (sos + jpeg.length) / 2);
        IOException cut = assertThrows(IOException.class, () -> t.decode(half, "cut.jpg", ANY_SIZE));
        assertTrue(cut.getMessage().startsWith("cut.jpg: truncated JPEG data ("), cut.getMessage());
        assertNull(t.decode(Files.readAllBytes(path("images/truncated.jpg")), "truncated.jpg", ANY_SIZE));
        // the scan's entropy-coded data overwritten from its middle on
        for (int i = (sos + jpeg.length) / 2; i < jpeg.length - 2; i++) {
            jpeg[i] = (byte) 0xFF;
        }
        IOException bad = assertThrows(IOException.class, () -> t.decode(jpeg, "bad.jpg", ANY_SIZE));
        assertTrue(bad.getMessage().startsWith("bad.jpg: "), bad.getMessage());
        // junk before the scan's marker: TurboJPEG's header reader stops at the warning ("3 extraneous bytes
        // before marker 0xda"), so the JDK path decodes it, whole
        byte[] base = Files.readAllBytes(path("images/baseline.jpg"));
        byte[] junk = new byte[base.length + 3];
        System.arraycopy(base, 0, junk, 0, sos);
        System.arraycopy(base, sos, junk, sos + 3, base.length - sos);
        assertNull(t.decode(junk, "junk.jpg", ANY_SIZE));
        assertSameImage("extraneous bytes before SOS", expected("images/baseline.npy"),
                ImageDecoder.decode(junk, "junk.jpg", ImageDecoder.Options.defaults()));
        // the size is checked before anything is decoded
        IOException big = assertThrows(IOException.class, () -> t.decode(Files.readAllBytes(
                path("images/baseline.jpg")), "b.jpg", (w, h) -> {
                    throw new IOException("b.jpg: " + w + "x" + h + " refused");
                }));
        RgbImage want = expected("images/baseline.npy");
        assertEquals("b.jpg: " + want.width() + "x" + want.height() + " refused", big.getMessage());
    }

    /**
     * TurboJPEG keeps only the first warning's text: a scan with junk before a restart marker (a
     * warning, "extraneous bytes") that is then cut short (a second warning, "premature end") read
     * as a whole image, grey below the cut, where the JDK path and PIL ("image file is truncated")
     * refuse it. Data that decodes with such a warning goes to the JDK path, which hears them all.
     */
    @Test
    void aCutAfterAnEarlierWarningIsStillTruncated() throws IOException {
        TurboJpeg t = turbo();
        byte[] jpeg = withRestartMarkers(333, 217);
        int rst = -1;
        for (int i = 0, seen = 0; i < jpeg.length - 1; i++) {
            if (jpeg[i] == (byte) 0xFF && (jpeg[i + 1] & 0xF8) == 0xD0 && ++seen == 3) {
                rst = i;
                break;
            }
        }
        assertTrue(rst > 0, "the writer put no restart markers in");
        byte[] junk = new byte[jpeg.length + 3];
        System.arraycopy(jpeg, 0, junk, 0, rst);
        junk[rst] = 0x12;
        junk[rst + 1] = 0x34;
        junk[rst + 2] = 0x56;
        System.arraycopy(jpeg, rst, junk, rst + 3, jpeg.length - rst);
        byte[] cut = java.util.Arrays.copyOf(junk, junk.length * 2 / 3);
        assertTrue(cut.length > rst + 3);
        IOException e = assertThrows(IOException.class,
                () -> ImageDecoder.decode(cut, "cut.jpg", ImageDecoder.Options.defaults()));
        assertTrue(e.getMessage().startsWith("cut.jpg: truncated JPEG data ("), e.getMessage());
        // junk alone: a whole image, as before (the JDK path's pixels, which are TurboJPEG's here)
        assertNull(t.decode(junk, "junk.jpg", ANY_SIZE));
        ImageDecoder.Options plain = ImageDecoder.Options.defaults().withExifOrientation(false);
        assertSameImage("junk before a restart marker", t.decode(jpeg, "whole.jpg", ANY_SIZE),
                ImageDecoder.decode(junk, "junk.jpg", plain));
    }

    /**
     * Only decodes bounded to a few milliseconds run as critical calls (in place in the heap): a
     * critical call holds every collection in the JVM back until it returns (a 30-million-pixel
     * progressive JPEG: 0.9 s). Larger images and many-scan files go through native copies, with
     * the same pixels.
     */
    @Test
    void largeOrManyScanJpegsDecodeThroughNativeCopies() throws IOException {
        TurboJpeg t = turbo();
        byte[] small = Files.readAllBytes(path("images/progressive.jpg"));
        assertTrue(TurboJpeg.inPlace(small, 1024, 768));
        assertTrue(TurboJpeg.inPlace(small, 1 << 11, 1 << 10));
        assertTrue(!TurboJpeg.inPlace(small, (1 << 11) + 1, 1 << 10), "over the pixel bound");
        byte[] scans = new byte[2 * (TurboJpeg.IN_PLACE_MAX_SCANS + 1)];
        for (int k = 0; k < scans.length; k += 2) {
            scans[k] = (byte) 0xFF;
            scans[k + 1] = (byte) 0xDA;
        }
        assertTrue(!TurboJpeg.inPlace(scans, 8, 8), "over the scan bound");
        assertTrue(TurboJpeg.inPlace(java.util.Arrays.copyOf(scans, scans.length - 2), 8, 8));
        // 1500x1500 (over the bound): through native copies, the JDK path's pixels (4:2:0, as PIL's)
        byte[] big = withRestartMarkers(1500, 1500);
        RgbImage got = t.decode(big, "big.jpg", ANY_SIZE);
        assertSameImage("1500x1500 through native copies", ImageDecoder.decodeWithImageIo(big, "big.jpg",
                ImageFormat.JPEG, ImageDecoder.Options.defaults().withExifOrientation(false)), got);
        // and a cut there is an error naming the image, nothing native kept
        byte[] cut = java.util.Arrays.copyOf(big, big.length / 2);
        IOException e = assertThrows(IOException.class, () -> t.decode(cut, "big_cut.jpg", ANY_SIZE));
        assertTrue(e.getMessage().startsWith("big_cut.jpg: truncated JPEG data ("), e.getMessage());
    }

    /** A 4:2:0 JPEG with a restart marker every two MCUs, written by the JDK's encoder (PIL 9 cannot). */
    private static byte[] withRestartMarkers(int w, int h) throws IOException {
        java.awt.image.BufferedImage im = new java.awt.image.BufferedImage(w, h,
                java.awt.image.BufferedImage.TYPE_3BYTE_BGR);
        java.util.Random r = new java.util.Random(3);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                im.setRGB(x, y, (x * 7 + y * 3) % 256 << 16 | (x * x / 5 + y) % 256 << 8 | r.nextInt(256));
            }
        }
        javax.imageio.ImageWriter writer = javax.imageio.ImageIO.getImageWritersByFormatName("jpeg").next();
        try {
            javax.imageio.ImageWriteParam param = writer.getDefaultWriteParam();
            javax.imageio.metadata.IIOMetadata md = writer.getDefaultImageMetadata(
                    new javax.imageio.ImageTypeSpecifier(im), param);
            String format = "javax_imageio_jpeg_image_1.0";
            org.w3c.dom.Element root = (org.w3c.dom.Element) md.getAsTree(format);
            org.w3c.dom.Element seq = (org.w3c.dom.Element) root.getElementsByTagName("markerSequence").item(0);
            javax.imageio.metadata.IIOMetadataNode dri = new javax.imageio.metadata.IIOMetadataNode("dri");
            dri.setAttribute("interval", "2");
            seq.insertBefore(dri, seq.getFirstChild());
            md.setFromTree(format, root);
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            try (javax.imageio.stream.ImageOutputStream o = javax.imageio.ImageIO.createImageOutputStream(out)) {
                writer.setOutput(o);
                writer.write(null, new javax.imageio.IIOImage(im, null, md), param);
            }
            return out.toByteArray();
        } finally {
            writer.dispose();
        }
    }

    @Test
    void theSettingChoosesTheLibraryOrTheJdk() {
        assertTrue(TurboJpeg.find("false").isEmpty());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TurboJpeg.find("/nonexistent/libturbojpeg.so.0"));
        assertTrue(e.getMessage().contains("-Ddir4j.turbojpeg=/nonexistent/libturbojpeg.so.0")
                && e.getMessage().contains("=false decodes with the JDK"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> TurboJpeg.find("libc.so.6"), "a library without TurboJPEG");
        boolean openable;
        try {
            java.lang.foreign.SymbolLookup.libraryLookup("libturbojpeg.so.0", java.lang.foreign.Arena.global());
            openable = true;
        } catch (IllegalArgumentException x) {
            openable = false;
        }
        assertEquals(openable, TurboJpeg.find(null).isPresent());
        // what this JVM decodes with follows its own setting (mvn test -Ddir4j.turbojpeg=false: the JDK)
        boolean off = "false".equalsIgnoreCase(String.valueOf(System.getProperty(TurboJpeg.TURBOJPEG_PROPERTY)).trim());
        assertEquals(openable && !off, TurboJpeg.backend().startsWith("libjpeg-turbo (libturbojpeg.so.0)"),
                TurboJpeg.backend());
        if (off) {
            assertEquals("the JDK's libjpeg through TwelveMonkeys (-Ddir4j.turbojpeg=false)", TurboJpeg.backend());
        }
    }
}
