package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The implicit im2col's two packings, by gathers from a padded copy and by run copies, give the
 * same panels (bit for bit: both only move floats), and both match the im2col matrix written out
 * by hand from the convolution's definition.
 */
class Im2colOperandTest {

    static Stream<Arguments> geometries() {
        return Stream.of(
                // batch, cin, h, w, cout, k, stride, pad, dilation
                Arguments.of(Conv2dGeometry.of(2, 5, 7, 7, 4, 3, 1, 1, 1)),
                Arguments.of(Conv2dGeometry.of(3, 4, 9, 11, 4, 3, 2, 1, 1)),
                Arguments.of(Conv2dGeometry.of(1, 3, 13, 10, 4, 5, 2, 2, 1)),
                Arguments.of(Conv2dGeometry.of(2, 2, 8, 8, 4, 3, 1, 2, 2)),
                Arguments.of(Conv2dGeometry.of(1, 6, 5, 6, 4, 1, 3, 0, 1)),
                Arguments.of(Conv2dGeometry.of(4, 3, 4, 4, 4, 2, 1, 0, 1)),
                // 15 output pixels, no padding: a last vector of lanes one short of full
                Arguments.of(Conv2dGeometry.of(1, 2, 17, 3, 4, 3, 1, 0, 1)));
    }

    @ParameterizedTest
    @MethodSource("geometries")
    void gatheredPanelsEqualCopiedPanelsAndTheIm2colMatrix(Conv2dGeometry g) {
        int taps = g.inChannels() * g.kernelH() * g.kernelW();
        int pixels = g.batch() * g.outHeight() * g.outWidth();
        int w = Sgemm.NR;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate((g.inputSize() + 3) * Float.BYTES);
            SplittableRandom rnd = new SplittableRandom(taps * 31L + pixels);
            for (long i = 0; i < g.inputSize() + 3; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1) + 2f);
            }
            long xOff = 3; // an offset input, as the engine passes views
            float[][] im2col = im2col(g, x, xOff);
            Im2colOperand gathered = new Im2colOperand(g, x, xOff, true);
            Im2colOperand copied = new Im2colOperand(g, x, xOff, false);
            // Sub-ranges as the GEMM asks for them: depth blocks and column panels not at 0.
            int late = Math.min(w + 1, pixels - 1);
            int[][] ranges = {{0, taps, 0, pixels}, {1, taps - 1, 3, pixels - 3}, {taps / 2, taps - taps / 2, late,
                    pixels - late}};
            for (int[] r : ranges) {
                int p0 = r[0], np = r[1], q0 = r[2], nq = r[3];
                // column panels: lanes are pixels, depth the taps; row panels the other way round
                checkPanels("column panels " + Arrays.toString(r), (op, dst) -> op.packColumnPanels(dst, 0, p0, np, q0,
                        nq, w), gathered, copied, nq, np, w, (d, lane) -> im2col[p0 + d][q0 + lane]);
                checkPanels("row panels " + Arrays.toString(r), (op, dst) -> op.packRowPanels(dst, 0, p0, np, q0, nq,
                        w), gathered, copied, np, nq, w, (d, lane) -> im2col[p0 + lane][q0 + d]);
            }
        }
    }

    /** One of an operand's two packings, into dst. */
    private interface Packing {
        void pack(Im2colOperand op, float[] dst);
    }

    /** The im2col value a panel holds at depth step d, lane (within the block) lane. */
    private interface Expected {
        float at(int d, int lane);
    }

    /**
     * Both operands pack the block identically (every float of the panels, bit for bit), and the
     * gathered panels hold want(d, lane) for each of the block's lanes and zero past them.
     */
    private static void checkPanels(String what, Packing packing, Im2colOperand gathered, Im2colOperand copied,
            int lanes, int depth, int w, Expected want) {
        int panels = Sgemm.ceilDiv(lanes, w);
        float[] a = filled(panels * w * depth);
        float[] b = filled(panels * w * depth);
        packing.pack(gathered, a);
        packing.pack(copied, b);
        assertArrayEquals(b, a, what);
        for (int t = 0; t < panels; t++) {
            for (int d = 0; d < depth; d++) {
                for (int l = 0; l < w; l++) {
                    int lane = t * w + l;
                    float expected = lane < lanes ? want.at(d, lane) : 0f;
                    assertEquals(expected, a[t * w * depth + d * w + l], what + ": depth " + d + ", lane " + lane);
                }
            }
        }
    }

    @Test
    void gathersAreChosenForStridedAndNarrowOutputsOnly() {
        assertTrue(Im2colOperand.usesGather(Conv2dGeometry.of(4, 512, 7, 7, 512, 3, 1, 1, 1)));
        assertTrue(Im2colOperand.usesGather(Conv2dGeometry.of(4, 128, 56, 56, 128, 3, 2, 1, 1)));
        assertFalse(Im2colOperand.usesGather(Conv2dGeometry.of(4, 64, 56, 56, 64, 3, 1, 1, 1)));
        // a padded copy past the cap takes the run copies
        assertFalse(Im2colOperand.usesGather(Conv2dGeometry.of(128, 1024, 14, 14, 256, 3, 2, 1, 1)));
    }

    /** Panels start as NaN so a lane left unwritten shows. */
    private static float[] filled(int n) {
        float[] f = new float[n];
        Arrays.fill(f, Float.NaN);
        return f;
    }

    /** X[p][q] from the definition: x[n, ci, oh·s − pad + kh·dil, ow·s − pad + kw·dil] or 0. */
    private static float[][] im2col(Conv2dGeometry g, MemorySegment x, long xOff) {
        int taps = g.inChannels() * g.kernelH() * g.kernelW();
        int pixels = g.batch() * g.outHeight() * g.outWidth();
        float[][] m = new float[taps][pixels];
        for (int p = 0; p < taps; p++) {
            for (int q = 0; q < pixels; q++) {
                long at = inputIndex(g, p, q);
                if (at >= 0) {
                    m[p][q] = x.getAtIndex(ValueLayout.JAVA_FLOAT, xOff + at);
                }
            }
        }
        return m;
    }

    /**
     * The NCHW index of the input element that tap p = (ci, kh, kw) reads at output pixel
     * q = (n, oh, ow), from the convolution's definition, or −1 where it reads the padding.
     */
    static long inputIndex(Conv2dGeometry g, int p, int q) {
        int kk = g.kernelH() * g.kernelW();
        int spatial = g.outHeight() * g.outWidth();
        int ci = p / kk;
        int kh = p % kk / g.kernelW();
        int kw = p % g.kernelW();
        int n = q / spatial;
        int oh = q % spatial / g.outWidth();
        int ow = q % g.outWidth();
        int ih = oh * g.strideH() - g.padH() + kh * g.dilationH();
        int iw = ow * g.strideW() - g.padW() + kw * g.dilationW();
        if (ih < 0 || ih >= g.height() || iw < 0 || iw >= g.width()) {
            return -1;
        }
        return (((long) n * g.inChannels() + ci) * g.height() + ih) * g.width() + iw;
    }
}
