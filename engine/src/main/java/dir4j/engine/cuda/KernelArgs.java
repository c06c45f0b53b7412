package dir4j.engine.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.NativePointerObject;
import jcuda.Pointer;

/**
 * The arguments of one kernel launch, in order, each as a pointer to its bytes (the form
 * cuLaunchKernel takes), with the signature letters of {@link Kernel} recorded alongside.
 */
final class KernelArgs {
    private final List<Pointer> values = new ArrayList<>();
    private final StringBuilder signature = new StringBuilder();

    private KernelArgs add(Pointer p, char letter) {
        values.add(p);
        signature.append(letter);
        return this;
    }

    /** A device pointer (raw address). */
    KernelArgs ptr(long address) {
        return add(Pointer.to(new long[] {address}), 'p');
    }

    KernelArgs i64(long v) {
        return add(Pointer.to(new long[] {v}), 'l');
    }

    /** A uint64 bit pattern (fill values). */
    KernelArgs bits(long v) {
        return add(Pointer.to(new long[] {v}), 'u');
    }

    KernelArgs i32(int v) {
        return add(Pointer.to(new int[] {v}), 'i');
    }

    KernelArgs f64(double v) {
        return add(Pointer.to(new double[] {v}), 'd');
    }

    KernelArgs f32(float v) {
        return add(Pointer.to(new float[] {v}), 'f');
    }

    /** A Geometry struct passed by value. */
    KernelArgs geometry(StridedGeometry g) {
        return add(Pointer.to(g.pack()), 'g');
    }

    String signature() {
        return signature.toString();
    }

    /** The kernelParams array of cuLaunchKernel. */
    Pointer kernelParams() {
        return Pointer.to(values.toArray(new NativePointerObject[0]));
    }
}
