package dir4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.nn.layers.AdaptiveAvgPool2d;
import dir4j.nn.layers.AveragePooling;
import dir4j.nn.layers.Dropout;
import dir4j.nn.layers.L2Normalization;
import dir4j.nn.layers.MaxPooling;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The small layers as modules, on hand-derived values (their ops are checked against PyTorch in the engine). */
class LayersTest {

    /**
     * Training mode zeroes a fraction p of the elements (within four standard deviations of a
     * binomial count), scales the rest by exactly 1/(1−p), and back-propagates through the same mask;
     * eval mode and p = 0 return the input itself; the same seed gives the same mask.
     */
    @Test
    void dropoutZeroesAFractionPAndScalesTheRest() {
        double p = 0.3;
        int n = 200_000;
        try (MemoryScope scope = MemoryScope.open()) {
            Dropout d = new Dropout(p, new Random(7));
            d.train(true);
            Tensor x = Tensor.ones(n / 100, 100).requiresGrad(true);
            Tensor y = d.forward(x);
            float[] v = y.toFloatArray();
            float keep = (float) (1 / (1 - p));
            int zeros = 0;
            for (float e : v) {
                if (e == 0) {
                    zeros++;
                } else {
                    assertEquals(keep, e, 0f);
                }
            }
            double sigma = Math.sqrt(n * p * (1 - p));
            assertTrue(Math.abs(zeros - n * p) < 4 * sigma, zeros + " zeros of " + n + " at p = " + p);
            y.sum().backward();
            assertArrayEquals(v, x.grad().toFloatArray(), 0f, "d(sum y)/dx is the mask times 1/(1-p)");

            Tensor again = new Dropout(p, new Random(7)).forward(Tensor.ones(n / 100, 100));
            assertArrayEquals(v, again.toFloatArray(), 0f, "same seed, same mask");

            d.eval();
            assertSame(x, d.forward(x), "eval mode is the identity");
            Dropout none = new Dropout(0, new Random(1));
            none.train(true);
            assertSame(x, none.forward(x), "p = 0 is the identity");
        }
        assertThrows(IllegalArgumentException.class, () -> new Dropout(1, new Random(1)));
        assertThrows(IllegalArgumentException.class, () -> new Dropout(-0.1, new Random(1)));
    }

    /**
     * PyTorch's adaptive bins: output cell i of o over an input side of n spans [⌊i·n/o⌋, ⌈(i+1)·n/o⌉).
     * A 5×5 input 0 … 24 pooled to 3×3: rows and columns {0,1}, {1,2,3}, {3,4}.
     */
    @Test
    void adaptiveAveragePoolingUsesPyTorchsOverlappingBins() {
        float[] x = new float[25];
        for (int i = 0; i < 25; i++) {
            x[i] = i;
        }
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor y = new AdaptiveAvgPool2d(3, 3).forward(Tensor.of(x, 1, 1, 5, 5));
            assertArrayEquals(new int[] {1, 1, 3, 3}, y.shape());
            // e.g. cell (0, 1): rows 0-1, columns 1-3: (1+2+3+6+7+8)/6 = 4.5; cell (1, 1): the central 3x3, 12
            assertArrayEquals(new float[] {3, 4.5f, 6, 10.5f, 12, 13.5f, 18, 19.5f, 21}, y.toFloatArray(), 1e-6f);
            Tensor one = new AdaptiveAvgPool2d(1, 1).forward(Tensor.of(x, 1, 1, 5, 5));
            assertArrayEquals(new float[] {12}, one.toFloatArray(), 1e-6f);
        }
    }

    /** SPoC and MAC pool each channel over H×W; L2Normalization scales rows to unit length, a zero row stays 0. */
    @Test
    void globalPoolingsAndL2Normalization() {
        try (MemoryScope scope = MemoryScope.open()) {
            // [1, 2, 2, 2]: channel 0 holds 1, 2, 3, 6; channel 1 holds -1, -2, -3, -4
            Tensor x = Tensor.of(new float[] {1, 2, 3, 6, -1, -2, -3, -4}, 1, 2, 2, 2);
            assertArrayEquals(new float[] {3, -2.5f}, new AveragePooling().forward(x).toFloatArray(), 1e-6f);
            assertArrayEquals(new float[] {6, -1}, new MaxPooling().forward(x).toFloatArray(), 0f);
            Tensor rows = Tensor.of(new float[] {3, 4, 0, 0, 0, 0, 0, 0, 1, -2, 2, 0}, 3, 4);
            assertArrayEquals(new float[] {0.6f, 0.8f, 0, 0, 0, 0, 0, 0, 1 / 3f, -2 / 3f, 2 / 3f, 0},
                    new L2Normalization().forward(rows).toFloatArray(), 1e-6f);
        }
    }
}
