package dir4j.engine.cpu;

import dir4j.engine.Backend.Binary;
import dir4j.engine.Backend.Unary;

/** The scalar definition of every elementwise op, in double; the vector kernels must agree with it. */
final class ScalarMath {
    private ScalarMath() {}

    static double unary(Unary op, double v, double alpha, double beta) {
        return switch (op) {
            case NEG -> -v;
            case EXP -> Math.exp(v);
            case LOG -> Math.log(v);
            case SQRT -> Math.sqrt(v);
            case ABS -> Math.abs(v);
            case SIGN -> Double.isNaN(v) ? v : Math.signum(v);
            case RECIPROCAL -> 1 / v;
            case RELU -> Double.isNaN(v) ? v : Math.max(v, 0);
            // x^0.5 is √x, as PyTorch computes it and the vector kernels do: √−∞ is NaN (Math.pow
            // gives +∞) and √−0 is −0
            case POW -> alpha == 0.5 ? Math.sqrt(v) : Math.pow(v, alpha);
            case CLAMP -> {
                double r = v;
                if (Double.isNaN(v)) {
                    yield v;
                }
                if (!Double.isNaN(alpha)) {
                    r = Math.max(r, alpha);
                }
                if (!Double.isNaN(beta)) {
                    r = Math.min(r, beta);
                }
                yield r;
            }
            case AFFINE -> alpha * v + beta;
            case GREATER -> v > alpha ? 1 : 0;
            case IN_RANGE -> (Double.isNaN(alpha) || v >= alpha) && (Double.isNaN(beta) || v <= beta) && v == v ? 1 : 0;
        };
    }

    static double binary(Binary op, double a, double b) {
        return switch (op) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case MAX -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b);
            case MIN -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.min(a, b);
            case POW -> Math.pow(a, b);
            case EQ -> a == b ? 1 : 0;
            case GT -> a > b ? 1 : 0;
        };
    }
}
