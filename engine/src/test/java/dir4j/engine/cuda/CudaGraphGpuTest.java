package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * CUDA graphs (Backend.record) on cuda:0: a copy through the host's staging buffers is refused
 * inside a capture (a replay would repeat it from whatever the buffer then holds) and leaves the
 * device usable; the SGD step over several parameters, whose fused kernel takes its table of
 * addresses through those buffers, records as one launch per parameter and replays the same
 * update as an eager step.
 */
@Tag("gpu")
class CudaGraphGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void aCopyFromTheHostIsRefusedInsideACaptureAndTheDeviceStaysUsable() {
        CudaBackend be = GpuParity.backend();
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor host = GpuParity.randn(1, 64);
            Tensor dev = Tensor.empty(host.dtype(), GpuParity.GPU, 64);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> be.record(() -> be.copy(host, dev)));
            assertTrue(e.getMessage().contains("cannot be recorded in a CUDA graph"), e.getMessage());
            be.copy(host, dev); // outside a capture: fine
            assertArrayEquals(host.toFloatArray(), dev.toFloatArray());
        }
    }

    @Test
    void sgdStepsRecordAndReplayTheEagerUpdate() {
        CudaBackend be = GpuParity.backend();
        Backend.SgdStep h = new Backend.SgdStep(0.1, 0.9, 0, 1e-2, true);
        try (MemoryScope scope = MemoryScope.open()) {
            List<Tensor> eagerP = List.of(GpuParity.randn(2, 1000).to(GpuParity.GPU), GpuParity.randn(3, 37, 5).to(GpuParity.GPU));
            List<Tensor> graphP = List.of(Ops.cloneDetached(eagerP.get(0)), Ops.cloneDetached(eagerP.get(1)));
            List<Tensor> grads = List.of(GpuParity.randn(4, 1000).to(GpuParity.GPU), GpuParity.randn(5, 37, 5).to(GpuParity.GPU));
            List<Tensor> eagerB = List.of(Ops.cloneDetached(grads.get(0)), Ops.cloneDetached(grads.get(1)));
            List<Tensor> graphB = List.of(Ops.cloneDetached(grads.get(0)), Ops.cloneDetached(grads.get(1)));
            boolean[] notFirst = {false, false};
            try (Backend.Recording r = be.record(() -> be.sgdSteps(graphP, grads, graphB, notFirst, h))) {
                for (int i = 0; i < 2; i++) {
                    be.sgdSteps(eagerP, grads, eagerB, notFirst, h);
                    r.replay();
                }
            }
            for (int i = 0; i < 2; i++) {
                assertArrayEquals(eagerP.get(i).toFloatArray(), graphP.get(i).toFloatArray(), "parameter " + i);
                assertArrayEquals(eagerB.get(i).toFloatArray(), graphB.get(i).toFloatArray(), "momentum " + i);
            }
        }
    }
}
