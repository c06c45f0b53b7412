package dir4j.engine.cuda;

import jcuda.Pointer;
import jcuda.driver.CUstream;

/** JCuda handles whose raw addresses the FFM bindings need (JCuda keeps them protected). */
final class RawHandles {
    private RawHandles() {}

    /** A stream whose cudaStream_t value can be handed to cuBLAS and cuDNN. */
    static final class Stream extends CUstream {
        long address() {
            return getNativePointer();
        }
    }

    /** Page-locked host memory from cuMemHostAlloc, at a raw address for a MemorySegment view. */
    static final class HostMemory extends Pointer {
        long address() {
            return getNativePointer() + getByteOffset();
        }
    }
}
