package dir4j.engine.cpu;

import dir4j.engine.Backend.AdamStep;
import dir4j.engine.Backend.SgdStep;
import dir4j.engine.DType;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fused SGD and Adam/AdamW steps of {@link dir4j.engine.Backend#sgdStep} and
 * {@link dir4j.engine.Backend#adamStep}: one pass over param, grad and the state buffers, in
 * place. float32 runs on the Vector API with a scalar tail that performs the very same IEEE
 * operations (explicit fma, correctly rounded sqrt and division), so a result never depends on
 * the vector width or on where a chunk boundary falls; float64 runs the same formulas scalar.
 * kernels/src/main/cuda/optim.cu performs the same operations and so gives the same bits.
 */
final class OptimizerKernels {
    private OptimizerKernels() {}

    private static final VectorSpecies<Float> S = CpuVectors.FLOAT;
    private static final ByteOrder NO = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfDouble D = ValueLayout.JAVA_DOUBLE;
    /** Elements per task below which the pass is not split. */
    private static final long MIN_CHUNK = 1 << 16;

    private static void check(String op, Tensor param, Tensor... others) {
        DType t = param.dtype();
        if (t != DType.FLOAT32 && t != DType.FLOAT64) {
            throw new UnsupportedOperationException(op + ": parameters must be float32 or float64, not " + t);
        }
        param.checkAlive(op);
        if (!param.isDense()) {
            throw new IllegalArgumentException(op + ": the parameter " + Shape.str(param.shape())
                    + " is not dense (gaps or overlapping elements)");
        }
        for (Tensor o : others) {
            if (o == null) {
                continue;
            }
            o.checkAlive(op);
            // the kernels run over each operand's span in storage order: one layout for all
            if (o.dtype() != t || o.numel() != param.numel() || !o.laidOutAs(param)) {
                throw new IllegalArgumentException(op + ": every buffer must be a " + t + " tensor of "
                        + param.numel() + " elements laid out as the parameter " + Shape.str(param.shape())
                        + " " + java.util.Arrays.toString(param.strides()) + ", got " + o.dtype() + " "
                        + Shape.str(o.shape()) + " " + java.util.Arrays.toString(o.strides()));
            }
        }
    }

    static void sgd(Tensor param, Tensor grad, Tensor buf, boolean first, SgdStep h) {
        boolean momentum = h.momentum() != 0;
        if (momentum && buf == null) {
            throw new IllegalArgumentException("sgdStep: momentum " + h.momentum() + " needs a momentum buffer");
        }
        check("sgdStep", param, grad, buf);
        long n = param.numel();
        boolean wd = h.weightDecay() != 0;
        boolean nesterov = h.nesterov();
        MemorySegment ps = param.segment();
        MemorySegment gs = grad.segment();
        MemorySegment bs = momentum ? buf.segment() : null;
        long po = param.offset();
        long go = grad.offset();
        long bo = momentum ? buf.offset() : 0;
        if (param.dtype() == DType.FLOAT64) {
            double nlr = -h.lr();
            double mu = h.momentum();
            double damp1 = 1 - h.dampening();
            double decay = h.weightDecay();
            CpuThreads.parallelRange(n, MIN_CHUNK, (start, end) -> {
                for (long i = start; i < end; i++) {
                    double p = ps.getAtIndex(D, po + i);
                    double g = gs.getAtIndex(D, go + i);
                    if (wd) {
                        g = Math.fma(decay, p, g);
                    }
                    if (momentum) {
                        double b = first ? g : Math.fma(damp1, g, mu * bs.getAtIndex(D, bo + i));
                        bs.setAtIndex(D, bo + i, b);
                        g = nesterov ? Math.fma(mu, b, g) : b;
                    }
                    ps.setAtIndex(D, po + i, Math.fma(nlr, g, p));
                }
            });
            return;
        }
        float nlr = (float) -h.lr();
        float mu = (float) h.momentum();
        float damp1 = (float) (1 - h.dampening());
        float decay = (float) h.weightDecay();
        CpuThreads.parallelRange(n, MIN_CHUNK, (start, end) -> {
            long i = start;
            FloatVector nlrV = FloatVector.broadcast(S, nlr);
            FloatVector muV = FloatVector.broadcast(S, mu);
            FloatVector damp1V = FloatVector.broadcast(S, damp1);
            FloatVector decayV = FloatVector.broadcast(S, decay);
            for (long bound = start + (end - start) / S.length() * S.length(); i < bound; i += S.length()) {
                FloatVector p = FloatVector.fromMemorySegment(S, ps, (po + i) * 4, NO);
                FloatVector g = FloatVector.fromMemorySegment(S, gs, (go + i) * 4, NO);
                if (wd) {
                    g = decayV.fma(p, g);
                }
                if (momentum) {
                    FloatVector b = first ? g
                            : damp1V.fma(g, muV.mul(FloatVector.fromMemorySegment(S, bs, (bo + i) * 4, NO)));
                    b.intoMemorySegment(bs, (bo + i) * 4, NO);
                    g = nesterov ? muV.fma(b, g) : b;
                }
                nlrV.fma(g, p).intoMemorySegment(ps, (po + i) * 4, NO);
            }
            for (; i < end; i++) {
                float p = ps.getAtIndex(F, po + i);
                float g = gs.getAtIndex(F, go + i);
                if (wd) {
                    g = Math.fma(decay, p, g);
                }
                if (momentum) {
                    float b = first ? g : Math.fma(damp1, g, mu * bs.getAtIndex(F, bo + i));
                    bs.setAtIndex(F, bo + i, b);
                    g = nesterov ? Math.fma(mu, b, g) : b;
                }
                ps.setAtIndex(F, po + i, Math.fma(nlr, g, p));
            }
        });
    }

    static void adam(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamStep h) {
        if (expAvg == null || expAvgSq == null) {
            throw new IllegalArgumentException("adamStep: exp_avg and exp_avg_sq are required");
        }
        check("adamStep", param, grad, expAvg, expAvgSq);
        long n = param.numel();
        int mode = h.weightDecay() == 0 ? 0 : h.decoupled() ? 2 : 1;
        MemorySegment ps = param.segment();
        MemorySegment gs = grad.segment();
        MemorySegment ms = expAvg.segment();
        MemorySegment vs = expAvgSq.segment();
        long po = param.offset();
        long go = grad.offset();
        long mo = expAvg.offset();
        long vo = expAvgSq.offset();
        if (param.dtype() == DType.FLOAT64) {
            double decay = h.weightDecay();
            double factor = h.decayFactor();
            double b1 = h.beta1();
            double omb1 = 1 - h.beta1();
            double b2 = h.beta2();
            double omb2 = 1 - h.beta2();
            double bc2 = h.biasCorrection2Sqrt();
            double eps = h.eps();
            double nstep = -h.stepSize();
            CpuThreads.parallelRange(n, MIN_CHUNK, (start, end) -> {
                for (long i = start; i < end; i++) {
                    double p = ps.getAtIndex(D, po + i);
                    double g = gs.getAtIndex(D, go + i);
                    if (mode == 2) {
                        p = p * factor;
                    } else if (mode == 1) {
                        g = Math.fma(decay, p, g);
                    }
                    double m = Math.fma(omb1, g, b1 * ms.getAtIndex(D, mo + i));
                    double v = Math.fma(omb2, g * g, b2 * vs.getAtIndex(D, vo + i));
                    ms.setAtIndex(D, mo + i, m);
                    vs.setAtIndex(D, vo + i, v);
                    double denom = Math.sqrt(v) / bc2 + eps;
                    ps.setAtIndex(D, po + i, Math.fma(nstep, m / denom, p));
                }
            });
            return;
        }
        float decay = (float) h.weightDecay();
        float factor = (float) h.decayFactor();
        float b1 = (float) h.beta1();
        float omb1 = (float) (1 - h.beta1());
        float b2 = (float) h.beta2();
        float omb2 = (float) (1 - h.beta2());
        float bc2 = (float) h.biasCorrection2Sqrt();
        float eps = (float) h.eps();
        float nstep = (float) -h.stepSize();
        CpuThreads.parallelRange(n, MIN_CHUNK, (start, end) -> {
            FloatVector decayV = FloatVector.broadcast(S, decay);
            FloatVector factorV = FloatVector.broadcast(S, factor);
            FloatVector b1V = FloatVector.broadcast(S, b1);
            FloatVector omb1V = FloatVector.broadcast(S, omb1);
            FloatVector b2V = FloatVector.broadcast(S, b2);
            FloatVector omb2V = FloatVector.broadcast(S, omb2);
            FloatVector bc2V = FloatVector.broadcast(S, bc2);
            FloatVector epsV = FloatVector.broadcast(S, eps);
            FloatVector nstepV = FloatVector.broadcast(S, nstep);
            long i = start;
            for (long bound = start + (end - start) / S.length() * S.length(); i < bound; i += S.length()) {
                FloatVector p = FloatVector.fromMemorySegment(S, ps, (po + i) * 4, NO);
                FloatVector g = FloatVector.fromMemorySegment(S, gs, (go + i) * 4, NO);
                if (mode == 2) {
                    p = p.mul(factorV);
                } else if (mode == 1) {
                    g = decayV.fma(p, g);
                }
                FloatVector m = omb1V.fma(g, b1V.mul(FloatVector.fromMemorySegment(S, ms, (mo + i) * 4, NO)));
                FloatVector v = omb2V.fma(g.mul(g), b2V.mul(FloatVector.fromMemorySegment(S, vs, (vo + i) * 4, NO)));
                m.intoMemorySegment(ms, (mo + i) * 4, NO);
                v.intoMemorySegment(vs, (vo + i) * 4, NO);
                FloatVector denom = v.lanewise(VectorOperators.SQRT).div(bc2V).add(epsV);
                nstepV.fma(m.div(denom), p).intoMemorySegment(ps, (po + i) * 4, NO);
            }
            for (; i < end; i++) {
                float p = ps.getAtIndex(F, po + i);
                float g = gs.getAtIndex(F, go + i);
                if (mode == 2) {
                    p = p * factor;
                } else if (mode == 1) {
                    g = Math.fma(decay, p, g);
                }
                float m = Math.fma(omb1, g, b1 * ms.getAtIndex(F, mo + i));
                float v = Math.fma(omb2, g * g, b2 * vs.getAtIndex(F, vo + i));
                ms.setAtIndex(F, mo + i, m);
                vs.setAtIndex(F, vo + i, v);
                float denom = (float) Math.sqrt(v) / bc2 + eps;
                ps.setAtIndex(F, po + i, Math.fma(nstep, m / denom, p));
            }
        });
    }
}
