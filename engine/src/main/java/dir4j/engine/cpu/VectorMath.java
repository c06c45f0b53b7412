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

    /** e^x; ±∞ and NaN as Math.exp, 0 below −87.3, ∞ above 88.7. */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(-87.33654f).min(88.72283f);
        // n = round(x / ln 2), r = x − n·ln 2 in two parts for precision
        FloatVector fx = xc.fma(FloatVector.broadcast(S, 1.44269504088896341f), FloatVector.broadcast(S, 0.5f));
        FloatVector t = floor(fx);
        FloatVector r = t.fma(FloatVector.broadcast(S, -0.693359375f), xc);
        r = t.fma(FloatVector.broadcast(S, 2.12194440e-4f), r);
        FloatVector z = r.mul(r);
        FloatVector y = FloatVector.broadcast(S, 1.9875691500e-4f);
        y = y.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        y = y.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        y = y.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        y = y.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        y = y.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        y = y.fma(z, r).add(1f);
        // scale by 2^n through the exponent bits
        IntVector n = (IntVector) t.convert(VectorOperators.F2I, 0);
        IntVector bits = n.add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector pow2 = bits.reinterpretAsFloats();
        FloatVector out = y.mul(pow2);
        out = out.blend(0f, x.compare(VectorOperators.LT, -87.33654f));
        out = out.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 88.72283f));
        return out.blend(x, x.test(VectorOperators.IS_NAN));
    }

    /** ln x; −∞ at 0, NaN below 0 and for NaN, ∞ at ∞ (denormals are treated as 0). */
    static FloatVector log(FloatVector x) {
        FloatVector xc = x.max(Float.MIN_NORMAL);
        IntVector bits = xc.reinterpretAsInts();
        // x = m · 2^e with m in [0.5, 1)
        IntVector e = bits.lanewise(VectorOperators.LSHR, 23).sub(126);
        FloatVector m = bits.and(0x807fffff).or(0x3f000000).reinterpretAsFloats();
        FloatVector ef = (FloatVector) e.convert(VectorOperators.I2F, 0);
        VectorMask<Float> small = m.compare(VectorOperators.LT, 0.707106781186547524f);
        ef = ef.sub(FloatVector.zero(S).blend(1f, small));
        FloatVector v = m.add(m.blend(0f, small.not())).sub(1f); // m < √½ ? 2m − 1 : m − 1
        FloatVector z = v.mul(v);
        FloatVector y = logPolynomial(v).mul(v).mul(z);
        y = ef.fma(FloatVector.broadcast(S, -2.12194440e-4f), y);
        y = z.fma(FloatVector.broadcast(S, -0.5f), y);
        FloatVector out = v.add(y);
        out = ef.fma(FloatVector.broadcast(S, 0.693359375f), out);
        out = out.blend(Float.NEGATIVE_INFINITY, x.compare(VectorOperators.LT, Float.MIN_NORMAL));
        out = out.blend(Float.NaN, x.compare(VectorOperators.LT, 0f).or(x.test(VectorOperators.IS_NAN)));
        return out.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.EQ, Float.POSITIVE_INFINITY));
    }

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

    /** ⌊x⌋ for |x| &lt; 2^31 via truncation and a correction. */
    private static FloatVector floor(FloatVector x) {
        FloatVector t = (FloatVector) ((IntVector) x.convert(VectorOperators.F2I, 0)).convert(VectorOperators.I2F, 0);
        return t.sub(FloatVector.zero(S).blend(1f, t.compare(VectorOperators.GT, x)));
    }

    static {
        if (I.length() != S.length()) {
            throw new IllegalStateException("int and float vector species differ in length");
        }
    }
}
