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
        assertEquals(openable, TurboJpeg.backend().startsWith("libjpeg-turbo (libturbojpeg.so.0)"), TurboJpeg.backend());
    }
}
