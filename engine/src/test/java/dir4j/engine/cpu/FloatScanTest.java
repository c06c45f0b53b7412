package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The first NaN or infinity: found wherever it lies (a vector's lanes, a tail, a later block), or -1. */
class FloatScanTest {
    @Test
    void findsTheFirstNonFiniteValueFromTheBase() {
        int n = 3 * 4096 + 37; // three full blocks and a tail that is not a whole vector
        float[] v = new float[n + 6];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Math.sin(i) * 1e30f;
        }
        MemorySegment seg = MemorySegment.ofArray(v);
        assertEquals(-1, FloatScan.firstNonFinite(seg, 5, n));
        for (int at : new int[] {0, 1, 15, 16, 4095, 4096, 8191, 12287, 12288, n - 1}) {
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float keep = v[5 + at];
                v[5 + at] = bad;
                assertEquals(at, FloatScan.firstNonFinite(seg, 5, n), "at " + at + ": " + bad);
                v[5 + at] = keep;
            }
        }
        // two: the first is named; one before the base or beyond n is not looked at
        v[5 + 100] = Float.NaN;
        v[5 + 9000] = Float.NaN;
        assertEquals(100, FloatScan.firstNonFinite(seg, 5, n));
        assertEquals(9000 - 200, FloatScan.firstNonFinite(seg, 5 + 200, n - 200));
        v[5 + 100] = 0;
        v[5 + 9000] = 0;
        v[4] = Float.NaN;
        v[5 + n] = Float.NaN;
        assertEquals(-1, FloatScan.firstNonFinite(seg, 5, n));
        assertEquals(-1, FloatScan.firstNonFinite(seg, 5, 0));
    }
}
