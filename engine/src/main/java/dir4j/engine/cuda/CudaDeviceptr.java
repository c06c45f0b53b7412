package dir4j.engine.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * A CUDA device pointer whose raw address is visible, for the FFM calls into cuBLAS and cuDNN
 * (JCuda keeps {@code getNativePointer} protected). JCuda passes a pointer to the driver as its
 * native value plus its byte offset, so a pointer at any address is the null pointer offset by
 * that address.
 */
public final class CudaDeviceptr extends CUdeviceptr {
    private static final CUdeviceptr NULL = new CUdeviceptr();

    /** An empty pointer, for cuMemAlloc to fill. */
    public CudaDeviceptr() {
        super();
    }

    private CudaDeviceptr(long address) {
        super(NULL, address);
    }

    /** The device pointer at a raw address. */
    public static CudaDeviceptr at(long address) {
        return new CudaDeviceptr(address);
    }

    /** The raw device address. */
    public long address() {
        return getNativePointer() + getByteOffset();
    }
}
