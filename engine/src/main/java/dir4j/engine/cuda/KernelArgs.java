package dir4j.engine.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The arguments of one kernel launch, in order, with the signature letters of {@link Kernel}
 * recorded alongside. Each scalar takes one 8-byte word (an int32 or float32 in its low bytes,
 * little-endian, which is where the driver reads a 4-byte parameter), a Geometry its 26 words;
 * {@link #writeTo} lays them out in native memory with the array of pointers to each argument
 * that cuLaunchKernel takes. One small heap object per launch: no JCuda Pointer per argument
 * and no JNI marshalling (the launch overhead a tiny op pays).
 */
final class KernelArgs {
    /** Most arguments of any kernel (Kernel's longest signature is well below). */
    static final int MAX_ARGS = 32;

    private long[] words = new long[16];
    private int used;
    private final byte[] letters = new byte[MAX_ARGS];
    private final short[] start = new short[MAX_ARGS];
    private int count;

    private KernelArgs word(long bits, char letter) {
        reserve(1, letter);
        words[used++] = bits;
        return this;
    }

    private void reserve(int n, char letter) {
        if (count == MAX_ARGS) {
            throw new IllegalStateException("kernel arguments: more than " + MAX_ARGS);
        }
        if (used + n > words.length) {
            words = Arrays.copyOf(words, Math.max(words.length * 2, used + n));
        }
        letters[count] = (byte) letter;
        start[count++] = (short) used;
    }

    /** A device pointer (raw address). */
    KernelArgs ptr(long address) {
        return word(address, 'p');
    }

    KernelArgs i64(long v) {
        return word(v, 'l');
    }

    /** A uint64 bit pattern (fill values). */
    KernelArgs bits(long v) {
        return word(v, 'u');
    }

    KernelArgs i32(int v) {
        return word(v & 0xffffffffL, 'i');
    }

    KernelArgs f64(double v) {
        return word(Double.doubleToRawLongBits(v), 'd');
    }

    KernelArgs f32(float v) {
        return word(Float.floatToRawIntBits(v) & 0xffffffffL, 'f');
    }

    /** A Geometry struct passed by value. */
    KernelArgs geometry(StridedGeometry g) {
        long[] w = g.pack();
        reserve(w.length, 'g');
        System.arraycopy(w, 0, words, used, w.length);
        used += w.length;
        return this;
    }

    String signature() {
        return new String(letters, 0, count, java.nio.charset.StandardCharsets.US_ASCII);
    }

    /** True when the letters are exactly {@code signature} (no String built: this runs every launch). */
    boolean matches(String signature) {
        if (signature.length() != count) {
            return false;
        }
        for (int i = 0; i < count; i++) {
            if (signature.charAt(i) != letters[i]) {
                return false;
            }
        }
        return true;
    }

    /** Native bytes one launch's arguments need: the words, then the pointer array. */
    static long bytesFor(int words) {
        return (long) (words + MAX_ARGS) * 8;
    }

    int words() {
        return used;
    }

    /**
     * Writes the argument words at the start of {@code buffer} and after them the pointer array
     * (one address per argument); returns the address of the pointer array (kernelParams).
     */
    long writeTo(MemorySegment buffer) {
        MemorySegment.copy(words, 0, buffer, ValueLayout.JAVA_LONG, 0, used);
        long base = buffer.address();
        long params = (long) used * 8;
        for (int i = 0; i < count; i++) {
            buffer.set(ValueLayout.JAVA_LONG, params + i * 8L, base + start[i] * 8L);
        }
        return base + params;
    }
}
