package dir4j.engine.cpu;

import static dir4j.engine.cpu.NhwcConvTest.assertClose;
import static dir4j.engine.cpu.NhwcConvTest.random;
import static dir4j.engine.cpu.NhwcConvTest.reference;
import static dir4j.engine.cpu.NhwcConvTest.shared;
import static dir4j.engine.cpu.NhwcConvTest.toActivation;
import static dir4j.engine.cpu.NhwcConvTest.toNchw;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.cpu.NhwcConv.Activation;
import dir4j.engine.cpu.WinogradConv.Weights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Winograd F(2×2, 3×3) against a plain double-precision convolution written from the definition
 * (NhwcConvTest's): odd and even sizes (partial 2×2 tiles at the bottom and right), channels off the
 * vector width and the tile width, depth split into chunks, batches, tiles spread over bands, input
 * padding larger than, equal to or smaller than the convolution's, both column layouts, the fused
 * bias, residual and ReLU; the filter transform by hand; and bad shapes.
 */
class WinogradConvTest {

    @ParameterizedTest(name = "{0}x{1}x{2}x{3} -> {4}, pad {5}, input pad {6}, out pad {7}, res {8}, relu {9}")
    @CsvSource({
        // n, c, h, w, co, pad, inPad, outPad, residual, relu
        "1, 64, 14, 14, 64, 1, 1, 0, false, true",       // layer3-like, even sizes
        "2, 40, 13, 11, 70, 1, 1, 1, true, true",        // odd sizes: partial tiles; partial channel blocks
        "1, 16, 15, 9, 32, 1, 2, 0, false, false",       // input padded more than needed
        "1, 24, 10, 7, 64, 1, 0, 0, true, false",        // input without a padding ring
        "3, 300, 5, 4, 40, 1, 1, 0, false, true",        // depth split into chunks (300 > KC), batch
        "1, 3, 6, 6, 8, 1, 1, 0, false, false",          // fewer channels than a vector
        "1, 8, 2, 1, 4, 1, 1, 0, false, true",           // a 2x1 image: one tile, mostly padding
        "2, 33, 9, 9, 130, 0, 0, 1, true, true",         // no convolution padding, three output blocks
        "1, 32, 8, 8, 64, 2, 2, 0, false, true",         // padding 2: a larger output than input
    })
    void matchesTheDefinition(int n, int c, int h, int w, int co, int pad, int inPad, int outPad, boolean residual,
            boolean relu) {
        float[] x = random(n * c * h * w, 11, 1);
        float[] wt = random(co * c * 9, 12, 0.2);
        float[] bias = random(co, 13, 0.5);
        int oh = h + 2 * pad - 2;
        int ow = w + 2 * pad - 2;
        float[] res = residual ? random(n * co * oh * ow, 14, 1) : null;
        Weights weights = Weights.pack(wt, bias, co, c, pad);
        assertEquals(oh, weights.outSize(h));
        double[] expected = reference(x, n, c, h, w, wt, bias, co, 3, 1, pad, res, relu);
        Activation out = Activation.allocate(n, oh, ow, co, outPad);
        WinogradConv.forward(toActivation(x, n, c, h, w, inPad), weights, out,
                residual ? toActivation(res, n, co, oh, ow, 1) : null, relu);
        assertClose("winograd", expected, toNchw(out), 2e-5);
        if (inPad > 0) {
            Activation sharedOut = Activation.allocate(n, oh, ow, co, outPad, true);
            WinogradConv.forward(shared(toActivation(x, n, c, h, w, inPad)), weights, sharedOut,
                    residual ? shared(toActivation(res, n, co, oh, ow, 1)) : null, relu);
            assertClose("winograd, shared padding columns", expected, toNchw(sharedOut), 2e-5);
        }
        // the output's padding ring stays zero (the next convolution's padding)
        float[] d = out.data();
        for (int b = 0; b < n; b++) {
            for (int y = -outPad; y < oh + outPad; y++) {
                for (int xx = -outPad; xx < ow + outPad; xx++) {
                    if (y >= 0 && y < oh && xx >= 0 && xx < ow) {
                        continue;
                    }
                    int i = b * out.imageStride() + ((y + outPad) * out.paddedWidth() + xx + outPad) * co;
                    for (int q = 0; q < co; q++) {
                        assertEquals(0f, d[i + q], "padding ring at " + y + "," + xx);
                    }
                }
            }
        }
    }

    @Test
    void bandsOfTilesGiveTheSameResult() {
        // 2 x 30 x 30 images: 450 tiles; 300 channels make a band 216 tiles (BAND_FLOATS / 16 / 300,
        // in whole groups of 6), so the tiles run in three bands, one crossing from image 0 to image 1
        int n = 2, c = 300, h = 30, w = 30, co = 8;
        long bandTiles = WinogradConv.BAND_FLOATS / (16L * c) / NhwcConv.MR * NhwcConv.MR;
        assertTrue(bandTiles < 225 && 450 > 2 * bandTiles, "the case must span three bands: " + bandTiles);
        float[] x = random(n * c * h * w, 21, 1);
        float[] wt = random(co * c * 9, 22, 0.05);
        float[] bias = random(co, 23, 0.5);
        Activation out = Activation.allocate(n, h, w, co, 0);
        WinogradConv.forward(toActivation(x, n, c, h, w, 1), Weights.pack(wt, bias, co, c, 1), out, null, false);
        assertClose("three bands", reference(x, n, c, h, w, wt, bias, co, 3, 1, 1, null, false), toNchw(out), 2e-5);
    }

    @Test
    void filterTransformByHand() {
        // g = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]: G g = [[1, 2, 3], [6, 7.5, 9], [2, 2.5, 3], [7, 8, 9]],
        // then each row (a, b, c) -> (a, (a+b+c)/2, (a-b+c)/2, c)
        float[] g = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        Weights w = Weights.pack(g, new float[1], 1, 1, 1);
        float[] u = new float[16];
        for (int xi = 0; xi < 16; xi++) {
            u[xi] = w.u.packed[xi * NhwcConv.NR];   // one input channel: ξ's row of NR output lanes
        }
        assertArrayEquals(new float[] {1, 3, 1, 3, 6, 11.25f, 3.75f, 9, 2, 3.75f, 1.25f, 3, 7, 12, 4, 9}, u);
    }

    @Test
    void reusedPlanesFromALargerCallChangeNothing() {
        // a large call leaves its planes in the thread's buffer; a small one after it must not read them
        float[] big = random(64 * 20 * 20, 31, 1);
        Weights wb = Weights.pack(random(64 * 64 * 9, 32, 0.1), new float[64], 64, 64, 1);
        WinogradConv.forward(toActivation(big, 1, 64, 20, 20, 1), wb, Activation.allocate(1, 20, 20, 64, 0), null,
                false);
        float[] x = random(64 * 5 * 3, 33, 1);
        float[] wt = random(16 * 64 * 9, 34, 0.1);
        float[] bias = random(16, 35, 0.1);
        Activation out = Activation.allocate(1, 5, 3, 16, 0);
        WinogradConv.forward(toActivation(x, 1, 64, 5, 3, 1), Weights.pack(wt, bias, 16, 64, 1), out, null, false);
        assertClose("after a larger call", reference(x, 1, 64, 5, 3, wt, bias, 16, 3, 1, 1, null, false),
                toNchw(out), 2e-5);
    }

    @Test
    void badShapesAreClearErrors() {
        Weights w = Weights.pack(new float[8 * 4 * 9], new float[8], 8, 4, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WinogradConv.forward(Activation.allocate(1, 5, 5, 3, 1), w, Activation.allocate(1, 5, 5, 8, 0),
                        null, false));
        assertTrue(e.getMessage().contains("3 channels"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> WinogradConv.forward(Activation.allocate(1, 5, 5, 4, 1), w, Activation.allocate(1, 4, 5, 8, 0),
                        null, false));
        assertTrue(e.getMessage().contains("output is 1x4x5x8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Weights.pack(new float[10], new float[8], 8, 4, 1));
        assertTrue(e.getMessage().contains("8x4x3x3"), e.getMessage());
        Weights noPad = Weights.pack(new float[8 * 4 * 9], new float[8], 8, 4, 0);
        e = assertThrows(IllegalArgumentException.class,
                () -> WinogradConv.forward(Activation.allocate(1, 2, 5, 4, 1), noPad,
                        Activation.allocate(1, 1, 3, 8, 0), null, false));
        assertTrue(e.getMessage().contains("too small"), e.getMessage());
    }

    @Test
    void paysOnlyWhereMeasured() {
        assertEquals(WinogradConv.ENABLED, WinogradConv.pays(256));
        assertEquals(WinogradConv.ENABLED, WinogradConv.pays(64));
        assertFalse(WinogradConv.pays(32));    // fewer channels than measured
    }
}
