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
 *
 * <p>Channels-last plans ({@link Key#nhwc}) also run the fused inference forward
 * {@link #runFused}: y = relu(conv(x, w) + bias [+ z]) in one cudnnConvolutionBiasActivationForward
 * call, with the first of the forward search's algorithms that the fused path accepts (chosen
 * apart with and without the residual z, from one search); without
 * the ReLU (cuDNN's identity activation takes one algorithm only), or when the fused path accepts
 * none (said once on stderr and in {@link #describe}), the caller runs the forward with the
 * searched algorithm and its own epilogue kernels.
 */
final class CudnnConvolutions {
    /** Workspace budget for the algorithm search and the chosen algorithm, MiB. */
    static final long WORKSPACE_LIMIT = Long.getLong("dir4j.cuda.cudnn.workspaceMiB", 1024) << 20;
    static final boolean MEASURE = !"heuristic".equals(System.getProperty("dir4j.cuda.cudnn.search", "find"));

    /**
     * Everything that selects a plan: x [n, c, h, w] and w [k, c, kh, kw] in NCHW, or with {@code nhwc}
     * x [n, h, w, c], w [k, kh, kw, c] and y [n, ho, wo, k] channels-last.
     */
    record Key(int dataType, int n, int c, int h, int w, int k, int kh, int kw, ConvParams p, boolean tf32,
               boolean nhwc) {}

    /** The chosen algorithm of one direction. */
    record Choice(int algo, int mathType, long workspace, float measuredMs) {}

    static final class Plan {
        final Key key;
        final MemorySegment x;
        final MemorySegment w;
        final MemorySegment y;
        final MemorySegment conv;
        final Choice[] choices = new Choice[3];
        /** The bias descriptor [1, k, 1, 1] of the fused forward (channels-last plans), else null. */
        final MemorySegment bias;
        /**
         * The algorithm the fused forward with ReLU runs, once found: [0] without a residual, [1] with
         * one. The two are chosen apart because one shape can serve both (a BasicBlock's two 3x3s
         * past its first block), and an algorithm the fused call takes with alpha2 = 0 need not be
         * one it takes with a residual.
         */
        final Choice[] fused = new Choice[2];
        /** Why the fused forward accepted no algorithm (then the plan runs unfused), per variant, else null. */
        final String[] fusedRefused = new String[2];
        /** The forward search's ranked algorithms within the workspace budget, kept for the second variant. */
        List<Choice> fusedCandidates;

        Plan(Key key, MemorySegment x, MemorySegment w, MemorySegment y, MemorySegment conv, MemorySegment bias) {
            this.key = key;
            this.x = x;
            this.w = w;
            this.y = y;
            this.conv = conv;
            this.bias = bias;
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
    private final CudaProfiler profiler;
    private MemorySegment relu;

    /**
     * @param memoryInfo free and total device bytes (for the search's workspace budget)
     */
    CudnnConvolutions(Cudnn cudnn, CachingAllocator allocator, Supplier<long[]> memoryInfo, CudaProfiler profiler) {
        this.profiler = profiler;
        this.cudnn = cudnn;
        this.allocator = allocator;
        this.memoryInfo = memoryInfo;
    }

    /**
     * The plan of a shape, made the first time.
     *
     * @param yShape the output's dimensions as n, k, ho, wo (whatever the layout), checked against cuDNN's
     */
    Plan plan(Key key, int[] yShape) {
        return plans.computeIfAbsent(key, k -> {
            int format = k.nhwc() ? Cudnn.FORMAT_NHWC : Cudnn.FORMAT_NCHW;
            MemorySegment x = Cudnn.tensor4d(format, k.dataType(), k.n(), k.c(), k.h(), k.w());
            MemorySegment w = Cudnn.filter4d(format, k.dataType(), k.k(), k.c(), k.kh(), k.kw());
            ConvParams p = k.p();
            MemorySegment conv = Cudnn.convolution2d(k.dataType(), p.padH(), p.padW(), p.strideH(), p.strideW(),
                    p.dilationH(), p.dilationW());
            int[] out = Cudnn.outputShape(conv, x, w);
            if (!java.util.Arrays.equals(out, yShape)) {
                throw new IllegalStateException("cuDNN computes output " + java.util.Arrays.toString(out) + " for " + k
                        + ", dir4j " + java.util.Arrays.toString(yShape));
            }
            MemorySegment y = Cudnn.tensor4d(format, k.dataType(), out[0], out[1], out[2], out[3]);
            MemorySegment bias = k.nhwc() ? Cudnn.tensor4d(k.dataType(), 1, k.k(), 1, 1) : null;
            return new Plan(k, x, w, y, conv, bias);
        });
    }

    /**
     * The fused inference forward of a channels-last float plan, y = relu(conv(x, w) + bias [+ z])
     * in one cudnnConvolutionBiasActivationForward call (device addresses; z 0 when there is no
     * residual). Its algorithm is chosen the first time: the forward search's candidates in rank
     * order, the first the fused call accepts (that call is the result). Without the ReLU cuDNN's
     * fused call takes IMPLICIT_PRECOMP_GEMM only, so the caller runs the searched forward and its
     * own epilogue kernels instead; so it does for a shape whose every algorithm the fused call
     * refuses.
     *
     * @return whether the fused call ran (false: nothing ran, the caller computes y)
     */
    boolean runFused(Plan plan, long x, long w, long bias, long z, long y) {
        if (!plan.key.nhwc()) {
            throw new IllegalArgumentException("the fused forward takes channels-last plans, not " + plan.key);
        }
        MemorySegment[] descs = plan.descriptors(Cudnn.Direction.FORWARD);
        MemorySegment act = reluDescriptor();
        Choice c;
        int variant = z != 0 ? 1 : 0;
        synchronized (plan) {
            if (plan.fused[variant] == null && plan.fusedRefused[variant] == null) {
                plan.fused[variant] = chooseFused(plan, variant, descs, x, w, bias, z, act, y);
                return plan.fused[variant] != null;
            }
            c = plan.fused[variant];
            if (c == null) {
                return false;
            }
            Cudnn.setMathType(plan.conv, c.mathType());
        }
        CachingAllocator.Block ws = c.workspace() > 0 ? allocator.allocate(c.workspace()) : null;
        try (CudaProfiler.Span span = profiler.enabled() ? profiler.time(profileName("FUSED_RELU", plan.key))
                : CudaProfiler.none()) {
            Cudnn.check(cudnn.convBiasActivation(descs, x, w, c.algo(), ws == null ? 0 : ws.address(), c.workspace(),
                    z, plan.bias, bias, act, y), "cudnnConvolutionBiasActivationForward(algo " + c.algo() + ", "
                    + plan.key + ")");
        } finally {
            if (ws != null) {
                allocator.free(ws);
            }
        }
        return true;
    }

    private synchronized MemorySegment reluDescriptor() {
        if (relu == null) {
            relu = Cudnn.activation(Cudnn.ACTIVATION_RELU);
        }
        return relu;
    }

    /**
     * Runs the fused forward with each candidate in turn until one is accepted; that one is the
     * choice of the variant (0 without a residual, 1 with). When none is, records why in the plan, says so on
     * stderr, and returns null.
     */
    private Choice chooseFused(Plan plan, int variant, MemorySegment[] descs, long x, long w, long bias, long z,
                               MemorySegment act, long y) {
        if (plan.fusedCandidates == null) {
            plan.fusedCandidates = candidates(plan, Cudnn.Direction.FORWARD, plan.key.tf32(), descs,
                    new long[] {x, w, y});
        }
        List<Choice> candidates = plan.fusedCandidates;
        StringBuilder refused = new StringBuilder();
        for (Choice c : candidates) {
            Cudnn.setMathType(plan.conv, c.mathType());
            CachingAllocator.Block ws = c.workspace() > 0 ? allocator.allocate(c.workspace()) : null;
            int status;
            try {
                status = cudnn.convBiasActivation(descs, x, w, c.algo(), ws == null ? 0 : ws.address(), c.workspace(),
                        z, plan.bias, bias, act, y);
            } finally {
                if (ws != null) {
                    allocator.free(ws);
                }
            }
            if (status == 0) {
                return c;
            }
            refused.append(refused.isEmpty() ? "" : ", ").append("algo ").append(c.algo()).append(": ")
                    .append(Cudnn.statusText(status));
        }
        plan.fusedRefused[variant] = "accepts none of the " + candidates.size() + " forward algorithms ("
                + refused + ")";
        System.err.println("dir4j: cudnnConvolutionBiasActivationForward " + plan.fusedRefused[variant] + " for "
                + plan.key + (variant == 1 ? " with a residual" : " without a residual")
                + "; this shape runs the convolution, then the bias, residual and ReLU kernels");
        return null;
    }

    /** "conv/FORWARD/NHWC/3x3 s1 256->256 at 32x32 (n 16)": the profiler's name of a plan's direction. */
    static String profileName(String direction, Key k) {
        return "conv/" + direction + "/" + (k.nhwc() ? "NHWC" : "NCHW") + "/" + k.kh() + "x" + k.kw() + " s"
                + k.p().strideH() + " " + k.c() + "->" + k.k() + " at " + k.h() + "x" + k.w() + " (n " + k.n() + ")";
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
        try (CudaProfiler.Span span = profiler.enabled() ? profiler.time(profileName(d.toString(), plan.key)) : CudaProfiler.none()) {
            cudnn.run(d, dbl, descs, data, c.algo(), ws == null ? 0 : ws.address(), c.workspace());
        } finally {
            if (ws != null) {
                allocator.free(ws);
            }
        }
    }

    private Choice choose(Plan plan, Cudnn.Direction d, boolean tf32, MemorySegment[] descs, long[] data) {
        return candidates(plan, d, tf32, descs, data).get(0);
    }

    /**
     * The algorithms of a direction that fit the workspace budget, best first (measured, or by
     * heuristics); never empty: without one it throws, saying what cuDNN refused and what did not fit.
     */
    private List<Choice> candidates(Plan plan, Cudnn.Direction d, boolean tf32, MemorySegment[] descs, long[] data) {
        if (allocator.capturing()) {
            // the search waits for the device and asks the driver for free memory: inside a capture
            // that would end in an unhelpful cuDNN or driver status
            throw new IllegalStateException("no cuDNN algorithm is chosen yet for the " + d + " of " + plan.key
                    + ", and choosing one is not possible while a CUDA graph is recorded: run the workload once"
                    + " before recording it");
        }
        Cudnn.setMathType(plan.conv, tf32 ? Cudnn.MATH_DEFAULT : Cudnn.MATH_FMA);
        long budget = Math.min(WORKSPACE_LIMIT, memoryInfo.get()[0] / 2);
        List<Cudnn.AlgoPerf> ranked;
        List<Cudnn.AlgoPerf> failed = new java.util.ArrayList<>();
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
                ranked = cudnn.algorithms(d, true, descs, data, ws == null ? 0 : ws.address(), ws == null ? 0 : budget,
                        failed);
            } finally {
                if (ws != null) {
                    allocator.free(ws);
                }
            }
        } else {
            ranked = cudnn.algorithms(d, false, descs, data, 0, 0, failed);
        }
        List<Choice> out = new java.util.ArrayList<>();
        List<String> tooLarge = new java.util.ArrayList<>();
        for (Cudnn.AlgoPerf p : ranked) {
            long need = MEASURE ? p.memory() : cudnn.workspaceSize(d, descs, p.algo());
            if (need <= budget) {
                out.add(new Choice(p.algo(), p.mathType(), need, MEASURE ? p.timeMs() : Float.NaN));
            } else {
                tooLarge.add("algo " + p.algo() + " needs " + CachingAllocator.bytes(need));
            }
        }
        if (out.isEmpty()) {
            throw new CudaException(noAlgorithm(plan.key, d, tf32, budget, failed, tooLarge));
        }
        return out;
    }

    /** Why a direction of a convolution has no algorithm, and what to try. */
    static String noAlgorithm(Key key, Cudnn.Direction d, boolean tf32, long budget, List<Cudnn.AlgoPerf> failed,
                              List<String> tooLarge) {
        StringBuilder sb = new StringBuilder("no cuDNN ").append(d).append(" algorithm for ").append(key)
                .append(" (TF32 ").append(tf32 ? "on" : "off").append("): ");
        if (failed.isEmpty() && tooLarge.isEmpty()) {
            sb.append("cuDNN offered none");
        }
        if (!failed.isEmpty()) {
            sb.append("cuDNN refused ").append(failed.stream().map(f -> "algo " + f.algo() + " (" + Cudnn.statusText(
                    f.status()) + ")").collect(java.util.stream.Collectors.joining(", ")));
        }
        if (!tooLarge.isEmpty()) {
            sb.append(failed.isEmpty() ? "" : "; ").append(String.join(", ", tooLarge)).append(", more than the ")
                    .append(CachingAllocator.bytes(budget)).append(" workspace budget (the smaller of ")
                    .append("-Ddir4j.cuda.cudnn.workspaceMiB and half the free memory): raise it or free memory");
        }
        if (key.nhwc() && !tf32 && !failed.isEmpty()) {
            sb.append("; channels-last float32 without TF32 may have no kernel for this shape: try "
                    + "-Ddir4j.cuda.tf32.conv=true, or the NCHW layout (no --channels-last)");
        }
        return sb.toString();
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
            for (int v = 0; v < 2; v++) {
                String name = v == 0 ? " FUSED_RELU" : " FUSED_ADD_RELU";
                Choice f = p.fused[v];
                if (p.fusedRefused[v] != null) {
                    sb.append(name).append(" refused: ").append(p.fusedRefused[v]);
                }
                if (f != null) {
                    sb.append(name).append(" algo ").append(f.algo()).append(" math ").append(f.mathType())
                            .append(" (").append(f.measuredMs()).append(" ms, ")
                            .append(CachingAllocator.bytes(f.workspace())).append(')');
                }
            }
            sb.append('\n');
        });
        return sb.toString();
    }
}
