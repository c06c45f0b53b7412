package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.image.TurboJpeg;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ImagePipelineBenchTest {
    /**
     * Setup says which decoder the decode and pipeline figures are of (libjpeg-turbo where installed,
     * else TwelveMonkeys: a third of the time apart), and each benchmark gives the sizes it says.
     */
    @Test
    void setupNamesTheJpegDecoderAndTheBenchmarksRun() throws Exception {
        System.setProperty("java.awt.headless", "true");
        ImagePipelineBench b = new ImagePipelineBench();
        b.image = "";
        b.size = 64;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        PrintStream out = System.out;
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            b.setup();
        } finally {
            System.setOut(out);
        }
        String text = printed.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("JPEG decoder: " + TurboJpeg.backend()), text);
        assertEquals(1024, b.decode().width());
        assertEquals(64, b.resize().width());
        assertEquals(3 * 64 * 48, b.normalize().length);
        assertEquals(3 * 64 * 48, b.pipeline().length);
    }
}
