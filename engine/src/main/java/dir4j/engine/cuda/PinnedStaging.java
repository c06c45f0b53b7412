package dir4j.engine.cuda;

import static dir4j.engine.cuda.CudaDriver.check;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.lang.foreign.MemorySegment;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * Host↔device copies through two page-locked staging buffers, so that the DMA engine reads and
 * writes pinned memory (full PCIe/NVLink speed, asynchronous) while the host copies the next
 * chunk in or the previous one out. An upload returns once its last chunk is queued (the
 * device-side work that follows is ordered after it on the stream); a download returns when
 * the data is in host memory. Each buffer's event guards its reuse.
 */
final class PinnedStaging {
    /** Bytes per staging buffer. */
    static final long CHUNK = 8L << 20;

    private final CudaContext ctx;
    private final RawHandles.HostMemory[] buffers = new RawHandles.HostMemory[2];
    private final MemorySegment[] segments = new MemorySegment[2];
    private final CUevent[] done = new CUevent[2];
    private final boolean[] pending = new boolean[2];
    /**
     * The buffer the next upload starts in. Uploads alternate, so that a small upload waits only
     * for the copy of the upload before the last one, not for the last one's (queued behind all
     * the device work since: a hidden wait for the device, as in the AP loss, which uploads its
     * class numbers and then its per-query coefficients after the GEMMs).
     */
    private int nextUpload;

    PinnedStaging(CudaContext ctx) {
        this.ctx = ctx;
    }

    private void ensureBuffers() {
        if (buffers[0] != null) {
            return;
        }
        for (int b = 0; b < 2; b++) {
            RawHandles.HostMemory h = new RawHandles.HostMemory();
            check(cuMemHostAlloc(h, CHUNK, 0), "cuMemHostAlloc(" + CachingAllocator.bytes(CHUNK) + ")");
            buffers[b] = h;
            segments[b] = MemorySegment.ofAddress(h.address()).reinterpret(CHUNK);
            done[b] = new CUevent();
            check(cuEventCreate(done[b], CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        }
    }

    private void await(int b) {
        if (pending[b]) {
            check(cuEventSynchronize(done[b]), "cuEventSynchronize (staging buffer)");
            pending[b] = false;
        }
    }

    /** Copies {@code bytes} from host memory at src[srcOffset] to the device address dst. */
    synchronized void upload(MemorySegment src, long srcOffset, long bytes, long dst) {
        requireNotCapturing("a copy to the device");
        ctx.bind();
        ensureBuffers();
        long chunk = 0;
        for (long off = 0; off < bytes; off += CHUNK, chunk++) {
            int b = (int) ((nextUpload + chunk) & 1);
            long len = Math.min(CHUNK, bytes - off);
            await(b);
            MemorySegment.copy(src, srcOffset + off, segments[b], 0, len);
            check(cuMemcpyHtoDAsync(CudaDeviceptr.at(dst + off), buffers[b], len, ctx.stream), "cuMemcpyHtoDAsync");
            check(cuEventRecord(done[b], ctx.stream), "cuEventRecord");
            pending[b] = true;
        }
        nextUpload = (int) ((nextUpload + chunk) & 1);
    }

    /**
     * A CUDA graph would record the copy from the staging buffer and repeat it at each replay from
     * whatever the buffer then holds (and a download cannot wait inside a capture): refused with
     * an error that says so, rather than recorded.
     */
    private void requireNotCapturing(String what) {
        if (ctx.capturing) {
            throw new IllegalStateException(what + " cannot be recorded in a CUDA graph (a replay would copy "
                    + "the staging buffer's contents of that time, or could not wait for the data); move it "
                    + "before or after Backend.record");
        }
    }

    /** Copies {@code bytes} from the device address src to host memory at dst[dstOffset]; waits for them. */
    synchronized void download(long src, MemorySegment dst, long dstOffset, long bytes) {
        requireNotCapturing("a copy to the host");
        ctx.bind();
        ensureBuffers();
        long chunks = (bytes + CHUNK - 1) / CHUNK;
        for (long c = 0; c <= chunks; c++) {
            if (c < chunks) { // queue chunk c
                int b = (int) (c & 1);
                long off = c * CHUNK;
                await(b);
                check(cuMemcpyDtoHAsync(buffers[b], CudaDeviceptr.at(src + off), Math.min(CHUNK, bytes - off),
                        ctx.stream), "cuMemcpyDtoHAsync");
                check(cuEventRecord(done[b], ctx.stream), "cuEventRecord");
                pending[b] = true;
            }
            if (c > 0) { // drain chunk c − 1 while chunk c is in flight
                int b = (int) ((c - 1) & 1);
                long off = (c - 1) * CHUNK;
                int rc = cuEventSynchronize(done[b]);
                if (rc != 0) {
                    throw new CudaException("copy to the host failed: " + CudaDriver.describe(rc)
                            + "; an earlier asynchronous op may have failed: rerun with -Ddir4j.cuda.sync=true to name it");
                }
                pending[b] = false;
                MemorySegment.copy(segments[b], 0, dst, dstOffset + off, Math.min(CHUNK, bytes - off));
            }
        }
    }
}
