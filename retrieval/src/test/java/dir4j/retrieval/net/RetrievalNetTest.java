package dir4j.retrieval.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.nn.Module;
import dir4j.retrieval.loss.APLossFixtureTest;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A reduced-width ResNet-18-GeM-FC retrieval network with the reference's parameter names gives
 * PyTorch's descriptors and gradients (through GeM's p, the FC and the backbone) for the same
 * weights (tests/fixtures/make_method_fixtures.py, fixtures/net).
 */
class RetrievalNetTest {
    static Tensor read(String stem) {
        try (InputStream in = RetrievalNetTest.class.getResourceAsStream("/fixtures/net/" + stem + ".npy")) {
            if (in == null) {
                throw new IllegalStateException("missing fixture net/" + stem);
            }
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Inference as extraction runs it: compiled on the CPU in eval mode (the reference's
     * descriptors, no graph), the module itself in training mode.
     */
    @Test
    void inferenceGivesTheReferenceDescriptorsCompiledInEvalMode() {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4);
        try (RetrievalNet net = new RetrievalNet(o, new Random(3)); MemoryScope scope = MemoryScope.open();
             var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            Map<String, Tensor> dict = new LinkedHashMap<>();
            for (String k : net.stateDict().keySet()) {
                dict.put(k, read("weights__" + k));
            }
            assertTrue(net.loadStateDict(dict, true).clean());
            net.eval();
            RetrievalNet.Inference inference = net.inference();
            assertTrue(inference.compiled());
            APLossFixtureTest.assertClose("compiled descriptors", read("out").toDoubleArray(),
                    inference.describe(read("input")).toDoubleArray(), 1e-4, 1e-5);
            net.train(true);
            org.junit.jupiter.api.Assertions.assertFalse(net.inference().compiled(),
                    "training mode uses batch statistics: the module runs");
        }
    }

    @Test
    void descriptorsAndGradientsMatchTheReferenceLayout() {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4);
        try (RetrievalNet net = new RetrievalNet(o, new Random(3)); MemoryScope scope = MemoryScope.open()) {
            assertTrue(net.stateDict().containsKey("adpool.p"));
            assertTrue(net.stateDict().containsKey("layer4.1.bn2.running_var"));
            Map<String, Tensor> dict = new LinkedHashMap<>();
            for (String k : net.stateDict().keySet()) {
                dict.put(k, read("weights__" + k));
            }
            Module.LoadReport r = net.loadStateDict(dict, true);
            assertTrue(r.clean(), r.toString());
            net.eval();
            Tensor d = net.forward(read("input"));
            assertEquals(16, net.dimension());
            APLossFixtureTest.assertClose("descriptors", read("out").toDoubleArray(), d.toDoubleArray(), 1e-4, 1e-5);
            d.backward(read("grad_out"));
            Map<String, Tensor> p = net.namedParameters();
            APLossFixtureTest.assertClose("dL/dp", read("grad_p").toDoubleArray(), p.get("adpool.p").grad()
                    .toDoubleArray(), 1e-3, 1e-5);
            APLossFixtureTest.assertClose("dL/dfc.weight", read("grad_fc_weight").toDoubleArray(),
                    p.get("fc.weight").grad().toDoubleArray(), 1e-3, 1e-5);
            APLossFixtureTest.assertClose("dL/dconv1.weight", read("grad_conv1_weight").toDoubleArray(),
                    p.get("conv1.weight").grad().toDoubleArray(), 1e-3, 1e-4);
            net.zeroGrad();
        }
    }

    /** Pooling and GeM's p are checked with the options, before any of the network's memory is taken. */
    @Test
    void optionsRefuseAnUnknownPoolingAndAGemPThatCannotPool() {
        for (Object[] c : new Object[][] {{"spoc", 3.0, "pooling must be gem, max or avg, got spoc"},
            {"gem", 0.0, "GeM's p must be a finite number > 0, got 0.0"},
            {"gem", Double.NaN, "GeM's p must be a finite number > 0, got NaN"}}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> new RetrievalNet.Options("resnet18", 8, (String) c[0], (double) c[1], false, false, 4));
            org.junit.jupiter.api.Assertions.assertEquals(c[2], e.getMessage());
        }
        // max and avg pooling take no p: any value passes
        org.junit.jupiter.api.Assertions.assertEquals("max",
                new RetrievalNet.Options("resnet18", 8, "max", 0, false, false, 4).pooling());
    }
}
