package dir4j.engine.cuda;

import static dir4j.engine.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.nio.charset.StandardCharsets;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUstream_flags;

/**
 * One CUDA device as dir4j uses it: its primary context (shared with cuBLAS and cuDNN, which
 * work in whatever context is current) and one non-blocking stream on which every op of the
 * backend is queued in order, so that the host waits only when it reads.
 */
final class CudaContext {
    private static final ThreadLocal<CudaContext> BOUND = new ThreadLocal<>();

    final int ordinal;
    final CUdevice device;
    final CUcontext context;
    final RawHandles.Stream stream;
    final String name;
    final int computeMajor;
    final int computeMinor;
    final int multiprocessors;
    final long totalBytes;
    /**
     * True while {@link CudaBackend#record} captures this device's stream into a CUDA graph: no
     * per-launch synchronisation then (a synchronisation would end the capture).
     */
    volatile boolean capturing;

    private CudaContext(int ordinal, CUdevice device, CUcontext context, RawHandles.Stream stream, String name,
                        int major, int minor, int sms, long total) {
        this.ordinal = ordinal;
        this.device = device;
        this.context = context;
        this.stream = stream;
        this.name = name;
        this.computeMajor = major;
        this.computeMinor = minor;
        this.multiprocessors = sms;
        this.totalBytes = total;
    }

    /** Retains the primary context of device {@code ordinal} and creates its stream. */
    static CudaContext open(int ordinal) {
        CudaDriver.Availability a = CudaDriver.require();
        if (ordinal < 0 || ordinal >= a.devices()) {
            throw new IllegalArgumentException("cuda:" + ordinal + " does not exist: the driver reports " + a.devices()
                    + " CUDA device(s) (cuda:0" + (a.devices() > 1 ? " to cuda:" + (a.devices() - 1) : "") + ")");
        }
        CUdevice dev = new CUdevice();
        check(cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
        CUcontext ctx = new CUcontext();
        check(cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain(cuda:" + ordinal + ")");
        check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent(cuda:" + ordinal + ")");
        RawHandles.Stream stream = new RawHandles.Stream();
        check(cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate(cuda:" + ordinal + ")");
        byte[] nameBytes = new byte[256];
        check(cuDeviceGetName(nameBytes, nameBytes.length, dev), "cuDeviceGetName");
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) {
            len++;
        }
        long[] total = {0};
        check(cuDeviceTotalMem(total, dev), "cuDeviceTotalMem");
        CudaContext c = new CudaContext(ordinal, dev, ctx, stream, new String(nameBytes, 0, len, StandardCharsets.UTF_8),
                attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(dev, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), total[0]);
        BOUND.set(c);
        return c;
    }

    private static int attribute(CUdevice dev, int attribute) {
        int[] v = {0};
        check(cuDeviceGetAttribute(v, attribute, dev), "cuDeviceGetAttribute(" + attribute + ")");
        return v[0];
    }

    /** Makes this device's context current on the calling thread (a no-op when it already is). */
    void bind() {
        if (BOUND.get() != this) {
            check(cuCtxSetCurrent(context), "cuCtxSetCurrent(cuda:" + ordinal + ")");
            BOUND.set(this);
        }
    }

    /**
     * Waits for every op queued so far. A kernel that failed earlier surfaces here; run with
     * -Ddir4j.cuda.sync=true to synchronise after every launch and name the kernel.
     */
    void synchronize(String why) {
        bind();
        int rc = cuStreamSynchronize(stream);
        if (rc != 0) {
            throw new CudaException("cuStreamSynchronize (" + why + ") failed: " + CudaDriver.describe(rc)
                    + "; an earlier asynchronous op failed: rerun with -Ddir4j.cuda.sync=true to name it");
        }
    }

    /** Free and total device memory, in bytes. */
    long[] memoryInfo() {
        bind();
        long[] free = {0};
        long[] total = {0};
        check(cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[] {free[0], total[0]};
    }

    /** "cuda:0 NVIDIA H200 (compute 9.0, 132 SMs, 139.8 GiB)". */
    String describe() {
        return String.format("cuda:%d %s (compute %d.%d, %d SMs, %s)", ordinal, name, computeMajor, computeMinor,
                multiprocessors, CachingAllocator.bytes(totalBytes));
    }
}
