package dir4j.retrieval.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlotsTest {
    @TempDir
    Path dir;

    private static Trainer.History history() {
        Trainer.History h = Trainer.History.empty();
        for (int i = 1; i <= 12; i++) {
            h.steps().add((long) i);
            h.losses().add(1.0 / i);
        }
        h.validationSteps().add(12L);
        h.validation().add(42.0);
        return h;
    }

    @Test
    void writesBothPlotsAsPngFiles() throws IOException {
        boolean useCache = javax.imageio.ImageIO.getUseCache();
        assertNull(Plots.write(history(), dir));
        assertEquals(useCache, javax.imageio.ImageIO.getUseCache(), "ImageIO's JVM-wide setting left alone");
        for (String f : new String[] {"loss.png", "validation.png"}) {
            byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(dir.resolve(f)), 4);
            assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, head, f + " is a PNG");
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.allMatch(p -> p.getFileName().toString().endsWith(".png")
                    && !p.getFileName().toString().startsWith(".")), "no temporary files left");
        }
    }

    @Test
    void aMachineWithoutFontsSkipsThePlotsWithTheReason() throws IOException {
        // what Java2D throws in a container without fontconfig (seen on the GPU machine)
        String why = Plots.write(history(), dir, chart -> {
            throw new RuntimeException("Fontconfig head is null, check your fonts or fonts configuration");
        });
        assertTrue(why != null && why.contains("Fontconfig head is null") && why.contains("install fontconfig"), why);
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.findAny().isEmpty(), "nothing written, no partial file");
        }
    }
}
