package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link PanelPacking#gather} for depth-contiguous lanes (the transposing packs: a row-major A, a
 * transposed B) against its definition {@code dst[dOff + d*dStride + q] = seg[base + q*laneStride + d]}:
 * lane counts below, at and past a vector and a panel, short and long depths, with the elements it
 * must not write (lanes past {@code lanes}, rows past the depth, the slack around) left as they were.
 */
class PanelPackingTest {

    @ParameterizedTest(name = "lanes {0}, depth {1}, laneStride {2}, dStride {3}")
    @CsvSource({
        "1, 1, 1, 1", "12, 16, 16, 12", "12, 256, 4608, 12", "11, 17, 40, 12", "16, 16, 16, 16",
        "32, 300, 3136, 32", "17, 5, 9, 32", "5, 33, 33, 12", "32, 1, 2, 32", "3, 31, 1000, 4",
    })
    void depthContiguousLanesLandInPanelRows(int lanes, int depth, int laneStride, int dStride) {
        SplittableRandom rnd = new SplittableRandom(lanes * 131 + depth);
        long base = 7;
        long span = base + (lanes - 1L) * laneStride + depth + 5;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(span * Float.BYTES, 64);
            for (long i = 0; i < span; i++) {
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            }
            int dOff = 3;
            float[] dst = new float[dOff + depth * dStride + 20];
            java.util.Arrays.fill(dst, Float.NaN);
            PanelPacking.gather(dst, dOff, dStride, seg, base, laneStride, 1, lanes, depth);
            for (int i = 0; i < dst.length; i++) {
                int d = Math.floorDiv(i - dOff, dStride);
                int q = i - dOff - d * dStride;
                boolean written = i >= dOff && d < depth && q < lanes;
                float expected = written ? seg.getAtIndex(ValueLayout.JAVA_FLOAT, base + (long) q * laneStride + d)
                        : Float.NaN;
                assertEquals(expected, dst[i], 0f, "dst[" + i + "] (depth " + d + ", lane " + q + ")");
            }
        }
    }
}
