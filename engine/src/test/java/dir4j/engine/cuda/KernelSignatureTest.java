package dir4j.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.kernels.Ptx;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Every kernel the backend launches exists in its module's PTX with the parameters its launch
 * passes (count, and each one's width and kind), so that a launch cannot hand a kernel the
 * wrong bytes. Needs the kernels built (nvcc at build time), not a GPU.
 */
class KernelSignatureTest {
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+(?:\\.align\\s+\\d+\\s+)?(\\.\\w+)\\s+\\w+(\\[\\d+\\])?");

    @Test
    void everyLaunchedKernelExistsWithTheParametersItsLaunchPasses() {
        Assumptions.assumeTrue(!Ptx.modules().isEmpty(), Ptx.notBuiltMessage("elementwise"));
        List<String> problems = new ArrayList<>();
        for (Kernel k : Kernel.values()) {
            String ptx = new String(Ptx.load(k.module).orElseThrow(), StandardCharsets.UTF_8);
            int at = ptx.indexOf(".entry " + k.function + "(");
            if (at < 0) {
                problems.add(k.function + ": no such entry in " + k.module + ".ptx");
                continue;
            }
            String params = ptx.substring(at, ptx.indexOf(')', at));
            List<String> types = new ArrayList<>();
            Matcher m = PARAM.matcher(params);
            while (m.find()) {
                types.add(m.group(2) != null ? m.group(2) : m.group(1));
            }
            List<String> expected = new ArrayList<>();
            for (char c : k.signature.toCharArray()) {
                expected.add(Kernel.ptxType(c));
            }
            if (!types.equals(expected)) {
                problems.add(k.function + ": PTX parameters " + types + ", launch passes " + expected);
            }
        }
        assertEquals(List.of(), problems);
    }

    @Test
    void aLaunchRecordsTheLettersOfItsArguments() {
        KernelArgs a = new KernelArgs().ptr(16).i64(3).i32(1).f64(0.5).f32(2f).bits(7)
                .geometry(StridedGeometry.of("t", new int[] {2}, new long[] {1}));
        assertEquals("plidfug", a.signature());
        assertTrue(Kernel.ptxType('g').equals("[208]"));
    }
}
