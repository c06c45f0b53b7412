package dir4j.retrieval.loss;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Bad inputs to the AP loss's API are clear errors naming what is wrong (and where), never a NaN
 * loss or a message about something else.
 */
class APLossBadInputTest {
    private static Tensor scores() {
        return Tensor.ofDoubles(new double[] {0.1, 0.9, 0.5, 0.3, 0.2, 0.8}, 2, 3);
    }

    private static Tensor labels(double... v) {
        return Tensor.ofDoubles(v, 2, 3);
    }

    private static String error(Executable run) {
        return assertThrows(IllegalArgumentException.class, run).getMessage();
    }

    private static void assertContains(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "'" + p + "' in: " + message);
        }
    }

    @Test
    void labelsOtherThanZeroAndOneAreRefusedNamingTheEntry() {
        try (MemoryScope scope = MemoryScope.open()) {
            APLoss loss = new APLoss(25, 0, 1);
            assertContains(error(() -> loss.forward(scores(), labels(1, Double.NaN, 0, 0, 1, 0), null)),
                    "labels must be 0 (negative) or 1 (positive), got NaN at (0, 1) of [2, 3]");
            assertContains(error(() -> loss.forward(scores(), labels(1, 0, 0, 0, 2, 0), null)), "got 2.0 at (1, 1)");
            // 0.5 and 2 would cancel in a plain sum of y·(y − 1)
            assertContains(error(() -> loss.forward(scores(), labels(1, 0.5, 0.5, 0.5, 0.5, 2), null)),
                    "got 0.5 at (0, 1)");
            assertContains(error(() -> loss.forward(scores(), labels(1, 0, 0, 0, 1, 0).to(DType.FLOAT32), null)),
                    "labels are float32 but the scores float64", ".to(DType.FLOAT64)");
            assertEquals(new APLoss(25, 0, 1).forward(scores(), labels(1, 0, 0, 0, 1, 0), null).excluded(), 0);
        }
    }

    @Test
    void nonFiniteQueryWeightsAreRefusedOnEveryPath() {
        try (MemoryScope scope = MemoryScope.open()) {
            APLoss loss = new APLoss(25, 0, 1);
            Tensor w = Tensor.ofDoubles(new double[] {1, Double.NaN}, 2);
            assertContains(error(() -> loss.forward(scores(), labels(1, 0, 0, 0, 1, 0), w)),
                    "query weight 1 (of 2, counting from 0) is NaN; weights must be finite");
            Tensor d = Tensor.ofDoubles(new double[] {1, 0, 0, 1, 0.6, 0.8}, 3, 2);
            Tensor w3 = Tensor.ofDoubles(new double[] {1, 1, Double.POSITIVE_INFINITY}, 3);
            for (APLoss l : new APLoss[] {loss, new TAPLoss(25, 0, 1, false)}) {
                assertContains(error(() -> l.forward(d, new int[] {1, 1, 2}, w3)), "query weight 2", "Infinity");
                assertContains(error(() -> l.forwardBlocked(d, new int[] {1, 1, 2}, w3, 2)), "query weight 2");
            }
            // zero and negative weights are experiments, not errors
            Tensor zeros = Tensor.ofDoubles(new double[] {0, -1}, 2);
            assertTrue(Double.isFinite(loss.forward(scores(), labels(1, 0, 0, 0, 1, 0), zeros).loss().item()));
        }
    }

    @Test
    void emptyInputsSaySoInsteadOfBlamingThePositives() {
        try (MemoryScope scope = MemoryScope.open()) {
            APLoss loss = new APLoss(25, 0, 1);
            assertContains(error(() -> loss.forward(Tensor.ofDoubles(new double[0], 0, 3),
                    Tensor.ofDoubles(new double[0], 0, 3), null)), "scores [0, 3] hold no query (N = 0)");
            assertContains(error(() -> loss.forward(Tensor.ofDoubles(new double[0], 2, 0),
                    Tensor.ofDoubles(new double[0], 2, 0), null)), "scores [2, 0] hold no item to rank (M = 0)");
            Tensor d = Tensor.ofDoubles(new double[0], 0, 4);
            assertContains(error(() -> loss.forward(d, new int[0], null)), "descriptors [0, 4] hold no query (N = 0)");
            assertContains(error(() -> loss.forwardBlocked(d, new int[0], null, 1)), "hold no query (N = 0)");
        }
    }

    @Test
    void noPositiveMessagesFitTheKindOfLabels() {
        try (MemoryScope scope = MemoryScope.open()) {
            String dense = error(() -> new APLoss(25, 0, 1).forward(scores(), labels(0, 0, 0, 0, 0, 0), null));
            assertContains(dense, "none of the 2 queries has a positive; every row of the labels is 0");
            assertFalse(dense.contains("classes"), dense);
            String self = error(() -> new APLoss(25, 0, 1, false, true).forward(scores(), labels(1, 0, 0, 0, 1, 0),
                    null));
            assertContains(self, "every row of the labels is 0 once each query's match (i, i) with itself is left out");
            Tensor d = Tensor.ofDoubles(new double[] {1, 0, 0, 1, 0.6, 0.8}, 3, 2);
            for (APLoss l : new APLoss[] {new APLoss(25, 0, 1, false, true), new TAPLoss(25, 0, 1, true, false, true)}) {
                assertContains(error(() -> l.forward(d, new int[] {1, 2, 3}, null)),
                        "none of the 3 queries has a positive; check the labels (classes need at least two images");
                assertContains(error(() -> l.forwardBlocked(d, new int[] {1, 2, 3}, null, 2)),
                        "classes need at least two images");
            }
        }
    }

    @Test
    void nonFiniteScoresAreNamedWhereTheyAre() {
        try (MemoryScope scope = MemoryScope.open()) {
            APLoss loss = new APLoss(25, 0, 1);
            Tensor s = Tensor.ofDoubles(new double[] {0.1, 0.9, 0.5, 0.3, Double.NaN, 0.8}, 2, 3);
            String m = error(() -> loss.forward(s, labels(1, 0, 0, 0, 1, 0), null));
            assertContains(m, "scores [2, 3] contain NaN or infinite values, first at (1, 1) (NaN)");
            assertFalse(m.contains("descriptors"), "scores given directly: " + m);
            Tensor d = Tensor.ofDoubles(new double[] {1, 0, 0, 1, Double.NEGATIVE_INFINITY, 0.8}, 3, 2);
            assertContains(error(() -> loss.forwardBlocked(d, new int[] {1, 1, 2}, null, 2)),
                    "descriptors [3, 2] contain NaN or infinite values, first in row 2 (-Infinity)",
                    "check the descriptors");
            assertContains(error(() -> loss.forward(d, new int[] {1, 1, 2}, null)),
                    "descriptors [3, 2] contain NaN or infinite values, first in row 2 (-Infinity)",
                    "check the descriptors");
            Tensor ints = Tensor.ofInts(new int[] {1, 0, 0, 1}, 2, 2);
            assertContains(error(() -> loss.forward(ints, ints, null)), "scores must be float32 or float64, got "
                    + "[2, 2] int32");
            assertContains(error(() -> loss.forward(ints, new int[] {1, 1}, null)), "descriptors must be float32 or "
                    + "float64");
        }
    }

    @Test
    void settingsOutOfRangeAreRefused() {
        assertContains(error(() -> new APLoss(25, 0, Double.POSITIVE_INFINITY)), "must be finite");
        assertContains(error(() -> new TAPLoss(25, Double.NEGATIVE_INFINITY, 1, false)), "must be finite");
        assertContains(error(() -> new APLoss(25, 0, 1).withBlockedAbove(-1)), "0 (always) or more, got -1");
    }
}
