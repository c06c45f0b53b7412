package dir4j.engine.cpu;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
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
    private static final int L = S.length();

    private GemKernels() {}

    /** z^e for z &gt; 0, with the common exponents done by multiplication. */
    private static FloatVector pow(FloatVector z, float e) {
        if (e == 1f) {
            return z;
        }
        if (e == 2f) {
            return z.mul(z);
        }
        if (e == 3f) {
            return z.mul(z).mul(z);
        }
        return VectorMath.pow(z, e);
    }

    static void forward(Tensor x, double p, double eps, Tensor y) {
        int planes = x.shape(0) * x.shape(1);
        int hw = x.shape(2) * x.shape(3);
        MemorySegment xs = x.segment();
        MemorySegment ys = y.segment();
        boolean f32 = x.dtype() == DType.FLOAT32;
        CpuThreads.parallelRange(planes, Math.max(1, (1 << 14) / Math.max(1, hw)), (s, e) -> {
            for (long pl = s; pl < e; pl++) {
                long base = x.offset() + pl * hw;
                double sum = 0;
                if (f32) {
                    float pf = (float) p;
                    float ef = (float) eps;
                    FloatVector acc = FloatVector.zero(S);
                    int i = 0;
                    for (int bound = S.loopBound(hw); i < bound; i += L) {
                        acc = acc.add(pow(FloatKernels.load(xs, base + i).max(ef), pf));
                    }
                    sum = VectorMath.sumLanes(acc);
                    for (; i < hw; i++) {
                        sum += Math.pow(Math.max(xs.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, base + i), ef),
                                pf);
                    }
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
        CpuThreads.parallelRange(planes, Math.max(1, (1 << 13) / Math.max(1, hw)), (s, e) -> {
            for (long pl = s; pl < e; pl++) {
                long base = x.offset() + pl * hw;
                long dbase = dx.offset() + pl * hw;
                double yv = CpuBackend.load(y.segment(), y.dtype(), y.offset() + pl);
                double g = CpuBackend.load(dy.segment(), dy.dtype(), dy.offset() + pl);
                double coef = g * Math.pow(yv, 1 - p) / hw;
                double sumZp = 0;
                double sumZpLog = 0;
                if (f32) {
                    float pm1 = (float) (p - 1);
                    float ef = (float) eps;
                    FloatVector c = FloatVector.broadcast(S, (float) coef);
                    FloatVector accZp = FloatVector.zero(S);
                    FloatVector accLog = FloatVector.zero(S);
                    int i = 0;
                    for (int bound = S.loopBound(hw); i < bound; i += L) {
                        FloatVector xv = FloatKernels.load(xs, base + i);
                        VectorMask<Float> pass = xv.compare(VectorOperators.GE, ef);
                        FloatVector z = xv.max(ef);
                        FloatVector zpm1 = pow(z, pm1);
                        FloatVector zp = zpm1.mul(z);
                        accZp = accZp.add(zp);
                        accLog = zp.fma(VectorMath.log(z), accLog);
                        FloatKernels.store(FloatVector.zero(S).blend(zpm1.mul(c), pass), dxs, dbase + i);
                    }
                    sumZp = VectorMath.sumLanes(accZp);
                    sumZpLog = VectorMath.sumLanes(accLog);
                    for (; i < hw; i++) {
                        float xv = xs.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, base + i);
                        double z = Math.max(xv, ef);
                        double zpm1 = Math.pow(z, pm1);
                        sumZp += zpm1 * z;
                        sumZpLog += zpm1 * z * Math.log(z);
                        dxs.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, dbase + i,
                                xv >= ef ? (float) (coef * zpm1) : 0f);
                    }
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
