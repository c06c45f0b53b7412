package dir4j.engine.cpu;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Generalized-mean pooling, fused: y = (mean_hw max(x, ε)^p)^(1/p) per (n, c) plane in one pass,
 * and a backward that writes dx and the plane's share of dL/dp in one more pass with no
 * temporaries. Parallel over planes, vectorised over the plane.
 */
final class GemKernels {
    private static final VectorSpecies<Float> S = CpuVectors.FLOAT;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    private static final int L = S.length();
    private static final java.nio.ByteOrder NO = java.nio.ByteOrder.nativeOrder();

    private GemKernels() {}

    /** Per-thread scratch for a plane: ln z, then z^e (grown to the largest plane seen). */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[2][0]);

    /** The scratch for a plane of hw values, padded to whole vectors. */
    private static float[][] scratch(int hw) {
        float[][] t = SCRATCH.get();
        int padded = (hw + L - 1) / L * L;
        if (t[0].length < padded) {
            t[0] = new float[padded];
            t[1] = new float[padded];
        }
        return t;
    }

    /*
     * The transcendental parts run in small loops of their own (logPlane, expPlane), one plane at a
     * time through per-thread scratch in L1. C2 stops inlining into a method once its graph passes
     * -XX:NodeCountInliningCutoff (18,000 nodes): a kernel with ln and exp in its body (each a few
     * dozen Vector API operations) got one of the two as a real call, which boxes its vector
     * argument and result every time: GeM with a learned p (not 1, 2 or 3) ran 1.5-2x slower than
     * now (bench/RESULTS.md, session 8). Each loop below holds one of them, which C2 inlines; and
     * no vector crosses a call of ours (loads, stores and lane sums are done in place).
     */

    /**
     * dst[i] = ln max(src[off + i], floor) for i < n, in whole vectors (dst padded; the last load
     * masked): one call site of log, which stays hot and inlined even for 7x7 planes.
     *
     * <p>Returns a bound B with |ln z| ≤ B for every z of the plane, or −1 if the plane holds a NaN
     * or an infinity. Clamped by a positive normal floor, z is positive, normal and finite for any
     * other input, so the loop takes {@link VectorMath#logNormal} (no special cases: the same bits
     * as {@link VectorMath#log} there, about 40 % fewer operations) and tracks the bits of the
     * smallest and largest z (positive floats order as their bits; a NaN's bits lie above +∞'s or,
     * with the sign set, below every positive float's). A plane that fails the check is redone with
     * the full log.
     */
    private static float logPlane(MemorySegment src, long off, float floor, float[] dst, int n) {
        FloatVector f = FloatVector.broadcast(S, floor);
        IntVector lo = IntVector.broadcast(I, Integer.MAX_VALUE);
        IntVector hi = IntVector.broadcast(I, Integer.MIN_VALUE);
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromMemorySegment(S, src, (off + i) * 4, NO, S.indexInRange(i, n));
            FloatVector z = x.blend(f, x.compare(VectorOperators.LT, f)); // max(x, floor), NaN kept
            IntVector b = z.reinterpretAsInts();
            lo = lo.min(b);
            hi = hi.max(b);
            VectorMath.logNormal(z).intoArray(dst, i);
        }
        int loBits = lo.reduceLanes(VectorOperators.MIN);
        int hiBits = hi.reduceLanes(VectorOperators.MAX);
        if (loBits < MIN_NORMAL_BITS || hiBits >= INFINITY_BITS) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = FloatVector.fromMemorySegment(S, src, (off + i) * 4, NO, S.indexInRange(i, n));
                VectorMath.log(x.max(floor)).intoArray(dst, i);
            }
            return -1f;
        }
        // z in [2^elo, 2^(ehi+1)), so ln z in [elo·ln 2, (ehi + 1)·ln 2]
        int elo = Math.getExponent(Float.intBitsToFloat(loBits));
        int ehi = Math.getExponent(Float.intBitsToFloat(hiBits)) + 1;
        return (float) (Math.max(Math.abs(elo), Math.abs(ehi)) * LN2);
    }

    private static final int MIN_NORMAL_BITS = Float.floatToRawIntBits(Float.MIN_NORMAL);
    private static final int INFINITY_BITS = Float.floatToRawIntBits(Float.POSITIVE_INFINITY);
    private static final double LN2 = Math.log(2);

    /**
     * Whether exp(a·ln z) may skip exp's clamps and special values: every argument within ±87
     * ({@link VectorMath#expReduced}'s range), from the bound {@link #logPlane} returned.
     */
    private static boolean expInRange(float a, float lnBound) {
        return lnBound >= 0 && Math.abs(a) * (double) lnBound <= 87;
    }

    /** dst[i] = exp(a·src[i]) for i < n, in whole vectors over the padded scratch. */
    private static void expPlane(float[] src, float a, float[] dst, int n, boolean reduced) {
        if (reduced) {
            for (int i = 0; i < n; i += L) {
                VectorMath.expReduced(FloatVector.fromArray(S, src, i).mul(a)).intoArray(dst, i);
            }
        } else {
            for (int i = 0; i < n; i += L) {
                VectorMath.exp(FloatVector.fromArray(S, src, i).mul(a)).intoArray(dst, i);
            }
        }
    }

    /** Σ max(x, ε)^p over a float32 plane, p an integer from 1 to 3 (by multiplication). */
    private static double powSumSmall(MemorySegment xs, long base, int hw, float ef, int p) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(hw); i < bound; i += L) {
            acc = acc.add(smallPow(FloatVector.fromMemorySegment(S, xs, (base + i) * 4, NO).max(ef), p));
        }
        if (i < hw) {
            VectorMask<Float> in = S.indexInRange(i, hw);
            acc = acc.add(smallPow(FloatVector.fromMemorySegment(S, xs, (base + i) * 4, NO, in).max(ef), p), in);
        }
        float[] lanes = LANES.get();
        acc.intoArray(lanes, 0);
        return laneSum(lanes);
    }

    private static FloatVector smallPow(FloatVector z, int p) {
        return p == 1 ? z : p == 2 ? z.mul(z) : z.mul(z).mul(z);
    }

    /** Σ max(x, ε)^p over a float32 plane, any p, as exp(p·ln z) through the scratch. */
    private static double powSum(MemorySegment xs, long base, int hw, float ef, float pf) {
        float[][] t = scratch(hw);
        float lnBound = logPlane(xs, base, ef, t[0], hw);
        expPlane(t[0], pf, t[1], hw, expInRange(pf, lnBound));
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(hw); i < bound; i += L) {
            acc = acc.add(FloatVector.fromArray(S, t[1], i));
        }
        if (i < hw) {
            acc = acc.add(FloatVector.fromArray(S, t[1], i, S.indexInRange(i, hw)));
        }
        float[] lanes = LANES.get();
        acc.intoArray(lanes, 0);
        return laneSum(lanes);
    }

    /**
     * The sum of the lanes a vector was stored into, in lane order and in double (as
     * VectorMath.sumLanes): the callers store first, so that no vector crosses a call that C2
     * might leave un-inlined (its node cutoff; a vector crossing a call is boxed).
     */
    private static double laneSum(float[] lanes) {
        double s = 0;
        for (float x : lanes) {
            s += x;
        }
        return s;
    }

    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[L]);

    /** p as the small integer {@link #powSumSmall} takes, or 0. */
    private static int smallExponent(float p) {
        return p == 1f ? 1 : p == 2f ? 2 : p == 3f ? 3 : 0;
    }

    static void forward(Tensor x, double p, double eps, Tensor y) {
        int planes = x.shape(0) * x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        boolean f32 = x.dtype() == DType.FLOAT32;
        float pf = (float) p;
        float ef = (float) eps;
        int small = smallExponent(pf);
        CpuThreads.parallelRange(planes, Math.max(1, (1 << 14) / Math.max(1, hw)), (s, e) -> {
            for (long pl = s; pl < e; pl++) {
                long base = x.offset() + pl * hw;
                double sum = 0;
                if (f32) {
                    sum = small > 0 ? powSumSmall(xs, base, hw, ef, small) : powSum(xs, base, hw, ef, pf);
                } else {
                    for (int i = 0; i < hw; i++) {
                        sum += Math.pow(Math.max(CpuBackend.load(xs, x.dtype(), base + i), eps), p);
                    }
                }
                CpuBackend.store(ys, y.dtype(), y.offset() + pl, Math.pow(sum / hw, 1 / p));
            }
        });
    }

    /**
     * One float32 plane's backward: dx where x ≥ ε is coef·z^(p−1), and the sums of z^p and
     * z^p·ln z for dy/dp, written to sums as {Σ z^p, Σ z^p ln z}.
     */
    private static void backwardPlane(MemorySegment xs, long base, MemorySegment dxs, long dbase, int hw, float ef,
            float pm1, float coef, double[] sums) {
        float[][] t = scratch(hw);
        float[] lz = t[0];
        float[] zpm1s = t[1];
        float lnBound = logPlane(xs, base, ef, lz, hw);
        boolean square = pm1 == 2f;
        if (!square) {
            expPlane(lz, pm1, zpm1s, hw, expInRange(pm1, lnBound));
        }
        FloatVector c = FloatVector.broadcast(S, coef);
        FloatVector accZp = FloatVector.zero(S);
        FloatVector accLog = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(hw); i < bound; i += L) {
            FloatVector xv = FloatVector.fromMemorySegment(S, xs, (base + i) * 4, NO);
            VectorMask<Float> pass = xv.compare(VectorOperators.GE, ef);
            FloatVector z = xv.blend(ef, xv.compare(VectorOperators.LT, ef)); // max(x, ε), NaN kept
            FloatVector zpm1 = square ? z.mul(z) : FloatVector.fromArray(S, zpm1s, i);
            FloatVector zp = zpm1.mul(z);
            accZp = accZp.add(zp);
            accLog = zp.fma(FloatVector.fromArray(S, lz, i), accLog);
            FloatVector.zero(S).blend(zpm1.mul(c), pass).intoMemorySegment(dxs, (dbase + i) * 4, NO);
        }
        if (i < hw) { // the plane's last, partial vector, under a mask
            VectorMask<Float> in = S.indexInRange(i, hw);
            FloatVector xv = FloatVector.fromMemorySegment(S, xs, (base + i) * 4, NO, in);
            VectorMask<Float> pass = xv.compare(VectorOperators.GE, ef);
            FloatVector z = xv.blend(ef, xv.compare(VectorOperators.LT, ef)); // max(x, ε), NaN kept
            FloatVector zpm1 = square ? z.mul(z) : FloatVector.fromArray(S, zpm1s, i, in);
            FloatVector zp = zpm1.mul(z);
            accZp = accZp.add(zp, in);
            accLog = accLog.add(zp.mul(FloatVector.fromArray(S, lz, i, in)), in);
            FloatVector.zero(S).blend(zpm1.mul(c), pass).intoMemorySegment(dxs, (dbase + i) * 4,
                    NO, in);
        }
        float[] lanes = LANES.get();
        accZp.intoArray(lanes, 0);
        sums[0] = laneSum(lanes);
        accLog.intoArray(lanes, 0);
        sums[1] = laneSum(lanes);
    }

    /**
     * With z = max(x, ε), m = mean z^p, y = m^(1/p):
     * dy/dx = y^(1−p)·z^(p−1)/HW where x ≥ ε (clamp passes its boundary, as PyTorch), else 0;
     * dy/dp = y·(mean(z^p·ln z)/(p·m) − ln m / p²). dpPartial[plane] receives dL/dy·dy/dp.
     */
    static void backward(Tensor x, double p, double eps, Tensor y, Tensor dy, Tensor dx, Tensor dpPartial) {
        int planes = x.shape(0) * x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment dxs = dx.segment();
        boolean f32 = x.dtype() == DType.FLOAT32;
        DType t = x.dtype();
        float pm1 = (float) (p - 1);
        float ef = (float) eps;
        CpuThreads.parallelRange(planes, Math.max(1, (1 << 13) / Math.max(1, hw)), (s, e) -> {
            double[] sums = new double[2];
            for (long pl = s; pl < e; pl++) {
                long base = x.offset() + pl * hw;
                long dbase = dx.offset() + pl * hw;
                double yv = CpuBackend.load(y.segment(), y.dtype(), y.offset() + pl);
                double g = CpuBackend.load(dy.segment(), dy.dtype(), dy.offset() + pl);
                double coef = g * Math.pow(yv, 1 - p) / hw;
                double sumZp = 0;
                double sumZpLog = 0;
                if (f32) {
                    backwardPlane(xs, base, dxs, dbase, hw, ef, pm1, (float) coef, sums);
                    sumZp = sums[0];
                    sumZpLog = sums[1];
                } else {
                    for (int i = 0; i < hw; i++) {
                        double xv = CpuBackend.load(xs, t, base + i);
                        double z = Math.max(xv, eps);
                        double zpm1 = Math.pow(z, p - 1);
                        sumZp += zpm1 * z;
                        sumZpLog += zpm1 * z * Math.log(z);
                        CpuBackend.store(dxs, t, dbase + i, xv >= eps ? coef * zpm1 : 0);
                    }
                }
                double m = sumZp / hw;
                double dydp = yv * (sumZpLog / hw / (p * m) - Math.log(m) / (p * p));
                CpuBackend.store(dpPartial.segment(), dpPartial.dtype(), dpPartial.offset() + pl, g * dydp);
            }
        });
    }
}
