package dir4j.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The packaged kernels: present for every source when nvcc built them, with every kernel the source declares. */
class PtxTest {
    private static final Path SOURCES = Path.of("src/main/cuda");
    /** extern "C" __global__ void name(, or the first argument of a generating macro: DIR4J_COPY(name, ... */
    private static final Pattern DECLARED = Pattern.compile(
            "extern \"C\" __global__ void (\\w+)\\(|^DIR4J_[A-Z_]+\\((\\w+),", Pattern.MULTILINE);

    /** The Maven profile that runs nvcc sets dir4j.kernels.nvcc; without it there is nothing to check. */
    private static void assumeBuilt() {
        Assumptions.assumeTrue(System.getProperty("dir4j.kernels.nvcc") != null,
                "the kernels were not built (nvcc not found at build time, profile 'nvcc' inactive): nothing to check");
    }

    private static List<String> sourceNames() throws IOException {
        try (Stream<Path> s = Files.list(SOURCES)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu"))
                    .map(n -> n.substring(0, n.length() - 3)).sorted().toList();
        }
    }

    @Test
    void everyKernelSourceIsPackagedAsPtxAndFatBinaryWithItsKernels() throws IOException {
        assumeBuilt();
        List<String> names = sourceNames();
        assertTrue(names.size() >= 6, "kernel sources: " + names);
        assertEquals(names, Ptx.modules().stream().sorted().toList(), "modules listed in kernels.properties");
        for (String name : names) {
            String ptx = new String(Ptx.load(name).orElseThrow(() -> new AssertionError(Ptx.notBuiltMessage(name))),
                    StandardCharsets.UTF_8);
            assertEquals(0, ptx.charAt(ptx.length() - 1), name + ".ptx must end in NUL for cuModuleLoadData");
            assertTrue(ptx.contains(".target sm_90"), name + ".ptx targets sm_90");
            TreeSet<String> declared = new TreeSet<>();
            Matcher m = DECLARED.matcher(Files.readString(SOURCES.resolve(name + ".cu")));
            while (m.find()) {
                String k = m.group(1) != null ? m.group(1) : m.group(2);
                if (!k.equals(k.toUpperCase(java.util.Locale.ROOT))) { // not a macro's parameter (NAME)
                    declared.add(k);
                }
            }
            assertTrue(!declared.isEmpty(), name + ".cu declares no kernel");
            List<String> missing = new ArrayList<>();
            for (String k : declared) {
                if (!ptx.contains(".entry " + k + "(")) {
                    missing.add(k);
                }
            }
            assertEquals(List.of(), missing, "kernels of " + name + ".cu missing from its PTX");
            byte[] image = Ptx.loadModuleImage(name).orElseThrow();
            // a fat binary starts with its magic 0xBA55ED50 (little-endian)
            assertEquals(0x50, image[0] & 0xff, name + ".fatbin magic");
            assertEquals(0xED, image[1] & 0xff, name + ".fatbin magic");
        }
        assertTrue(Ptx.buildDescription().orElseThrow().startsWith("nvcc "), Ptx.buildDescription().orElseThrow());
    }

    @Test
    void anUnknownKernelFileIsAbsentAndTheMessageSaysWhy() {
        assertTrue(Ptx.load("no_such_kernels").isEmpty());
        assertTrue(Ptx.loadModuleImage("no_such_kernels").isEmpty());
        String msg = Ptx.notBuiltMessage("gem");
        assertTrue(msg.contains("kernels were not built (nvcc not found at build time)"), msg);
        assertTrue(msg.contains("dir4j/kernels/gem.ptx"), msg);
    }
}
