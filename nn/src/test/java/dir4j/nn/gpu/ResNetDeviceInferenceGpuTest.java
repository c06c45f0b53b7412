package dir4j.nn.gpu;

import static dir4j.nn.gpu.NnGpu.GPU;
import static dir4j.nn.gpu.NnGpu.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.gpu.NnGpu.Tol;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetDeviceInference;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The compiled channels-last trunk on cuda:0 (cuDNN NHWC convolutions with the bias, residual and
 * ReLU fused, the NHWC max pool) against the module's eval forward on the CPU: a reduced-width
 * ResNet-50 (base width 16, so cuDNN sees channel counts of 16 to 2048) with non-trivial
 * batch-norm statistics, in strict float32 and with TF32; buffers reused across calls and shapes;
 * close gives the device memory back.
 */
@Tag("gpu")
class ResNetDeviceInferenceGpuTest {
    /** ~50 float32 layers summed in another order, the fold rounding differently: as ResNetGpuParityTest. */
    static final Tol FORWARD = new Tol(1e-4, 1e-4);
    /** TF32 tensor cores (10-bit mantissas) through ~50 layers. */
    static final Tol FORWARD_TF32 = new Tol(2e-2, 2e-2);

    @BeforeAll
    static void gpu() {
        NnGpu.requireGpu();
    }

    @AfterEach
    void tf32Default() {
        NnGpu.backend().setConvTf32(true);
        NnGpu.backend().setMatmulTf32(false);
    }

    static ResNet net() {
        ResNet net = new ResNet(ResNet.Depth.RESNET50, 16, 0, new Random(21));
        NnGpu.randomiseBatchNorms(net, 22);
        net.eval();
        return net;
    }

    @Test
    void trunkOnCudaMatchesTheCpuModule() {
        try (ResNet cpu = net(); ResNet gpu = net(); MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            gpu.to(GPU);
            for (boolean tf32 : new boolean[] {false, true}) {
                NnGpu.backend().setConvTf32(tf32);
                try (ResNetDeviceInference plan = ResNetDeviceInference.of(gpu)) {
                    assertEquals(GPU, plan.device());
                    for (int[] s : new int[][] {{4, 96, 64}, {2, 67, 45}, {4, 96, 64}}) {
                        Tensor x = Tensor.randn(new Random(s[0] + s[1]), s[0], 3, s[1], s[2]);
                        Tensor expected = cpu.features(x);
                        Tensor actual = plan.features(x.to(GPU));
                        assertEquals(GPU, actual.device());
                        assertArrayEquals(expected.shape(), actual.shape());
                        assertClose("trunk " + java.util.Arrays.toString(s) + " tf32=" + tf32,
                                tf32 ? FORWARD_TF32 : FORWARD, expected.toDoubleArray(), actual.toDoubleArray());
                    }
                }
            }
            String choices = NnGpu.backend().convolutionChoices();
            System.out.println("cuDNN choices (trunk):\n" + choices);
            // the trunk's inputs have 4 (the padded stem) or 16·2^k channels; other shapes are other tests'
            java.util.regex.Pattern trunk = java.util.regex.Pattern.compile(", c=(4|16|32|64|128|256|512|1024|2048), ");
            assertTrue(choices.lines().noneMatch(l -> l.contains("FUSED_RELU refused") && l.contains("nhwc=true")
                    && trunk.matcher(l).find()), "every conv + ReLU of the trunk runs fused:\n" + choices);
        }
    }

    /**
     * Graphs on: the second call at a shape records the forward as a CUDA graph and later calls
     * replay it; every call's features are bit for bit those of the same plan run op by op (the
     * same kernels and algorithms), earlier outputs are never overwritten, another shape records
     * anew, and close gives every byte back (the graph's workspaces to the cache).
     */
    @Test
    void recordedForwardsReplayTheSameFeatures() {
        try (ResNet gpu = net(); MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            gpu.to(GPU);
            long before = NnGpu.backend().memoryStats().inUseBytes();
            try (MemoryScope inner = MemoryScope.open(); ResNetDeviceInference plain = ResNetDeviceInference.of(gpu);
                 ResNetDeviceInference graphed = ResNetDeviceInference.of(gpu).graphs(true)) {
                int[][] calls = {{4, 96, 64}, {4, 96, 64}, {4, 96, 64}, {2, 67, 45}, {2, 67, 45}, {2, 67, 45},
                    {4, 96, 64}, {4, 96, 64}};
                boolean[] replays = {false, true, true, false, true, true, false, true};
                Tensor firstOut = null;
                float[] firstValues = null;
                for (int i = 0; i < calls.length; i++) {
                    int[] s = calls[i];
                    Tensor x = Tensor.randn(new Random(100 + i), s[0], 3, s[1], s[2]).to(GPU);
                    float[] want = plain.features(x).toFloatArray();
                    Tensor got = graphed.features(x);
                    assertEquals(replays[i], graphed.replaying(), "call " + i + " replays a recorded forward");
                    assertArrayEquals(want, got.toFloatArray(), "call " + i + " " + java.util.Arrays.toString(s));
                    if (i == 1) {
                        firstOut = got;
                        firstValues = got.toFloatArray();
                    }
                }
                assertArrayEquals(firstValues, firstOut.toFloatArray(), "a replay does not write a returned map");
                graphed.graphs(false);
                assertFalse(graphed.replaying(), "graphs off releases the recording");
                Tensor x = Tensor.randn(new Random(99), 4, 3, 96, 64).to(GPU);
                assertArrayEquals(plain.features(x).toFloatArray(), graphed.features(x).toFloatArray(), "op by op again");
            }
            assertEquals(before, NnGpu.backend().memoryStats().inUseBytes(), "close frees weights, buffers and graphs");
        }
    }

    @Test
    void closeGivesTheDeviceMemoryBack() {
        try (ResNet gpu = net(); MemoryScope scope = MemoryScope.open(); var ng = Autograd.noGrad()) {
            gpu.to(GPU);
            Tensor x = Tensor.randn(new Random(3), 2, 3, 64, 64).to(GPU);
            long before = NnGpu.backend().memoryStats().inUseBytes();
            try (ResNetDeviceInference plan = ResNetDeviceInference.of(gpu)) {
                plan.features(x).close();
                assertTrue(NnGpu.backend().memoryStats().inUseBytes() > before, "weights and buffers are held");
            }
            assertEquals(before, NnGpu.backend().memoryStats().inUseBytes(), "close frees weights and buffers");
        }
    }
}
