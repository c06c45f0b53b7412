package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A training convolution whose channels-last copies do not fit the Java heap falls back to the
 * implicit GEMM (its operands are native memory) with one warning, instead of an OutOfMemoryError:
 * a child JVM with a 24 MiB heap runs a 3×3 convolution whose copies need about 70 MiB, forward
 * and backward-data, and compares both with the GEMM path's results.
 */
class DirectConvHeapTest {

    /** The child: exit status 0 and "same" when the fallback ran and agreed. */
    public static void main(String[] args) {
        Conv2dGeometry g = Conv2dGeometry.of(2, 64, 180, 180, 64, 3, 1, 1, 1);
        if (!Conv2dKernels.direct(g, false) || !Conv2dKernels.direct(g, true)) {
            throw new IllegalStateException("the geometry should take the direct path");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = random(arena, g.inputSize(), 1);
            MemorySegment w = random(arena, g.weightSize(), 2);
            MemorySegment dy = random(arena, g.outputSize(), 3);
            MemorySegment y1 = arena.allocate(g.outputSize() * 4, 64);
            MemorySegment y2 = arena.allocate(g.outputSize() * 4, 64);
            MemorySegment dx1 = arena.allocate(g.inputSize() * 4, 64);
            MemorySegment dx2 = arena.allocate(g.inputSize() * 4, 64);
            Conv2dKernels.forward(g, x, 0, w, 0, y1, 0);
            Conv2dKernels.backwardData(g, dy, 0, w, 0, dx1, 0);
            Conv2dKernels.directEnabled = false;
            Conv2dKernels.forward(g, x, 0, w, 0, y2, 0);
            Conv2dKernels.backwardData(g, dy, 0, w, 0, dx2, 0);
            System.out.println(y1.mismatch(y2) == -1 && dx1.mismatch(dx2) == -1 ? "same" : "different");
        }
    }

    private static MemorySegment random(Arena arena, long n, long seed) {
        MemorySegment s = arena.allocate(n * 4, 64);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < n; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextDouble(-1, 1));
        }
        return s;
    }

    @Test
    void aFullHeapFallsBackToTheGemmWithOneWarning() throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx24m", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-cp", System.getProperty("java.class.path"),
                DirectConvHeapTest.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        // identical bits: with the heap full, both runs took the GEMM path
        assertTrue(out.strip().endsWith("same"), out);
        assertTrue(out.contains("the Java heap cannot hold the channels-last copies of"), out);
        assertEquals(out.indexOf("the Java heap cannot hold"), out.lastIndexOf("the Java heap cannot hold"), out);
    }
}
