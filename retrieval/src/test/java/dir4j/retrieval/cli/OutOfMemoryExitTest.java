package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class OutOfMemoryExitTest {
    /**
     * An uncaught OutOfMemoryError, bare or wrapped (as Lucene's merge threads throw it), ends the
     * process with status 1 after its message; anything else is printed as the JVM prints it.
     */
    @Test
    void anUncaughtOutOfMemoryErrorEndsTheProcessWithAMessageOthersArePrinted() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<Integer> exits = new ArrayList<>();
        OutOfMemoryExit handler = new OutOfMemoryExit(40L << 20, err, exits::add);
        Thread merge = new Thread(() -> {}, "Lucene Merge Thread #0");
        handler.uncaughtException(merge, new RuntimeException("merge failed",
                new OutOfMemoryError("Java heap space")));
        assertEquals(List.of(1), exits);
        String said = err.toString(StandardCharsets.UTF_8);
        assertTrue(said.contains("dir4j: out of Java heap (40 MiB at most: -Xmx); stopped.")
                && said.contains("DIR4J_JAVA_OPTS=-Xmx8g"), said);

        err.reset();
        handler.uncaughtException(merge, new OutOfMemoryError("Java heap space"));
        assertEquals(List.of(1, 1), exits);

        err.reset();
        handler.uncaughtException(merge, new IllegalStateException("not memory"));
        assertEquals(List.of(1, 1), exits, "no exit for other errors");
        String printed = err.toString(StandardCharsets.UTF_8);
        assertTrue(printed.startsWith("Exception in thread \"Lucene Merge Thread #0\" java.lang.IllegalStateException: "
                + "not memory"), printed);
    }
}
