package dir4j.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float vector species the CPU backend computes with: the platform's preferred width, or
 * the one named by {@code -Ddir4j.vector.bits=128|256|512} (to test narrower code paths). Fails
 * loudly when the JVM was started without {@code --add-modules jdk.incubator.vector}; dir4j never
 * falls back to scalar code silently.
 */
public final class CpuVectors {
    /** The species every float32 kernel uses. */
    public static final VectorSpecies<Float> FLOAT = pick();

    private CpuVectors() {}

    private static VectorSpecies<Float> pick() {
        CpuSettings.require(); // a clear sentence, not an ExceptionInInitializerError of its own
        Integer bits = Integer.getInteger("dir4j.vector.bits");
        if (bits == null) {
            return FloatVector.SPECIES_PREFERRED;
        }
        return switch (bits) {
            case 128 -> FloatVector.SPECIES_128;
            case 256 -> FloatVector.SPECIES_256;
            case 512 -> FloatVector.SPECIES_512;
            default -> throw new IllegalArgumentException("dir4j.vector.bits must be 128, 256 or 512, got " + bits);
        };
    }

    /** Lane width in bits. */
    public static int bits() {
        return FLOAT.vectorBitSize();
    }

    /** The widest width this CPU's JIT accelerates. */
    public static int preferredBits() {
        return VectorShape.preferredShape().vectorBitSize();
    }
}
