package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.image.ImageFixtures;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Networks from the reference's .pt layout and from dir4j's safetensors. */
class NetworkCheckpointTest {

    @Test
    void referenceLegacyCheckpointLoadsWithItsArchitectureFromTheWeights() throws IOException {
        Path dir = ImageFixtures.path("datasets/checkpoint");
        NetworkCheckpoint.Loaded l = NetworkCheckpoint.load(dir.resolve("tiny_resnet18_w2.pt"));
        try (RetrievalNet net = l.net()) {
            RetrievalNet.Options o = net.options();
            assertEquals("resnet18", o.arch());
            assertEquals(2, o.baseWidth());
            assertEquals(8, o.outDim());
            assertEquals("gem", o.pooling());
            assertEquals(8, net.dimension());
            assertEquals(2.75, FeatureExtractor.networkGemP(net), 1e-6);
            for (String k : new String[] {"fc.weight", "layer4.1.bn2.running_var"}) {
                try (Tensor want = Npy.read(dir.resolve(k + ".npy"))) {
                    assertArrayEquals(want.toFloatArray(), net.stateDict().get(k).toFloatArray(), 0f, k);
                }
            }
            assertArrayEquals(new float[] {0.485f, 0.456f, 0.406f}, l.means(), 1e-7f);
            assertArrayEquals(new float[] {0.229f, 0.224f, 0.225f}, l.stds(), 1e-7f);
            // what dir4j extract reads the images with: the checkpoint's statistics at the size asked,
            // never upscaled
            dir4j.retrieval.image.Preprocessing p = l.preprocessing(512);
            assertEquals(512, p.maxSide());
            assertFalse(p.upscale());
            assertArrayEquals(l.means(), p.means(), 0f);
            assertArrayEquals(l.stds(), p.stds(), 0f);
        }
        // a network that carries no statistics is read with ImageNet's
        NetworkCheckpoint.Loaded none = new NetworkCheckpoint.Loaded(null, null, null, java.util.List.of());
        assertArrayEquals(dir4j.retrieval.image.Preprocessing.imagenet(300).means(), none.preprocessing(300).means(), 0f);
        assertArrayEquals(dir4j.retrieval.image.Preprocessing.imagenet(300).stds(), none.preprocessing(300).stds(), 0f);
    }

    @Test
    void safetensorsWrittenByDir4jGiveTheSameDescriptors(@TempDir Path tmp) throws IOException {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);
        Path file = tmp.resolve("net.safetensors");
        float[] want;
        Tensor x = Tensor.randn(new Random(4), 2, 3, 32, 24);
        try (RetrievalNet net = new RetrievalNet(o, new Random(9))) {
            Safetensors.write(file, net.stateDict(), Map.of("model_options",
                    "{\"arch\": \"resnet18_rmac\", \"pooling\": \"gem\", \"without_fc\": false}"));
            net.eval();
            try (MemoryScope s = MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
                want = net.forward(x).toFloatArray();
            }
        }
        try (RetrievalNet net = NetworkCheckpoint.load(file).net()) {
            assertEquals(o, net.options());
            net.eval();
            try (MemoryScope s = MemoryScope.open(); Autograd.NoGrad ng = Autograd.noGrad()) {
                assertArrayEquals(want, net.forward(x).toFloatArray(), 0f);
            }
        } finally {
            x.close();
        }
    }

    @Test
    void weightsThatContradictTheirModelOptionsAreRefused() {
        try (RetrievalNet net = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4),
                new Random(1))) {
            Map<String, Tensor> sd = net.stateDict();
            IllegalArgumentException arch = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(sd, Map.of("arch", "resnet101_rmac")));
            assertTrue(arch.getMessage().contains("the weights are a resnet18"), arch.getMessage());
            IllegalArgumentException fpn = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(sd, Map.of("arch", "resnet18_fpn_rmac")));
            assertTrue(fpn.getMessage().contains("FPN"), fpn.getMessage());
            assertEquals("max", NetworkCheckpoint.inferOptions(sd, Map.of("pooling", "max")).pooling());
            // a backbone's weights alone (torchvision's: no GeM p, no options) are not a retrieval network
            Map<String, Tensor> backbone = new java.util.LinkedHashMap<>(sd);
            backbone.remove("adpool.p");
            IllegalArgumentException plain = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(backbone, Map.of()));
            assertTrue(plain.getMessage().startsWith("a plain resnet18 state dict (no model_options, no GeM "
                    + "'adpool.p'), such as torchvision's ImageNet weights: a backbone, not a retrieval network; "
                    + "start training from it with dir4j train --init"), plain.getMessage());
            IllegalArgumentException noPooling = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(backbone, Map.of("out_dim", 8)));
            assertTrue(noPooling.getMessage().contains("cannot tell max from avg pooling"), noPooling.getMessage());
        }
        IOException missing = assertThrows(IOException.class, () -> NetworkCheckpoint.load(Path.of("nope.pt")));
        assertTrue(missing.getMessage().contains("no such checkpoint"), missing.getMessage());
    }
}
