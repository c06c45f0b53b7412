package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The CPU backend's contiguous copy, which splits large copies into parallel chunks: every element
 * lands once, at any offsets, over chunk boundaries that fall inside an element's neighbours, and a
 * copy between overlapping ranges of one block behaves as one memmove (never a chunk reading what
 * another already overwrote).
 */
class ContiguousCopyTest {

    private static float[] ramp(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = i * 0.5f - 7;
        }
        return a;
    }

    @Test
    void largeCopiesBetweenOffsetViewsLandEveryElementOnce() {
        int n = 3_000_001; // ~12 MiB: several chunks, the last one short
        try (MemoryScope s = MemoryScope.open()) {
            float[] data = ramp(n + 5);
            Tensor src = Tensor.of(data, n + 5);
            Tensor dst = Tensor.full(dir4j.engine.DType.FLOAT32, dir4j.engine.Device.CPU, Float.NaN, n + 9);
            Tensor from = src.viewOf(new int[] {n}, new long[] {1}, 3);
            Tensor to = dst.viewOf(new int[] {n}, new long[] {1}, 7);
            src.backend().copy(from, to);
            float[] got = dst.toFloatArray();
            for (int i = 0; i < 7; i++) {
                assertEquals(Float.NaN, got[i], "before the destination view: untouched");
            }
            for (int i = 0; i < n; i++) {
                if (got[7 + i] != data[3 + i]) {
                    assertEquals(data[3 + i], got[7 + i], "element " + i);
                }
            }
            assertEquals(Float.NaN, got[7 + n], "after the destination view: untouched");
        }
    }

    @Test
    void overlappingRangesOfOneBlockCopyAsOneMemmove() {
        int n = 2_000_000;
        try (MemoryScope s = MemoryScope.open()) {
            float[] data = ramp(n + 1_000_000);
            for (int shift : new int[] {1_000_000, -1_000_000, 3}) {
                Tensor block = Tensor.of(data, data.length);
                int srcOff = shift > 0 ? 0 : -shift;
                int dstOff = shift > 0 ? shift : 0;
                block.backend().copy(block.viewOf(new int[] {n}, new long[] {1}, srcOff),
                        block.viewOf(new int[] {n}, new long[] {1}, dstOff));
                float[] want = data.clone();
                System.arraycopy(data, srcOff, want, dstOff, n);
                assertArrayEquals(want, block.toFloatArray(), "shift " + shift);
            }
        }
    }
}
