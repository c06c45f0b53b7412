package dir4j.engine.cuda;

import static dir4j.engine.cuda.GpuParity.ELEMENTWISE;
import static dir4j.engine.cuda.GpuParity.GPU;
import static dir4j.engine.cuda.GpuParity.assertClose;
import static dir4j.engine.cuda.GpuParity.check;
import static dir4j.engine.cuda.GpuParity.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.Backend.Binary;
import dir4j.engine.Backend.Unary;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Transfers, fill, copy and cast, and every unary and binary op: CUDA against the CPU backend. */
@Tag("gpu")
class CudaElementwiseGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void valuesSurviveTheRoundTripInEveryLayoutAndDtype() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(1, 37, 53);
            assertArrayEquals(x.toFloatArray(), x.to(GPU).toFloatArray());
            // a transposed CPU view goes up, and a transposed GPU view comes down
            Tensor xt = x.t();
            assertArrayEquals(xt.toFloatArray(), xt.to(GPU).toFloatArray());
            assertArrayEquals(xt.toFloatArray(), x.to(GPU).t().toFloatArray());
            // 24 MiB: three staging chunks, both buffers reused
            Tensor big = randn(2, 6 * 1024 * 1024);
            assertArrayEquals(big.toFloatArray(), big.to(GPU).toFloatArray());
            Tensor d = Tensor.ofDoubles(new double[] {1e-300, -2.5, Math.PI}, 3);
            assertArrayEquals(d.toDoubleArray(), d.to(GPU).toDoubleArray());
            Tensor i = Tensor.ofInts(new int[] {-7, 0, Integer.MAX_VALUE}, 3);
            assertArrayEquals(i.toIntArray(), i.to(GPU).toIntArray());
        }
    }

    @Test
    void fillWritesEveryDtypeIntoContiguousAndStridedViews() {
        try (MemoryScope s = MemoryScope.open()) {
            assertArrayEquals(new float[] {2.5f, 2.5f, 2.5f}, Tensor.full(DType.FLOAT32, GPU, 2.5, 3).toFloatArray());
            assertArrayEquals(new double[] {-1e-200, -1e-200}, Tensor.full(DType.FLOAT64, GPU, -1e-200, 2)
                    .toDoubleArray());
            assertArrayEquals(new int[] {-3, -3, -3}, Tensor.full(DType.INT32, GPU, -3.7, 3).toIntArray());
            Tensor z = Tensor.zeros(DType.FLOAT32, GPU, 4, 6);
            Tensor col = z.slice(1, 2, 3); // a strided column
            col.backend().fill(col, 7);
            float[] v = z.toFloatArray();
            for (int r = 0; r < 4; r++) {
                for (int c = 0; c < 6; c++) {
                    assertEquals(c == 2 ? 7f : 0f, v[r * 6 + c], "element " + r + "," + c);
                }
            }
            // bfloat16 exists only on the GPU: fill, then cast back to float32
            Tensor bf = Tensor.full(DType.BFLOAT16, GPU, Math.PI, 5);
            assertArrayEquals(new float[] {3.140625f, 3.140625f, 3.140625f, 3.140625f, 3.140625f},
                    bf.to(DType.FLOAT32).toFloatArray());
        }
    }

    @Test
    void copiesAndCastsOnTheDeviceMatchTheCpu() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor x = randn(3, 5, 7, 9);
            check("contiguous of a permuted view", ELEMENTWISE, ELEMENTWISE, in -> in[0].permute(2, 0, 1).contiguous(),
                    x.requiresGrad(true));
            check("float32 to float64 and back", GpuParity.DOUBLE, null, in -> in[0].to(DType.FLOAT64), x);
            check("float32 to int32 (truncation)", ELEMENTWISE, null, in -> in[0].mul(10).to(DType.INT32), x);
            Tensor g = x.to(GPU);
            assertArrayEquals(x.to(DType.FLOAT64).toDoubleArray(), g.to(DType.FLOAT64).toDoubleArray());
            // float32 -> bfloat16 -> float32 rounds each value to 8 significant bits
            float[] back = g.to(DType.BFLOAT16).to(DType.FLOAT32).toFloatArray();
            float[] ref = x.toFloatArray();
            for (int i = 0; i < ref.length; i++) {
                assertEquals(ref[i], back[i], Math.abs(ref[i]) / 128, "bfloat16 round trip at " + i);
            }
        }
    }

    @Test
    void everyUnaryOpMatchesOnAlignedTailedAndStridedInputs() {
        try (MemoryScope s = MemoryScope.open()) {
            // 1027 values: the float4 path plus a tail of 3; the transposed view takes the strided kernel
            Tensor aligned = randn(4, 1027);
            Tensor strided = randn(5, 13, 11).t();
            Tensor positive = Ops.abs(aligned).add(0.1);
            for (Tensor x : new Tensor[] {aligned, strided}) {
                String layout = x == aligned ? "contiguous" : "strided";
                Tensor xp = x == aligned ? positive : Ops.abs(strided).add(0.1);
                check("neg " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].neg(), x.requiresGrad(true));
                check("exp " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].exp(), x);
                check("log " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].log(), xp.requiresGrad(true));
                check("sqrt " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].sqrt(), xp);
                check("abs " + layout, ELEMENTWISE, ELEMENTWISE, in -> Ops.abs(in[0]), x);
                check("reciprocal " + layout, ELEMENTWISE, ELEMENTWISE, in -> Ops.reciprocal(in[0]), xp);
                check("relu " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].relu(), x);
                for (double p : new double[] {1, 2, 3, 0.5, -1, 2.7}) {
                    check("pow " + p + " " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].pow(p), xp);
                }
                check("clamp " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].clamp(-0.5, 0.7), x);
                check("clamp below only " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].clamp(-0.5, Double.NaN), x);
                check("clamp above only " + layout, ELEMENTWISE, ELEMENTWISE, in -> in[0].clamp(Double.NaN, 0.2), x);
                check("affine " + layout, ELEMENTWISE, ELEMENTWISE, in -> Ops.affine(in[0], -1.5, 0.25), x);
            }
            // the ops without an Ops entry of their own, straight through the backend
            Tensor v = Tensor.of(new float[] {-2, -0f, 0, 0.5f, 3, Float.NaN, Float.NEGATIVE_INFINITY}, 7);
            for (Unary op : new Unary[] {Unary.SIGN, Unary.GREATER, Unary.IN_RANGE, Unary.RELU, Unary.CLAMP}) {
                Tensor c = Tensor.zeros(7);
                c.backend().unary(op, v, -0.5, 1, c);
                Tensor gv = v.to(GPU);
                Tensor g = Tensor.zeros(DType.FLOAT32, GPU, 7);
                g.backend().unary(op, gv, -0.5, 1, g);
                assertClose(op + " incl. NaN and -0", ELEMENTWISE, c, g);
            }
            check("float64 exp", GpuParity.DOUBLE, GpuParity.DOUBLE, in -> in[0].exp(),
                    Tensor.ofDoubles(randn(6, 40).toDoubleArray(), 40).requiresGrad(true));
        }
    }

    @Test
    void everyBinaryOpMatchesWithBroadcasting() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor a = randn(7, 4, 1, 5).requiresGrad(true);
            Tensor b = randn(8, 3, 1).requiresGrad(true);
            Tensor bp = Ops.abs(b).add(0.5).detach().requiresGrad(true);
            Tensor ap = Ops.abs(a).add(0.5).detach().requiresGrad(true);
            check("add [4,1,5]+[3,1]", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].add(in[1]), a, b);
            check("sub", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].sub(in[1]), a, b);
            check("mul", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].mul(in[1]), a, b);
            check("div", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].div(in[1]), a, bp);
            check("maximum", ELEMENTWISE, GpuParity.ACCUMULATED, in -> Ops.maximum(in[0], in[1]), a, b);
            check("minimum", ELEMENTWISE, GpuParity.ACCUMULATED, in -> Ops.minimum(in[0], in[1]), a, b);
            check("pow", ELEMENTWISE, GpuParity.ACCUMULATED, in -> in[0].pow(in[1]), ap, b);
            check("equal", ELEMENTWISE, null, in -> Ops.equal(in[0], in[1].mul(0).add(in[0].slice(2, 0, 1))), a, b);
            check("greater", ELEMENTWISE, null, in -> Ops.greater(in[0], in[1]), a, b);
            // contiguous and 16-byte aligned: the float4 kernel, with a tail
            Tensor c = randn(9, 4099).requiresGrad(true);
            Tensor d = randn(10, 4099).requiresGrad(true);
            check("add float4 path", ELEMENTWISE, ELEMENTWISE, in -> in[0].add(in[1]), c, d);
            // NaN propagation of max/min, through the backend
            Tensor x = Tensor.of(new float[] {Float.NaN, 1, 2}, 3);
            Tensor y = Tensor.of(new float[] {0, Float.NaN, 3}, 3);
            for (Binary op : new Binary[] {Binary.MAX, Binary.MIN}) {
                Tensor gc = Tensor.zeros(DType.FLOAT32, GPU, 3);
                gc.backend().binary(op, x.to(GPU), y.to(GPU), gc);
                float[] r = gc.toFloatArray();
                assertEquals(Float.NaN, r[0]);
                assertEquals(Float.NaN, r[1]);
                assertEquals(op == Binary.MAX ? 3f : 2f, r[2]);
            }
            check("float64 mul", GpuParity.DOUBLE, GpuParity.DOUBLE, in -> in[0].mul(in[1]),
                    Tensor.ofDoubles(randn(11, 6).toDoubleArray(), 2, 3).requiresGrad(true),
                    Tensor.ofDoubles(randn(12, 3).toDoubleArray(), 3).requiresGrad(true));
        }
    }

    @Test
    void anInPlaceAddAccumulatesOnTheDevice() {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor a = randn(13, 8, 8);
            Tensor b = randn(14, 8);
            Tensor ga = a.to(GPU);
            Ops.addInPlace(a, b);
            Ops.addInPlace(ga, b.to(GPU));
            assertClose("addInPlace", ELEMENTWISE, a, ga);
            assertEquals(Device.cuda(0), ga.device());
        }
    }
}
