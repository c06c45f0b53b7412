package dir4j.engine.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * cuDNN 9 through FFM (org.jcuda:jcudnn stops at cuDNN 8; see DESIGN.md): the legacy
 * descriptor API for NCHW convolutions (algorithm search, workspace sizes, forward, backward
 * data, backward filter), NHWC (channels-last) convolutions with the fused bias + residual +
 * activation epilogue (cudnnConvolutionBiasActivationForward), and spatial batch norm. These calls are deprecated in cuDNN 9 but
 * documented as kept; {@link #library()} binds each by name and {@link NativeFunctions#missing()}
 * lists any that a given libcudnn.so.9 lacks.
 */
final class Cudnn {
    static final int DATA_FLOAT = 0;
    static final int DATA_DOUBLE = 1;
    static final int FORMAT_NCHW = 0;
    /** Channels-last: tensors [N, H, W, C], filters [K, kh, kw, C] (the dimensions are still given as n, c, h, w). */
    static final int FORMAT_NHWC = 1;
    /** cudnnActivationMode_t CUDNN_ACTIVATION_RELU. */
    static final int ACTIVATION_RELU = 1;
    /** cudnnActivationMode_t CUDNN_ACTIVATION_IDENTITY (the fused forward takes it with IMPLICIT_PRECOMP_GEMM only). */
    static final int ACTIVATION_IDENTITY = 5;
    /** cudnnNanPropagation_t CUDNN_PROPAGATE_NAN: a NaN passes the ReLU, as on the CPU backend. */
    static final int PROPAGATE_NAN = 1;
    static final int CROSS_CORRELATION = 1;
    /** Tensor cores allowed (TF32 for float32 on Ampere and later). */
    static final int MATH_DEFAULT = 0;
    /** FMA kernels only: strict float32. */
    static final int MATH_FMA = 3;
    static final int BATCHNORM_SPATIAL = 1;
    /** cuDNN refuses a smaller batch-norm epsilon (CUDNN_BN_MIN_EPSILON). */
    static final double BN_MIN_EPSILON = 1e-5;

    /** cudnnConvolution*AlgoPerf_t: algo, status, time (ms), memory (bytes), determinism, mathType, reserved[3]. */
    static final MemoryLayout PERF = MemoryLayout.structLayout(JAVA_INT.withName("algo"), JAVA_INT.withName("status"),
            JAVA_FLOAT.withName("time"), MemoryLayout.paddingLayout(4), JAVA_LONG.withName("memory"),
            JAVA_INT.withName("determinism"), JAVA_INT.withName("mathType"), MemoryLayout.sequenceLayout(3, JAVA_INT),
            MemoryLayout.paddingLayout(4));

    /** The three convolution directions and their cuDNN entry points. */
    enum Direction {
        FORWARD("Forward", 8), BACKWARD_DATA("BackwardData", 6), BACKWARD_FILTER("BackwardFilter", 7);

        final String suffix;
        final int algorithms;

        Direction(String suffix, int algorithms) {
            this.suffix = suffix;
            this.algorithms = algorithms;
        }
    }

    /** One algorithm's measurement or heuristic rank. */
    record AlgoPerf(int algo, int status, float timeMs, long memory, int mathType) {}

    private static NativeFunctions functions;
    private static NativeFunctions.Function create;
    private static NativeFunctions.Function setStream;
    private static NativeFunctions.Function getVersion;
    private static NativeFunctions.Function errorString;
    private static NativeFunctions.Function createTensor;
    private static NativeFunctions.Function setTensor4d;
    private static NativeFunctions.Function createFilter;
    private static NativeFunctions.Function setFilter4d;
    private static NativeFunctions.Function createConvolution;
    private static NativeFunctions.Function setConvolution2d;
    private static NativeFunctions.Function setMathType;
    private static NativeFunctions.Function outputDim;
    private static final NativeFunctions.Function[] FIND = new NativeFunctions.Function[3];
    private static final NativeFunctions.Function[] HEURISTIC = new NativeFunctions.Function[3];
    private static final NativeFunctions.Function[] WORKSPACE = new NativeFunctions.Function[3];
    private static final NativeFunctions.Function[] RUN = new NativeFunctions.Function[3];
    private static NativeFunctions.Function createActivation;
    private static NativeFunctions.Function setActivation;
    private static NativeFunctions.Function convBiasActivation;
    private static NativeFunctions.Function bnTraining;
    private static NativeFunctions.Function bnInference;
    private static NativeFunctions.Function bnBackward;

    private final MemorySegment handle;

    /** Opens libcudnn.so.9 and binds its functions, once; an error names what was searched. */
    static synchronized NativeFunctions library() {
        if (functions == null) {
            bind(new NativeFunctions(NativeLibraries.open("cuDNN 9", List.of("libcudnn.so.9"), soname -> List.of(),
                    "install cuDNN 9 or run with --device cpu")));
        }
        return functions;
    }

    /** Binds every function from {@code f} (the opened library, or a test's fakes); null unbinds. */
    static synchronized void bind(NativeFunctions f) {
        functions = null;
        if (f == null) {
            return;
        }
        FunctionDescriptor status1 = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        create = f.bind("cudnnCreate", status1);
        setStream = f.bind("cudnnSetStream", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getVersion = f.bind("cudnnGetVersion", FunctionDescriptor.of(JAVA_LONG));
        errorString = f.bind("cudnnGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        createTensor = f.bind("cudnnCreateTensorDescriptor", status1);
        setTensor4d = f.bind("cudnnSetTensor4dDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        createFilter = f.bind("cudnnCreateFilterDescriptor", status1);
        setFilter4d = f.bind("cudnnSetFilter4dDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        createConvolution = f.bind("cudnnCreateConvolutionDescriptor", status1);
        setConvolution2d = f.bind("cudnnSetConvolution2dDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        setMathType = f.bind("cudnnSetConvolutionMathType", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        outputDim = f.bind("cudnnGetConvolution2dForwardOutputDim", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        // (handle, in1Desc, in1, in2Desc, in2, convDesc, outDesc, out, requested, int* returned, perf*, ws, wsBytes)
        FunctionDescriptor find = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);
        // (handle, in1Desc, in2Desc, convDesc, outDesc, requested, int* returned, perf*)
        FunctionDescriptor heuristic = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, ADDRESS, ADDRESS);
        // (handle, in1Desc, in2Desc, convDesc, outDesc, algo, size_t*)
        FunctionDescriptor workspace = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, ADDRESS);
        // (handle, alpha*, in1Desc, in1, in2Desc, in2, convDesc, algo, ws, wsBytes, beta*, outDesc, out)
        FunctionDescriptor run = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS);
        for (Direction d : Direction.values()) {
            String s = d.suffix;
            FIND[d.ordinal()] = f.bind("cudnnFindConvolution" + s + "AlgorithmEx", find);
            HEURISTIC[d.ordinal()] = f.bind("cudnnGetConvolution" + s + "Algorithm_v7", heuristic);
            WORKSPACE[d.ordinal()] = f.bind("cudnnGetConvolution" + s + "WorkspaceSize", workspace);
            RUN[d.ordinal()] = f.bind("cudnnConvolution" + s, run);
        }
        createActivation = f.bind("cudnnCreateActivationDescriptor", status1);
        // (activationDesc, mode, reluNanOpt, double coef)
        setActivation = f.bind("cudnnSetActivationDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_INT, JAVA_DOUBLE));
        // (handle, alpha1*, xDesc, x, wDesc, w, convDesc, algo, ws, wsBytes, alpha2*, zDesc, z, biasDesc, bias,
        //  activationDesc, yDesc, y)
        convBiasActivation = f.bind("cudnnConvolutionBiasActivationForward", FunctionDescriptor.of(JAVA_INT, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        // (handle, mode, alpha*, beta*, xDesc, x, yDesc, y, bnDesc, scale, bias, factor, runMean, runVar, eps,
        //  saveMean, saveInvVariance)
        bnTraining = f.bind("cudnnBatchNormalizationForwardTraining", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE, ADDRESS,
                ADDRESS, JAVA_DOUBLE, ADDRESS, ADDRESS));
        // (handle, mode, alpha*, beta*, xDesc, x, yDesc, y, bnDesc, scale, bias, mean, var, eps)
        bnInference = f.bind("cudnnBatchNormalizationForwardInference", FunctionDescriptor.of(JAVA_INT, ADDRESS,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, JAVA_DOUBLE));
        // (handle, mode, alphaData*, betaData*, alphaParam*, betaParam*, xDesc, x, dyDesc, dy, dxDesc, dx,
        //  bnDesc, scale, dScale, dBias, eps, savedMean, savedInvVariance)
        bnBackward = f.bind("cudnnBatchNormalizationBackward", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE, ADDRESS, ADDRESS));
        functions = f;
    }

    /** "9.14.0 (/usr/lib/x86_64-linux-gnu/libcudnn.so.9)". */
    static String version() {
        NativeFunctions f = library();
        long v = (Long) getVersion.call();
        // cuDNN 9 encodes major·10000 + minor·100 + patch (cuDNN 8: major·1000 + minor·100 + patch)
        String s = v >= 90000 ? (v / 10000) + "." + (v % 10000) / 100 + "." + v % 100
                : (v / 1000) + "." + (v % 1000) / 100 + "." + v % 100;
        return s + " (" + f.location() + ")";
    }

    /** A handle whose work queues on {@code stream}. */
    Cudnn(long stream) {
        library();
        handle = newObject(create, "cudnnCreate");
        check(setStream.status(handle, MemorySegment.ofAddress(stream)), "cudnnSetStream");
    }

    MemorySegment handle() {
        return handle;
    }

    private static MemorySegment newObject(NativeFunctions.Function f, String call) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check(f.status(out), call);
            return out.get(ADDRESS, 0);
        }
    }

    /** A 4-d NCHW tensor descriptor (never destroyed: descriptors live in per-shape caches). */
    static MemorySegment tensor4d(int dataType, int n, int c, int h, int w) {
        return tensor4d(FORMAT_NCHW, dataType, n, c, h, w);
    }

    /** A 4-d tensor descriptor in {@code format} (NCHW or NHWC; dimensions given as n, c, h, w either way). */
    static MemorySegment tensor4d(int format, int dataType, int n, int c, int h, int w) {
        MemorySegment d = newObject(createTensor, "cudnnCreateTensorDescriptor");
        check(setTensor4d.status(d, format, dataType, n, c, h, w), "cudnnSetTensor4dDescriptor("
                + (format == FORMAT_NHWC ? "NHWC " : "") + n + ", " + c + ", " + h + ", " + w + ")");
        return d;
    }

    static MemorySegment filter4d(int dataType, int k, int c, int h, int w) {
        return filter4d(FORMAT_NCHW, dataType, k, c, h, w);
    }

    /** A filter descriptor in {@code format}: NCHW is [k, c, h, w] in memory, NHWC [k, h, w, c]. */
    static MemorySegment filter4d(int format, int dataType, int k, int c, int h, int w) {
        MemorySegment d = newObject(createFilter, "cudnnCreateFilterDescriptor");
        check(setFilter4d.status(d, dataType, format, k, c, h, w), "cudnnSetFilter4dDescriptor("
                + (format == FORMAT_NHWC ? "NHWC " : "") + k + ", " + c + ", " + h + ", " + w + ")");
        return d;
    }

    /** An activation descriptor (mode {@link #ACTIVATION_RELU} or {@link #ACTIVATION_IDENTITY}, NaN propagated). */
    static MemorySegment activation(int mode) {
        MemorySegment d = newObject(createActivation, "cudnnCreateActivationDescriptor");
        check(setActivation.status(d, mode, PROPAGATE_NAN, 0.0), "cudnnSetActivationDescriptor(mode " + mode + ")");
        return d;
    }

    static MemorySegment convolution2d(int dataType, int padH, int padW, int strideH, int strideW, int dilH, int dilW) {
        MemorySegment d = newObject(createConvolution, "cudnnCreateConvolutionDescriptor");
        check(setConvolution2d.status(d, padH, padW, strideH, strideW, dilH, dilW, CROSS_CORRELATION, dataType),
                "cudnnSetConvolution2dDescriptor");
        return d;
    }

    static void setMathType(MemorySegment conv, int mathType) {
        check(setMathType.status(conv, mathType), "cudnnSetConvolutionMathType(" + mathType + ")");
    }

    /** The output shape cuDNN computes for a convolution (checked against dir4j's). */
    static int[] outputShape(MemorySegment conv, MemorySegment x, MemorySegment w) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT, 4);
            check(outputDim.status(conv, x, w, d, d.asSlice(4), d.asSlice(8), d.asSlice(12)),
                    "cudnnGetConvolution2dForwardOutputDim");
            return d.toArray(JAVA_INT);
        }
    }

    /**
     * Algorithms for a direction, best first: measured by cudnnFind*AlgorithmEx (which runs each
     * on the given buffers, overwriting the output, with a workspace of at most wsBytes) or ranked
     * by cudnnGet*Algorithm_v7 heuristics when {@code measure} is false. Failed ones are dropped.
     *
     * @param descs in1Desc, in2Desc, convDesc, outDesc in the direction's argument order
     * @param data  in1, in2, out device addresses (ignored by the heuristic)
     */
    List<AlgoPerf> algorithms(Direction dir, boolean measure, MemorySegment[] descs, long[] data, long ws,
                              long wsBytes) {
        return algorithms(dir, measure, descs, data, ws, wsBytes, null);
    }

    /** {@link #algorithms}, adding those cuDNN reports as failed (status not 0) to {@code failed} when it is given. */
    List<AlgoPerf> algorithms(Direction dir, boolean measure, MemorySegment[] descs, long[] data, long ws,
                              long wsBytes, List<AlgoPerf> failed) {
        int n = dir.algorithms;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment returned = a.allocate(JAVA_INT);
            MemorySegment perf = a.allocate(PERF, n);
            if (measure) {
                check(FIND[dir.ordinal()].status(handle, descs[0], ptr(data[0]), descs[1], ptr(data[1]), descs[2],
                        descs[3], ptr(data[2]), n, returned, perf, ptr(ws), wsBytes),
                        "cudnnFindConvolution" + dir.suffix + "AlgorithmEx");
            } else {
                check(HEURISTIC[dir.ordinal()].status(handle, descs[0], descs[1], descs[2], descs[3], n, returned, perf),
                        "cudnnGetConvolution" + dir.suffix + "Algorithm_v7");
            }
            List<AlgoPerf> out = new ArrayList<>();
            for (int i = 0; i < returned.get(JAVA_INT, 0); i++) {
                MemorySegment p = perf.asSlice(i * PERF.byteSize(), PERF.byteSize());
                AlgoPerf r = new AlgoPerf(p.get(JAVA_INT, 0), p.get(JAVA_INT, 4), p.get(JAVA_FLOAT, 8),
                        p.get(JAVA_LONG, 16), p.get(JAVA_INT, 28));
                if (r.status() == 0) {
                    out.add(r);
                } else if (failed != null) {
                    failed.add(r);
                }
            }
            return out;
        }
    }

    /** Workspace bytes an algorithm needs (descs as for {@link #algorithms}). */
    long workspaceSize(Direction dir, MemorySegment[] descs, int algo) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(JAVA_LONG);
            check(WORKSPACE[dir.ordinal()].status(handle, descs[0], descs[1], descs[2], descs[3], algo, size),
                    "cudnnGetConvolution" + dir.suffix + "WorkspaceSize(algo " + algo + ")");
            return size.get(JAVA_LONG, 0);
        }
    }

    /** out = conv-direction(in1, in2) (beta 0), with the given algorithm and workspace. */
    void run(Direction dir, boolean dbl, MemorySegment[] descs, long[] data, int algo, long ws, long wsBytes) {
        try (Arena a = Arena.ofConfined()) {
            check(RUN[dir.ordinal()].status(handle, one(a, dbl), descs[0], ptr(data[0]), descs[1], ptr(data[1]),
                    descs[2], algo, ptr(ws), wsBytes, zero(a, dbl), descs[3], ptr(data[2])),
                    "cudnnConvolution" + dir.suffix + "(algo " + algo + ")");
        }
    }

    /**
     * y = act(conv(x, w) + alpha2·z + bias) in one call (cudnnConvolutionBiasActivationForward, alpha1 = 1);
     * without a residual z, alpha2 = 0 and z is y (cuDNN reads it, scaled by 0). Returns cuDNN's status
     * unchecked: an algorithm the fused path does not support is refused here, and the caller tries the next.
     *
     * @param descs x, w, conv, y descriptors (a plan's forward order)
     */
    int convBiasActivation(MemorySegment[] descs, long x, long w, int algo, long ws, long wsBytes, long z,
                           MemorySegment biasDesc, long bias, MemorySegment activation, long y) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment alpha2 = z != 0 ? one(a, false) : zero(a, false);
            return convBiasActivation.status(handle, one(a, false), descs[0], ptr(x), descs[1], ptr(w), descs[2], algo,
                    ptr(ws), wsBytes, alpha2, descs[3], ptr(z != 0 ? z : y), biasDesc, ptr(bias), activation, descs[3],
                    ptr(y));
        }
    }

    /**
     * Batch norm forward in training mode (cudnnBatchNormalizationForwardTraining in {@code mode}): y, the running
     * statistics updated, the batch mean and 1/√(var+eps) saved; returns the status.
     */
    int batchNormTraining(int mode, boolean dbl, MemorySegment xDesc, long x, long y, MemorySegment bnDesc, long gamma,
                          long beta, double momentum, long runningMean, long runningVar, double eps, long saveMean,
                          long saveInvStd) {
        try (Arena a = Arena.ofConfined()) {
            return bnTraining.status(handle, mode, one(a, dbl), zero(a, dbl), xDesc, ptr(x), xDesc, ptr(y),
                    bnDesc, ptr(gamma), ptr(beta), momentum, ptr(runningMean), ptr(runningVar), eps, ptr(saveMean),
                    ptr(saveInvStd));
        }
    }

    void batchNormInference(boolean dbl, MemorySegment xDesc, long x, long y, MemorySegment bnDesc, long gamma,
                            long beta, long mean, long var, double eps) {
        try (Arena a = Arena.ofConfined()) {
            check(bnInference.status(handle, BATCHNORM_SPATIAL, one(a, dbl), zero(a, dbl), xDesc, ptr(x), xDesc, ptr(y),
                    bnDesc, ptr(gamma), ptr(beta), ptr(mean), ptr(var), eps), "cudnnBatchNormalizationForwardInference");
        }
    }

    /**
     * Batch norm backward with the batch statistics' dependence on x (training mode;
     * cudnnBatchNormalizationBackward in {@code mode}); returns the status.
     */
    int batchNormBackward(int mode, boolean dbl, MemorySegment xDesc, long x, long dy, long dx, MemorySegment bnDesc,
                          long gamma, long dgamma, long dbeta, double eps, long saveMean, long saveInvStd) {
        try (Arena a = Arena.ofConfined()) {
            return bnBackward.status(handle, mode, one(a, dbl), zero(a, dbl), one(a, dbl), zero(a, dbl),
                    xDesc, ptr(x), xDesc, ptr(dy), xDesc, ptr(dx), bnDesc, ptr(gamma), ptr(dgamma), ptr(dbeta), eps,
                    ptr(saveMean), ptr(saveInvStd));
        }
    }

    private static MemorySegment one(Arena a, boolean dbl) {
        return dbl ? a.allocateFrom(JAVA_DOUBLE, 1.0) : a.allocateFrom(JAVA_FLOAT, 1f);
    }

    private static MemorySegment zero(Arena a, boolean dbl) {
        return dbl ? a.allocateFrom(JAVA_DOUBLE, 0.0) : a.allocateFrom(JAVA_FLOAT, 0f);
    }

    private static MemorySegment ptr(long address) {
        return MemorySegment.ofAddress(address);
    }

    static void check(int status, String call) {
        if (status != 0) {
            throw new CudaException(call + " failed: " + statusText(status));
        }
    }

    /** "CUDNN_STATUS_BAD_PARAM (2000)", or the bare number without the library's strings. */
    static String statusText(int status) {
        if (errorString != null && errorString.present()) {
            MemorySegment text = (MemorySegment) errorString.call(status);
            if (text.address() != 0) {
                return text.reinterpret(256).getString(0) + " (" + status + ")";
            }
        }
        return "cudnnStatus_t " + status;
    }
}
