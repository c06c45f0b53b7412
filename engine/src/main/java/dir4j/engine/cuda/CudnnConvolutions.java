package dir4j.engine.cuda;

import dir4j.engine.Backend.ConvParams;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * cuDNN convolutions of one device with a plan per shape: the descriptors, and for each
 * direction the algorithm chosen the first time that direction runs (measured by
 * cudnnFind*AlgorithmEx on the real buffers within a workspace budget, or by heuristics with
 * {@code -Ddir4j.cuda.cudnn.search=heuristic}) with its math type and workspace size.
 * Workspaces come from the caching allocator and go back to it after each call (the call is
 * ordered before any later user on the stream).
 */
final class CudnnConvolutions {
    /** Workspace budget for the algorithm search and the chosen algorithm, MiB. */
    static final long WORKSPACE_LIMIT = Long.getLong("dir4j.cuda.cudnn.workspaceMiB", 1024) << 20;
    static final boolean MEASURE = !"heuristic".equals(System.getProperty("dir4j.cuda.cudnn.search", "find"));

    /** Everything that selects a plan. */
    record Key(int dataType, int n, int c, int h, int w, int k, int kh, int kw, ConvParams p, boolean tf32) {}

    /** The chosen algorithm of one direction. */
    record Choice(int algo, int mathType, long workspace, float measuredMs) {}

    static final class Plan {
        final Key key;
        final MemorySegment x;
        final MemorySegment w;
        final MemorySegment y;
        final MemorySegment conv;
        final Choice[] choices = new Choice[3];

        Plan(Key key, MemorySegment x, MemorySegment w, MemorySegment y, MemorySegment conv) {
            this.key = key;
            this.x = x;
            this.w = w;
            this.y = y;
            this.conv = conv;
        }

        /** Descriptors in the argument order of a direction: in1, in2, conv, out. */
        MemorySegment[] descriptors(Cudnn.Direction d) {
            return switch (d) {
                case FORWARD -> new MemorySegment[] {x, w, conv, y};
                case BACKWARD_DATA -> new MemorySegment[] {w, y, conv, x};
                case BACKWARD_FILTER -> new MemorySegment[] {x, y, conv, w};
            };
        }
    }

    private final Cudnn cudnn;
    private final CachingAllocator allocator;
    private final Supplier<long[]> memoryInfo;
    private final Map<Key, Plan> plans = new ConcurrentHashMap<>();

    /**
     * @param memoryInfo free and total device bytes (for the search's workspace budget)
     */
    CudnnConvolutions(Cudnn cudnn, CachingAllocator allocator, Supplier<long[]> memoryInfo) {
        this.cudnn = cudnn;
        this.allocator = allocator;
        this.memoryInfo = memoryInfo;
    }

    Plan plan(Key key, int[] yShape) {
        return plans.computeIfAbsent(key, k -> {
            MemorySegment x = Cudnn.tensor4d(k.dataType(), k.n(), k.c(), k.h(), k.w());
            MemorySegment w = Cudnn.filter4d(k.dataType(), k.k(), k.c(), k.kh(), k.kw());
            ConvParams p = k.p();
            MemorySegment conv = Cudnn.convolution2d(k.dataType(), p.padH(), p.padW(), p.strideH(), p.strideW(),
                    p.dilationH(), p.dilationW());
            int[] out = Cudnn.outputShape(conv, x, w);
            if (!java.util.Arrays.equals(out, yShape)) {
                throw new IllegalStateException("cuDNN computes output " + java.util.Arrays.toString(out) + " for " + k
                        + ", dir4j " + java.util.Arrays.toString(yShape));
            }
            MemorySegment y = Cudnn.tensor4d(k.dataType(), out[0], out[1], out[2], out[3]);
            return new Plan(k, x, w, y, conv);
        });
    }

    /**
     * Runs direction d of a plan: data = in1, in2, out device addresses in the direction's
     * order (forward: x, w, y; backward data: w, dy, dx; backward filter: x, dy, dw).
     */
    void run(Plan plan, Cudnn.Direction d, boolean dbl, boolean tf32, long[] data) {
        MemorySegment[] descs = plan.descriptors(d);
        Choice c;
        synchronized (plan) {
            c = plan.choices[d.ordinal()];
            if (c == null) {
                c = choose(plan, d, tf32, descs, data);
                plan.choices[d.ordinal()] = c;
            }
            Cudnn.setMathType(plan.conv, c.mathType());
        }
        CachingAllocator.Block ws = c.workspace() > 0 ? allocator.allocate(c.workspace()) : null;
        try {
            cudnn.run(d, dbl, descs, data, c.algo(), ws == null ? 0 : ws.address(), c.workspace());
        } finally {
            if (ws != null) {
                allocator.free(ws);
            }
        }
    }

    private Choice choose(Plan plan, Cudnn.Direction d, boolean tf32, MemorySegment[] descs, long[] data) {
        Cudnn.setMathType(plan.conv, tf32 ? Cudnn.MATH_DEFAULT : Cudnn.MATH_FMA);
        long budget = Math.min(WORKSPACE_LIMIT, memoryInfo.get()[0] / 2);
        List<Cudnn.AlgoPerf> ranked;
        if (MEASURE) {
            CachingAllocator.Block ws = null;
            while (budget > 0 && ws == null) {
                try {
                    ws = allocator.allocate(budget);
                } catch (OutOfMemoryError e) {
                    budget /= 2;
                }
            }
            try {
                ranked = cudnn.algorithms(d, true, descs, data, ws == null ? 0 : ws.address(), ws == null ? 0 : budget);
            } finally {
                if (ws != null) {
                    allocator.free(ws);
                }
            }
        } else {
            ranked = cudnn.algorithms(d, false, descs, data, 0, 0);
        }
        for (Cudnn.AlgoPerf p : ranked) {
            long need = MEASURE ? p.memory() : cudnn.workspaceSize(d, descs, p.algo());
            if (need <= budget) {
                return new Choice(p.algo(), p.mathType(), need, MEASURE ? p.timeMs() : Float.NaN);
            }
        }
        throw new CudaException("no cuDNN " + d + " algorithm for this convolution fits a workspace of "
                + CachingAllocator.bytes(budget) + " (" + ranked.size() + " candidates); raise -Ddir4j.cuda.cudnn.workspaceMiB");
    }

    /** The choices made so far, for diagnostics ("FORWARD algo 1 (0.12 ms, 0 B) ..."). */
    String describe() {
        StringBuilder sb = new StringBuilder();
        plans.forEach((k, p) -> {
            sb.append(k).append(':');
            for (Cudnn.Direction d : Cudnn.Direction.values()) {
                Choice c = p.choices[d.ordinal()];
                if (c != null) {
                    sb.append(' ').append(d).append(" algo ").append(c.algo()).append(" math ").append(c.mathType())
                            .append(" (").append(c.measuredMs()).append(" ms, ")
                            .append(CachingAllocator.bytes(c.workspace())).append(')');
                }
            }
            sb.append('\n');
        });
        return sb.toString();
    }
}
