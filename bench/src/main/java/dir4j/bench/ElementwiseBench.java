package dir4j.bench;

import dir4j.engine.Backend;
import dir4j.engine.Backend.Binary;
import dir4j.engine.Backend.Reduce;
import dir4j.engine.Backend.Unary;
import dir4j.engine.Tensor;
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
 * The CPU backend's elementwise and reduction kernels on a training activation (float32 NCHW,
 * batch × channels × side × side; 4×256×56×56 is ResNet-50's layer1 output at batch 4, 12.8 MB per
 * tensor, past L2): a copy (the bandwidth reference), an add, an add of a per-channel bias
 * (broadcast), ReLU and its backward, exp (the deterministic vector exp), and sums over N×H×W
 * (batch norm's per-channel statistics), over everything, and over the rows of a 4096×2048
 * descriptor matrix (a column sum: a mean descriptor, a bias gradient); and a row gather with its
 * backward (5000 random rows of a 100,000×256 table); a 4096×2048 transpose made contiguous, and
 * exp and an add read through that transpose. Reference: bench/torch_cpu_elementwise.py
 * runs the same calls in PyTorch with preallocated outputs; bench/elementwise_side_by_side.sh runs
 * both. Bandwidth: bytes read + written per call / time; setup prints the MB of one activation
 * tensor, and each method's Javadoc says how many such tensors it reads and writes.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"})
public class ElementwiseBench {
    /** batch x channels x side x side. */
    @Param({"4x256x56x56"})
    public String shape;

    /**
     * Run every other elementwise op for a while before measuring, so that the JIT's profiles of
     * the shared kernels have seen several ops, as in any real program (a JMH fork that runs one
     * op hides what a mixed profile costs).
     */
    @Param({"false", "true"})
    public boolean mixedProfile;

    Backend be;
    Tensor a;
    Tensor b;
    Tensor out;
    Tensor bias;
    Tensor perChannel;
    Tensor scalar;
    boolean[] hw;
    boolean[] all;
    Tensor descriptors;
    Tensor columns;
    Tensor table;
    Tensor rowIds;
    Tensor picked;
    Tensor tableGrad;
    Tensor transposed;
    Tensor transposedOther;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("x");
        int n = Integer.parseInt(p[0]);
        int c = Integer.parseInt(p[1]);
        int h = Integer.parseInt(p[2]);
        int w = Integer.parseInt(p[3]);
        Random rng = new Random(1);
        a = Tensor.uniform(rng, -2, 2, n, c, h, w);
        b = Tensor.uniform(rng, -2, 2, n, c, h, w);
        out = Tensor.zeros(n, c, h, w);
        bias = Tensor.uniform(rng, -1, 1, 1, c, 1, 1);
        perChannel = Tensor.zeros(1, c, 1, 1);
        scalar = Tensor.zeros(1, 1, 1, 1);
        hw = new boolean[] {true, false, true, true};
        all = new boolean[] {true, true, true, true};
        descriptors = Tensor.uniform(rng, -1, 1, 4096, 2048);
        columns = Tensor.zeros(1, 2048);
        table = Tensor.uniform(rng, -1, 1, 100_000, 256);
        int[] ids = new int[5000];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rng.nextInt(100_000);
        }
        rowIds = Tensor.ofInts(ids, ids.length);
        picked = Tensor.uniform(rng, -1, 1, ids.length, 256);
        tableGrad = Tensor.zeros(100_000, 256);
        transposed = Tensor.zeros(2048, 4096);
        transposedOther = Tensor.uniform(rng, -1, 1, 2048, 4096);
        be = a.backend();
        System.out.printf("%n%s: %.1f MB per tensor%n", shape, a.numel() * 4e-6);
        if (mixedProfile) {
            long end = System.nanoTime() + 3_000_000_000L;
            while (System.nanoTime() < end) {
                for (Binary op : new Binary[] {Binary.ADD, Binary.SUB, Binary.MUL, Binary.DIV, Binary.MAX, Binary.GT}) {
                    be.binary(op, a, b, out);
                    be.binary(op, a, bias.expand(a.shape()), out);
                }
                for (Unary op : new Unary[] {Unary.NEG, Unary.EXP, Unary.ABS, Unary.RELU, Unary.AFFINE, Unary.SQRT}) {
                    be.unary(op, b, 2, 1, out);
                }
                be.reluBackward(b, a, out);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {a, b, out, bias, perChannel, scalar, descriptors, columns, table, rowIds, picked,
            tableGrad, transposed, transposedOther}) {
            t.close();
        }
    }

    /** out = a: 2 tensors of traffic. */
    @Benchmark
    public Tensor copy() {
        be.copy(a, out);
        return out;
    }

    /** out = a + b: 3 tensors. */
    @Benchmark
    public Tensor add() {
        be.binary(Binary.ADD, a, b, out);
        return out;
    }

    /** out = a + bias[c] (broadcast over N, H, W): 2 tensors. */
    @Benchmark
    public Tensor addChannelBias() {
        be.binary(Binary.ADD, a, bias.expand(a.shape()), out);
        return out;
    }

    /** out = max(a, 0): 2 tensors. */
    @Benchmark
    public Tensor relu() {
        be.unary(Unary.RELU, a, 0, 0, out);
        return out;
    }

    /** out = b · (a &gt; 0): 3 tensors. */
    @Benchmark
    public Tensor reluBackward() {
        be.reluBackward(b, a, out);
        return out;
    }

    /** out = e^a: 2 tensors and the polynomial. */
    @Benchmark
    public Tensor exp() {
        be.unary(Unary.EXP, a, 0, 0, out);
        return out;
    }

    /** Σ over N, H, W per channel: 1 tensor. */
    @Benchmark
    public Tensor sumPerChannel() {
        be.reduce(Reduce.SUM, a, hw, perChannel);
        return perChannel;
    }

    /** Σ over everything: 1 tensor. */
    @Benchmark
    public Tensor sumAll() {
        be.reduce(Reduce.SUM, a, all, scalar);
        return scalar;
    }

    /** Σ over the rows of a 4096×2048 matrix (32 MB): one output per column. */
    @Benchmark
    public Tensor columnSum() {
        be.reduce(Reduce.SUM, descriptors, new boolean[] {true, false}, columns);
        return columns;
    }

    /** 5000 random rows of a 100,000×256 table (a gather: triplet sampling, indexSelect). */
    @Benchmark
    public Tensor indexSelectRows() {
        be.indexSelect(table, 0, rowIds, picked);
        return picked;
    }

    /** Its backward: the 5000 rows added back into a 100,000×256 gradient (indexAdd). */
    @Benchmark
    public Tensor indexAddRows() {
        be.indexAdd(picked, 0, rowIds, tableGrad);
        return tableGrad;
    }

    /** The 4096×2048 matrix transposed into a contiguous 2048×4096 one (contiguous() after t()). */
    @Benchmark
    public Tensor transposeCopy() {
        be.copy(descriptors.t(), transposed);
        return transposed;
    }

    /** e^x of the 4096×2048 matrix read through its transpose, into a contiguous 2048×4096 one. */
    @Benchmark
    public Tensor expTransposed() {
        be.unary(Unary.EXP, descriptors.t(), 0, 0, transposed);
        return transposed;
    }

    /** The 4096×2048 matrix read through its transpose plus a contiguous 2048×4096 one. */
    @Benchmark
    public Tensor addTransposed() {
        be.binary(Binary.ADD, descriptors.t(), transposedOther, transposed);
        return transposed;
    }
}
