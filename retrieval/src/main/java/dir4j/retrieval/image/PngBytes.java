package dir4j.retrieval.image;

import java.awt.image.RenderedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Iterator;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;

/**
 * PNG encoding in memory. {@code ImageIO.write(image, "png", outputStream)} goes through a disk cache
 * in java.io.tmpdir by default (temporary files that a kill leaves behind, and a shutdown-time race in
 * their closer); switching that off with {@code ImageIO.setUseCache(false)} would change it for every
 * other user of ImageIO in the JVM, a service's included. This writes through a memory-cached stream
 * instead, touching no global setting.
 */
public final class PngBytes {
    private PngBytes() {}

    /** The image as the bytes of a PNG file. */
    public static byte[] encode(RenderedImage image) throws IOException {
        Iterator<ImageWriter> writers = ImageIO.getImageWritersByFormatName("png");
        if (!writers.hasNext()) {
            throw new IOException("no PNG encoder in this Java runtime (javax.imageio)");
        }
        ImageWriter w = writers.next();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) {
            w.setOutput(out);
            w.write(null, new IIOImage(image, null, null), null);
        } finally {
            w.dispose();
        }
        return bytes.toByteArray();
    }
}
