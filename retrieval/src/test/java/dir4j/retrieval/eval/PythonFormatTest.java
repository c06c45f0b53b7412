package dir4j.retrieval.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Expected strings are what numpy 1.24 / Python 3 print for the same values. */
class PythonFormatTest {
    private static final double NAN = Double.NaN;

    @Test
    void scalarsPrintLikePythonStr() {
        assertEquals("43.14", PythonFormat.scalar(43.14));
        assertEquals("40.0", PythonFormat.scalar(40.0));
        assertEquals("0.0", PythonFormat.scalar(0.0));
        assertEquals("-0.0", PythonFormat.scalar(-0.0));
        assertEquals("100.0", PythonFormat.scalar(100.0));
        assertEquals("0.0001", PythonFormat.scalar(0.0001));
        assertEquals("1e-05", PythonFormat.scalar(0.00001));
        assertEquals("2.5e-05", PythonFormat.scalar(2.5e-5));
        assertEquals("1e+16", PythonFormat.scalar(1e16));
        assertEquals("12345678.9", PythonFormat.scalar(12345678.9));
        assertEquals("nan", PythonFormat.scalar(NAN));
    }

    @Test
    void arraysAlignDecimalPointsLikeNumpy() {
        assertEquals("[33.33 40.   37.36]", PythonFormat.array(new double[] {33.33, 40.0, 37.36}));
        assertEquals("[57.14 28.57 25.6 ]", PythonFormat.array(new double[] {57.14, 28.57, 25.6}));
        assertEquals("[40. 20. 18.]", PythonFormat.array(new double[] {40, 20, 18}));
        assertEquals("[100.    5.5   0. ]", PythonFormat.array(new double[] {100, 5.5, 0}));
        assertEquals("[-0.5  12.25  3.  ]", PythonFormat.array(new double[] {-0.5, 12.25, 3}));
        assertEquals("[0. 0. 0.]", PythonFormat.array(new double[] {0, 0, 0}));
    }

    @Test
    void arraysWithNonFiniteValuesPadThemToTheColumnWidth() {
        assertEquals("[nan 40.  5.]", PythonFormat.array(new double[] {NAN, 40, 5}));
        assertEquals("[nan nan nan]", PythonFormat.array(new double[] {NAN, NAN, NAN}));
        assertEquals("[-inf  1.5]", PythonFormat.array(new double[] {Double.NEGATIVE_INFINITY, 1.5}));
    }

    @Test
    void arraysSpanningMoreThanThreeDecadesSwitchToScientific() {
        assertEquals("[1.00e+02 5.00e-02 1.25e+00]", PythonFormat.array(new double[] {100, 0.05, 1.25}));
        assertEquals("[1.e+02 1.e-02]", PythonFormat.array(new double[] {100, 0.01}));
        assertEquals("[1.e+08 2.e+00]", PythonFormat.array(new double[] {1e8, 2}));
        assertEquals("[5.e-05 5.e-01]", PythonFormat.array(new double[] {5e-5, 0.5}));
    }

    @Test
    void intListsPrintLikePythonLists() {
        assertEquals("[1, 5, 10]", PythonFormat.list(new int[] {1, 5, 10}));
    }
}
