package dir4j.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * This core's float32 FMA rate on the engine's vector width ({@code CpuVectors.FLOAT}), to calibrate kernel figures: a
 * register-only loop (12 independent accumulators, no memory access) and the same loop fed like a
 * GEMM micro-kernel (two vector loads and six broadcasts from L1-resident arrays per step). On a
 * shared VM the second moves with other tenants' load on the core while the first does not.
 * {@code args: [reps=10]}; prints GFLOP/s per rep, after a warm-up that compiles both loops:
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dir4j.bench.FmaPeak
 * </pre>
 */
public final class FmaPeak {
    private FmaPeak() {}

    static final VectorSpecies<Float> S = dir4j.engine.cpu.CpuVectors.FLOAT;

    static float registers(int iters, float[] w) {
        FloatVector b0 = FloatVector.fromArray(S, w, 0);
        FloatVector b1 = FloatVector.fromArray(S, w, S.length());
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < iters; i++) {
            c0 = b0.fma(b1, c0); c1 = b0.fma(b1, c1); c2 = b0.fma(b1, c2); c3 = b0.fma(b1, c3);
            c4 = b0.fma(b1, c4); c5 = b0.fma(b1, c5); c6 = b0.fma(b1, c6); c7 = b0.fma(b1, c7);
            c8 = b0.fma(b1, c8); c9 = b0.fma(b1, c9); c10 = b0.fma(b1, c10); c11 = b0.fma(b1, c11);
        }
        return c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11)
                .reduceLanes(VectorOperators.ADD);
    }

    static float loads(int iters, float[] w, float[] a) {
        int vl = S.length();
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
        FloatVector c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < iters; i++) {
            int wi = (i & 255) * 2 * vl;
            FloatVector b0 = FloatVector.fromArray(S, w, wi);
            FloatVector b1 = FloatVector.fromArray(S, w, wi + vl);
            int ai = (i & 255) * 6;
            FloatVector a0 = FloatVector.broadcast(S, a[ai]);
            FloatVector a1 = FloatVector.broadcast(S, a[ai + 1]);
            FloatVector a2 = FloatVector.broadcast(S, a[ai + 2]);
            FloatVector a3 = FloatVector.broadcast(S, a[ai + 3]);
            FloatVector a4 = FloatVector.broadcast(S, a[ai + 4]);
            FloatVector a5 = FloatVector.broadcast(S, a[ai + 5]);
            c0 = a0.fma(b0, c0); c1 = a0.fma(b1, c1); c2 = a1.fma(b0, c2); c3 = a1.fma(b1, c3);
            c4 = a2.fma(b0, c4); c5 = a2.fma(b1, c5); c6 = a3.fma(b0, c6); c7 = a3.fma(b1, c7);
            c8 = a4.fma(b0, c8); c9 = a4.fma(b1, c9); c10 = a5.fma(b0, c10); c11 = a5.fma(b1, c11);
        }
        return c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11)
                .reduceLanes(VectorOperators.ADD);
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        float[] w = new float[256 * 2 * S.length()];
        float[] a = new float[256 * 6];
        java.util.Arrays.fill(w, 1e-9f);
        java.util.Arrays.fill(a, 1e-9f);
        int iters = 50_000_000;
        double flops = 12.0 * 2 * S.length() * iters;
        float sink = 0;
        for (int r = 0; r < 200; r++) { // compile both loops before timing them
            sink += registers(100_000, w) + loads(100_000, w, a);
        }
        StringBuilder regs = new StringBuilder();
        StringBuilder fed = new StringBuilder();
        for (int r = 0; r < reps; r++) {
            long t0 = System.nanoTime();
            sink += registers(iters, w);
            regs.append(String.format(" %.0f", flops / (System.nanoTime() - t0)));
            t0 = System.nanoTime();
            sink += loads(iters, w, a);
            fed.append(String.format(" %.0f", flops / (System.nanoTime() - t0)));
        }
        System.out.printf("%d-bit FMA, GFLOP/s per rep%n  registers only:%s%n  loads + broadcasts:%s%n(checksum %s)%n",
                S.vectorBitSize(), regs, fed, sink);
    }
}
