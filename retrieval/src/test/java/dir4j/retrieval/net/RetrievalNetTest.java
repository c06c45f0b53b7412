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
    /**
     * A service closing the network it serves with: describes in progress on another thread end
     * with their (correct) descriptors, and the ones after the close are refused as closed, not
     * with a freed tensor's error.
     */
    @Test
    void closeWaitsForDescribesInProgressOnOtherThreads() throws Exception {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 8);
        RetrievalNet net = new RetrievalNet(o, new Random(5));
        net.eval();
        float[] pixels = new float[3 * 96 * 96];
        Random r = new Random(7);
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = (float) r.nextGaussian();
        }
        double[] expected;
        try (MemoryScope scope = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
            expected = net.inference().describe(Tensor.of(pixels, 1, 3, 96, 96)).toDoubleArray();
        }
        java.util.List<double[]> results = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        java.util.concurrent.CompletableFuture<RuntimeException> end = new java.util.concurrent.CompletableFuture<>();
        java.util.concurrent.CountDownLatch compiled = new java.util.concurrent.CountDownLatch(1);
        Thread service = new Thread(() -> {
            RetrievalNet.Inference inference = net.inference(); // (compiling holds the network too)
            compiled.countDown();
            while (true) {
                try (MemoryScope scope = MemoryScope.open(); var ng = dir4j.engine.autograd.Autograd.noGrad()) {
                    results.add(inference.describe(Tensor.of(pixels, 1, 3, 96, 96)).toDoubleArray());
                } catch (RuntimeException e) {
                    end.complete(e);
                    return;
                }
            }
        });
        service.start();
        compiled.await();
        while (net.inUse() == 0) {
            Thread.onSpinWait();
        }
        net.close(); // a describe is in progress: close waits for it
        assertEquals(0, net.inUse());
        RuntimeException e = end.get(30, java.util.concurrent.TimeUnit.SECONDS);
        service.join();
        assertTrue(e instanceof IllegalStateException && e.getMessage().startsWith("the network was closed"),
                () -> "refused as closed, got " + e);
        assertTrue(!results.isEmpty(), "the describe in progress ended with its descriptor");
        for (double[] d : results) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, d, 0, "every descriptor whole");
        }
        try (MemoryScope scope = MemoryScope.open()) {
            assertThrowsClosed(() -> net.forward(Tensor.of(pixels, 1, 3, 96, 96)));
        }
    }

    private static void assertThrowsClosed(org.junit.jupiter.api.function.Executable call) {
        IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, call);
        assertTrue(e.getMessage().startsWith("the network was closed"), e.getMessage());
    }
}
