package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** train's progress lines: with --quiet only the summary of a run stopped by a signal is printed. */
class TrainProgressTest {
    private static String printed(boolean quiet, String... lines) {
        PrintStream err = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            TrainCommand.Progress p = new TrainCommand.Progress(quiet, 10);
            for (String l : lines) {
                p.accept(l);
            }
            p.end();
        } finally {
            System.setErr(err);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Test
    void quietKeepsOnlyTheStoppedSummary() {
        String stopped = "stopped on request after step 4; checkpoint written (runs/x/checkpoint.safetensors): a "
                + "resume continues from there";
        assertEquals(stopped + System.lineSeparator(),
                printed(true, "step 4/10  loss 0.5", "note: something", "step 4: validation mAP 40.00", stopped));
        String all = printed(false, "note: something", stopped);
        assertEquals("note: something" + System.lineSeparator() + stopped + System.lineSeparator(), all);
    }
}
