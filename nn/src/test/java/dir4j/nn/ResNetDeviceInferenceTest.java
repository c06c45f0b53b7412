package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetDeviceInference;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The device inference plan (folded batch norms, channels-last activations, every convolution one
 * fused Backend#conv2dNhwc call, the stem's input padded to 4 channels) run on the CPU backend's
 * reference ops: PyTorch's eval-mode features on the parity fixtures, and the module's eval-mode
 * features on reduced-width networks with non-trivial batch-norm statistics at odd image sizes;
 * buffers reused across calls and shapes change nothing; close frees everything; bad inputs are
 * clear errors. ResNetDeviceInferenceGpuTest runs it on CUDA.
 */
class ResNetDeviceInferenceTest {

    @ParameterizedTest
    @CsvSource({"resnet18_w4, RESNET18, 4", "resnet50_w2, RESNET50, 2"})
    void matchesPyTorchEvalOutput(String folder, ResNet.Depth depth, int width) {
        try (ResNet net = new ResNet(depth, width, 0, new Random(1)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            assertTrue(net.loadStateDict(NnFixtures.weights(folder, net), true).clean());
            try (ResNetDeviceInference plan = ResNetDeviceInference.of(net)) {
                Tensor out = plan.features(NnFixtures.npy(folder + "/input.npy"));
                NnFixtures.assertClose(folder + " device plan eval output",
                        NnFixtures.npy(folder + "/eval_out.npy").toDoubleArray(), out.toDoubleArray(), 1e-4, 1e-5);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"RESNET18, 8, 2, 67, 45", "RESNET50, 8, 2, 70, 58", "RESNET34, 4, 1, 40, 40"})
    void matchesTheModuleInEvalMode(ResNet.Depth depth, int width, int batch, int h, int w) {
        try (ResNet net = new ResNet(depth, width, 0, new Random(3)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            ResNetInferenceTest.randomizeBatchNorms(net, 4);
            net.eval();
            Tensor x = Tensor.randn(new Random(5), batch, 3, h, w);
            Tensor expected = net.features(x);
            try (ResNetDeviceInference plan = ResNetDeviceInference.of(net)) {
                Tensor actual = plan.features(x);
                assertArrayEquals(expected.shape(), actual.shape());
                NnFixtures.assertClose(depth + " device plan vs module", expected.toDoubleArray(),
                        actual.toDoubleArray(), 1e-4, 1e-4);
                assertEquals(net.featureChannels(), plan.featureChannels());
                try (Tensor none = plan.features(Tensor.zeros(0, 3, h, w))) {
                    assertArrayEquals(new int[] {0, expected.shape(1), expected.shape(2), expected.shape(3)},
                            none.shape());
                }
            }
        }
    }

    /** The plan's buffers are reused by shape; another shape releases them; results never change. */
    @Test
    void reusedBuffersChangeNothingAndTheOutputIsTheCallers() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET50, 4, 0, new Random(8)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            ResNetInferenceTest.randomizeBatchNorms(net, 9);
            net.eval();
            Tensor a = Tensor.randn(new Random(10), 1, 3, 40, 40);
            Tensor b = Tensor.randn(new Random(11), 2, 3, 33, 47);
            try (ResNetDeviceInference plan = ResNetDeviceInference.of(net)) {
                Tensor first = plan.features(a);
                float[] firstValues = first.toFloatArray();
                Tensor second = plan.features(a);
                assertArrayEquals(firstValues, first.toFloatArray(), "a later call does not write a returned map");
                assertArrayEquals(firstValues, second.toFloatArray());
                float[] other = plan.features(b).toFloatArray();
                assertArrayEquals(firstValues, plan.features(a).toFloatArray());
                assertArrayEquals(other, plan.features(b).toFloatArray());
            }
        }
    }

    /** On the CPU, which cannot record, graphs on changes nothing: every call runs op by op. */
    @Test
    void graphsOnACpuPlanRunOpByOp() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(12)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            net.eval();
            Tensor x = Tensor.randn(new Random(13), 1, 3, 32, 32);
            try (ResNetDeviceInference plain = ResNetDeviceInference.of(net);
                 ResNetDeviceInference graphed = ResNetDeviceInference.of(net).graphs(true)) {
                for (int i = 0; i < 3; i++) {
                    assertArrayEquals(plain.features(x).toFloatArray(), graphed.features(x).toFloatArray());
                    assertFalse(graphed.replaying(), "call " + i);
                }
            }
        }
    }

    @Test
    void isASnapshotAndCloseFreesIt() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 8, 0, new Random(3)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            net.eval();
            Tensor x = Tensor.randn(new Random(6), 1, 3, 32, 32);
            ResNetDeviceInference plan = ResNetDeviceInference.of(net);
            float[] before = plan.features(x).toFloatArray();
            Tensor w = net.namedParameters().get("layer4.1.conv2.weight");
            try (Tensor v = Tensor.uniform(new Random(7), -0.1, 0.1, w.shape())) {
                w.backend().copy(v, w);
            }
            assertArrayEquals(before, plan.features(x).toFloatArray(), "the plan must not see later changes");
            plan.close();
            plan.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> plan.features(x));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            try (ResNetDeviceInference rebuilt = ResNetDeviceInference.of(net)) {
                NnFixtures.assertClose("rebuilt plan", net.features(x).toDoubleArray(),
                        rebuilt.features(x).toDoubleArray(), 1e-4, 1e-4);
            }
        }
    }

    @Test
    void badInputsAreClearErrors() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(3)); MemoryScope scope = MemoryScope.open();
             ResNetDeviceInference plan = ResNetDeviceInference.of(net)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.features(Tensor.zeros(1, 4, 32, 32)));
            assertTrue(e.getMessage().contains("[N, 3, H, W]") && e.getMessage().contains("[1, 4, 32, 32]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> plan.features(Tensor.zeros(DType.FLOAT64, Device.CPU, 1, 3, 32, 32)));
            assertTrue(e.getMessage().contains("float32"), e.getMessage());
        }
    }
}
