package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.ConvParams;
import dir4j.engine.DType;
import dir4j.engine.MemoryScope;
import dir4j.engine.Ops;
import dir4j.engine.Tensor;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The profiler on cuda:0: what ran while it was on, by name, with plausible device times; nothing while off. */
@Tag("gpu")
class CudaProfilerGpuTest {
    @BeforeAll
    static void gpu() {
        GpuParity.requireGpu();
    }

    @Test
    void recordsKernelsConvolutionsProductsAndCopiesWhileOn() {
        CudaBackend be = GpuParity.backend();
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor a = GpuParity.randn(1, 1024, 1024).to(GpuParity.GPU);
            Tensor x = GpuParity.randn(2, 8, 16, 32, 32).to(GpuParity.GPU);
            Tensor w = GpuParity.randn(3, 32, 16, 3, 3).to(GpuParity.GPU);
            Tensor y = Tensor.empty(DType.FLOAT32, GpuParity.GPU, 8, 32, 32, 32);
            ConvParams p = new ConvParams(1, 1, 1, 1, 1, 1);
            be.conv2d(x, w, p, y); // algorithm search outside the profile
            be.synchronize();
            be.profileEntries(); // anything recorded before starts afresh
            be.profile(true);
            try {
                for (int i = 0; i < 3; i++) {
                    Ops.add(a, a);
                    be.conv2d(x, w, p, y);
                }
                Ops.matmul(a, a);
                a.to(dir4j.engine.Device.CPU);
            } finally {
                be.profile(false);
            }
            Ops.add(a, a); // not recorded
            List<CudaProfiler.Entry> entries = be.profileEntries();
            Map<String, CudaProfiler.Entry> byName = entries.stream()
                    .collect(Collectors.toMap(CudaProfiler.Entry::name, e -> e));
            String all = CudaProfiler.format(entries, 20);
            CudaProfiler.Entry conv = byName.get(CudnnConvolutions.profileName("FORWARD",
                    new CudnnConvolutions.Key(Cudnn.DATA_FLOAT, 8, 16, 32, 32, 32, 3, 3, p, true, false)));
            assertTrue(conv != null && conv.calls() == 3 && conv.millis() > 0, all);
            assertTrue(byName.keySet().stream().anyMatch(n -> n.startsWith("kernel/")), all);
            long adds = entries.stream().filter(e -> e.name().startsWith("kernel/")).mapToLong(CudaProfiler.Entry::calls)
                    .sum();
            assertEquals(3, adds, "three adds recorded, the one after profile(false) not: " + all);
            assertTrue(byName.keySet().stream().anyMatch(n -> n.startsWith("gemm/")), all);
            assertTrue(byName.containsKey("copy/to host"), all);
            // a 1024² product (2.1 GFLOP) takes well under a second and more than a microsecond
            double gemm = entries.stream().filter(e -> e.name().startsWith("gemm/")).mapToDouble(CudaProfiler.Entry::millis)
                    .sum();
            assertTrue(gemm > 1e-3 && gemm < 1000, all);
            assertEquals(List.of(), be.profileEntries(), "collected totals start afresh");
        }
    }
}
