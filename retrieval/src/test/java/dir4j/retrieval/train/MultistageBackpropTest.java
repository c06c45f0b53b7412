package dir4j.retrieval.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.NativeMemory;
import dir4j.retrieval.loss.APLoss;
import dir4j.retrieval.loss.APLossFixtureTest;
import dir4j.retrieval.net.RetrievalNet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Multistage back-propagation gives the gradients of one ordinary backward over the whole batch
 * (frozen batch norm), and leaves nothing allocated behind.
 */
class MultistageBackpropTest {
    private static final int[] CLASSES = {0, 0, 1, 1, 2, 2, 0, 1};

    private static Map<String, double[]> grads(RetrievalNet net) {
        Map<String, double[]> g = new LinkedHashMap<>();
        net.namedParameters().forEach((k, v) -> g.put(k, v.grad() == null ? null : v.grad().toDoubleArray()));
        return g;
    }

    @Test
    void gradientsEqualOneBackwardOverTheWholeBatch() {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 12, "gem", 3, false, false, 4);
        APLoss loss = new APLoss(10, -1, 1, false, true);
        Random rng = new Random(5);
        Tensor[] images = new Tensor[4];
        for (int i = 0; i < images.length; i++) {
            images[i] = Tensor.randn(rng, 2, 3, 40, 40);
        }
        try (RetrievalNet net = new RetrievalNet(o, new Random(2))) {
            MultistageBackprop.freezeBatchNorm(net, true);
            // ordinary: one graph over all 8 images
            double direct;
            try (MemoryScope s = MemoryScope.open()) {
                Tensor d = net.forward(Ops.concat(0, images));
                Tensor l = loss.forward(d, CLASSES, null).loss();
                direct = l.item();
                l.backward();
            }
            Map<String, double[]> want = grads(net);
            net.zeroGrad();
            long liveBefore = NativeMemory.liveBlocks();
            MultistageBackprop.Outcome out = MultistageBackprop.accumulateGradients(net, images.length,
                    i -> images[i], d -> loss.forward(d, CLASSES, null).loss());
            assertEquals(8, out.images());
            assertEquals(direct, out.loss(), 1e-6);
            Map<String, double[]> got = grads(net);
            for (var e : want.entrySet()) {
                APLossFixtureTest.assertClose("grad " + e.getKey(), e.getValue(), got.get(e.getKey()), 1e-4, 1e-6);
            }
            net.zeroGrad();
            assertEquals(liveBefore, NativeMemory.liveBlocks(),
                    "after zeroGrad nothing the multistage step allocated is still held");
            // stage 1 by the compiled CPU inference (as the Trainer runs it with frozen batch norms)
            RetrievalNet.Inference compiled = net.inference();
            org.junit.jupiter.api.Assertions.assertTrue(compiled.compiled(), "frozen batch norms compile");
            MultistageBackprop.Outcome viaCompiled = MultistageBackprop.accumulateGradients(net, images.length,
                    i -> images[i], d -> loss.forward(d, CLASSES, null).loss(), compiled::describe);
            assertEquals(direct, viaCompiled.loss(), 1e-5);
            Map<String, double[]> got2 = grads(net);
            for (var e : want.entrySet()) {
                APLossFixtureTest.assertClose("grad (compiled stage 1) " + e.getKey(), e.getValue(),
                        got2.get(e.getKey()), 1e-4, 1e-6);
            }
            net.zeroGrad();
            // stage 3 channels-last (dir4j train --channels-last): the same gradients, nothing left behind
            net.channelsLast(true);
            long liveBeforeChannelsLast = NativeMemory.liveBlocks();
            MultistageBackprop.Outcome viaChannelsLast = MultistageBackprop.accumulateGradients(net, images.length,
                    i -> images[i], d -> loss.forward(d, CLASSES, null).loss(), compiled::describe);
            assertEquals(direct, viaChannelsLast.loss(), 1e-5);
            Map<String, double[]> got3 = grads(net);
            for (var e : want.entrySet()) {
                APLossFixtureTest.assertClose("grad (channels-last stage 3) " + e.getKey(), e.getValue(),
                        got3.get(e.getKey()), 1e-4, 1e-6);
            }
            net.zeroGrad();
            assertEquals(liveBeforeChannelsLast, NativeMemory.liveBlocks(),
                    "after zeroGrad nothing the channels-last multistage step allocated is still held");
            net.channelsLast(false);
        } finally {
            for (Tensor t : images) {
                t.close();
            }
        }
    }
}
