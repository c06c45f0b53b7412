package dir4j.retrieval.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * ImageDecoder.toRgb on every BufferedImage layout the decoders hand it, whole and as a sub-image
 * (a raster whose origin lies inside its data buffer): each output byte equals the raster's own
 * sample (R, G, B; grey repeated; alpha dropped).
 */
class ToRgbLayoutsTest {
    private static BufferedImage random(int type, int w, int h, long seed) {
        BufferedImage img = new BufferedImage(w, h, type);
        Random r = new Random(seed);
        var raster = img.getRaster();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int b = 0; b < raster.getNumBands(); b++) {
                    raster.setSample(x, y, b, r.nextInt(256));
                }
            }
        }
        return img;
    }

    private static void check(BufferedImage img) throws IOException {
        RgbImage got = ImageDecoder.toRgb(img, "test");
        Raster r = img.getRaster();
        int colours = img.getColorModel().getNumColorComponents();
        assertEquals(img.getWidth(), got.width());
        assertEquals(img.getHeight(), got.height());
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                for (int c = 0; c < 3; c++) {
                    int want = r.getSample(x, y, colours == 1 ? 0 : c);
                    assertEquals(want, got.get(x, y, c), "type " + img.getType() + " at " + x + "," + y + " channel " + c);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {BufferedImage.TYPE_3BYTE_BGR, BufferedImage.TYPE_4BYTE_ABGR, BufferedImage.TYPE_BYTE_GRAY,
        BufferedImage.TYPE_INT_RGB, BufferedImage.TYPE_INT_ARGB, BufferedImage.TYPE_USHORT_GRAY})
    void wholeImagesAndSubImages(int type) throws IOException {
        BufferedImage img = random(type, 37, 23, type);
        if (type == BufferedImage.TYPE_USHORT_GRAY) {
            // 16-bit grey: the generic path keeps the high byte
            RgbImage got = ImageDecoder.toRgb(img, "test");
            assertEquals(img.getRaster().getSample(5, 7, 0) >>> 8, got.get(5, 7, 1));
            return;
        }
        check(img);
        check(img.getSubimage(5, 3, 20, 11));
    }
}
