package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Triplet losses against PyTorch (make_method_fixtures.py) and the sampler's triplets by hand. */
class TripletLossTest {
    static Tensor read(String c, String stem) {
        try (InputStream in = TripletLossTest.class.getResourceAsStream("/fixtures/triplet/" + c + "/" + stem
                + ".npy")) {
            return Npy.parse(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void check(String c, TripletLoss loss) {
        try (MemoryScope s = MemoryScope.open()) {
            Tensor d = read(c, "descriptors").detach().requiresGrad(true);
            var t = new TripletSampler.Triplets(read(c, "anchors").toIntArray(), read(c, "positives").toIntArray(),
                    read(c, "negatives").toIntArray());
            Tensor l = loss.forward(d, t);
            assertEquals(read(c, "loss").item(), l.item(), 1e-12);
            l.backward();
            APLossFixtureTest.assertClose(c + " grad", read(c, "grad").toDoubleArray(), d.grad().toDoubleArray(),
                    1e-10, 1e-12);
        }
    }

    @Test
    void marginLossMatchesPyTorchTripletMarginLoss() {
        check("margin_0_5", new TripletLoss(TripletLoss.Kind.MARGIN, 0.5));
    }

    @Test
    void logExpLossMatchesTheReference() {
        check("log_exp", new TripletLoss(TripletLoss.Kind.LOG_EXP, 0));
    }

    @Test
    void samplerPairsEveryAnchorPositiveWithTheHardestNegative() {
        int[] classes = {0, 0, 1, 1, 2};
        // scores: row a, column j; the hardest negative is the most similar one of another class
        double[] s = new double[25];
        s[0 * 5 + 4] = 0.9;
        s[0 * 5 + 2] = 0.5;
        s[1 * 5 + 3] = 0.7;
        s[2 * 5 + 0] = 0.8;
        s[3 * 5 + 4] = 0.6;
        var t = TripletSampler.sample(classes, TripletSampler.Negatives.HARDEST, s, null);
        assertArrayEquals(new int[] {0, 1, 2, 3}, t.anchors());
        assertArrayEquals(new int[] {1, 0, 3, 2}, t.positives());
        assertArrayEquals(new int[] {4, 3, 0, 4}, t.negatives());
        var r = TripletSampler.sample(classes, TripletSampler.Negatives.RANDOM, null, new Random(1));
        assertEquals(4, r.size());
        for (int i = 0; i < r.size(); i++) {
            assertEquals(classes[r.anchors()[i]], classes[r.positives()[i]]);
            org.junit.jupiter.api.Assertions.assertNotEquals(classes[r.anchors()[i]], classes[r.negatives()[i]]);
        }
    }
}
