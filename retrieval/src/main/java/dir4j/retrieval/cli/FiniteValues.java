package dir4j.retrieval.cli;

import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.FloatScan;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * The check that an array read from a file holds no NaN or infinity: one such value makes every
 * score it touches NaN, and rankings, whitening and losses then fail far from the cause or, worse,
 * finish with garbage. Reported as the file and the first offending row.
 */
final class FiniteValues {
    private FiniteValues() {}

    /**
     * Throws naming {@code file}, the first row (along dimension 0) holding a non-finite value and
     * the value, when {@code t} (a float tensor on the CPU) has one; {@code rowWhat} names a row
     * ("descriptor", "image").
     */
    static void require(Path file, Tensor t, String rowWhat) throws IOException {
        long at = firstNonFinite(t);
        if (at >= 0) {
            long perRow = t.numel() / t.shape(0);
            throw new IOException(file + ": " + rowWhat + " " + at / perRow + " (of " + t.shape(0)
                    + ", counting from 0) holds " + value(t, at) + "; expected finite values");
        }
    }

    /** Index (row-major) of the first NaN or infinite element, or -1. */
    static long firstNonFinite(Tensor t) {
        if (!t.dtype().isFloating()) {
            return -1;
        }
        if (!t.device().equals(Device.CPU) || !t.isContiguous()) {
            double[] v = t.toDoubleArray();
            for (int i = 0; i < v.length; i++) {
                if (!Double.isFinite(v[i])) {
                    return i;
                }
            }
            return -1;
        }
        MemorySegment seg = t.segment();
        long base = t.offset();
        long n = t.numel();
        if (t.dtype() == DType.FLOAT32) {
            // a million 2048-d distractor descriptors are checked as they are read: a scalar loop took longer
            // than scoring them
            return FloatScan.firstNonFinite(seg, base, n);
        } else {
            for (long i = 0; i < n; i++) {
                if (!Double.isFinite(seg.getAtIndex(ValueLayout.JAVA_DOUBLE, base + i))) {
                    return i;
                }
            }
        }
        return -1;
    }

    /** The non-finite value at row-major index {@code at}: "NaN", "+infinity" or "-infinity". */
    static String value(Tensor t, long at) {
        double v = t.dtype() == DType.FLOAT32 && t.device().equals(Device.CPU) && t.isContiguous()
                ? t.segment().getAtIndex(ValueLayout.JAVA_FLOAT, t.offset() + at)
                : t.toDoubleArray()[(int) at];
        return Double.isNaN(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity";
    }
}
