package dir4j.retrieval.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * The format is told from the file's first bytes (each format's published signature), and a
 * format dir4j does not read is named in the error; a signature cut short is not taken for it.
 */
class ImageFormatTest {

    private static byte[] bytes(int... v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = (byte) v[i];
        }
        return b;
    }

    private static byte[] ascii(String s, int padTo) {
        return Arrays.copyOf(s.getBytes(StandardCharsets.ISO_8859_1), Math.max(padTo, s.length()));
    }

    @Test
    void eachSignatureIsRecognisedAndNothingShorter() {
        Object[][] cases = {
            {ImageFormat.JPEG, bytes(0xff, 0xd8, 0xff)},
            {ImageFormat.PNG, bytes(0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a)},
            {ImageFormat.GIF, ascii("GIF8", 4)},
            {ImageFormat.BMP, ascii("BM", 2)},
            {ImageFormat.TIFF, bytes('I', 'I', 42, 0)},
            {ImageFormat.TIFF, bytes('M', 'M', 0, 42)},
            {ImageFormat.WEBP, ascii("RIFF\0\0\0\0WEBP", 12)},
            {ImageFormat.HEIF, ascii("\0\0\0\u0018ftypheic", 12)},
        };
        for (Object[] c : cases) {
            byte[] b = (byte[]) c[1];
            assertEquals(c[0], ImageFormat.sniff(b), c[0] + " signature");
            byte[] cut = Arrays.copyOf(b, b.length - 1);
            assertEquals(ImageFormat.UNKNOWN, ImageFormat.sniff(cut), c[0] + " cut by a byte");
        }
        assertEquals(ImageFormat.UNKNOWN, ImageFormat.sniff(bytes(0xff, 0xd8, 0x00)), "not quite a JPEG");
        assertEquals(ImageFormat.UNKNOWN, ImageFormat.sniff(bytes('I', 'I', 43, 0)), "BigTIFF is not read");
        assertEquals(ImageFormat.UNKNOWN, ImageFormat.sniff(ascii("RIFF\0\0\0\0WAVE", 12)), "a RIFF that is not WebP");
    }

    @Test
    void aFormatDir4jDoesNotReadIsNamed() {
        for (Object[] c : new Object[][] {{"BMP", ascii("BM", 64)}, {"TIFF", bytes('M', 'M', 0, 42, 0, 0, 0, 8)},
                {"WEBP", ascii("RIFF\0\0\0\0WEBPVP8 ", 32)}, {"HEIF", ascii("\0\0\0\u0018ftypheic\0\0\0\0", 32)}}) {
            IOException e = assertThrows(IOException.class,
                    () -> ImageDecoder.decode((byte[]) c[1], "x.img", ImageDecoder.Options.defaults()));
            assertTrue(e.getMessage().startsWith("x.img: a " + c[0] + " image; dir4j reads JPEG and PNG only"),
                    e.getMessage());
        }
    }
}
