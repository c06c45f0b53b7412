package dir4j.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Device;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The sizes bench's choice of sizes and its run, on the CPU with a small network (its GPU use waits for a device). */
class DescribeSizesGpuBenchTest {
    @Test
    void sizesAreDistinctWithTheLongestSideGiven() {
        List<int[]> sizes = DescribeSizesGpuBench.sizes(40, 64, 3);
        Set<List<Integer>> distinct = new HashSet<>();
        boolean portrait = false;
        boolean landscape = false;
        for (int[] s : sizes) {
            assertEquals(64, Math.max(s[0], s[1]));
            assertTrue(Math.min(s[0], s[1]) >= 32, s[0] + "x" + s[1]);
            distinct.add(List.of(s[0], s[1]));
            portrait |= s[0] > s[1];
            landscape |= s[1] > s[0];
        }
        assertEquals(40, distinct.size());
        assertTrue(portrait && landscape, "both orientations");
        assertEquals(sizes.stream().map(java.util.Arrays::toString).toList(),
                DescribeSizesGpuBench.sizes(40, 64, 3).stream().map(java.util.Arrays::toString).toList(), "seeded");
        // 7 sizes exist with a longest side of 6 (the other 3 … 6 in two orientations, 6x6 once): all 7, not 8
        assertEquals(7, DescribeSizesGpuBench.sizes(7, 6, 1).size());
        assertThrows(IllegalArgumentException.class, () -> DescribeSizesGpuBench.sizes(8, 6, 1));
    }

    @Test
    void runsOnTheCpu() {
        DescribeSizesGpuBench.Result r = DescribeSizesGpuBench.run("resnet18", 3, 48, Device.CPU, 1);
        for (double ms : new double[] {r.newMedian(), r.newMean(), r.seenMedian(), r.seenMean()}) {
            assertTrue(ms > 0 && Double.isFinite(ms), r.toString());
        }
        assertEquals(2.5, DescribeSizesGpuBench.median(new double[] {4, 1, 3, 2}));
        assertEquals(3.0, DescribeSizesGpuBench.median(new double[] {5, 1, 3}));
    }
}
