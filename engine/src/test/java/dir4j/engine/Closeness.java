package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Elementwise comparison of a result with a reference: |actual − expected| ≤ rtol·|expected| +
 * atol, where atol is absolute, or scaled by max(1, max|expected|) for results that are sums of
 * many products (GEMM, convolution, batch statistics), whose rounding grows with the magnitude.
 */
record Closeness(double rtol, double atol, boolean atolScalesWithMagnitude) {
    /** Single-rounding results: elementwise ops, views, copies. */
    static final Closeness ELEMENTWISE = new Closeness(1e-5, 1e-6, false);
    /** Results accumulated over many terms in float32. */
    static final Closeness ACCUMULATED = new Closeness(1e-4, 1e-5, true);
    /** float64 against float64. */
    static final Closeness DOUBLE = new Closeness(1e-12, 1e-13, true);

    void assertClose(String what, Tensor expected, Tensor actual) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        assertClose(what, expected.toDoubleArray(), actual.toDoubleArray());
    }

    void assertClose(String what, double[] expected, double[] actual) {
        if (expected.length != actual.length) {
            fail(what + ": " + actual.length + " values, expected " + expected.length);
        }
        double scale = 1;
        if (atolScalesWithMagnitude) {
            for (double e : expected) {
                if (Double.isFinite(e)) { // NaN and ±∞ are matched exactly, not a magnitude
                    scale = Math.max(scale, Math.abs(e));
                }
            }
        }
        double a = atol * scale;
        int bad = 0;
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double v = actual[i];
            boolean ok = Double.isNaN(e) ? Double.isNaN(v)
                    : e == v || Math.abs(v - e) <= rtol * Math.abs(e) + a; // NaN actual fails here
            if (!ok) {
                bad++;
                double excess = Double.isNaN(v) ? Double.POSITIVE_INFINITY : Math.abs(v - e) / (rtol * Math.abs(e) + a);
                if (worst < 0 || excess > worstExcess) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (bad > 0) {
            StringBuilder sb = new StringBuilder(what).append(": ").append(bad).append(" of ").append(expected.length)
                    .append(" values differ beyond rtol ").append(rtol).append(", atol ").append(a)
                    .append("; worst at flat index ").append(worst).append(": got ").append(actual[worst])
                    .append(", expected ").append(expected[worst]).append("; first differing:");
            int shown = 0;
            for (int i = 0; i < expected.length && shown < 6; i++) {
                double e = expected[i];
                double v = actual[i];
                boolean ok = Double.isNaN(e) ? Double.isNaN(v) : e == v || Math.abs(v - e) <= rtol * Math.abs(e) + a;
                if (!ok) {
                    sb.append(" [").append(i).append("] ").append(v).append(" vs ").append(e);
                    shown++;
                }
            }
            fail(sb.toString());
        }
    }
}
