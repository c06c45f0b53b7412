package dir4j.engine.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The cuBLAS and cuDNN bindings against Java fakes with the descriptors' exact types: every
 * wrapper passes arguments of the declared arity and types, in the order the C API takes
 * them, reads outputs (handles, versions, perf structs) at the right offsets, and turns a failed
 * status into an error naming the call.
 */
class NativeBindingsTest {
    @AfterEach
    void unbind() {
        Cublas.bind(null);
        Cudnn.bind(null);
    }

    private static Object writeAddress(Object out, long value) {
        ((MemorySegment) out).set(ADDRESS, 0, MemorySegment.ofAddress(value));
        return 0;
    }

    private static MemorySegment cString(String s) {
        return Arena.global().allocateFrom(s);
    }

    @Test
    void cublasCallsPassTheColumnMajorArgumentsTheApiTakes() {
        FakeNativeLibrary fake = new FakeNativeLibrary()
                .on("cublasCreate_v2", a -> writeAddress(a[0], 0xC0FFEEL))
                .on("cublasGetProperty", a -> {
                    ((MemorySegment) a[1]).set(JAVA_INT, 0, new int[] {13, 1, 0}[(Integer) a[0]]);
                    return 0;
                });
        Cublas.bind(fake.functions("libcublas.so.13"));
        Cublas c = new Cublas(0x5150);
        assertEquals(0x5150, FakeNativeLibrary.address(fake.last("cublasSetStream_v2").arg(1)));
        assertEquals(0xC0FFEE, FakeNativeLibrary.address(fake.last("cublasSetStream_v2").arg(0)));
        c.setTf32(true);
        assertEquals(3, fake.last("cublasSetMathMode").arg(1), "CUBLAS_TF32_TENSOR_OP_MATH");
        c.setTf32(false);
        assertEquals(0, fake.last("cublasSetMathMode").arg(1), "CUBLAS_DEFAULT_MATH");

        c.gemm(false, Cublas.OP_T, Cublas.OP_N, 17, 33, 65, 2.0, 0x1000, 65, 0x2000, 65, 0.5, 0x3000, 17);
        FakeNativeLibrary.Call gc = fake.last("cublasSgemm_v2");
        List<Object> g = gc.args();
        assertEquals(List.of(1, 0, 17, 33, 65), g.subList(1, 6));
        assertEquals(2.0f, gc.memory(6).get(JAVA_FLOAT.withByteAlignment(1), 0), "alpha as a host float");
        assertEquals(0x1000, FakeNativeLibrary.address(g.get(7)));
        assertEquals(65, g.get(8));
        assertEquals(0x2000, FakeNativeLibrary.address(g.get(9)));
        assertEquals(0.5f, gc.memory(11).get(JAVA_FLOAT.withByteAlignment(1), 0), "beta");
        assertEquals(0x3000, FakeNativeLibrary.address(g.get(12)));
        assertEquals(17, g.get(13));

        c.gemmStridedBatched(true, Cublas.OP_N, Cublas.OP_T, 4, 5, 6, 1, 0xA0, 4, 24, 0xB0, 5, 0, 0, 0xC0, 4, 20, 3);
        FakeNativeLibrary.Call bc = fake.last("cublasDgemmStridedBatched");
        List<Object> b = bc.args();
        assertEquals(1.0, bc.memory(6).get(JAVA_DOUBLE.withByteAlignment(1), 0), "alpha as a host double");
        assertEquals(24L, b.get(9));
        assertEquals(0L, b.get(12), "stride 0: a broadcast operand");
        assertEquals(20L, b.get(16));
        assertEquals(3, b.get(17));

        assertEquals("13.1.0 (fake libcublas.so.13)", Cublas.version());

        fake.on("cublasSetMathMode", a -> 7).on("cublasGetStatusString", a -> cString("CUBLAS_STATUS_INVALID_VALUE"));
        CudaException e = assertThrows(CudaException.class, () -> c.setTf32(true));
        assertEquals("cublasSetMathMode failed: CUBLAS_STATUS_INVALID_VALUE (7)", e.getMessage());
    }

    /** A fake cuDNN: handles and descriptors at increasing addresses, output dims, and one measured search. */
    private static FakeNativeLibrary fakeCudnn() {
        AtomicLong next = new AtomicLong(0x10000);
        FakeNativeLibrary fake = new FakeNativeLibrary();
        for (String f : new String[] {"cudnnCreate", "cudnnCreateTensorDescriptor", "cudnnCreateFilterDescriptor",
            "cudnnCreateConvolutionDescriptor"}) {
            fake.on(f, a -> writeAddress(a[0], next.addAndGet(0x100)));
        }
        fake.on("cudnnGetConvolution2dForwardOutputDim", a -> {
            int[] dims = {2, 16, 17, 19};
            for (int i = 0; i < 4; i++) {
                ((MemorySegment) a[3 + i]).set(JAVA_INT, 0, dims[i]);
            }
            return 0;
        });
        fake.on("cudnnGetVersion", a -> 91400L);
        for (String dir : new String[] {"Forward", "BackwardData", "BackwardFilter"}) {
            fake.on("cudnnFindConvolution" + dir + "AlgorithmEx", a -> {
                MemorySegment perf = ((MemorySegment) a[10]);
                long size = Cudnn.PERF.byteSize();
                // a failed algorithm first, then two that ran: the fastest needs 64 MiB, the next 1 MiB
                perf.set(JAVA_INT, 0, 4);
                perf.set(JAVA_INT, 4, 9);
                perf.set(JAVA_INT, size, 1);
                perf.set(JAVA_FLOAT, size + 8, 0.25f);
                perf.set(JAVA_LONG, size + 16, 64L << 20);
                perf.set(JAVA_INT, size + 28, 1);
                perf.set(JAVA_INT, 2 * size, 6);
                perf.set(JAVA_FLOAT, 2 * size + 8, 0.5f);
                perf.set(JAVA_LONG, 2 * size + 16, 1L << 20);
                perf.set(JAVA_INT, 2 * size + 28, 3);
                ((MemorySegment) a[9]).set(JAVA_INT, 0, 3);
                return 0;
            });
        }
        return fake;
    }

    @Test
    void cudnnDescriptorsSearchesAndCallsPassWhatTheApiTakes() {
        FakeNativeLibrary fake = fakeCudnn();
        Cudnn.bind(fake.functions("libcudnn.so.9"));
        assertEquals(48, Cudnn.PERF.byteSize(), "cudnnConvolutionFwdAlgoPerf_t is 48 bytes");
        Cudnn d = new Cudnn(0x77);
        assertEquals(0x77, FakeNativeLibrary.address(fake.last("cudnnSetStream").arg(1)));
        MemorySegment x = Cudnn.tensor4d(Cudnn.DATA_FLOAT, 2, 8, 17, 19);
        assertEquals(List.of(0, 0, 2, 8, 17, 19), fake.last("cudnnSetTensor4dDescriptor").args().subList(1, 7),
                "format NCHW, then the data type, then n, c, h, w");
        MemorySegment w = Cudnn.filter4d(Cudnn.DATA_FLOAT, 16, 8, 3, 3);
        assertEquals(List.of(0, 0, 16, 8, 3, 3), fake.last("cudnnSetFilter4dDescriptor").args().subList(1, 7),
                "the data type, then format NCHW, then k, c, h, w");
        MemorySegment conv = Cudnn.convolution2d(Cudnn.DATA_FLOAT, 1, 2, 3, 4, 5, 6);
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 1, 0), fake.last("cudnnSetConvolution2dDescriptor").args().subList(1, 9),
                "pads, strides, dilations, cross-correlation, float compute");
        assertArrayEquals(new int[] {2, 16, 17, 19}, Cudnn.outputShape(conv, x, w));

        MemorySegment[] descs = {x, w, conv, x};
        List<Cudnn.AlgoPerf> ranked = d.algorithms(Cudnn.Direction.FORWARD, true, descs, new long[] {0x1, 0x2, 0x3},
                0x900, 1 << 20);
        assertEquals(List.of(new Cudnn.AlgoPerf(1, 0, 0.25f, 64L << 20, 1), new Cudnn.AlgoPerf(6, 0, 0.5f, 1L << 20, 3)),
                ranked, "failed algorithms dropped, the rest parsed from the perf structs");
        FakeNativeLibrary.Call find = fake.last("cudnnFindConvolutionForwardAlgorithmEx");
        assertEquals(8, find.arg(8), "requested: every forward algorithm");
        assertEquals(0x900, FakeNativeLibrary.address(find.arg(11)));
        assertEquals(1L << 20, find.arg(12));
        assertEquals(List.of(), d.algorithms(Cudnn.Direction.BACKWARD_DATA, false, descs, new long[3], 0, 0),
                "the heuristic ranks nothing in the fake");
        fake.on("cudnnGetConvolutionBackwardFilterWorkspaceSize", a -> {
            ((MemorySegment) a[6]).set(JAVA_LONG, 0, 12345L);
            return 0;
        });
        assertEquals(12345L, d.workspaceSize(Cudnn.Direction.BACKWARD_FILTER, descs, 2));

        d.run(Cudnn.Direction.BACKWARD_DATA, false, descs, new long[] {0xA, 0xB, 0xC}, 6, 0xD, 4096);
        FakeNativeLibrary.Call rc = fake.last("cudnnConvolutionBackwardData");
        List<Object> run = rc.args();
        assertEquals(1f, rc.memory(1).get(JAVA_FLOAT.withByteAlignment(1), 0), "alpha");
        assertEquals(0xA, FakeNativeLibrary.address(run.get(3)));
        assertEquals(0xB, FakeNativeLibrary.address(run.get(5)));
        assertEquals(6, run.get(7));
        assertEquals(4096L, run.get(9));
        assertEquals(0f, rc.memory(10).get(JAVA_FLOAT.withByteAlignment(1), 0), "beta");
        assertEquals(0xC, FakeNativeLibrary.address(run.get(12)));

        assertEquals(0, d.batchNormTraining(Cudnn.BATCHNORM_SPATIAL, false, x, 1, 2, w, 3, 4, 0.1, 5, 6, 1e-5, 7, 8));
        assertEquals(0.1, fake.last("cudnnBatchNormalizationForwardTraining").arg(11));
        assertEquals(Cudnn.BATCHNORM_SPATIAL, fake.last("cudnnBatchNormalizationForwardTraining").arg(1));
        d.batchNormInference(false, x, 1, 2, w, 3, 4, 5, 6, 1e-5);
        assertEquals(0, d.batchNormBackward(Cudnn.BATCHNORM_SPATIAL, false, x, 1, 2, 3, w, 4, 5, 6, 1e-5, 7,
                8));
        assertEquals(Cudnn.BATCHNORM_SPATIAL, fake.last("cudnnBatchNormalizationBackward").arg(1));
        assertEquals(1e-5, fake.last("cudnnBatchNormalizationBackward").arg(16));
        assertEquals(8, FakeNativeLibrary.address(fake.last("cudnnBatchNormalizationBackward").arg(18)));

        assertEquals("9.14.0 (fake libcudnn.so.9)", Cudnn.version());
        fake.on("cudnnSetConvolutionMathType", a -> 3).on("cudnnGetErrorString", a -> cString("CUDNN_STATUS_BAD_PARAM"));
        CudaException e = assertThrows(CudaException.class, () -> Cudnn.setMathType(conv, 1));
        assertEquals("cudnnSetConvolutionMathType(1) failed: CUDNN_STATUS_BAD_PARAM (3)", e.getMessage());
    }

    @Test
    void aConvolutionPlanChoosesTheFastestAlgorithmThatFitsAndReturnsItsWorkspace() {
        FakeNativeLibrary fake = fakeCudnn();
        Cudnn.bind(fake.functions("libcudnn.so.9"));
        CachingAllocatorTest.FakeDevice device = new CachingAllocatorTest.FakeDevice(1L << 30);
        CachingAllocator allocator = new CachingAllocator("fake:0", device);
        // 40 MiB free: a 20 MiB search budget, so the 64 MiB algorithm is passed over for the 1 MiB one
        CudnnConvolutions convs = new CudnnConvolutions(new Cudnn(0), allocator, () -> new long[] {40L << 20, 1L << 30},
                new CudaProfiler(null));
        ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
        CudnnConvolutions.Key key = new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3, p, false, false);
        CudnnConvolutions.Plan plan = convs.plan(key, new int[] {2, 16, 17, 19});
        assertEquals(plan, convs.plan(key, new int[] {2, 16, 17, 19}), "one plan per shape");
        IllegalStateException bad = assertThrows(IllegalStateException.class,
                () -> convs.plan(new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3, p, true, false),
                        new int[] {2, 16, 9, 9}));
        assertTrue(bad.getMessage().contains("cuDNN computes output [2, 16, 17, 19]"), bad.getMessage());

        convs.run(plan, Cudnn.Direction.FORWARD, false, false, new long[] {0x1, 0x2, 0x3});
        assertEquals(3, fake.last("cudnnSetConvolutionMathType").arg(1), "the chosen algorithm's math type (FMA)");
        FakeNativeLibrary.Call find = fake.last("cudnnFindConvolutionForwardAlgorithmEx");
        assertEquals(20L << 20, find.arg(12), "the search's workspace: half the free memory");
        FakeNativeLibrary.Call run = fake.last("cudnnConvolutionForward");
        assertEquals(6, run.arg(7), "algorithm 6: the fastest one within the budget");
        assertEquals(1L << 20, run.arg(9));
        convs.run(plan, Cudnn.Direction.FORWARD, false, false, new long[] {0x1, 0x2, 0x3});
        assertEquals(1, fake.count("cudnnFindConvolutionForwardAlgorithmEx"), "the search runs once per shape");
        assertEquals(0, allocator.stats().inUseBytes(), "workspaces go back to the allocator");
        assertTrue(convs.describe().contains("FORWARD algo 6 math 3 (0.5 ms, 1.00 MiB)"), convs.describe());
    }
    @Test
    void channelsLastPlansRunTheFusedForwardWithTheFirstAlgorithmItAccepts() {
        FakeNativeLibrary fake = fakeCudnn();
        // the fused call refuses algorithm 1 (cuDNN 9's CUDNN_STATUS_NOT_SUPPORTED), accepts 6
        fake.on("cudnnConvolutionBiasActivationForward", a -> (Integer) a[7] == 1 ? 3000 : 0)
                .on("cudnnGetErrorString", a -> cString("CUDNN_STATUS_NOT_SUPPORTED"));
        Cudnn.bind(fake.functions("libcudnn.so.9"));
        CachingAllocatorTest.FakeDevice device = new CachingAllocatorTest.FakeDevice(1L << 30);
        CachingAllocator allocator = new CachingAllocator("fake:0", device);
        // 1 GiB free: both measured algorithms fit the 512 MiB budget
        CudnnConvolutions convs = new CudnnConvolutions(new Cudnn(0), allocator, () -> new long[] {1L << 30, 1L << 30},
                new CudaProfiler(null));
        ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
        CudnnConvolutions.Key key = new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3, p, true, true);
        CudnnConvolutions.Plan plan = convs.plan(key, new int[] {2, 16, 17, 19});
        List<FakeNativeLibrary.Call> tensors = fake.calls.stream()
                .filter(c -> c.name().equals("cudnnSetTensor4dDescriptor")).toList();
        assertEquals(List.of(1, 0, 2, 8, 17, 19), tensors.get(0).args().subList(1, 7), "x: format NHWC, float, n, c, h, w");
        assertEquals(List.of(1, 0, 2, 16, 17, 19), tensors.get(1).args().subList(1, 7), "y: format NHWC");
        assertEquals(List.of(0, 0, 1, 16, 1, 1), tensors.get(2).args().subList(1, 7), "bias [1, k, 1, 1]");
        assertEquals(List.of(0, 1, 16, 8, 3, 3), fake.last("cudnnSetFilter4dDescriptor").args().subList(1, 7),
                "the data type, then format NHWC (filters [k, kh, kw, c] in memory), then k, c, h, w");

        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0x40, 0x50), "the fused call ran");
        assertEquals(List.of(1, 1, 0.0), fake.last("cudnnSetActivationDescriptor").args().subList(1, 4),
                "ReLU, NaN propagated, no coefficient");
        assertEquals(2, fake.count("cudnnConvolutionBiasActivationForward"), "algorithm 1 refused, then 6 ran");
        FakeNativeLibrary.Call fc = fake.last("cudnnConvolutionBiasActivationForward");
        List<Object> f = fc.args();
        assertEquals(1f, fc.memory(1).get(JAVA_FLOAT.withByteAlignment(1), 0), "alpha1");
        assertEquals(plan.x, f.get(2));
        assertEquals(0x10, FakeNativeLibrary.address(f.get(3)));
        assertEquals(plan.w, f.get(4));
        assertEquals(0x20, FakeNativeLibrary.address(f.get(5)));
        assertEquals(plan.conv, f.get(6));
        assertEquals(6, f.get(7));
        assertEquals(1L << 20, f.get(9), "the workspace the search measured for algorithm 6");
        assertEquals(1f, fc.memory(10).get(JAVA_FLOAT.withByteAlignment(1), 0), "alpha2: z is added");
        assertEquals(plan.y, f.get(11), "z has y's descriptor");
        assertEquals(0x40, FakeNativeLibrary.address(f.get(12)));
        assertEquals(plan.bias, f.get(13));
        assertEquals(0x30, FakeNativeLibrary.address(f.get(14)));
        assertEquals(plan.y, f.get(16));
        assertEquals(0x50, FakeNativeLibrary.address(f.get(17)));
        assertEquals(3, fake.last("cudnnSetConvolutionMathType").arg(1), "algorithm 6's math type");

        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0, 0x50));
        assertEquals(1, fake.count("cudnnFindConvolutionForwardAlgorithmEx"), "the search runs once per shape");
        assertEquals(4, fake.count("cudnnConvolutionBiasActivationForward"),
                "without a residual the algorithm is chosen apart: 1 refused again, then 6");
        fc = fake.last("cudnnConvolutionBiasActivationForward");
        assertEquals(6, fc.arg(7), "the accepted algorithm is kept");
        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0, 0x50));
        assertEquals(5, fake.count("cudnnConvolutionBiasActivationForward"), "chosen once per variant");
        assertEquals(0f, fc.memory(10).get(JAVA_FLOAT.withByteAlignment(1), 0), "alpha2 0 without z");
        assertEquals(0x50, FakeNativeLibrary.address(fc.arg(12)), "z is y when absent (read, scaled by 0)");
        assertEquals(0, allocator.stats().inUseBytes(), "workspaces go back to the allocator");
        assertTrue(convs.describe().contains("FUSED_RELU algo 6 math 3"), convs.describe());
        assertTrue(convs.describe().contains("FUSED_ADD_RELU algo 6 math 3"), convs.describe());

        // a shape no algorithm of which the fused call takes: said in describe(), and run unfused
        fake.on("cudnnConvolutionBiasActivationForward", a -> 3000);
        CudnnConvolutions.Plan other = convs.plan(new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3,
                p, false, true), new int[] {2, 16, 17, 19});
        long forwards = fake.count("cudnnConvolutionForward");
        assertFalse(convs.runFused(other, 1, 2, 3, 0, 5), "refused: the caller computes y");
        assertEquals(forwards, fake.count("cudnnConvolutionForward"), "nothing ran");
        assertTrue(convs.describe().contains("FUSED_RELU refused: accepts none of the 2 forward algorithms")
                && convs.describe().contains("algo 6: CUDNN_STATUS_NOT_SUPPORTED (3000)"), convs.describe());
        long tries = fake.count("cudnnConvolutionBiasActivationForward");
        assertFalse(convs.runFused(other, 1, 2, 3, 0, 5));
        assertEquals(tries, fake.count("cudnnConvolutionBiasActivationForward"), "a refused shape is not tried again");
        assertThrows(IllegalArgumentException.class, () -> convs.runFused(convs.plan(new CudnnConvolutions.Key(
                Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3, p, false, false), new int[] {2, 16, 17, 19}), 1, 2, 3, 0, 5));
    }

    /**
     * One shape serving a convolution without a residual and one with (a BasicBlock's 3x3s past its
     * first block): an algorithm the fused call takes with alpha2 = 0 but refuses with a residual is
     * not reused for the residual call; each variant has its own choice, from the same search.
     */
    @Test
    void theFusedAlgorithmIsChosenApartWithAndWithoutAResidual() {
        FakeNativeLibrary fake = fakeCudnn();
        // algorithm 1 only without a residual (z is y), 6 both ways
        fake.on("cudnnConvolutionBiasActivationForward", a -> (Integer) a[7] == 1
                        && FakeNativeLibrary.address(a[12]) != FakeNativeLibrary.address(a[17]) ? 3000 : 0)
                .on("cudnnGetErrorString", a -> cString("CUDNN_STATUS_NOT_SUPPORTED"));
        Cudnn.bind(fake.functions("libcudnn.so.9"));
        CachingAllocator allocator = new CachingAllocator("fake:0", new CachingAllocatorTest.FakeDevice(1L << 30));
        CudnnConvolutions convs = new CudnnConvolutions(new Cudnn(0), allocator, () -> new long[] {1L << 30, 1L << 30},
                new CudaProfiler(null));
        CudnnConvolutions.Plan plan = convs.plan(new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3,
                new ConvParams(1, 1, 1, 1, 1, 1), true, true), new int[] {2, 16, 17, 19});
        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0, 0x50), "conv1: no residual");
        assertEquals(1, fake.last("cudnnConvolutionBiasActivationForward").arg(7), "the search's first algorithm");
        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0x40, 0x50), "conv2: with a residual");
        assertEquals(6, fake.last("cudnnConvolutionBiasActivationForward").arg(7),
                "algorithm 1 refused with the residual: 6, not a failed call");
        assertTrue(convs.runFused(plan, 0x10, 0x20, 0x30, 0, 0x50));
        assertEquals(1, fake.last("cudnnConvolutionBiasActivationForward").arg(7), "each variant keeps its own");
        assertEquals(1, fake.count("cudnnFindConvolutionForwardAlgorithmEx"), "one search for both");
        assertTrue(convs.describe().contains("FUSED_RELU algo 1") && convs.describe().contains("FUSED_ADD_RELU algo 6"),
                convs.describe());
        assertEquals(0, allocator.stats().inUseBytes(), "workspaces go back to the allocator");
    }

    /**
     * A convolution with no usable algorithm says which cuDNN refused (with its status) and which did
     * not fit the workspace budget, and what to try; a channels-last float32 plan without TF32 also
     * suggests TF32 or NCHW.
     */
    @Test
    void noUsableAlgorithmIsExplained() {
        FakeNativeLibrary fake = fakeCudnn();
        fake.on("cudnnGetErrorString", a -> cString("CUDNN_STATUS_NOT_SUPPORTED"));
        Cudnn.bind(fake.functions("libcudnn.so.9"));
        CachingAllocator allocator = new CachingAllocator("fake:0", new CachingAllocatorTest.FakeDevice(1L << 30));
        // 1 MiB free: a 512 KiB budget, below both algorithms that ran (64 MiB and 1 MiB)
        CudnnConvolutions convs = new CudnnConvolutions(new Cudnn(0), allocator, () -> new long[] {1L << 20, 1L << 30},
                new CudaProfiler(null));
        ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
        CudnnConvolutions.Plan plan = convs.plan(new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 2, 8, 17, 19, 16, 3, 3, p,
                false, true), new int[] {2, 16, 17, 19});
        CudaException e = assertThrows(CudaException.class,
                () -> convs.run(plan, Cudnn.Direction.FORWARD, false, false, new long[] {0x1, 0x2, 0x3}));
        assertTrue(e.getMessage().startsWith("no cuDNN FORWARD algorithm for Key[") && e.getMessage().contains(
                "(TF32 off): cuDNN refused algo 4 (CUDNN_STATUS_NOT_SUPPORTED (9)); algo 1 needs 64.00 MiB, algo 6 "
                        + "needs 1.00 MiB, more than the 512.00 KiB workspace budget"), e.getMessage());
        assertTrue(e.getMessage().contains("raise it or free memory")
                && e.getMessage().contains("try -Ddir4j.cuda.tf32.conv=true, or the NCHW layout"), e.getMessage());
        assertEquals(0, allocator.stats().inUseBytes(), "the search's workspace went back");
        assertThrows(CudaException.class, () -> convs.runFused(plan, 0x10, 0x20, 0x30, 0, 0x50),
                "the fused forward says the same");
        assertTrue(CudnnConvolutions.noAlgorithm(plan.key, Cudnn.Direction.BACKWARD_DATA, true, 1, List.of(), List.of())
                .endsWith("(TF32 on): cuDNN offered none"));
    }
}
