package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** The deterministic vector exp/log: within 3 ulp of Math.exp/log, and IEEE special values. */
class VectorMathTest {
    private static final int L = CpuVectors.FLOAT.length();

    private static float[] apply(boolean exp, float[] in) {
        float[] out = new float[in.length];
        for (int i = 0; i < in.length; i += L) {
            FloatVector v = FloatVector.fromArray(CpuVectors.FLOAT, in, i);
            (exp ? VectorMath.exp(v) : VectorMath.log(v)).intoArray(out, i);
        }
        return out;
    }

    private static float[] sample(Random r, int n, double lo, double hi, boolean logScale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            double u = lo + (hi - lo) * r.nextDouble();
            x[i] = (float) (logScale ? Math.exp(u) : u);
        }
        return x;
    }

    private static void assertUlps(String what, float[] x, float[] got, boolean exp, int ulps) {
        for (int i = 0; i < x.length; i++) {
            float want = (float) (exp ? Math.exp(x[i]) : Math.log(x[i]));
            float tol = ulps * Math.ulp(want);
            assertTrue(Math.abs(got[i] - want) <= tol, what + "(" + x[i] + ") = " + got[i] + ", want " + want);
        }
    }

    @Test
    void expIsWithinThreeUlpsOverItsRange() {
        float[] x = sample(new Random(1), 64 * L, -87, 88, false);
        assertUlps("exp", x, apply(true, x), true, 3);
    }

    @Test
    void logIsWithinThreeUlpsFromTinyToHuge() {
        float[] x = sample(new Random(2), 64 * L, -80, 80, true);
        assertUlps("log", x, apply(false, x), false, 3);
    }

    @Test
    void specialValuesFollowIeee() {
        float[] x = new float[L];
        float[] specials = {0f, -1f, Float.NaN, Float.POSITIVE_INFINITY, 1f, -100f, 100f, Float.NEGATIVE_INFINITY};
        for (int i = 0; i < L; i++) {
            x[i] = specials[i % specials.length];
        }
        float[] lg = apply(false, x);
        float[] ex = apply(true, x);
        assertEquals(Float.NEGATIVE_INFINITY, lg[0]);
        assertTrue(Float.isNaN(lg[1]));
        assertTrue(Float.isNaN(lg[2]));
        assertEquals(Float.POSITIVE_INFINITY, lg[3]);
        assertEquals(0f, lg[4]);
        assertEquals(1f, ex[0]);
        assertTrue(Float.isNaN(ex[2]));
        assertEquals(Float.POSITIVE_INFINITY, ex[3]);
        assertEquals(0f, ex[5]);
        assertEquals(Float.POSITIVE_INFINITY, ex[6]);
        assertEquals(0f, ex[7]);
    }

    /**
     * The unguarded forms give the bits of the guarded ones on their domain (positive normal
     * finite floats for logNormal, [−87.3, 88.7] for expReduced): every 997th bit pattern there
     * (an exhaustive run over all 2^32 patterns agreed too when they were written).
     */
    @Test
    void reducedFormsGiveTheSameBitsOnTheirDomain() {
        float[] in = new float[L];
        float[] a = new float[L];
        float[] b = new float[L];
        int minNormal = Float.floatToRawIntBits(Float.MIN_NORMAL);
        int maxValue = Float.floatToRawIntBits(Float.MAX_VALUE);
        for (long bits = minNormal; bits <= maxValue; bits += 997L * L) {
            for (int i = 0; i < L; i++) {
                in[i] = Float.intBitsToFloat((int) Math.min(maxValue, bits + 997L * i));
            }
            FloatVector v = FloatVector.fromArray(CpuVectors.FLOAT, in, 0);
            VectorMath.log(v).intoArray(a, 0);
            VectorMath.logNormal(v).intoArray(b, 0);
            for (int i = 0; i < L; i++) {
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), "log(" + in[i] + ")");
            }
        }
        for (int k = 0; k < 200_000; k += L) {
            for (int i = 0; i < L; i++) {
                in[i] = -87.33654f + (88.72283f + 87.33654f) * (k + i) / 200_000f;
            }
            FloatVector v = FloatVector.fromArray(CpuVectors.FLOAT, in, 0);
            VectorMath.exp(v).intoArray(a, 0);
            VectorMath.expReduced(v).intoArray(b, 0);
            for (int i = 0; i < L; i++) {
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), "exp(" + in[i] + ")");
            }
        }
    }

    /**
     * n = round(x / ln 2) rounds to nearest: Cephes' ⌊x / ln 2 + ½⌋ took n = 128 where x / ln 2 + ½
     * rounded to exactly 128 in float, and 2^128 made e^88.37627 (2.406e38) infinite.
     */
    @Test
    void expJustBelowTheOverflowIsFinite() {
        float[] x = new float[L];
        java.util.Arrays.fill(x, 88.37627f);
        float[] got = apply(true, x);
        assertEquals(2.4061619e38f, got[0], Math.ulp(2.4061619e38f) * 3);
    }
}
