package dir4j.engine.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * cuBLAS through FFM (JCublas's natives need libcublas.so.12 with versioned symbols and do not
 * load on a CUDA 13 machine; see DESIGN.md): a handle on the device's stream, SGEMM/DGEMM and
 * their strided-batched forms in column-major terms, and the TF32 switch. Row-major callers use
 * the transposition trick (C = A·B row-major is Cᵀ = Bᵀ·Aᵀ column-major; see {@link GemmLayout}).
 * Scalars alpha/beta are host pointers (the default pointer mode).
 */
final class Cublas {
    static final int OP_N = 0;
    static final int OP_T = 1;
    private static final int DEFAULT_MATH = 0;
    private static final int TF32_TENSOR_OP_MATH = 3;

    private static NativeFunctions functions;
    private static NativeFunctions.Function create;
    private static NativeFunctions.Function setStream;
    private static NativeFunctions.Function setMathMode;
    private static NativeFunctions.Function sgemm;
    private static NativeFunctions.Function sgemmStridedBatched;
    private static NativeFunctions.Function dgemm;
    private static NativeFunctions.Function dgemmStridedBatched;
    private static NativeFunctions.Function getProperty;
    private static NativeFunctions.Function statusString;

    private final MemorySegment handle;

    /** Opens libcublas.so.13 (else .12) and binds its functions, once; an error names what was searched. */
    static synchronized NativeFunctions library() {
        if (functions == null) {
            bind(new NativeFunctions(NativeLibraries.open("cuBLAS", List.of("libcublas.so.13", "libcublas.so.12"),
                    soname -> List.of(soname.replace("libcublas.", "libcublasLt.")),
                    "install cuBLAS (CUDA 13 or 12) or run with --device cpu")));
        }
        return functions;
    }

    /** Binds every function from {@code f} (the opened library, or a test's fakes); null unbinds. */
    static synchronized void bind(NativeFunctions f) {
        functions = null;
        if (f == null) {
            return;
        }
        FunctionDescriptor gemmS = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
        FunctionDescriptor gemmSB = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_LONG, JAVA_INT);
        create = f.bind("cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        setStream = f.bind("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        setMathMode = f.bind("cublasSetMathMode", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        sgemm = f.bind("cublasSgemm_v2", gemmS);
        sgemmStridedBatched = f.bind("cublasSgemmStridedBatched", gemmSB);
        dgemm = f.bind("cublasDgemm_v2", gemmS);
        dgemmStridedBatched = f.bind("cublasDgemmStridedBatched", gemmSB);
        getProperty = f.bind("cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        statusString = f.bind("cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        functions = f;
    }

    /** "13.1.0 (/usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublas.so.13)". */
    static String version() {
        NativeFunctions f = library();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            int[] parts = new int[3];
            for (int i = 0; i < 3; i++) { // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
                check(getProperty.status(i, v), "cublasGetProperty");
                parts[i] = v.get(JAVA_INT, 0);
            }
            return parts[0] + "." + parts[1] + "." + parts[2] + " (" + f.location() + ")";
        }
    }

    /** A handle whose work queues on {@code stream} (a cudaStream_t). */
    Cublas(long stream) {
        library();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            check(create.status(h), "cublasCreate");
            handle = h.get(ADDRESS, 0);
        }
        check(setStream.status(handle, MemorySegment.ofAddress(stream)), "cublasSetStream");
    }

    /** TF32 tensor cores for float32 GEMMs (≈10 mantissa bits per product), or strict float32. */
    void setTf32(boolean on) {
        check(setMathMode.status(handle, on ? TF32_TENSOR_OP_MATH : DEFAULT_MATH), "cublasSetMathMode");
    }

    /** C = alpha·op(A)·op(B) + beta·C, column-major, float32 or float64 by {@code dbl}. */
    void gemm(boolean dbl, int transA, int transB, int m, int n, int k, double alpha, long a, int lda, long b, int ldb,
              double beta, long c, int ldc) {
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment al = scalar(ar, dbl, alpha);
            MemorySegment be = scalar(ar, dbl, beta);
            check((dbl ? dgemm : sgemm).status(handle, transA, transB, m, n, k, al, ptr(a), lda, ptr(b), ldb, be,
                    ptr(c), ldc), dbl ? "cublasDgemm" : "cublasSgemm");
        }
    }

    /** The strided-batched form: matrix i at a + i·strideA (elements), and so on; strides may be 0. */
    void gemmStridedBatched(boolean dbl, int transA, int transB, int m, int n, int k, double alpha, long a, int lda,
                            long strideA, long b, int ldb, long strideB, double beta, long c, int ldc, long strideC,
                            int batch) {
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment al = scalar(ar, dbl, alpha);
            MemorySegment be = scalar(ar, dbl, beta);
            check((dbl ? dgemmStridedBatched : sgemmStridedBatched).status(handle, transA, transB, m, n, k, al, ptr(a),
                    lda, strideA, ptr(b), ldb, strideB, be, ptr(c), ldc, strideC, batch),
                    dbl ? "cublasDgemmStridedBatched" : "cublasSgemmStridedBatched");
        }
    }

    private static MemorySegment scalar(Arena a, boolean dbl, double v) {
        return dbl ? a.allocateFrom(JAVA_DOUBLE, v) : a.allocateFrom(JAVA_FLOAT, (float) v);
    }

    private static MemorySegment ptr(long address) {
        return MemorySegment.ofAddress(address);
    }

    private static void check(int status, String call) {
        if (status != 0) {
            String text = "cublasStatus_t " + status;
            if (statusString != null && statusString.present()) {
                MemorySegment s = (MemorySegment) statusString.call(status);
                text = s.reinterpret(256).getString(0) + " (" + status + ")";
            }
            throw new CudaException(call + " failed: " + text);
        }
    }
}
