package dir4j.retrieval.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PngBytesTest {
    @TempDir
    Path cacheDir;

    @Test
    void encodesLosslesslyWithoutImageIoDiskCacheAndWithoutChangingItsSetting() throws Exception {
        BufferedImage img = new BufferedImage(37, 21, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                img.setRGB(x, y, (x * 7 + y * 13) * 0x010305 & 0xFFFFFF);
            }
        }
        boolean useCache = ImageIO.getUseCache();
        Path cache = ImageIO.getCacheDirectory() == null ? null : ImageIO.getCacheDirectory().toPath();
        ImageIO.setUseCache(true);
        ImageIO.setCacheDirectory(cacheDir.toFile());
        try (WatchService watch = cacheDir.getFileSystem().newWatchService()) {
            cacheDir.register(watch, StandardWatchEventKinds.ENTRY_CREATE);
            byte[] png = PngBytes.encode(img);
            // ImageIO.write(img, "png", stream) makes (and deletes) a cache file here
            WatchKey key = watch.poll(200, TimeUnit.MILLISECONDS);
            assertNull(key, () -> "ImageIO cache files made: " + key.pollEvents().stream()
                    .map(e -> String.valueOf(e.context())).toList());
            assertTrue(ImageIO.getUseCache(), "the JVM-wide setting is left alone");
            BufferedImage back = ImageIO.read(new ByteArrayInputStream(png));
            assertEquals(37, back.getWidth());
            assertEquals(21, back.getHeight());
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < img.getWidth(); x++) {
                    assertEquals(img.getRGB(x, y), back.getRGB(x, y), "pixel " + x + "," + y);
                }
            }
        } finally {
            ImageIO.setUseCache(useCache);
            ImageIO.setCacheDirectory(cache == null ? null : cache.toFile());
        }
    }
}
