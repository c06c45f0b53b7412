package dir4j.engine.cuda;

/** A CUDA driver, cuBLAS or cuDNN call failed; the message names the call and the error. */
public final class CudaException extends RuntimeException {
    CudaException(String message) {
        super(message);
    }

    CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
