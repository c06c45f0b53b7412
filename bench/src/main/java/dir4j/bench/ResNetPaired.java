package dir4j.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetInference;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

/**
 * The JVM half of bench/resnet_paired.py: one warm JVM holding, for one trunk and size
 * ({@code args: depth WxH [batch, default 1]}), dir4j's compiled inference ({@link ResNetInference}), the module
 * ({@link ResNet#forward} in eval mode) and, when bench/target/onnx/{depth}.onnx exists, ONNX
 * Runtime (2 intra-op threads, all optimisations), on the inputs of {@link ResNetForwardBench}.
 * Reads lines "engine seconds" (engine: compiled, module or ort) and answers with the median
 * milliseconds of the forwards run in that burst, or "none" for an engine it lacks. The script
 * alternates these bursts with PyTorch's, so that all engines see the same machine, which on a
 * shared VM changes speed within tens of seconds.
 */
public final class ResNetPaired {
    private ResNetPaired() {}

    public static void main(String[] args) throws Exception {
        ResNet.Depth depth = ResNet.Depth.parse(args[0]);
        int[] hw = ResNetForwardBench.heightWidth(args[1]);
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        ResNet net = ResNet.of(depth, new Random(0));
        net.eval();
        ResNetInference compiled = ResNetInference.of(net);
        Tensor image = Tensor.uniform(new Random(1), -2, 2, batch, 3, hw[0], hw[1]);
        OrtSession session = null;
        OnnxTensor ortImage = null;
        String inputName = null;
        try {
            java.nio.file.Path model = OnnxResNetBench.modelPath(args[0]);
            OrtEnvironment env = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
                options.setIntraOpNumThreads(2);
                options.setInterOpNumThreads(1);
                options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
                session = env.createSession(model.toString(), options);
            }
            inputName = session.getInputNames().iterator().next();
            ortImage = OnnxTensor.createTensor(env, FloatBuffer.wrap(image.toFloatArray()),
                    new long[] {batch, 3, hw[0], hw[1]});
        } catch (IllegalStateException e) {
            System.err.println("no ONNX Runtime: " + e.getMessage());
        }
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split("\\s+");
            String engine = f[0];
            long budget = (long) (Double.parseDouble(f[1]) * 1e9);
            if (engine.equals("ort") && session == null) {
                System.out.println("none");
                System.out.flush();
                continue;
            }
            double[] ms = new double[4096];
            int n = 0;
            long start = System.nanoTime();
            do {
                long t0 = System.nanoTime();
                switch (engine) {
                    case "compiled" -> {
                        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
                            compiled.features(image);
                        }
                    }
                    case "module" -> {
                        try (MemoryScope s = MemoryScope.open(); var ng = Autograd.noGrad()) {
                            net.forward(image);
                        }
                    }
                    case "ort" -> {
                        try (OrtSession.Result r = session.run(Map.of(inputName, ortImage))) {
                            r.get(0);
                        } catch (OrtException e) {
                            throw new IllegalStateException(e);
                        }
                    }
                    default -> throw new IllegalArgumentException("engine must be compiled, module or ort: " + engine);
                }
                ms[n++] = (System.nanoTime() - t0) / 1e6;
            } while (System.nanoTime() - start < budget && n < ms.length);
            Arrays.sort(ms, 0, n);
            System.out.printf(java.util.Locale.ROOT, "%.3f%n", ms[n / 2]);
            System.out.flush();
        }
    }
}
