package dir4j.engine.cpu;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * Run by SgemmTest in a JVM of its own with {@code -Ddir4j.vector.bits=N}: checks that the species
 * took, then runs products and convolutions at odd shapes against the reference. Prints
 * "OK N bits" and exits 0, or prints what failed and exits 1.
 */
public final class VectorWidthCheck {
    private VectorWidthCheck() {}

    public static void main(String[] args) {
        int bits = Integer.getInteger("dir4j.vector.bits");
        try {
            if (Sgemm.SPECIES.vectorBitSize() != bits || Sgemm.NR != 2 * bits / 32) {
                throw new AssertionError("species " + Sgemm.SPECIES + ", NR " + Sgemm.NR + " under " + bits + " bits");
            }
            int[][] shapes = {{1, 1, 1}, {97, 131, 73}, {Sgemm.MR + 1, Sgemm.NR + 1, Sgemm.KC + 1}, {130, 70, 260}};
            for (int[] s : shapes) {
                for (SgemmTest.Layout a : new SgemmTest.Layout[] {SgemmTest.Layout.ROW_MAJOR, SgemmTest.Layout.TRANSPOSED}) {
                    SgemmTest.check(s[0], s[1], s[2], a, SgemmTest.Layout.STRIDED, 1.5f, 0f, 1, bits);
                    SgemmTest.check(s[0], s[1], s[2], SgemmTest.Layout.PADDED, a, -1f, 0.5f, 3, bits + 1);
                }
            }
            for (Conv2dGeometry g : new Conv2dGeometry[] {
                    Conv2dGeometry.of(2, 3, 11, 13, 5, 3, 1, 1, 1),
                    Conv2dGeometry.of(2, 4, 12, 9, 6, 3, 2, 2, 2),
                    Conv2dGeometry.of(3, 6, 5, 7, 4, 1, 1, 0, 1)}) {
                try (Arena arena = Arena.ofConfined()) {
                    Conv2dKernelsTest.checkAllThree(arena, g, new SplittableRandom(bits));
                }
            }
        } catch (Throwable t) {
            t.printStackTrace(System.out);
            System.out.println("FAILED " + bits + " bits: " + t);
            System.exit(1);
        }
        System.out.println("OK " + bits + " bits");
    }
}
