package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.train.Trainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reference's {@code center_bias} (ResNet_RMAC: the feature map times 1 + b on its centre
 * before pooling) and how checkpoints carry it; {@code dropout_p} and unknown model_options are
 * reported, not silently dropped.
 */
class CenterBiasTest {

    /**
     * Hand-derived: with aligned corners, point i of n samples the 4-point profile [0, 1, 1, 0] at
     * 3i/(n−1), and the 2-D map is separable, 1 + b·c(y)·c(x). These are also the values PyTorch 1.13's
     * {@code F.interpolate(1 + [[0,0,0,0],[0,b,b,0],[0,b,b,0],[0,0,0,0]], size=(n, n), mode='bilinear',
     * align_corners=True)} printed for b = 0.5 (n = 10 to float rounding).
     */
    @Test
    void theMapIsTheReferenceTemplateResizedWithAlignedCorners() {
        // n = 4: the template itself
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1.5f, 1.5f, 1, 1, 1.5f, 1.5f, 1, 1, 1, 1, 1},
                RetrievalNet.centerBiasMap(0.5, 4, 4), 0f);
        // n = 7: profile c = [0, 0.5, 1, 1, 1, 0.5, 0]
        float[] m7 = RetrievalNet.centerBiasMap(0.5, 7, 7);
        float[] diagonal = new float[7];
        float[] middleRow = new float[7];
        for (int i = 0; i < 7; i++) {
            diagonal[i] = m7[i * 7 + i];
            middleRow[i] = m7[3 * 7 + i];
        }
        assertArrayEquals(new float[] {1, 1.125f, 1.5f, 1.5f, 1.5f, 1.125f, 1}, diagonal, 0f);
        assertArrayEquals(new float[] {1, 1.25f, 1.5f, 1.5f, 1.5f, 1.25f, 1}, middleRow, 0f);
        // n = 10: c(1) = 1/3, c(2) = 2/3, c(3) = 1
        float[] m10 = RetrievalNet.centerBiasMap(0.5, 10, 10);
        assertEquals(1 + 0.5 / 9, m10[11], 1e-6);
        assertEquals(1 + 0.5 * 2 / 3, m10[5 * 10 + 2], 1e-6);
        assertEquals(1.5, m10[3 * 10 + 3], 1e-6);
        // sides of 1 and 2 sample only the profile's end points: no bias; a non-square map
        assertArrayEquals(new float[] {1}, RetrievalNet.centerBiasMap(0.5, 1, 1), 0f);
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, RetrievalNet.centerBiasMap(0.5, 2, 3), 0f);
        assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1.5f, 1.5f, 1, 1, 1, 1, 1}, RetrievalNet.centerBiasMap(0.5, 3, 4),
                0f);
    }

    /**
     * The descriptor of a network with a center bias is GeM over the biased feature map, then the FC
     * and L2 normalisation, computed here in double from the network's own feature map and weights;
     * the compiled inference gives the module's descriptors.
     */
    @Test
    void descriptorsPoolTheBiasedFeatureMap() {
        double b = 0.7;
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4, b);
        try (RetrievalNet net = new RetrievalNet(o, new Random(5)); MemoryScope scope = MemoryScope.open();
             Autograd.NoGrad ng = Autograd.noGrad()) {
            net.eval();
            Tensor x = Tensor.randn(new Random(6), 2, 3, 160, 96);
            float[] got = net.forward(x).toFloatArray();
            Tensor f = net.features(x);
            int n = f.shape(0);
            int c = f.shape(1);
            int h = f.shape(2);
            int w = f.shape(3);
            assertTrue(h == 5 && w == 3, "a non-square map: " + h + "x" + w);
            float[] map = RetrievalNet.centerBiasMap(b, h, w);
            assertEquals(1 + b, map[2 * 3 + 1], 1e-6, "its centre is biased");
            float[] fm = f.toFloatArray();
            double p = net.stateDict().get("adpool.p").toDoubleArray()[0];
            float[] fcW = net.stateDict().get("fc.weight").toFloatArray();
            float[] fcB = net.stateDict().get("fc.bias").toFloatArray();
            double[] want = new double[n * 8];
            for (int i = 0; i < n; i++) {
                double[] pooled = new double[c];
                for (int ch = 0; ch < c; ch++) {
                    double s = 0;
                    for (int q = 0; q < h * w; q++) {
                        s += Math.pow(Math.max(fm[(i * c + ch) * h * w + q] * map[q], 1e-6), p);
                    }
                    pooled[ch] = Math.pow(s / (h * w), 1 / p);
                }
                double norm = 0;
                for (int j = 0; j < 8; j++) {
                    double y = fcB[j];
                    for (int ch = 0; ch < c; ch++) {
                        y += fcW[j * c + ch] * pooled[ch];
                    }
                    want[i * 8 + j] = y;
                    norm += y * y;
                }
                for (int j = 0; j < 8; j++) {
                    want[i * 8 + j] /= Math.sqrt(norm);
                }
            }
            for (int k = 0; k < want.length; k++) {
                assertEquals(want[k], got[k], 2e-5, "descriptor value " + k);
            }
            try (RetrievalNet plain = new RetrievalNet(new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false,
                    4), new Random(5))) {
                plain.eval();
                float[] unbiased = plain.forward(x).toFloatArray();
                double diff = 0;
                for (int k = 0; k < got.length; k++) {
                    diff = Math.max(diff, Math.abs(unbiased[k] - got[k]));
                }
                assertTrue(diff > 1e-3, "the bias changes the descriptors (max difference " + diff + ")");
            }
            try (RetrievalNet.Inference inference = net.inference()) {
                assertTrue(inference.compiled());
                float[] compiled = inference.describe(x).toFloatArray();
                for (int k = 0; k < got.length; k++) {
                    assertEquals(got[k], compiled[k], 2e-5, "compiled descriptor value " + k);
                }
            }
        }
    }

    @Test
    void modelOptionsCarryTheBiasAndReportWhatTheyDoNotApply(@TempDir Path tmp) throws IOException {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4, 0.25);
        Path file = tmp.resolve("net.safetensors");
        try (RetrievalNet net = new RetrievalNet(o, new Random(2))) {
            Safetensors.write(file, net.stateDict(), Map.of("model_options",
                    dir4j.nn.io.Json.write(Trainer.modelOptions(o))));
            Map<String, Tensor> sd = net.stateDict();
            assertEquals(0.0, NetworkCheckpoint.inferOptions(sd, Map.of()).centerBias());
            assertEquals(2.0, NetworkCheckpoint.inferOptions(sd, Map.of("center_bias", 2L)).centerBias());
            IllegalArgumentException negative = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(sd, Map.of("center_bias", -1.0)));
            assertTrue(negative.getMessage().contains("center_bias must be a finite number >= 0"), negative.getMessage());
            IllegalArgumentException text = assertThrows(IllegalArgumentException.class,
                    () -> NetworkCheckpoint.inferOptions(sd, Map.of("center_bias", "0.5")));
            assertTrue(text.getMessage().contains("not a number"), text.getMessage());
        }
        NetworkCheckpoint.Loaded l = NetworkCheckpoint.load(file);
        try (RetrievalNet net = l.net()) {
            assertEquals(o, net.options(), "center_bias survives dir4j's model_options");
            assertEquals(List.of(), l.notes());
        }
        assertEquals(List.of("model_options dropout_p 0.5 not applied: the reference drops feature-map elements "
                        + "before pooling in training mode only, so descriptors are unaffected; dir4j train does not "
                        + "use dropout",
                "ignored model_options [local_whitening, rmac_levels]: not options of the reference's ResNet retrieval "
                        + "network"),
                NetworkCheckpoint.optionNotes(Map.of("arch", "resnet101_rmac", "dropout_p", 0.5, "rmac_levels", 3L,
                        "local_whitening", true, "pretrained", "imagenet")));
        assertEquals(List.of(), NetworkCheckpoint.optionNotes(Map.of("dropout_p", 0.0, "scales", List.of(1L))));
        assertThrows(IllegalArgumentException.class,
                () -> new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4, Double.NaN));
    }
}
