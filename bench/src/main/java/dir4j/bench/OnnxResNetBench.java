package dir4j.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The JVM peer to {@link ResNetForwardBench}: ONNX Runtime Java (CPU execution provider, 2
 * intra-op threads, all graph optimisations: it folds batch norm into the convolutions and fuses
 * ReLU and the residual add) running the same ResNet feature trunks, exported from torchvision by
 * bench/export_onnx.py to bench/target/onnx/{depth}.onnx (override the folder with
 * DIR4J_ONNX_DIR). Same shapes: batch 1, {@code size} width×height.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Xmx8g"})
public class OnnxResNetBench {
    @Param({"resnet50", "resnet101"})
    String depth;

    @Param({"224x224", "1024x768"})
    String size;

    @Param({"2"})
    int intraOpThreads;

    OrtEnvironment env;
    OrtSession session;
    OnnxTensor image;
    String inputName;

    @Setup(Level.Trial)
    public void setup() throws OrtException {
        Path model = modelPath(depth);
        env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(intraOpThreads);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(model.toString(), options);
        }
        inputName = session.getInputNames().iterator().next();
        int[] hw = ResNetForwardBench.heightWidth(size);
        float[] data = new float[3 * hw[0] * hw[1]];
        Random rng = new Random(1);
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (-2 + 4 * rng.nextDouble());
        }
        image = OnnxTensor.createTensor(env, FloatBuffer.wrap(data), new long[] {1, 3, hw[0], hw[1]});
    }

    static Path modelPath(String depth) {
        String dir = System.getenv("DIR4J_ONNX_DIR");
        Path[] candidates = dir != null ? new Path[] {Path.of(dir)}
                : new Path[] {Path.of("bench", "target", "onnx"), Path.of("target", "onnx")};
        for (Path c : candidates) {
            Path p = c.resolve(depth + ".onnx");
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        throw new IllegalStateException("no " + depth + ".onnx in " + java.util.Arrays.toString(candidates)
                + " (working directory " + Path.of("").toAbsolutePath() + "); export the trunks first with "
                + "/usr/bin/python3 bench/export_onnx.py, or point DIR4J_ONNX_DIR at their folder");
    }

    @TearDown(Level.Trial)
    public void tearDown() throws OrtException {
        image.close();
        session.close();
    }

    @Benchmark
    public float forward() throws OrtException {
        try (OrtSession.Result r = session.run(Map.of(inputName, image))) {
            return ((OnnxTensor) r.get(0)).getFloatBuffer().get(0);
        }
    }
}
