package dir4j.engine.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Scans of float32 memory that callers use to refuse bad input before work starts. */
public final class FloatScan {
    private static final VectorSpecies<Float> F = CpuVectors.FLOAT;
    /** Elements summed before the sum is looked at. */
    private static final int BLOCK = 4096;

    private FloatScan() {}

    /**
     * Index (from {@code base}) of the first NaN or infinite float among the {@code n} floats of
     * {@code seg} from float index {@code base}, or -1. Vectorised: x − x is 0 for a finite x and
     * NaN for NaN or ±infinity, so a block of lanes summed is NaN when any is, and only such a block
     * is scanned element by element (a million 2048-d descriptors are checked at memory speed).
     */
    public static long firstNonFinite(MemorySegment seg, long base, long n) {
        long bytes = base * Float.BYTES;
        for (long b0 = 0; b0 < n; b0 += BLOCK) {
            long end = Math.min(n, b0 + BLOCK);
            FloatVector acc = FloatVector.zero(F);
            long i = b0;
            for (; i + F.length() <= end; i += F.length()) {
                FloatVector v = FloatVector.fromMemorySegment(F, seg, bytes + i * Float.BYTES, ByteOrder.nativeOrder());
                acc = acc.add(v.sub(v));
            }
            boolean clean = !Float.isNaN(acc.reduceLanes(VectorOperators.ADD));
            for (; clean && i < end; i++) {
                clean = Float.isFinite(seg.getAtIndex(ValueLayout.JAVA_FLOAT, base + i));
            }
            if (!clean) {
                for (long j = b0; j < end; j++) {
                    if (!Float.isFinite(seg.getAtIndex(ValueLayout.JAVA_FLOAT, base + j))) {
                        return j;
                    }
                }
            }
        }
        return -1;
    }
}
