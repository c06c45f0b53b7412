package dir4j.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.cpu.CpuThreads;
import dir4j.nn.io.Json;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetInference;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Where the compiled CPU inference loses to ONNX Runtime, convolution shape by convolution shape:
 * {@link ResNetInference#profile} (each block convolution's time inside the forward, and hot)
 * beside ONNX Runtime's per-node profile ({@code SessionOptions.enableProfiling}) of the same trunk
 * ({@code bench/export_onnx.py}) on the same input, both on {@link CpuThreads#threads()} threads.
 * Prints a markdown table with one row per shape (cin->cout, kernel, stride, input size; the max
 * pool by its channels), summed over the network, largest ONNX Runtime time first. dir4j's stem row
 * includes the image's change to channels-last, which ONNX Runtime runs as a node of its own (a
 * reorder, left out with the other layout nodes). Run with one processor for one core's view:
 *
 * <pre>
 * java -XX:ActiveProcessorCount=1 --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *      -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 -cp bench/target/benchmarks.jar \
 *      dir4j.bench.CompiledConvProfile resnet50 224x224 [reps 20]
 * </pre>
 */
public final class CompiledConvProfile {
    private CompiledConvProfile() {}

    public static void main(String[] args) throws Exception {
        String depthName = args.length > 0 ? args[0] : "resnet50";
        int[] hw = ResNetForwardBench.heightWidth(args.length > 1 ? args[1] : "224x224");
        int reps = args.length > 2 ? Integer.parseInt(args[2]) : 20;
        Path model = OnnxResNetBench.modelPath(depthName); // before the forwards: a missing export fails at once
        int threads = CpuThreads.threads();
        ResNet net = ResNet.of(ResNet.Depth.parse(depthName), new Random(0));
        net.eval();
        ResNetInference compiled = ResNetInference.of(net);
        Tensor image = Tensor.uniform(new Random(1), -2, 2, 1, 3, hw[0], hw[1]);

        Map<String, double[]> rows = new LinkedHashMap<>(); // shape -> {count, ort ms, in-network ms, hot ms}
        List<ResNetInference.ConvTiming> timings;
        double forward;
        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
            for (int i = 0; i < 3 * reps; i++) {
                compiled.features(image).close();
            }
            long t0 = System.nanoTime();
            for (int i = 0; i < reps; i++) {
                compiled.features(image).close();
            }
            forward = (System.nanoTime() - t0) / 1e6 / reps;
            timings = compiled.profile(image, reps);
        }
        java.util.Set<String> winograd = new java.util.LinkedHashSet<>();
        for (ResNetInference.ConvTiming t : timings) {
            String key = t.conv().equals("maxpool") ? poolKey(t.inChannels(), t.stride(), t.height(), t.width())
                    : key(t.inChannels(), t.outChannels(), t.kernel(), t.stride(), t.height(), t.width());
            double[] r = rows.computeIfAbsent(key, k -> new double[4]);
            r[0]++;
            r[2] += t.inNetworkMillis();
            r[3] += t.hotMillis();
            if (t.winograd()) {
                winograd.add(key);
            }
        }

        double ortForward = ortProfile(model, image, hw, reps, threads, rows);

        double[] total = new double[4];
        List<Map.Entry<String, double[]>> sorted = new ArrayList<>(rows.entrySet());
        sorted.sort((a, b) -> Double.compare(b.getValue()[1], a.getValue()[1]));
        System.out.printf(Locale.ROOT, "# %s %dx%d, batch 1, %d thread(s), %d forwards each; ms summed over the "
                + "network's convolutions of each shape%n", depthName, hw[1], hw[0], threads, reps);
        System.out.printf(Locale.ROOT, "whole forward: dir4j compiled %.2f ms, ONNX Runtime %.2f ms (sum of its "
                + "nodes)%n%n", forward, ortForward);
        System.out.println("| shape (cin->cout kKsS input) | convs | ONNX Runtime ms | dir4j ms | dir4j hot ms "
                + "| dir4j / ONNX Runtime | in-network / hot |");
        System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (Map.Entry<String, double[]> e : sorted) {
            double[] r = e.getValue();
            for (int i = 0; i < 4; i++) {
                total[i] += r[i];
            }
            System.out.printf(Locale.ROOT, "| %s | %.0f | %.3f | %.3f | %.3f | %s | %.2f |%n", e.getKey(), r[0], r[1],
                    r[2], r[3], r[1] > 0 ? String.format(Locale.ROOT, "%.2f", r[2] / r[1]) : "-", r[2] / r[3]);
        }
        System.out.printf(Locale.ROOT, "| all | %.0f | %.3f | %.3f | %.3f | %.2f | %.2f |%n", total[0], total[1],
                total[2], total[3], total[2] / total[1], total[2] / total[3]);
        System.out.println();
        System.out.println("dir4j ran as Winograd F(2x2, 3x3): " + (winograd.isEmpty() ? "none" : String.join(", ", winograd)));
        net.close();
        image.close();
    }

    private static String key(long cin, long cout, long k, long stride, long h, long w) {
        return cin + "->" + cout + " k" + k + "s" + stride + " " + h + "x" + w;
    }

    /** A max pool's row (ONNX Runtime's profile names no window: ResNet's is 3×3). */
    private static String poolKey(long c, long stride, long h, long w) {
        return "maxpool " + c + " k3s" + stride + " " + h + "x" + w;
    }

    /**
     * Runs ONNX Runtime {@code 3 reps} times with profiling on, adds each Conv node's mean time over
     * the last {@code reps} runs to its shape's row (index 1), and returns the sum of all nodes'
     * means (the network as ONNX Runtime's nodes run it, without the session's overhead).
     */
    @SuppressWarnings("unchecked")
    private static double ortProfile(Path model, Tensor image, int[] hw, int reps, int threads,
            Map<String, double[]> rows) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        Path prefix = Files.createTempDirectory("ort-profile").resolve("ort");
        String file;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            options.enableProfiling(prefix.toString());
            try (OrtSession session = env.createSession(model.toString(), options);
                 OnnxTensor input = OnnxTensor.createTensor(env, FloatBuffer.wrap(image.toFloatArray()),
                         new long[] {1, 3, hw[0], hw[1]})) {
                String name = session.getInputNames().iterator().next();
                for (int i = 0; i < 3 * reps; i++) {
                    session.run(Map.of(name, input)).close();
                }
                file = session.endProfiling();
            }
        }
        Path profile = Path.of(file);
        List<Object> events = (List<Object>) Json.parse(Files.readString(profile));
        Files.deleteIfExists(profile);
        Files.deleteIfExists(prefix.getParent());
        Map<String, List<Double>> durations = new LinkedHashMap<>();
        Map<String, Map<String, Object>> nodeArgs = new LinkedHashMap<>();
        for (Object o : events) {
            Map<String, Object> e = (Map<String, Object>) o;
            String n = String.valueOf(e.get("name"));
            if (!"Node".equals(e.get("cat")) || !n.endsWith("_kernel_time")) {
                continue;
            }
            durations.computeIfAbsent(n, k -> new ArrayList<>()).add(((Number) e.get("dur")).doubleValue() / 1e3);
            nodeArgs.put(n, (Map<String, Object>) e.get("args"));
        }
        double all = 0;
        for (Map.Entry<String, List<Double>> d : durations.entrySet()) {
            List<Double> v = d.getValue();
            double mean = v.subList(Math.max(0, v.size() - reps), v.size()).stream()
                    .mapToDouble(Double::doubleValue).average().orElse(0);
            all += mean;
            Map<String, Object> a = nodeArgs.get(d.getKey());
            Object op = a.get("op_name");
            if (!"Conv".equals(op) && !"MaxPool".equals(op)) {
                continue;
            }
            List<Object> inputs = (List<Object>) a.get("input_type_shape");
            List<Number> x = (List<Number>) ((Map<String, Object>) inputs.get(0)).get("float");
            List<Number> y = (List<Number>) ((Map<String, Object>) ((List<Object>) a.get("output_type_shape")).get(0))
                    .get("float");
            long stride = Math.round(x.get(2).doubleValue() / y.get(2).doubleValue());
            if ("MaxPool".equals(op)) {
                rows.computeIfAbsent(poolKey(x.get(1).longValue(), stride, x.get(2).longValue(), x.get(3).longValue()),
                        k -> new double[4])[1] += mean;
                continue;
            }
            List<Number> w = (List<Number>) ((Map<String, Object>) inputs.get(1)).get("float");
            String key = key(w.get(1).longValue(), w.get(0).longValue(), w.get(2).longValue(), stride,
                    x.get(2).longValue(), x.get(3).longValue());
            rows.computeIfAbsent(key, k -> new double[4])[1] += mean;
        }
        return all;
    }
}
