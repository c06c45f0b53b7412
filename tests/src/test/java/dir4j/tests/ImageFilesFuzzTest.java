package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.RgbImage;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Damaged images ({@link FileFuzzing}): 250 seeded mutations of each JPEG and PNG fixture through
 * {@link ImageDecoder#read}, as extraction and training read them (libjpeg-turbo's native decoder
 * where this machine has it, else the JDK's; the JDK's PNG reader): each decodes to a whole image
 * or is refused with a message, never a crash, another exception or a hang.
 */
class ImageFilesFuzzTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"baseline.jpg", "progressive.jpg", "baseline444.jpg", "gray.jpg", "cmyk.jpg", "ycck.jpg",
        "exif_6.jpg", "icc_linear.jpg", "rgb8.png", "palette_trns.png", "interlaced_rgba.png", "gray16.png"})
    void images(String name) throws Exception {
        FileFuzzing.fuzz(dir, name, FileFuzzing.fixture("retrieval/src/test/resources/fixtures/images/" + name), file -> {
            RgbImage img = ImageDecoder.read(file);
            assertEquals((long) img.width() * img.height() * 3, img.pixels().length);
        }, false);
    }
}
