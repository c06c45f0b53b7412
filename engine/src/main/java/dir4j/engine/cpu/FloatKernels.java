package dir4j.engine.cpu;

import dir4j.engine.Backend.Binary;
import dir4j.engine.Backend.Reduce;
import dir4j.engine.Backend.Unary;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * float32 row kernels over native memory: the Vector API for unit-stride rows (and a broadcast
 * scalar operand), a scalar loop for strided rows. Offsets and strides are in elements.
 */
final class FloatKernels {
    private static final VectorSpecies<Float> S = CpuVectors.FLOAT;
    private static final VectorSpecies<Integer> I = S.withLanes(int.class);
    private static final int L = S.length();
    private static final ByteOrder NO = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private FloatKernels() {}

    static FloatVector load(MemorySegment s, long i) {
        return FloatVector.fromMemorySegment(S, s, i * 4, NO);
    }

    static void store(FloatVector v, MemorySegment s, long i) {
        v.intoMemorySegment(s, i * 4, NO);
    }

    // ------------------------------------------------------------------ relu backward

    /** o = g · (x &gt; 0 ? 1 : 0) over a row: the product ReLU's backward was (NaN·0 stays NaN). */
    static void reluBackward(MemorySegment g, long go, long sg, MemorySegment x, long xo, long sx, MemorySegment o,
                             long oo, long so, int len) {
        int i = 0;
        if (sg == 1 && sx == 1 && so == 1) {
            FloatVector zero = FloatVector.zero(S);
            int bound = S.loopBound(len);
            for (; i < bound; i += L) {
                FloatVector mask = zero.blend(1f, load(x, xo + i).compare(VectorOperators.GT, 0f));
                store(load(g, go + i).mul(mask), o, oo + i);
            }
        }
        for (; i < len; i++) {
            float xv = x.getAtIndex(F, xo + i * sx);
            o.setAtIndex(F, oo + i * so, g.getAtIndex(F, go + i * sg) * (xv > 0 ? 1f : 0f));
        }
    }

    // ------------------------------------------------------------------ unary

    /*
     * The elementwise loops are one method per operation, chosen by a switch outside the loop. With
     * the switch inside (one loop for every op), C2 compiled the loop for the ops its profile had
     * seen: in a JVM that had run several (any training step), the merged vector value of the
     * switch's arms was boxed on every iteration, and add, ReLU and the rest ran 5-7x slower than in
     * a benchmark that ran one op (bench/RESULTS.md, session 9). Each loop below applies one
     * constant operation, whatever else the JVM runs.
     */

    static void unary(Unary op, MemorySegment x, long xo, long sx, MemorySegment o, long oo, long so, int len,
                      float alpha, float beta) {
        int i = 0;
        if (sx == 1 && so == 1 && vectorised(op, alpha)) {
            i = unaryRows(op, x, xo, o, oo, len, alpha, beta);
        }
        for (; i < len; i++) {
            o.setAtIndex(F, oo + i * so, unaryScalar(op, x.getAtIndex(F, xo + i * sx), alpha, beta));
        }
    }

    private static boolean vectorised(Unary op, float alpha) {
        // POW only for the exponents that reduce to multiplies or roots; the general one is scalar
        return op != Unary.POW || alpha == 1 || alpha == 2 || alpha == 3 || alpha == 0.5f || alpha == -1;
    }

    /** The whole vectors of a contiguous row; returns how many elements they covered. */
    private static int unaryRows(Unary op, MemorySegment x, long xo, MemorySegment o, long oo, int len, float alpha,
            float beta) {
        int n = S.loopBound(len);
        switch (op) {
            case NEG -> negRow(x, xo, o, oo, n);
            case EXP -> expRow(x, xo, o, oo, n);
            case LOG -> logRow(x, xo, o, oo, n);
            case SQRT -> sqrtRow(x, xo, o, oo, n);
            case ABS -> absRow(x, xo, o, oo, n);
            case SIGN -> signRow(x, xo, o, oo, n);
            case RECIPROCAL -> reciprocalRow(x, xo, o, oo, n);
            case RELU -> reluRow(x, xo, o, oo, n);
            case POW -> {
                if (alpha == 1) {
                    affineRow(x, xo, o, oo, n, 1, 0);
                } else if (alpha == 2) {
                    squareRow(x, xo, o, oo, n);
                } else if (alpha == 3) {
                    cubeRow(x, xo, o, oo, n);
                } else if (alpha == 0.5f) {
                    sqrtRow(x, xo, o, oo, n);
                } else {
                    reciprocalRow(x, xo, o, oo, n);
                }
            }
            // an absent (NaN) bound becomes an infinite one: the same results for every x
            case CLAMP -> clampRow(x, xo, o, oo, n, Float.isNaN(alpha) ? Float.NEGATIVE_INFINITY : alpha,
                    Float.isNaN(beta) ? Float.POSITIVE_INFINITY : beta);
            case AFFINE -> affineRow(x, xo, o, oo, n, alpha, beta);
            case GREATER -> greaterRow(x, xo, o, oo, n, alpha);
            case IN_RANGE -> inRangeRow(x, xo, o, oo, n, Float.isNaN(alpha) ? Float.NEGATIVE_INFINITY : alpha,
                    Float.isNaN(beta) ? Float.POSITIVE_INFINITY : beta);
        }
        return n;
    }

    private static void negRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(load(x, xo + i).neg(), o, oo + i);
        }
    }

    private static void expRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(VectorMath.exp(load(x, xo + i)), o, oo + i);
        }
    }

    private static void logRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(VectorMath.log(load(x, xo + i)), o, oo + i);
        }
    }

    private static void sqrtRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(load(x, xo + i).sqrt(), o, oo + i);
        }
    }

    private static void absRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(load(x, xo + i).abs(), o, oo + i);
        }
    }

    private static void signRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += L) {
            FloatVector v = load(x, xo + i);
            store(zero.blend(1f, v.compare(VectorOperators.GT, 0f)).blend(-1f, v.compare(VectorOperators.LT, 0f)),
                    o, oo + i);
        }
    }

    private static void reciprocalRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        for (int i = 0; i < n; i += L) {
            store(one.div(load(x, xo + i)), o, oo + i);
        }
    }

    /**
     * max(v, 0), NaN kept, −0 to +0 (as ScalarMath): one compare and a blend. FloatVector.max
     * follows Math.max's NaN and signed-zero rules, which C2 spells in about five AVX-512
     * instructions, and the NaN test was two more: ReLU ran 1.45x a copy's time on one core.
     */
    private static void reluRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            store(relu(load(x, xo + i)), o, oo + i);
        }
    }

    private static FloatVector relu(FloatVector v) {
        return v.blend(0f, v.compare(VectorOperators.LE, 0f));
    }

    private static void squareRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector v = load(x, xo + i);
            store(v.mul(v), o, oo + i);
        }
    }

    private static void cubeRow(MemorySegment x, long xo, MemorySegment o, long oo, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector v = load(x, xo + i);
            store(v.mul(v).mul(v), o, oo + i);
        }
    }

    /** min(max(v, lo), hi) with NaN kept. */
    private static void clampRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, float lo, float hi) {
        for (int i = 0; i < n; i += L) {
            FloatVector v = load(x, xo + i);
            store(v.max(lo).min(hi).blend(v, v.test(VectorOperators.IS_NAN)), o, oo + i);
        }
    }

    private static void affineRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, float alpha,
            float beta) {
        FloatVector a = FloatVector.broadcast(S, alpha);
        FloatVector b = FloatVector.broadcast(S, beta);
        for (int i = 0; i < n; i += L) {
            store(load(x, xo + i).fma(a, b), o, oo + i);
        }
    }

    private static void greaterRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, float alpha) {
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += L) {
            store(zero.blend(1f, load(x, xo + i).compare(VectorOperators.GT, alpha)), o, oo + i);
        }
    }

    /** 1 where lo ≤ v ≤ hi (false for NaN), else 0. */
    private static void inRangeRow(MemorySegment x, long xo, MemorySegment o, long oo, int n, float lo, float hi) {
        FloatVector zero = FloatVector.zero(S);
        for (int i = 0; i < n; i += L) {
            FloatVector v = load(x, xo + i);
            store(zero.blend(1f, v.compare(VectorOperators.GE, lo).and(v.compare(VectorOperators.LE, hi))), o, oo + i);
        }
    }

    static float unaryScalar(Unary op, float v, float alpha, float beta) {
        return (float) ScalarMath.unary(op, v, alpha, beta);
    }

    // ------------------------------------------------------------------ binary

    static void binary(Binary op, MemorySegment a, long ao, long sa, MemorySegment b, long bo, long sb,
                       MemorySegment o, long oo, long so, int len) {
        int i = 0;
        // both operands broadcast (a constant row) stay in the scalar loop
        if (so == 1 && (sa == 1 || sa == 0) && (sb == 1 || sb == 0) && (sa == 1 || sb == 1) && op != Binary.POW) {
            i = S.loopBound(len);
            // a broadcast operand (stride 0) is one value; each loop below handles one of the three
            // layouts (both rows, b broadcast, a broadcast) in a loop of its own: with the choice
            // inside the loop, a JVM that had run both layouts ran the plain add at half speed
            boolean ab = sa == 0;
            boolean bb = sb == 0;
            switch (op) {
                case ADD -> addRow(a, ao, ab, b, bo, bb, o, oo, i);
                case SUB -> subRow(a, ao, ab, b, bo, bb, o, oo, i);
                case MUL -> mulRow(a, ao, ab, b, bo, bb, o, oo, i);
                case DIV -> divRow(a, ao, ab, b, bo, bb, o, oo, i);
                case MAX -> maxRow(a, ao, ab, b, bo, bb, o, oo, i);
                case MIN -> minRow(a, ao, ab, b, bo, bb, o, oo, i);
                case EQ -> eqRow(a, ao, ab, b, bo, bb, o, oo, i);
                case GT -> gtRow(a, ao, ab, b, bo, bb, o, oo, i);
                case POW -> throw new AssertionError("POW runs in the scalar loop");
            }
        }
        for (; i < len; i++) {
            float x = a.getAtIndex(F, ao + i * sa);
            float y = b.getAtIndex(F, bo + i * sb);
            o.setAtIndex(F, oo + i * so, (float) ScalarMath.binary(op, x, y));
        }
    }

    private static void addRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.add(y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.add(y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.add(y), o, oo + i);
            }
        }
    }

    private static void subRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.sub(y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.sub(y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.sub(y), o, oo + i);
            }
        }
    }

    private static void mulRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.mul(y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.mul(y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.mul(y), o, oo + i);
            }
        }
    }

    private static void divRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.div(y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.div(y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.div(y), o, oo + i);
            }
        }
    }

    /** NaN-propagating like torch.maximum. */
    private static void maxRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.lanewise(VectorOperators.MAX, y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.lanewise(VectorOperators.MAX, y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.lanewise(VectorOperators.MAX, y), o, oo + i);
            }
        }
    }

    /** NaN-propagating like torch.minimum. */
    private static void minRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(x.lanewise(VectorOperators.MIN, y), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(x.lanewise(VectorOperators.MIN, y), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(x.lanewise(VectorOperators.MIN, y), o, oo + i);
            }
        }
    }

    /** 1 where a == b, else 0. */
    private static void eqRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        FloatVector zero = FloatVector.zero(S);
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(zero.blend(1f, x.compare(VectorOperators.EQ, y)), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(zero.blend(1f, x.compare(VectorOperators.EQ, y)), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(zero.blend(1f, x.compare(VectorOperators.EQ, y)), o, oo + i);
            }
        }
    }

    /** 1 where a &gt; b, else 0. */
    private static void gtRow(MemorySegment a, long ao, boolean ab, MemorySegment b, long bo, boolean bb,
            MemorySegment o, long oo, int n) {
        FloatVector zero = FloatVector.zero(S);
        if (!ab && !bb) {
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                FloatVector y = load(b, bo + i);
                store(zero.blend(1f, x.compare(VectorOperators.GT, y)), o, oo + i);
            }
        } else if (!ab) {
            FloatVector y = FloatVector.broadcast(S, b.getAtIndex(F, bo));
            for (int i = 0; i < n; i += L) {
                FloatVector x = load(a, ao + i);
                store(zero.blend(1f, x.compare(VectorOperators.GT, y)), o, oo + i);
            }
        } else {
            FloatVector x = FloatVector.broadcast(S, a.getAtIndex(F, ao));
            for (int i = 0; i < n; i += L) {
                FloatVector y = load(b, bo + i);
                store(zero.blend(1f, x.compare(VectorOperators.GT, y)), o, oo + i);
            }
        }
    }

    // ------------------------------------------------------------------ reductions over a row

    static double sum(MemorySegment x, long xo, long sx, int len) {
        int i = 0;
        double total = 0;
        if (sx == 1) {
            FloatVector acc0 = FloatVector.zero(S);
            FloatVector acc1 = FloatVector.zero(S);
            int bound2 = len - len % (2 * L);
            for (; i < bound2; i += 2 * L) {
                acc0 = acc0.add(load(x, xo + i));
                acc1 = acc1.add(load(x, xo + i + L));
            }
            total = VectorMath.sumLanes(acc0.add(acc1));
        }
        for (; i < len; i++) {
            total += x.getAtIndex(F, xo + i * sx);
        }
        return total;
    }

    static float max(MemorySegment x, long xo, long sx, int len, boolean isMax) {
        int i = 0;
        float best = isMax ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY;
        boolean nan = false;
        if (sx == 1) {
            // FloatVector.max/min propagate NaN as Math.max/min do, so a NaN reaches the lane result
            // without a test per vector; two accumulators halve the chain of dependent max sequences
            FloatVector acc0 = FloatVector.broadcast(S, best);
            FloatVector acc1 = acc0;
            int bound2 = len - len % (2 * L);
            if (isMax) {
                for (; i < bound2; i += 2 * L) {
                    acc0 = acc0.max(load(x, xo + i));
                    acc1 = acc1.max(load(x, xo + i + L));
                }
                best = acc0.max(acc1).reduceLanes(VectorOperators.MAX);
            } else {
                for (; i < bound2; i += 2 * L) {
                    acc0 = acc0.min(load(x, xo + i));
                    acc1 = acc1.min(load(x, xo + i + L));
                }
                best = acc0.min(acc1).reduceLanes(VectorOperators.MIN);
            }
            nan = Float.isNaN(best);
        }
        for (; i < len; i++) {
            float v = x.getAtIndex(F, xo + i * sx);
            nan |= Float.isNaN(v);
            best = isMax ? Math.max(best, v) : Math.min(best, v);
        }
        return nan ? Float.NaN : best;
    }

    /** Σ (x − mean)² over a unit-stride row. */
    static double sumSquaredDeviation(MemorySegment x, long xo, int len, float mean) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        FloatVector m = FloatVector.broadcast(S, mean);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector d = load(x, xo + i).sub(m);
            acc = d.fma(d, acc);
        }
        double total = VectorMath.sumLanes(acc);
        for (; i < len; i++) {
            double d = x.getAtIndex(F, xo + i) - mean;
            total += d * d;
        }
        return total;
    }

    /** Σ dy·(x − mean) over unit-stride rows. */
    static double dotCentered(MemorySegment dy, long dyo, MemorySegment x, long xo, int len, float mean) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        FloatVector m = FloatVector.broadcast(S, mean);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            acc = load(x, xo + i).sub(m).fma(load(dy, dyo + i), acc);
        }
        double total = VectorMath.sumLanes(acc);
        for (; i < len; i++) {
            total += dy.getAtIndex(F, dyo + i) * (x.getAtIndex(F, xo + i) - mean);
        }
        return total;
    }

    /**
     * dy·(y &gt; 0 ? 1 : 0) for one vector: the gradient at a ReLU's input from its output y, the
     * product (not a select) exactly as {@link #reluBackward}.
     */
    private static FloatVector reluMasked(FloatVector dy, FloatVector y) {
        return dy.mul(FloatVector.zero(S).blend(1f, y.compare(VectorOperators.GT, 0f)));
    }

    /** dy·(y &gt; 0 ? 1 : 0) for one value, as {@link #reluBackward}'s scalar loop. */
    private static float reluMasked(float dy, float y) {
        return dy * (y > 0 ? 1f : 0f);
    }

    /**
     * Σ dz and Σ dz·(x − mean) over unit-stride rows, dz = dy·(y &gt; 0 ? 1 : 0): {@link #sum} and
     * {@link #dotCentered} of the masked gradient without storing it, the same lanes and order, so
     * the same bits as those two over a stored dz. Returns {sum, dot}.
     */
    static double[] reluMaskedSums(MemorySegment dy, long dyo, MemorySegment y, long yo, MemorySegment x, long xo,
                                   int len, float mean) {
        int i = 0;
        double total = 0;
        FloatVector acc0 = FloatVector.zero(S);
        FloatVector acc1 = FloatVector.zero(S);
        int bound2 = len - len % (2 * L);
        for (; i < bound2; i += 2 * L) {
            acc0 = acc0.add(reluMasked(load(dy, dyo + i), load(y, yo + i)));
            acc1 = acc1.add(reluMasked(load(dy, dyo + i + L), load(y, yo + i + L)));
        }
        total = VectorMath.sumLanes(acc0.add(acc1));
        for (; i < len; i++) {
            total += reluMasked(dy.getAtIndex(F, dyo + i), y.getAtIndex(F, yo + i));
        }
        i = 0;
        FloatVector acc = FloatVector.zero(S);
        FloatVector m = FloatVector.broadcast(S, mean);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            acc = load(x, xo + i).sub(m).fma(reluMasked(load(dy, dyo + i), load(y, yo + i)), acc);
        }
        double dot = VectorMath.sumLanes(acc);
        for (; i < len; i++) {
            dot += reluMasked(dy.getAtIndex(F, dyo + i), y.getAtIndex(F, yo + i)) * (x.getAtIndex(F, xo + i) - mean);
        }
        return new double[] {total, dot};
    }

    /**
     * o = a·dz + b·x + c over unit-stride rows with dz = dy·(y &gt; 0 ? 1 : 0) when {@code relu}
     * (else dy), and dz also stored to r when r is not null: {@link #axpbyc} of the masked gradient
     * (the same bits), the residual's gradient in the same pass.
     */
    static void axpbycReluMasked(MemorySegment dy, long dyo, MemorySegment y, long yo, boolean relu, MemorySegment x,
                                 long xo, MemorySegment o, long oo, MemorySegment r, long ro, int len, float a, float b,
                                 float c) {
        int i = 0;
        FloatVector av = FloatVector.broadcast(S, a);
        FloatVector bv = FloatVector.broadcast(S, b);
        FloatVector cv = FloatVector.broadcast(S, c);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector dz = relu ? reluMasked(load(dy, dyo + i), load(y, yo + i)) : load(dy, dyo + i);
            if (r != null) {
                store(dz, r, ro + i);
            }
            store(dz.fma(av, load(x, xo + i).fma(bv, cv)), o, oo + i);
        }
        for (; i < len; i++) {
            float dz = relu ? reluMasked(dy.getAtIndex(F, dyo + i), y.getAtIndex(F, yo + i)) : dy.getAtIndex(F, dyo + i);
            if (r != null) {
                r.setAtIndex(F, ro + i, dz);
            }
            o.setAtIndex(F, oo + i, dz * a + x.getAtIndex(F, xo + i) * b + c);
        }
    }

    /**
     * One channels-last max-pool window for every channel at once: best[c], arg[c] = the maximum of
     * rows [h0, h1) × columns [w0, w1) of the image at float offset xo (width w, c channels) and
     * its flat index h·w + w, the first in row-major scan order; a NaN wins and later values never
     * replace it (as the NCHW scan, which stops there). An empty window gives −∞ at index
     * h0·w + w0. The vector lanes carry the index as a float (exact below 2^24, which the caller
     * guarantees: {@code argF} is the per-lane scratch of c floats).
     */
    static void windowMaxNhwc(MemorySegment x, long xo, int w, int c, int h0, int h1, int w0, int w1, float[] best,
                              int[] arg, float[] argF) {
        java.util.Arrays.fill(best, Float.NEGATIVE_INFINITY);
        java.util.Arrays.fill(argF, h0 * w + w0);
        int bound = S.loopBound(c);
        for (int a = h0; a < h1; a++) {
            for (int b = w0; b < w1; b++) {
                int flat = a * w + b;
                long at = xo + (long) flat * c;
                int ch = 0;
                for (; ch < bound; ch += L) {
                    FloatVector v = load(x, at + ch);
                    FloatVector m = FloatVector.fromArray(S, best, ch);
                    // replace where v > best, or v is the first NaN (best not yet NaN); v > m is
                    // false for a NaN on either side, so "not (v <= m)" with m not NaN covers both
                    VectorMask<Float> take = v.compare(VectorOperators.LE, m).not()
                            .andNot(m.test(VectorOperators.IS_NAN));
                    m.blend(v, take).intoArray(best, ch);
                    FloatVector.fromArray(S, argF, ch).blend((float) flat, take).intoArray(argF, ch);
                }
                for (; ch < c; ch++) {
                    float v = x.getAtIndex(F, at + ch);
                    float m = best[ch];
                    if (!Float.isNaN(m) && (v > m || Float.isNaN(v))) {
                        best[ch] = v;
                        argF[ch] = flat;
                    }
                }
            }
        }
        for (int ch = 0; ch < c; ch++) {
            arg[ch] = (int) argF[ch];
        }
    }

    /** o = x·scale + shift over unit-stride rows. */
    static void scaleShift(MemorySegment x, long xo, MemorySegment o, long oo, int len, float scale, float shift) {
        int i = 0;
        FloatVector sv = FloatVector.broadcast(S, scale);
        FloatVector hv = FloatVector.broadcast(S, shift);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            store(load(x, xo + i).fma(sv, hv), o, oo + i);
        }
        for (; i < len; i++) {
            o.setAtIndex(F, oo + i, x.getAtIndex(F, xo + i) * scale + shift);
        }
    }

    /**
     * o = relu?(x·scale + shift [+ r]) over unit-stride rows (r null: no residual): inference batch
     * norm with the residual add and ReLU that end a ResNet block, in one pass. Rounds exactly as
     * {@link #scaleShift} followed by an add and a ReLU, so the fusion never changes a value. o may
     * be x (in place).
     */
    static void scaleShiftAddRelu(MemorySegment x, long xo, MemorySegment r, long ro, MemorySegment o, long oo,
                                  int len, float scale, float shift, boolean relu) {
        int i = 0;
        FloatVector sv = FloatVector.broadcast(S, scale);
        FloatVector hv = FloatVector.broadcast(S, shift);
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector v = load(x, xo + i).fma(sv, hv);
            if (r != null) {
                v = v.add(load(r, ro + i));
            }
            if (relu) {
                v = relu(v);
            }
            store(v, o, oo + i);
        }
        for (; i < len; i++) {
            float v = x.getAtIndex(F, xo + i) * scale + shift;
            if (r != null) {
                v += r.getAtIndex(F, ro + i);
            }
            o.setAtIndex(F, oo + i, relu ? Math.max(v, 0f) : v); // Math.max keeps NaN, as ReLU does
        }
    }

    /**
     * acc[0, len) = acc op row elementwise (SUM: +; MAX/MIN: NaN-propagating, as Math.max/min):
     * one row of a reduction over the outer axes (a column sum).
     */
    static void combineInto(Reduce op, float[] acc, MemorySegment x, long xo, int len) {
        switch (op) {
            case SUM -> addInto(acc, x, xo, len);
            case MAX -> maxInto(acc, x, xo, len);
            case MIN -> minInto(acc, x, xo, len);
        }
    }

    /** acc[0, len) += row elementwise. */
    static void addInto(float[] acc, MemorySegment x, long xo, int len) {
        int i = 0;
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector.fromArray(S, acc, i).add(load(x, xo + i)).intoArray(acc, i);
        }
        for (; i < len; i++) {
            acc[i] += x.getAtIndex(F, xo + i);
        }
    }

    /** acc[0, len) = min(acc, row) elementwise, NaN-propagating (as Math.min). */
    static void minInto(float[] acc, MemorySegment x, long xo, int len) {
        int i = 0;
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector.fromArray(S, acc, i).lanewise(VectorOperators.MIN, load(x, xo + i)).intoArray(acc, i);
        }
        for (; i < len; i++) {
            acc[i] = Math.min(acc[i], x.getAtIndex(F, xo + i));
        }
    }

    /** acc[0, len) = max(acc, row) elementwise, NaN-propagating (as Math.max): max pooling's vertical step. */
    static void maxInto(float[] acc, MemorySegment x, long xo, int len) {
        int i = 0;
        int bound = S.loopBound(len);
        for (; i < bound; i += L) {
            FloatVector.fromArray(S, acc, i).lanewise(VectorOperators.MAX, load(x, xo + i)).intoArray(acc, i);
        }
        for (; i < len; i++) {
            acc[i] = Math.max(acc[i], x.getAtIndex(F, xo + i));
        }
    }

    /**
     * out[j] = max over t &lt; k of cols[j·stride + shift + t], for j in [j0, j1), NaN-propagating (as
     * Math.max): max pooling's horizontal step over windows that lie inside cols. A vector of
     * outputs at a time, each tap read by {@link #tap} (a plain load for stride 1, the even lanes of
     * two loads for stride 2, a gather otherwise: the gathers alone made this pass slower than the
     * one with the argmax); with stride 2 that reads up to one element past the last window, so
     * cols must be at least one longer than the row. A scalar loop over 2–3 values per output
     * would mispredict its compare on every other value.
     */
    static void windowMax(float[] cols, int k, int stride, int shift, int[] strideMap, float[] out, int j0, int j1) {
        int j = j0;
        for (; j + L <= j1; j += L) {
            int base = j * stride + shift;
            FloatVector m = tap(cols, base, stride, strideMap);
            for (int t = 1; t < k; t++) {
                m = m.lanewise(VectorOperators.MAX, tap(cols, base + t, stride, strideMap));
            }
            m.intoArray(out, j);
        }
        for (; j < j1; j++) {
            int base = j * stride + shift;
            float m = cols[base];
            for (int t = 1; t < k; t++) {
                m = Math.max(m, cols[base + t]);
            }
            out[j] = m;
        }
    }

    /**
     * Whether v at flat index vi is max pooling's choice over best at bi: the larger value, NaN
     * above every number, and between equals (−0 and +0 are equal; so are two NaNs) the smaller
     * index, the first in the window's row-major scan.
     */
    static boolean comesFirst(float v, int vi, float best, int bi) {
        boolean vNaN = Float.isNaN(v);
        return v > best || vNaN && !Float.isNaN(best) || (v == best || vNaN) && vi < bi;
    }

    /** Lane indices 0, 1, 2, …: a constant, so that no vector is built (and boxed) per call. */
    private static final IntVector IOTA_I = IntVector.zero(I).addIndex(1);

    /**
     * Max pooling's vertical step with the argmax: for each column b &lt; w of the plane at xo
     * (rows of w), val[b] = the first maximum of rows [h0, h1) in that column (NaN wins over
     * numbers, ties keep the upper row, see {@link #comesFirst}) and idx[b] its flat index a·w + b.
     */
    static void argmaxDown(MemorySegment x, long xo, int w, int h0, int h1, float[] val, int[] idx) {
        int b = 0;
        if (w >= L) {
            // a ragged end is one more vector overlapping the last (the same lanes, computed again)
            for (int b0 = 0; b0 < w; b0 += L) {
                int c = Math.min(b0, w - L);
                FloatVector best = load(x, xo + (long) h0 * w + c);
                IntVector arg = IOTA_I.add(h0 * w + c);
                for (int a = h0 + 1; a < h1; a++) {
                    FloatVector v = load(x, xo + (long) a * w + c);
                    // a later row replaces only a smaller number, or a number by NaN
                    // (no mask carried across rows: a loop-carried mask is boxed on every row)
                    VectorMask<Float> take = v.compare(VectorOperators.GT, best)
                            .or(v.test(VectorOperators.IS_NAN).andNot(best.test(VectorOperators.IS_NAN)));
                    best = best.blend(v, take);
                    arg = arg.blend(IOTA_I.add(a * w + c), take.cast(I));
                }
                best.intoArray(val, c);
                arg.intoArray(idx, c);
            }
            b = w;
        }
        for (; b < w; b++) {
            float best = x.getAtIndex(F, xo + (long) h0 * w + b);
            int arg = h0 * w + b;
            for (int a = h0 + 1; a < h1; a++) {
                float v = x.getAtIndex(F, xo + (long) a * w + b);
                if (comesFirst(v, a * w + b, best, arg)) {
                    best = v;
                    arg = a * w + b;
                }
            }
            val[b] = best;
            idx[b] = arg;
        }
    }

    /**
     * Max pooling's horizontal step with the argmax: out[j], outIdx[j] = the pair among
     * (val[c], idx[c]), c = j·stride + shift + t for t &lt; k, that {@link #comesFirst} over the
     * others, for j in [j0, j1) whose windows lie inside the row. A vector of outputs at a time,
     * each tap t read by {@link #tap}; with stride 2 that reads up to one element past the last
     * window, so val and idx must be at least one longer than the row.
     */
    static void windowArgmax(float[] val, int[] idx, int k, int stride, int shift, int[] strideMap, float[] out,
                             int[] outIdx, int j0, int j1) {
        int j = j0;
        if (j1 - j0 >= L) {
            // a ragged end is one more vector overlapping the last, not a scalar tail of up to
            // L − 1 windows with data-dependent branches
            for (int jb = j0; jb < j1; jb += L) {
                int c = Math.min(jb, j1 - L);
                int base = c * stride + shift;
                FloatVector best = tap(val, base, stride, strideMap);
                IntVector arg = tap(idx, base, stride, strideMap);
                for (int t = 1; t < k; t++) {
                    FloatVector v = tap(val, base + t, stride, strideMap);
                    IntVector vi = tap(idx, base + t, stride, strideMap);
                    VectorMask<Float> vNaN = v.test(VectorOperators.IS_NAN);
                    VectorMask<Float> earlier = vi.compare(VectorOperators.LT, arg).cast(S);
                    VectorMask<Float> take = v.compare(VectorOperators.GT, best)
                            .or(vNaN.andNot(best.test(VectorOperators.IS_NAN)))
                            .or(v.compare(VectorOperators.EQ, best).or(vNaN).and(earlier));
                    best = best.blend(v, take);
                    arg = arg.blend(vi, take.cast(I));
                }
                best.intoArray(out, c);
                arg.intoArray(outIdx, c);
            }
            j = j1;
        }
        for (; j < j1; j++) {
            int base = j * stride + shift;
            float best = val[base];
            int arg = idx[base];
            for (int t = 1; t < k; t++) {
                if (comesFirst(val[base + t], idx[base + t], best, arg)) {
                    best = val[base + t];
                    arg = idx[base + t];
                }
            }
            out[j] = best;
            outIdx[j] = arg;
        }
    }

    /** Lane indices 0, 2, 4, …: the even lanes of two vectors side by side. */
    private static final FloatVector EVEN_F = FloatVector.zero(S).addIndex(2);
    private static final IntVector EVEN_I = IntVector.zero(I).addIndex(2);

    /**
     * a[at + stride·lane] per lane: a plain load for stride 1, the even lanes of two loads for
     * stride 2 (a two-table permute), a gather otherwise.
     */
    private static FloatVector tap(float[] a, int at, int stride, int[] strideMap) {
        return switch (stride) {
            case 1 -> FloatVector.fromArray(S, a, at);
            case 2 -> evenLanes(FloatVector.fromArray(S, a, at), FloatVector.fromArray(S, a, at + L));
            default -> FloatVector.fromArray(S, a, at, strideMap, 0);
        };
    }

    /** The even lanes of lo and hi side by side (a two-table permute): elements 0, 2, 4, … of a 2·L run. */
    static FloatVector evenLanes(FloatVector lo, FloatVector hi) {
        return EVEN_F.selectFrom(lo, hi);
    }

    /** {@link #tap} of the indices. */
    private static IntVector tap(int[] a, int at, int stride, int[] strideMap) {
        return switch (stride) {
            case 1 -> IntVector.fromArray(I, a, at);
            case 2 -> EVEN_I.selectFrom(IntVector.fromArray(I, a, at), IntVector.fromArray(I, a, at + L));
            default -> IntVector.fromArray(I, a, at, strideMap, 0);
        };
    }

    /** The gather map of {@link #windowMax}: lane i reads stride·i. */
    static int[] strideMap(int stride) {
        int[] map = new int[L];
        for (int i = 0; i < L; i++) {
            map[i] = i * stride;
        }
        return map;
    }

    /** o = a·dy + b·x + c over unit-stride rows (the batch-norm input gradient). */
    static void axpbyc(MemorySegment dy, long dyo, MemorySegment x, long xo, MemorySegment o, long oo, int len,
                       float a, float b, float c) {
        axpbycReluMasked(dy, dyo, null, 0, false, x, xo, o, oo, null, 0, len, a, b, c);
    }
}
