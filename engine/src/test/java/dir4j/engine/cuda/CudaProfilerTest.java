package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The profiler's report (its recording needs a GPU: CudaProfilerGpuTest); off, a span is a no-op. */
class CudaProfilerTest {
    @Test
    void categoriesAreTheNameUpToItsSecondSlash() {
        assertEquals("conv/FORWARD", CudaProfiler.category("conv/FORWARD/NHWC/3x3 s1 64->64 at 56x56 (n 32)"));
        assertEquals("kernel/relu_f32", CudaProfiler.category("kernel/relu_f32"));
        assertEquals("copy", CudaProfiler.category("copy"));
    }

    @Test
    void reportSumsByCategoryAndListsTheLongestWithSharesAndPerCallTimes() {
        List<CudaProfiler.Entry> e = List.of(new CudaProfiler.Entry("conv/FORWARD/NHWC/a", 4, 6.0),
                new CudaProfiler.Entry("conv/FORWARD/NHWC/b", 2, 2.0), new CudaProfiler.Entry("kernel/relu_f32", 10, 1.5),
                new CudaProfiler.Entry("conv/BACKWARD_DATA/NHWC/a", 4, 0.5));
        String r = CudaProfiler.format(e, 2);
        String[] lines = r.split("\n");
        assertTrue(lines[0].startsWith("device time 10.000 ms in 4 operation names"), r);
        // categories, longest first: conv/FORWARD 8 ms (80 %, 6 calls), kernel/relu_f32 1.5, conv/BACKWARD_DATA 0.5
        assertTrue(lines[1].matches("\\s+8\\.000 ms\\s+80\\.0%\\s+6 calls\\s+1\\.3333 ms/call\\s+conv/FORWARD/\\*"), lines[1]);
        assertTrue(lines[2].contains("1.500 ms") && lines[2].endsWith("kernel/relu_f32/*"), lines[2]);
        assertTrue(lines[3].contains("0.500 ms") && lines[3].endsWith("conv/BACKWARD_DATA/*"), lines[3]);
        assertEquals("longest 2:", lines[4]);
        assertTrue(lines[5].matches("\\s+6\\.000 ms\\s+60\\.0%\\s+4 calls\\s+1\\.5000 ms/call\\s+conv/FORWARD/NHWC/a"), lines[5]);
        assertTrue(lines[6].endsWith("conv/FORWARD/NHWC/b"), lines[6]);
        assertEquals(7, lines.length, r);
    }

    @Test
    void offTheProfilerRecordsNothingAndNeedsNoDevice() {
        CudaProfiler p = new CudaProfiler(null);
        try (CudaProfiler.Span s = p.time("kernel/x")) {
            assertTrue(s != null);
        }
        assertTrue(!p.enabled());
    }
}
