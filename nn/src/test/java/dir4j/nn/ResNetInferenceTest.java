package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.resnet.ResNet;
import dir4j.nn.resnet.ResNetInference;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The compiled channels-last inference path (folded batch norms, direct convolutions) gives
 * PyTorch's eval-mode features on the parity fixtures, and the module's eval-mode features on
 * full-width networks with non-trivial batch-norm statistics at odd image sizes; it is a snapshot
 * of the weights; bad inputs are clear errors.
 */
class ResNetInferenceTest {

    @ParameterizedTest
    @CsvSource({"resnet18_w4, RESNET18, 4", "resnet50_w2, RESNET50, 2"})
    void matchesPyTorchEvalOutput(String folder, ResNet.Depth depth, int width) {
        try (ResNet net = new ResNet(depth, width, 0, new Random(1)); MemoryScope scope = MemoryScope.open()) {
            assertTrue(net.loadStateDict(NnFixtures.weights(folder, net), true).clean());
            ResNetInference plan = ResNetInference.of(net);
            Tensor out = plan.features(NnFixtures.npy(folder + "/input.npy"));
            NnFixtures.assertClose(folder + " compiled eval output",
                    NnFixtures.npy(folder + "/eval_out.npy").toDoubleArray(), out.toDoubleArray(), 1e-4, 1e-5);
        }
    }

    /** A network with random weights (seed) and batch-norm statistics (seed + 1), in eval mode. */
    static ResNet evalNet(ResNet.Depth depth, int width, long seed) {
        ResNet net = new ResNet(depth, width, 0, new Random(seed));
        randomizeBatchNorms(net, seed + 1);
        net.eval();
        return net;
    }

    /** Random batch-norm statistics, so that folding them is exercised (fresh ones are 0 and 1). */
    static void randomizeBatchNorms(ResNet net, long seed) {
        Random r = new Random(seed);
        for (var e : net.stateDict().entrySet()) {
            Tensor t = e.getValue();
            String k = e.getKey();
            double lo;
            double hi;
            if (k.endsWith("running_var")) {
                lo = 0.5;
                hi = 2;
            } else if (k.endsWith("running_mean") || k.endsWith("bn1.bias") || k.endsWith("bn2.bias")
                    || k.endsWith("bn3.bias") || k.endsWith("downsample.1.bias")) {
                lo = -0.2;
                hi = 0.2;
            } else if (k.contains("bn") && k.endsWith("weight") || k.endsWith("downsample.1.weight")) {
                lo = 0.5;
                hi = 1.5;
            } else {
                continue;
            }
            try (Tensor v = Tensor.uniform(r, lo, hi, t.shape())) {
                t.backend().copy(v, t);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"RESNET18, 32, 2, 67, 45", "RESNET34, 16, 1, 40, 40", "RESNET50, 32, 1, 70, 58",
                "RESNET101, 8, 2, 33, 47",
                "RESNET18, 8, 1, 520, 512"})  // the stem runs in three bands of rows
    void matchesTheModuleInEvalMode(ResNet.Depth depth, int width, int batch, int h, int w) {
        try (ResNet net = evalNet(depth, width, 3); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            Tensor x = Tensor.randn(new Random(5), batch, 3, h, w);
            double[] expected = net.features(x).toDoubleArray();
            double[] actual = ResNetInference.of(net).features(x).toDoubleArray();
            NnFixtures.assertClose(depth + " compiled vs module", expected, actual, 1e-4, 1e-4);
            // an empty batch gives an empty feature map of the same shape otherwise
            try (Tensor none = ResNetInference.of(net).features(Tensor.zeros(0, 3, h, w))) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(
                        new int[] {0, net.featureChannels(), net.features(x).shape(2), net.features(x).shape(3)},
                        none.shape());
            }
        }
    }

    @Test
    void isASnapshotOfTheWeights() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 16, 0, new Random(3)); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            net.eval();
            Tensor x = Tensor.randn(new Random(6), 1, 3, 32, 32);
            ResNetInference before = ResNetInference.of(net);
            float[] first = before.features(x).toFloatArray();
            Tensor w = net.namedParameters().get("layer4.1.conv2.weight");
            try (Tensor v = Tensor.uniform(new Random(7), -0.1, 0.1, w.shape())) {
                w.backend().copy(v, w);
            }
            assertArrayEquals(first, before.features(x).toFloatArray(), "the plan must not see later changes");
            NnFixtures.assertClose("rebuilt plan", net.features(x).toDoubleArray(),
                    ResNetInference.of(net).features(x).toDoubleArray(), 1e-4, 1e-4);
        }
    }

    /** Buffers are reused between forwards (by geometry): sizes in turn give the same as fresh plans. */
    @Test
    void reusedBuffersChangeNothing() {
        try (ResNet net = evalNet(ResNet.Depth.RESNET50, 16, 8); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            ResNetInference plan = ResNetInference.of(net);
            Tensor a = Tensor.randn(new Random(10), 1, 3, 40, 40);
            Tensor b = Tensor.randn(new Random(11), 2, 3, 33, 47);
            float[] first = plan.features(a).toFloatArray();
            float[] other = plan.features(b).toFloatArray();
            assertArrayEquals(first, plan.features(a).toFloatArray());
            assertArrayEquals(other, plan.features(b).toFloatArray());
            assertArrayEquals(other, ResNetInference.of(net).features(b).toFloatArray());
            // every buffer a forward takes goes back once: the pool does not grow from one forward to the next
            int pooled = plan.pooledBuffers();
            assertTrue(pooled > 0, "buffers kept for reuse");
            for (int i = 0; i < 3; i++) {
                plan.features(b);
            }
            assertEquals(pooled, plan.pooledBuffers(), "buffers kept after three more forwards");
            // only the last input size's buffers are kept: as many as a fresh plan keeps after that size
            ResNetInference fresh = ResNetInference.of(net);
            fresh.features(b);
            plan.features(a);
            plan.features(b);
            assertEquals(fresh.pooledBuffers(), plan.pooledBuffers(), "buffers kept after a size change");
        }
    }

    /**
     * Images run in groups: one at a time, in near-equal groups (5 as 2 + 2 + 1) and all together
     * give the same floats bit for bit (each tile's sums are the same), and match the module.
     */
    @Test
    void groupsOfImagesGiveWhatOneAtATimeGives() {
        try (ResNet net = evalNet(ResNet.Depth.RESNET50, 16, 12); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            ResNetInference plan = ResNetInference.of(net);
            Tensor x = Tensor.randn(new Random(14), 5, 3, 36, 44);
            float[] single = plan.features(x, 1).toFloatArray();
            assertArrayEquals(single, plan.features(x, 2 * 36 * 44).toFloatArray(), "groups of 2, 2 and 1");
            assertArrayEquals(single, plan.features(x, 5 * 36 * 44).toFloatArray(), "one group of 5");
            assertArrayEquals(single, plan.features(x).toFloatArray(), "the default groups");
            // and one image alone gives its own slice of the batch's output
            float[] third = plan.features(x.slice(0, 2, 3).contiguous(), 1).toFloatArray();
            float[] slice = java.util.Arrays.copyOfRange(single, 2 * third.length, 3 * third.length);
            assertArrayEquals(slice, third, "image 2 alone");
            NnFixtures.assertClose("grouped plan", net.features(x).toDoubleArray(),
                    plan.features(x, 2 * 36 * 44).toDoubleArray(), 1e-4, 1e-4);
            assertThrows(IllegalArgumentException.class, () -> plan.features(x, 0));
            // a strided view (images stored [n, c, w, h], seen as [n, c, h, w]) runs as its copy
            Tensor view = Tensor.randn(new Random(15), 2, 3, 44, 36).transpose(2, 3);
            assertTrue(!view.isContiguous());
            Tensor copy = view.contiguous();
            assertArrayEquals(plan.features(copy).toFloatArray(), plan.features(view).toFloatArray(), "a view");
        }
    }

    /**
     * profile names the stem, the max pool and every convolution of the blocks in the order the
     * forward runs them (a BasicBlock with a projection: conv1, downsample, conv2), with the shapes
     * and kernels they ran, positive times, and leaves the plan giving the same features.
     */
    @Test
    void profileTimesEveryConvolutionInNetworkOrder() {
        try (ResNet net = evalNet(ResNet.Depth.RESNET18, 64, 21); MemoryScope scope = MemoryScope.open();
             var ng = Autograd.noGrad()) {
            ResNetInference plan = ResNetInference.of(net);
            Tensor x = Tensor.randn(new Random(22), 1, 3, 64, 64);
            float[] before = plan.features(x).toFloatArray();
            List<ResNetInference.ConvTiming> t = plan.profile(x, 2);
            assertEquals(21, t.size(), "the stem, the max pool, 8 blocks of 2 convolutions and 3 projections");
            StringBuilder order = new StringBuilder();
            for (ResNetInference.ConvTiming c : t) {
                order.append(c.block()).append(' ').append(c.conv()).append(", ");
                assertTrue(c.inNetworkMillis() > 0 && c.hotMillis() > 0 && c.inNetworkMillis() < 1000
                        && c.hotMillis() < 1000, c.toString());
            }
            assertTrue(order.toString().startsWith("-1 stem, -1 maxpool, 0 conv1, 0 conv2, 1 conv1, 1 conv2, 2 conv1, "
                    + "2 downsample, 2 conv2, 3 conv1, 3 conv2, 4 conv1, 4 downsample, 4 conv2,"), order.toString());
            assertEquals("3->64 k7s2 64x64", t.get(0).shape());
            assertEquals("maxpool 64 k3s2 32x32", t.get(1).shape());
            assertEquals("64->64 k3s1 16x16 winograd", t.get(2).shape());
            assertEquals("64->128 k3s2 16x16", t.get(6).shape());
            assertEquals("64->128 k1s2 16x16", t.get(7).shape());
            assertEquals("128->128 k3s1 8x8 winograd", t.get(8).shape());
            assertEquals("512->512 k3s1 2x2 winograd", t.get(20).shape());
            assertArrayEquals(before, plan.features(x).toFloatArray(), "the plan after profiling");
            assertThrows(IllegalArgumentException.class, () -> plan.profile(x, 0));
        }
    }

    @Test
    void badInputsAreClearErrors() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(3)); MemoryScope scope = MemoryScope.open()) {
            ResNetInference plan = ResNetInference.of(net);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> plan.features(Tensor.zeros(1, 4, 32, 32)));
            assertTrue(e.getMessage().contains("[N, 3, H, W]") && e.getMessage().contains("[1, 4, 32, 32]"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> plan.features(Tensor.zeros(DType.FLOAT64, dir4j.engine.Device.CPU, 1, 3, 32, 32)));
            assertTrue(e.getMessage().contains("float32"), e.getMessage());
        }
    }
}
