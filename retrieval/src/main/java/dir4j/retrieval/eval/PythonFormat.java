package dir4j.retrieval.eval;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * How Python prints what the reference's evaluation prints: a float64 scalar ({@code str(x)}),
 * a list of ints, and a 1-D float64 numpy array under numpy's default print options
 * (precision 8, floatmode 'maxprec', no suppression, line width never reached by a few
 * values). Digits are the shortest that round-trip ({@link Double#toString} since Java 19, like
 * Python's repr).
 */
final class PythonFormat {
    private static final int NUMPY_PRECISION = 8;

    private PythonFormat() {}

    /** Python's {@code str(float)}: "43.14", "40.0", "0.0001", "1e-05", "nan". */
    static String scalar(double x) {
        if (!Double.isFinite(x)) {
            return nonFinite(x);
        }
        String sign = isNegative(x) ? "-" : "";
        if (x == 0) {
            return sign + "0.0";
        }
        BigDecimal d = shortest(Math.abs(x));
        String digits = d.unscaledValue().toString();
        int point = digits.length() - d.scale();    // x = 0.digits × 10^point
        if (point < -3 || point > 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + exponent(point - 1, 2);
        }
        String plain = d.toPlainString();
        return sign + (plain.indexOf('.') >= 0 ? plain : plain + ".0");
    }

    /** Python's {@code str(list)} of ints: "[1, 5, 10]". */
    static String list(int[] values) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(values[i]);
        }
        return sb.append(']').toString();
    }

    /**
     * numpy's {@code str(array)} for 1-D float64: every value with the shortest digits (at most 8
     * after the point), decimal points aligned by padding the integer parts left and the
     * fractions right with spaces ("[57.14 28.57 25.6 ]", "[40. 20. 18.]"); scientific notation
     * with a common mantissa precision when the non-zero magnitudes span more than 1000× or
     * reach below 1e-4 or above 1e8.
     */
    static String array(double[] values) {
        if (values.length == 0) {
            return "[]";
        }
        double max = 0;
        double min = Double.POSITIVE_INFINITY;
        boolean anyFinite = false;
        boolean negativeInfinity = false;
        for (double v : values) {
            if (Double.isFinite(v)) {
                anyFinite = true;
                if (v != 0) {
                    max = Math.max(max, Math.abs(v));
                    min = Math.min(min, Math.abs(v));
                }
            } else if (v == Double.NEGATIVE_INFINITY) {
                negativeInfinity = true;
            }
        }
        boolean scientific = max != 0 && (max >= 1e8 || min < 1e-4 || max / min > 1000);
        String[] ints = new String[values.length];
        String[] fracs = new String[values.length];
        String[] exps = new String[values.length];
        int padLeft = 0;
        int fracWidth = 0;
        int expWidth = 0;
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                continue;
            }
            String s = scientific ? numpyScientific(values[i]) : numpyPositional(values[i]);
            int e = s.indexOf('e');
            String mantissa = e >= 0 ? s.substring(0, e) : s;
            exps[i] = e >= 0 ? s.substring(e + 1) : "";
            int dot = mantissa.indexOf('.');
            ints[i] = mantissa.substring(0, dot);
            fracs[i] = mantissa.substring(dot + 1);
            padLeft = Math.max(padLeft, ints[i].length());
            fracWidth = Math.max(fracWidth, fracs[i].length());
            expWidth = Math.max(expWidth, exps[i].length() - 1);
        }
        int padRight = scientific ? expWidth + 2 + fracWidth : fracWidth;
        if (!anyFinite) {
            padLeft = 0;
            padRight = 0;
        }
        if (hasNonFinite(values)) {
            int offset = padRight + 1;
            padLeft = Math.max(padLeft, Math.max(3 - offset, 3 + (negativeInfinity ? 1 : 0) - offset));
        }
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            sb.append(i == 0 ? "" : " ");
            if (!Double.isFinite(values[i])) {
                String s = nonFinite(values[i]);
                sb.append(" ".repeat(Math.max(0, padLeft + padRight + 1 - s.length()))).append(s);
            } else if (scientific) {
                // trim 'k' with min_digits = the common precision: zeros pad the mantissa
                String exp = exps[i].charAt(0) + "0".repeat(expWidth - (exps[i].length() - 1)) + exps[i].substring(1);
                sb.append(" ".repeat(padLeft - ints[i].length())).append(ints[i]).append('.')
                        .append(fracs[i]).append("0".repeat(fracWidth - fracs[i].length())).append('e').append(exp);
            } else {
                sb.append(" ".repeat(padLeft - ints[i].length())).append(ints[i]).append('.')
                        .append(fracs[i]).append(" ".repeat(fracWidth - fracs[i].length()));
            }
        }
        return sb.append(']').toString();
    }

    /** Dragon4 positional, unique, at most 8 fraction digits, trim '.': "40.", "37.36", "-0.5". */
    private static String numpyPositional(double x) {
        String sign = isNegative(x) ? "-" : "";
        if (x == 0) {
            return sign + "0.";
        }
        BigDecimal d = shortest(Math.abs(x));
        if (d.scale() > NUMPY_PRECISION) {
            d = new BigDecimal(Math.abs(x)).setScale(NUMPY_PRECISION, RoundingMode.HALF_EVEN).stripTrailingZeros();
        }
        String plain = d.toPlainString();
        return sign + (plain.indexOf('.') >= 0 ? plain : plain + ".");
    }

    /** Dragon4 scientific, unique, at most 8 fraction digits, trim '.': "1.e+02", "2.5e-01". */
    private static String numpyScientific(double x) {
        String sign = isNegative(x) ? "-" : "";
        if (x == 0) {
            return sign + "0.e+00";
        }
        BigDecimal d = shortest(Math.abs(x));
        if (d.precision() > NUMPY_PRECISION + 1) {
            d = d.round(new java.math.MathContext(NUMPY_PRECISION + 1, RoundingMode.HALF_EVEN)).stripTrailingZeros();
        }
        String digits = d.unscaledValue().toString();
        int exponent = digits.length() - d.scale() - 1;
        return sign + digits.charAt(0) + "." + digits.substring(1) + "e" + exponent(exponent, 2);
    }

    private static BigDecimal shortest(double positive) {
        return new BigDecimal(Double.toString(positive)).stripTrailingZeros();
    }

    private static String exponent(int e, int minDigits) {
        String digits = Integer.toString(Math.abs(e));
        return (e < 0 ? "-" : "+") + "0".repeat(Math.max(0, minDigits - digits.length())) + digits;
    }

    private static boolean hasNonFinite(double[] values) {
        for (double v : values) {
            if (!Double.isFinite(v)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isNegative(double x) {
        return x < 0 || (x == 0 && 1 / x < 0);
    }

    private static String nonFinite(double x) {
        return Double.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
    }
}
