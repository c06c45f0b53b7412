package dir4j.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp and log on float vectors from exact operations only (multiply, add, FMA, conversions, bit
 * manipulation), after Cephes' expf/logf (max error ~2 ulp). The Vector API's own EXP and LOG
 * call SVML once compiled and plain Java before that, which differ in the last bits: results
 * would depend on JIT timing, and a resumed training run would not repeat an uninterrupted one.
 * These give the same bits in every mode.
 */
final class VectorMath {
    private static final VectorSpecies<Float> S = CpuVectors.FLOAT;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());

    private VectorMath() {}

    private static final float EXP_LO = -87.33654f;
    private static final float EXP_HI = 88.72283f;

    /** e^x; ±∞ and NaN as Math.exp, 0 below −87.3, ∞ above 88.7. */
    static FloatVector exp(FloatVector x) {
        // clamps by compare and blend: FloatVector.max/min keep Java's NaN and signed-zero rules,
        // which cost C2 five instructions each on AVX-512; a blend is two, and NaN is restored below
        VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_LO);
        VectorMask<Float> over = x.compare(VectorOperators.GT, EXP_HI);
        FloatVector out = expReduced(x.blend(EXP_LO, under).blend(EXP_HI, over));
        out = out.blend(0f, under);
        out = out.blend(Float.POSITIVE_INFINITY, over);
        return out.blend(x, x.test(VectorOperators.IS_NAN));
    }

    /**
     * e^x for x in [−87.3, 88.7] only (no clamps, no special values): the same bits as {@link #exp}
     * there. n = round(x / ln 2) by the 1.5·2^23 rounding trick, whose float also carries n in its
     * low bits for the 2^n scale.
     */
    static FloatVector expReduced(FloatVector x) {
        FloatVector k = x.fma(FloatVector.broadcast(S, 1.44269504088896341f), FloatVector.broadcast(S, ROUNDER));
        FloatVector t = k.sub(ROUNDER);
        // r = x − n·ln 2 in two parts for precision
        FloatVector r = t.fma(FloatVector.broadcast(S, -0.693359375f), x);
        r = t.fma(FloatVector.broadcast(S, 2.12194440e-4f), r);
        FloatVector z = r.mul(r);
        FloatVector y = FloatVector.broadcast(S, 1.9875691500e-4f);
        y = y.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        y = y.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        y = y.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        y = y.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        y = y.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        y = y.fma(z, r).add(1f);
        // 2^n: k's low bits hold n (its float is 1.5·2^23 + n); n + 127 shifted into the exponent
        IntVector pow2 = k.reinterpretAsInts().add(127).lanewise(VectorOperators.LSHL, 23);
        return y.mul(pow2.reinterpretAsFloats());
    }

    /** 1.5·2^23: adding it rounds a float of magnitude below 2^22 to an integer, to nearest. */
    private static final float ROUNDER = 12582912f;

    /** ln x; −∞ at 0, NaN below 0 and for NaN, ∞ at ∞ (denormals are treated as 0). */
    static FloatVector log(FloatVector x) {
        VectorMask<Float> tiny = x.compare(VectorOperators.LT, Float.MIN_NORMAL); // 0, denormals, negatives
        FloatVector out = logNormal(x.blend(Float.MIN_NORMAL, tiny));
        out = out.blend(Float.NEGATIVE_INFINITY, tiny);
        out = out.blend(Float.NaN, x.compare(VectorOperators.LT, 0f).or(x.test(VectorOperators.IS_NAN)));
        return out.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY));
    }

    /**
     * ln x for positive, normal, finite x only (no special values): the same bits as {@link #log}
     * there. x = m·2^e with m in [√½, √2) is taken from the bits in integer arithmetic (the
     * reduction Cephes does with a compare and two blends).
     */
    static FloatVector logNormal(FloatVector x) {
        IntVector ix = x.reinterpretAsInts().sub(SQRT_HALF_BITS);
        IntVector e = ix.lanewise(VectorOperators.ASHR, 23);
        FloatVector m = ix.and(0x007fffff).add(SQRT_HALF_BITS).reinterpretAsFloats();
        FloatVector ef = (FloatVector) e.convert(VectorOperators.I2F, 0);
        FloatVector v = m.sub(1f);
        FloatVector z = v.mul(v);
        FloatVector y = logPolynomial(v).mul(v).mul(z);
        y = ef.fma(FloatVector.broadcast(S, -2.12194440e-4f), y);
        y = z.fma(FloatVector.broadcast(S, -0.5f), y);
        FloatVector out = v.add(y);
        return ef.fma(FloatVector.broadcast(S, 0.693359375f), out);
    }

    /** The bits of (float) √½, Cephes' split point of the mantissa. */
    private static final int SQRT_HALF_BITS = Float.floatToRawIntBits(0.707106781186547524f);

    /**
     * Cephes' logf polynomial in v, Horner form. Apart from {@link #log} so that log stays under
     * C2's inlining limit for hot call sites (-XX:FreqInlineSize, 325 bytecodes; log was 400): a
     * vector method that is not inlined boxes its vector argument and result at every call
     * (GemKernels keeps its ln and exp loops apart for the same reason).
     */
    private static FloatVector logPolynomial(FloatVector v) {
        FloatVector y = FloatVector.broadcast(S, 7.0376836292e-2f);
        y = y.fma(v, FloatVector.broadcast(S, -1.1514610310e-1f));
        y = y.fma(v, FloatVector.broadcast(S, 1.1676998740e-1f));
        y = y.fma(v, FloatVector.broadcast(S, -1.2420140846e-1f));
        y = y.fma(v, FloatVector.broadcast(S, 1.4249322787e-1f));
        y = y.fma(v, FloatVector.broadcast(S, -1.6668057665e-1f));
        y = y.fma(v, FloatVector.broadcast(S, 2.0000714765e-1f));
        y = y.fma(v, FloatVector.broadcast(S, -2.4999993993e-1f));
        return y.fma(v, FloatVector.broadcast(S, 3.3333331174e-1f));
    }

    /**
     * The sum of the lanes in lane order, in double. {@code reduceLanes(ADD)} adds in a tree once
     * compiled and sequentially before, so its float result depends on JIT timing.
     */
    static double sumLanes(FloatVector v) {
        double s = 0;
        for (int i = 0; i < v.length(); i++) {
            s += v.lane(i);
        }
        return s;
    }

    static {
        if (I.length() != S.length()) {
            throw new IllegalStateException("int and float vector species differ in length");
        }
    }
}
