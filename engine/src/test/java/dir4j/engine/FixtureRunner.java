package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dir4j.engine.Backend.ConvParams;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Runs a PyTorch fixture case through the dir4j op it names, in float32, and checks the output,
 * the input gradients for the fixture's upstream gradient, and any in-place updated inputs.
 */
final class FixtureRunner {
    private FixtureRunner() {}

    /** How the float inputs are laid out in memory; values are the same in every layout. */
    enum Layout {
        /** Row-major, offset 0. */
        CONTIGUOUS("contiguous inputs"),
        /** Column-major (all strides reversed), as a transposed view presents it. */
        REVERSED_STRIDES("column-major input views"),
        /** Every other element of a larger buffer, from offset 1; the gaps hold NaN. */
        STRIDED_WITH_GAPS("strided input views with NaN gaps"),
        /** Contiguous, converted to float64: the scalar reference path that gradient checks rely on. */
        FLOAT64("float64 inputs (the scalar reference path)");

        final String description;

        Layout(String description) {
            this.description = description;
        }
    }

    /** Ops of Ops (the rest are NnOps'). */
    static final Set<String> TENSOR_OPS = Set.of("add", "sub", "mul", "div", "maximum", "minimum", "pow", "equal",
            "greater", "neg", "exp", "log", "sqrt", "abs", "reciprocal", "relu", "affine", "pow_scalar", "clamp",
            "sum", "mean", "max", "min", "cumsum", "matmul", "gram", "reshape", "flatten", "unsqueeze", "squeeze", "permute",
            "transpose", "slice", "select", "expand", "contiguous", "copy_to", "cast", "concat", "index_select",
            "composite_reused_input", "add_in_place");
    static final Set<String> NN_OPS = Set.of("linear", "conv2d", "conv2d_nhwc", "batch_norm2d", "batch_norm2d_nhwc",
            "batch_norm2d_act", "batch_norm2d_nhwc_act", "batch_norm2d_inference", "max_pool2d", "max_pool2d_nhwc",
            "avg_pool2d", "adaptive_avg_pool2d", "l2_normalize", "gem", "ap_histogram");

    /** Inputs that an op requires to be contiguous (they keep their layout in every variant). */
    private static final Map<String, Set<String>> CONTIGUOUS_ONLY = Map.of(
            "batch_norm2d", Set.of("gamma", "beta", "running_mean", "running_var"),
            "batch_norm2d_nhwc", Set.of("gamma", "beta", "running_mean", "running_var"),
            "batch_norm2d_act", Set.of("gamma", "beta", "running_mean", "running_var"),
            "batch_norm2d_nhwc_act", Set.of("gamma", "beta", "running_mean", "running_var"),
            "batch_norm2d_inference", Set.of("gamma", "beta", "running_mean", "running_var"));

    /** The dir4j call a fixture names, with its parameters. */
    static Tensor call(EngineFixture f, Map<String, Tensor> in) {
        Tensor a = in.get("a");
        Tensor b = in.get("b");
        Tensor x = in.get("x");
        return switch (f.op()) {
            case "add" -> Ops.add(a, b);
            case "sub" -> Ops.sub(a, b);
            case "mul" -> Ops.mul(a, b);
            case "div" -> Ops.div(a, b);
            case "maximum" -> Ops.maximum(a, b);
            case "minimum" -> Ops.minimum(a, b);
            case "pow" -> Ops.pow(a, b);
            case "equal" -> Ops.equal(a, b);
            case "greater" -> Ops.greater(a, b);
            case "neg" -> Ops.neg(x);
            case "exp" -> Ops.exp(x);
            case "log" -> Ops.log(x);
            case "sqrt" -> Ops.sqrt(x);
            case "abs" -> Ops.abs(x);
            case "reciprocal" -> Ops.reciprocal(x);
            case "relu" -> Ops.relu(x);
            case "affine" -> Ops.affine(x, f.doubleParam("scale"), f.doubleParam("shift"));
            case "pow_scalar" -> Ops.pow(x, f.doubleParam("exponent"));
            case "clamp" -> Ops.clamp(x, f.optionalDouble("min"), f.optionalDouble("max"));
            case "sum" -> Ops.sum(x, f.axesParam("axes"), f.boolParam("keep_dim"));
            case "mean" -> Ops.mean(x, f.axesParam("axes"), f.boolParam("keep_dim"));
            case "max" -> Ops.max(x, f.axesParam("axes"), f.boolParam("keep_dim"));
            case "min" -> Ops.min(x, f.axesParam("axes"), f.boolParam("keep_dim"));
            case "cumsum" -> Ops.cumsum(x, f.intParam("axis"), f.boolParam("reverse"));
            case "matmul" -> Ops.matmul(a, b);
            case "gram" -> Ops.gram(x);
            case "reshape" -> Ops.reshape(x, f.intsParam("shape"));
            case "flatten" -> Ops.flatten(x, f.intParam("start_axis"));
            case "unsqueeze" -> Ops.unsqueeze(x, f.intParam("axis"));
            case "squeeze" -> Ops.squeeze(x, f.intParam("axis"));
            case "permute" -> Ops.permute(x, f.intsParam("order"));
            case "transpose" -> Ops.transpose(x, f.intParam("a"), f.intParam("b"));
            case "slice" -> Ops.slice(x, f.intParam("axis"), f.intParam("start"), f.intParam("end"));
            case "select" -> Ops.select(x, f.intParam("axis"), f.intParam("index"));
            case "expand" -> Ops.expand(x, f.intsParam("shape"));
            case "contiguous" -> Ops.contiguous(x);
            case "copy_to" -> Ops.copyTo(x, Device.parse(f.param("device")));
            case "cast" -> Ops.cast(x, DType.valueOf(f.param("dtype").toUpperCase(Locale.ROOT)));
            case "concat" -> Ops.concat(f.intParam("axis"),
                    f.inputs().stream().map(in::get).toArray(Tensor[]::new));
            case "index_select" -> Ops.indexSelect(x, f.intParam("axis"), in.get("indices"));
            case "add_in_place" -> {
                Ops.addInPlace(a, b);
                yield a;
            }
            case "composite_reused_input" -> {
                Tensor y = in.get("y");
                // x·x + exp(x)·y − x / (y·y + 1)
                yield Ops.sub(Ops.add(Ops.mul(x, x), Ops.mul(Ops.exp(x), y)),
                        Ops.div(x, Ops.affine(Ops.mul(y, y), 1, 1)));
            }
            case "linear" -> NnOps.linear(x, in.get("w"), in.get("b"));
            case "conv2d" -> NnOps.conv2d(x, in.get("w"), in.get("b"), convParams(f));
            case "conv2d_nhwc" -> NnOps.conv2dNhwc(x, in.get("w"), convParams(f));
            case "batch_norm2d" -> NnOps.batchNorm2d(x, in.get("gamma"), in.get("beta"), in.get("running_mean"),
                    in.get("running_var"), f.boolParam("training"), f.doubleParam("momentum"), f.doubleParam("eps"));
            case "batch_norm2d_nhwc" -> NnOps.batchNorm2dNhwc(x, in.get("gamma"), in.get("beta"),
                    in.get("running_mean"), in.get("running_var"), f.boolParam("training"), f.doubleParam("momentum"),
                    f.doubleParam("eps"));
            case "batch_norm2d_act" -> NnOps.batchNorm2dAct(x, in.get("gamma"), in.get("beta"),
                    in.get("running_mean"), in.get("running_var"), f.boolParam("training"), f.doubleParam("momentum"),
                    f.doubleParam("eps"), in.get("residual"), f.boolParam("relu"));
            case "batch_norm2d_nhwc_act" -> NnOps.batchNorm2dNhwcAct(x, in.get("gamma"), in.get("beta"),
                    in.get("running_mean"), in.get("running_var"), f.boolParam("training"), f.doubleParam("momentum"),
                    f.doubleParam("eps"), in.get("residual"), f.boolParam("relu"));
            case "batch_norm2d_inference" -> NnOps.batchNorm2dInference(x, in.get("gamma"), in.get("beta"),
                    in.get("running_mean"), in.get("running_var"), f.doubleParam("eps"), in.get("residual"),
                    f.boolParam("relu"), false);
            case "max_pool2d" -> NnOps.maxPool2d(x, f.intParam("kernel"), f.intParam("stride"), f.intParam("padding"));
            case "max_pool2d_nhwc" -> NnOps.maxPool2dNhwc(x, f.intParam("kernel"), f.intParam("stride"),
                    f.intParam("padding"));
            case "avg_pool2d" -> NnOps.avgPool2d(x, f.intParam("kernel"), f.intParam("stride"), f.intParam("padding"),
                    f.boolParam("count_include_pad"));
            case "adaptive_avg_pool2d" -> NnOps.adaptiveAvgPool2d(x, f.intParam("out_h"), f.intParam("out_w"));
            case "l2_normalize" -> NnOps.l2Normalize(x, f.intParam("axis"), f.doubleParam("eps"));
            case "gem" -> NnOps.gem(x, in.get("p"), f.doubleParam("eps"));
            case "ap_histogram" -> NnOps.apHistogram(in.get("scores"), in.get("labels"),
                    new Backend.ApBins(f.intParam("nq"), f.doubleParam("min"), f.doubleParam("max")),
                    f.boolParam("exclude_diagonal"));
            default -> throw new IllegalArgumentException("fixture " + f.name + ": no dir4j call for op " + f.op());
        };
    }

    private static ConvParams convParams(EngineFixture f) {
        return new ConvParams(f.intParam("stride_h"), f.intParam("stride_w"), f.intParam("pad_h"), f.intParam("pad_w"),
                f.intParam("dilation_h"), f.intParam("dilation_w"));
    }

    /** float64 results against float64 references: only the order of summation differs. */
    private static final Closeness FLOAT64_REFERENCE = new Closeness(1e-10, 1e-12, true);

    /** Whether the case runs in this layout (a cast's dtypes are the point of the case). */
    static boolean applies(EngineFixture f, Layout layout) {
        return layout != Layout.FLOAT64 || !f.op().equals("cast");
    }

    /** Runs the case on the CPU; every tensor it makes is freed on return. */
    static void run(EngineFixture f, Layout layout, Function<String, Closeness> toleranceOfOp) {
        run(f, layout, toleranceOfOp, Device.CPU);
    }

    /**
     * Runs the case with its inputs (and upstream gradient) on {@code device}, laid out there;
     * results are compared on the CPU.
     */
    static void run(EngineFixture f, Layout layout, Function<String, Closeness> toleranceOfOp, Device device) {
        try (MemoryScope scope = MemoryScope.open()) {
            // references stored in float64 are checked tightly on the float64 path
            Closeness tol = layout == Layout.FLOAT64 && f.read("out").dtype() == DType.FLOAT64
                    ? FLOAT64_REFERENCE : toleranceOfOp.apply(f.op());
            Set<String> keep = CONTIGUOUS_ONLY.getOrDefault(f.op(), Set.of());
            // bases: the stored tensors (leaves: gradients and in-place updates are checked on
            // them); in: what the op takes, a base or a view of one made by differentiable view ops
            Map<String, Tensor> bases = new LinkedHashMap<>();
            Map<String, Tensor> in = new LinkedHashMap<>();
            for (String name : f.inputs()) {
                String spec = f.optionalParam("view_" + name);
                Tensor base;
                if (spec != null && spec.startsWith("from:")) {
                    int end = spec.indexOf(';');
                    String of = spec.substring("from:".length(), end < 0 ? spec.length() : end);
                    base = bases.get(of);
                    assertNotNull(base, f.name + ": input " + name + " views input " + of + ", which comes later");
                    spec = end < 0 ? null : spec.substring(end + 1);
                } else {
                    base = f.read(name);
                    if (!device.equals(Device.CPU)) {
                        base = base.to(device);
                    }
                    if (base.dtype().isFloating() && (layout == Layout.FLOAT64 || !keep.contains(name))) {
                        base = relayout(base, layout);
                    }
                    if (f.gradInputs().contains(name)) {
                        base.requiresGrad(true);
                    }
                    bases.put(name, base);
                }
                in.put(name, spec == null ? base : applyView(f, base, spec));
            }
            Tensor out = call(f, in);
            Tensor expected = f.read("out");
            if (f.op().equals("cast")) {
                assertEquals(expected.dtype(), out.dtype(), "dtype of the cast");
            }
            tol.assertClose(f.name + " output", expected, out);
            for (String name : f.extraOutputs()) {
                tol.assertClose(f.name + " " + name + " after the op", f.read(name + "_after"), bases.get(name));
            }
            if (f.extraOutputs().isEmpty() && !f.gradInputs().isEmpty()) {
                // the inference path: no graph to record, so fused kernels and no argmax
                try (var noGrad = dir4j.engine.autograd.Autograd.noGrad()) {
                    tol.assertClose(f.name + " output without grad", expected, call(f, in));
                }
            }
            if (!f.has("grad_out.npy")) {
                assertEquals(List.of(), f.gradInputs(), "a case without upstream gradient lists no grad inputs");
                return;
            }
            Tensor upstream = f.read("grad_out").to(device);
            if (upstream.dtype() != out.dtype()) {
                upstream = Ops.cast(upstream, out.dtype());
            }
            if (layout != Layout.FLOAT64) {
                // the upstream gradient in the inputs' layout too: backward rules get strided gradients
                upstream = relayout(upstream, layout);
            }
            out.backward(upstream);
            List<String> failures = new ArrayList<>();
            for (String name : f.gradInputs()) {
                Tensor g = bases.get(name).grad();
                assertNotNull(g, f.name + ": no gradient reached input " + name);
                try {
                    tol.assertClose(f.name + " gradient of " + name, f.read("grad_" + name), g);
                } catch (AssertionError e) {
                    failures.add(e.getMessage());
                }
            }
            if (!failures.isEmpty()) {
                throw new AssertionError(String.join("\n", failures));
            }
        }
    }

    /**
     * The view that a fixture's view_&lt;input&gt; property describes, made from the input's base by
     * the differentiable view ops of {@link Ops} (recorded in the graph, so gradients flow back to
     * the base): steps separated by ';', each a name and ':'-separated arguments (lists
     * comma-separated), e.g. {@code reshape:4,3,2;select:2:1} (every other column from the second).
     */
    static Tensor applyView(EngineFixture f, Tensor base, String spec) {
        Tensor t = base;
        for (String step : spec.split(";")) {
            String[] parts = step.split(":");
            int[][] args = new int[parts.length - 1][];
            for (int i = 1; i < parts.length; i++) {
                args[i - 1] = Arrays.stream(parts[i].split(",")).mapToInt(Integer::parseInt).toArray();
            }
            t = switch (parts[0]) {
                case "transpose" -> Ops.transpose(t, args[0][0], args[1][0]);
                case "permute" -> Ops.permute(t, args[0]);
                case "slice" -> Ops.slice(t, args[0][0], args[1][0], args[2][0]);
                case "select" -> Ops.select(t, args[0][0], args[1][0]);
                case "reshape" -> Ops.reshape(t, args[0]);
                case "expand" -> Ops.expand(t, args[0]);
                case "unsqueeze" -> Ops.unsqueeze(t, args[0][0]);
                default -> throw new IllegalArgumentException("fixture " + f.name + ": unknown view step " + step);
            };
        }
        return t;
    }

    /** The same values in another memory layout (a leaf view; the buffer lives in the open scope). */
    static Tensor relayout(Tensor t, Layout layout) {
        int rank = t.rank();
        switch (layout) {
            case CONTIGUOUS -> {
                return t;
            }
            case FLOAT64 -> {
                return Ops.cast(t, DType.FLOAT64);
            }
            case REVERSED_STRIDES -> {
                if (rank < 2) {
                    return t;
                }
                int[] rev = new int[rank];
                for (int i = 0; i < rank; i++) {
                    rev[i] = rank - 1 - i;
                }
                Tensor colMajor = Ops.cloneDetached(Ops.permute(t, rev));
                return Ops.permute(colMajor, rev);
            }
            case STRIDED_WITH_GAPS -> {
                if (rank == 0) {
                    return t;
                }
                int[] shape = t.shape();
                Tensor buffer = Tensor.full(t.dtype(), t.device(), Double.NaN, (int) (2 * t.numel() + 1));
                long[] strides = Shape.contiguousStrides(shape);
                for (int i = 0; i < rank; i++) {
                    strides[i] *= 2;
                }
                Tensor view = buffer.viewOf(shape, strides, 1);
                t.backend().copy(t, view);
                return view;
            }
            default -> throw new AssertionError(layout);
        }
    }

    /** Every op named by the fixtures, for the completeness check. */
    static List<String> opsOf(List<String> cases) {
        return cases.stream().map(c -> EngineFixture.load(c).op()).distinct().sorted().toList();
    }
}
