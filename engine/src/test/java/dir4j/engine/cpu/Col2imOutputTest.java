package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The data gradient's col2im, by scatters into padded sums and by run-by-run adds into dX: fed
 * the same tiles in the same order, both give dX bit for bit, and that is the col2im of the
 * product matrix written out from the convolution's definition.
 */
class Col2imOutputTest {

    static Stream<Conv2dGeometry> geometries() {
        return Im2colOperandTest.geometries().map(a -> (Conv2dGeometry) a.get()[0]);
    }

    @ParameterizedTest
    @MethodSource("geometries")
    void scatteredSumsEqualRunAddsAndTheDefinition(Conv2dGeometry g) {
        int taps = g.inChannels() * g.kernelH() * g.kernelW();
        int pixels = g.batch() * g.outHeight() * g.outWidth();
        SplittableRandom rnd = new SplittableRandom(taps * 17L + pixels);
        float[][] product = new float[taps][pixels];
        for (float[] row : product) {
            for (int q = 0; q < pixels; q++) {
                row[q] = (float) rnd.nextDouble(-1, 1);
            }
        }
        long dxOff = 5;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment viaScatter = arena.allocate((g.inputSize() + dxOff + 2) * Float.BYTES);
            MemorySegment viaRuns = arena.allocate((g.inputSize() + dxOff + 2) * Float.BYTES);
            // dX arrives holding garbage in the scatter mode (finish overwrites it) and zero in the other.
            viaScatter.fill((byte) 0x7f);
            Col2imOutput scatter = new Col2imOutput(g, viaScatter, dxOff, true);
            Col2imOutput runs = new Col2imOutput(g, viaRuns, dxOff, false);
            assertTrue(scatter.scatters());
            assertFalse(runs.scatters());
            float[] tile = new float[Sgemm.MR * Sgemm.NR];
            // tiles as the GEMM hands them over: two depth blocks, row panels within row groups
            for (int block = 0; block < 2; block++) {
                for (int p0 = 0; p0 < taps; p0 += Sgemm.MR) {
                    int rows = Math.min(Sgemm.MR, taps - p0);
                    for (int q0 = 0; q0 < pixels; q0 += Sgemm.NR) {
                        int cols = Math.min(Sgemm.NR, pixels - q0);
                        for (int r = 0; r < rows; r++) {
                            for (int c = 0; c < cols; c++) {
                                tile[r * Sgemm.NR + c] = product[p0 + r][q0 + c] * (block == 0 ? 0.75f : 0.25f);
                            }
                        }
                        scatter.store(tile, Sgemm.NR, p0, rows, q0, cols, block == 0);
                        runs.store(tile, Sgemm.NR, p0, rows, q0, cols, block == 0);
                    }
                }
            }
            scatter.finish();
            runs.finish();
            double[] want = col2im(g, product);
            for (int i = 0; i < g.inputSize(); i++) {
                float s = viaScatter.getAtIndex(ValueLayout.JAVA_FLOAT, dxOff + i);
                float r = viaRuns.getAtIndex(ValueLayout.JAVA_FLOAT, dxOff + i);
                assertEquals(Float.floatToRawIntBits(r), Float.floatToRawIntBits(s), "dX[" + i + "]");
                assertEquals(want[i], s, 1e-5 * (1 + Math.abs(want[i])), "dX[" + i + "]");
            }
            for (int i = 0; i < dxOff; i++) {
                assertEquals(0x7f7f7f7f, viaScatter.getAtIndex(ValueLayout.JAVA_INT, i), "before dX");
            }
            for (long i = dxOff + g.inputSize(); i < dxOff + g.inputSize() + 2; i++) {
                assertEquals(0x7f7f7f7f, viaScatter.getAtIndex(ValueLayout.JAVA_INT, i), "after dX");
            }
        }
    }

    /** dX[n, ci, ih, iw] = Σ over the taps and pixels that read it of product[p][q]. */
    private static double[] col2im(Conv2dGeometry g, float[][] product) {
        double[] dx = new double[(int) g.inputSize()];
        for (int p = 0; p < product.length; p++) {
            for (int q = 0; q < product[p].length; q++) {
                long at = Im2colOperandTest.inputIndex(g, p, q);
                if (at >= 0) {
                    dx[(int) at] += product[p][q];
                }
            }
        }
        return dx;
    }
}
