package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.resnet.ResNet;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The same weights give the same outputs as PyTorch: a reduced-width ResNet with non-trivial
 * batch-norm statistics, in eval mode and for one training-mode step (gradients of every
 * parameter, updated running statistics); and ResNet-101's names, shapes and parameter count
 * equal torchvision's.
 */
class ResNetParityTest {

    @ParameterizedTest
    @CsvSource({"resnet18_w4, RESNET18, 4", "resnet50_w2, RESNET50, 2"})
    void evalOutputAndTrainingGradientsMatchPyTorch(String folder, ResNet.Depth depth, int width) {
        try (ResNet net = new ResNet(depth, width, 0, new Random(1)); MemoryScope scope = MemoryScope.open()) {
            Module.LoadReport report = net.loadStateDict(NnFixtures.weights(folder, net), true);
            assertTrue(report.clean(), report.toString());
            Tensor x = NnFixtures.npy(folder + "/input.npy");
            net.eval();
            NnFixtures.assertClose(folder + " eval output", NnFixtures.npy(folder + "/eval_out.npy").toDoubleArray(),
                    net.forward(x).toDoubleArray(), 1e-4, 1e-5);
            net.train(true);
            Tensor out = net.forward(x);
            NnFixtures.assertClose(folder + " train output",
                    NnFixtures.npy(folder + "/train_out.npy").toDoubleArray(), out.toDoubleArray(), 1e-3, 1e-4);
            out.backward(NnFixtures.npy(folder + "/train_upstream.npy").to(dir4j.engine.DType.FLOAT32));
            for (var e : net.namedParameters().entrySet()) {
                NnFixtures.assertClose(folder + " grad " + e.getKey(),
                        NnFixtures.npy(folder + "/grads/" + e.getKey() + ".npy").toDoubleArray(),
                        e.getValue().grad().toDoubleArray(), 2e-3, 2e-4);
            }
            for (var e : net.namedBuffers().entrySet()) {
                if (e.getKey().contains("running")) {
                    NnFixtures.assertClose(folder + " " + e.getKey(),
                            NnFixtures.npy(folder + "/running/" + e.getKey() + ".npy").toDoubleArray(),
                            e.getValue().toDoubleArray(), 1e-4, 1e-6);
                }
            }
            net.zeroGrad();
        }
    }

    /**
     * Inference as extraction runs it (eval, no grad): batch norms fused with the adds and ReLUs,
     * in place over the convolutions' outputs, each activation freed once read. Same output as
     * PyTorch, and only the output is left allocated when the forward returns.
     */
    @ParameterizedTest
    @CsvSource({"resnet18_w4, RESNET18, 4", "resnet50_w2, RESNET50, 2"})
    void noGradEvalForwardMatchesPyTorchAndLeavesOnlyItsOutputAllocated(String folder, ResNet.Depth depth,
                                                                         int width) {
        try (ResNet net = new ResNet(depth, width, 0, new Random(1)); MemoryScope scope = MemoryScope.open()) {
            assertTrue(net.loadStateDict(NnFixtures.weights(folder, net), true).clean());
            Tensor x = NnFixtures.npy(folder + "/input.npy");
            net.eval();
            try (MemoryScope inference = MemoryScope.open();
                 var noGrad = dir4j.engine.autograd.Autograd.noGrad()) {
                long blocks = dir4j.engine.cpu.NativeMemory.liveBlocks();
                Tensor out = net.forward(x);
                assertEquals(1, dir4j.engine.cpu.NativeMemory.liveBlocks() - blocks,
                        "native blocks held after a no-grad forward, besides its output");
                NnFixtures.assertClose(folder + " no-grad eval output",
                        NnFixtures.npy(folder + "/eval_out.npy").toDoubleArray(), out.toDoubleArray(), 1e-4, 1e-5);
            }
        }
    }

    @Test
    void resnet101MatchesTorchvisionNamesShapesAndParameterCount() {
        try (ResNet net = ResNet.of(ResNet.Depth.RESNET101, new Random(0))) {
            String expected = NnFixtures.text("resnet101_state_dict.txt");
            String actual = net.stateDict().entrySet().stream()
                    .map(e -> e.getKey() + " " + Arrays.stream(e.getValue().shape()).mapToObj(Integer::toString)
                            .collect(Collectors.joining(",")))
                    .collect(Collectors.joining("\n", "", "\n"));
            assertEquals(expected, actual);
            assertEquals(Long.parseLong(NnFixtures.text("resnet101_parameter_count.txt").strip()), net.parameterCount());
            assertEquals(42_500_160L, net.parameterCount());
            assertEquals(2048, net.featureChannels());
        }
    }

    /**
     * torchvision's initialisation draw for draw: each convolution's default uniform weights (drawn
     * and discarded, as torchvision's Conv2d draws them before ResNet redraws them), then Kaiming's
     * normal ones; the stream goes on from there to the next convolution.
     */
    @Test
    void convolutionsTakeTheirDrawsInTorchvisionsOrder() {
        int w = 4;
        Random expected = new Random(7);
        float[][] want = new float[2][];
        int[][] shapes = {{w, 3, 7, 7}, {w, w, 3, 3}};
        for (int c = 0; c < 2; c++) {
            Tensor.uniform(expected, -1, 1, shapes[c]).close(); // the default init's draws
            try (Tensor k = dir4j.nn.Init.kaimingNormalFanOut(expected, shapes[c])) {
                want[c] = k.toFloatArray();
            }
        }
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, w, 0, new Random(7))) {
            assertArrayEquals(want[0], net.stateDict().get("conv1.weight").toFloatArray(), "conv1");
            assertArrayEquals(want[1], net.stateDict().get("layer1.0.conv1.weight").toFloatArray(), "layer1.0.conv1");
        }
    }

    /**
     * Without a Random the weights stay zero (a network about to be loaded), the batch norms start
     * as PyTorch's, and the same names and shapes are there; with one, every weight is drawn.
     */
    @Test
    void withoutARandomTheWeightsAreZeroAndTheStructureIsTheSame() {
        try (ResNet zero = new ResNet(ResNet.Depth.RESNET50, 8, 10, null);
             ResNet drawn = new ResNet(ResNet.Depth.RESNET50, 8, 10, new Random(3))) {
            Map<String, Tensor> z = zero.stateDict();
            Map<String, Tensor> d = drawn.stateDict();
            assertEquals(d.keySet(), z.keySet());
            for (var e : z.entrySet()) {
                String k = e.getKey();
                assertArrayEquals(d.get(k).shape(), e.getValue().shape(), k);
                double[] zv = e.getValue().toDoubleArray();
                double[] dv = d.get(k).toDoubleArray();
                boolean initialised = k.endsWith("conv1.weight") || k.endsWith("conv2.weight")
                        || k.endsWith("conv3.weight") || k.endsWith("downsample.0.weight") || k.startsWith("fc.");
                if (initialised) {
                    assertTrue(Arrays.stream(zv).allMatch(v -> v == 0), k + " zero without a Random");
                    assertTrue(Arrays.stream(dv).anyMatch(v -> v != 0), k + " drawn with one");
                } else {
                    assertArrayEquals(dv, zv, 0, k + ": batch norms as PyTorch's, whatever the Random");
                }
            }
        }
    }

    @Test
    void strictLoadingReportsMissingUnexpectedAndMisshapedKeys() {
        try (ResNet net = new ResNet(ResNet.Depth.RESNET18, 4, 0, new Random(1)); MemoryScope scope = MemoryScope.open()) {
            Map<String, Tensor> dict = NnFixtures.weights("resnet18_w4", net);
            dict.remove("layer1.0.conv1.weight");
            dict.put("fc.weight", Tensor.zeros(10, 32));
            dict.put("bn1.weight", Tensor.zeros(5));
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> net.loadStateDict(dict, true));
            assertTrue(e.getMessage().contains("layer1.0.conv1.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("fc.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("bn1.weight: [4] vs [5]"), e.getMessage());
            Module.LoadReport r = net.loadStateDict(dict, false);
            assertEquals(java.util.List.of("layer1.0.conv1.weight"), r.missing());
            assertEquals(java.util.List.of("fc.weight"), r.unexpected());
            assertEquals(1, r.mismatched().size());
        }
    }
}
