package dir4j.engine.testing;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.cpu.NativeMemory;
import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;

/** The leak check every test runs under, and the allocation sites it names. */
class NativeLeakCheckTest {

    /** An ExtensionContext with a store, a display name and an optional failure: what the check reads. */
    private static ExtensionContext context(Throwable failure) {
        Map<Object, Object> values = new HashMap<>();
        ExtensionContext.Store store = (ExtensionContext.Store) Proxy.newProxyInstance(
                NativeLeakCheckTest.class.getClassLoader(), new Class<?>[] {ExtensionContext.Store.class},
                (p, m, a) -> switch (m.getName()) {
                    case "put" -> values.put(a[0], a[1]);
                    case "remove" -> values.remove(a[0]);
                    default -> throw new UnsupportedOperationException(m.getName());
                });
        return (ExtensionContext) Proxy.newProxyInstance(NativeLeakCheckTest.class.getClassLoader(),
                new Class<?>[] {ExtensionContext.class}, (p, m, a) -> switch (m.getName()) {
                    case "getStore" -> store;
                    case "getDisplayName" -> "aTest()";
                    case "getExecutionException" -> Optional.ofNullable(failure);
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    @Test
    void aTensorLeftOpenFailsTheTestAndOneClosedDoesNot() {
        NativeLeakCheck check = new NativeLeakCheck();
        ExtensionContext c = context(null);
        check.beforeEach(c);
        Tensor leaked = Tensor.zeros(10);
        try {
            AssertionError e = assertThrows(AssertionError.class, () -> check.afterEach(c));
            assertTrue(e.getMessage().startsWith("aTest() left 64 bytes in 1 native block(s)"), e.getMessage());
        } finally {
            leaked.close();
        }
        check.beforeEach(c);
        Tensor.zeros(10).close();
        assertDoesNotThrow(() -> check.afterEach(c));
        // a test that failed keeps its own error, whatever it left
        ExtensionContext failed = context(new AssertionError("the test's own failure"));
        check.beforeEach(failed);
        try (Tensor t = Tensor.zeros(10)) {
            assertDoesNotThrow(() -> check.afterEach(failed));
        }
    }

    /** Run with tracking on by {@link #trackingNamesTheSitesOfLiveBlocksOnly}. */
    public static void main(String[] args) {
        long before = NativeMemory.totalAllocations();
        Tensor freed = allocateHere(100);
        Tensor kept = allocateHere(16);
        freed.close();
        Tensor kept2 = allocateHere(16);
        System.out.println("tracking=" + NativeMemory.tracking());
        System.out.print(NativeMemory.describeLiveSince(before, 3));
        kept.close();
        kept2.close();
        System.out.print("after closing: [" + NativeMemory.describeLiveSince(before, 2) + "]");
    }

    private static Tensor allocateHere(int n) {
        return Tensor.zeros(n);
    }

    @Test
    void trackingNamesTheSitesOfLiveBlocksOnly() throws IOException, InterruptedException {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-D" + NativeMemory.TRACK_PROPERTY + "=true", "-cp", System.getProperty("java.class.path"),
                NativeLeakCheckTest.class.getName());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        assertTrue(out.contains("tracking=true"), out);
        // the two live 16-float blocks share a site (64 bytes each); the closed 100-float one is gone
        assertTrue(out.contains("2 block(s), 128 bytes, allocated"), out);
        assertTrue(out.contains("NativeLeakCheckTest.allocateHere"), out);
        assertFalse(out.contains("448 bytes"), out);
        assertTrue(out.strip().endsWith("after closing: []"), out);
        // and off by default, saying how to turn it on
        assertFalse(NativeMemory.tracking());
        assertTrue(NativeMemory.describeLiveSince(0, 2).contains("-D" + NativeMemory.TRACK_PROPERTY + "=true"));
    }
}
