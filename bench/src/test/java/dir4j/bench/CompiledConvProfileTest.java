package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class CompiledConvProfileTest {
    /**
     * Without the ONNX export (bench/export_onnx.py writes resnet50 and resnet101 only) the profile
     * says so at once, before it builds the network and runs its forwards (minutes at the defaults).
     */
    @Test
    void aMissingOnnxExportFailsBeforeAnyForward() {
        assumeTrue(System.getenv("DIR4J_ONNX_DIR") == null, "DIR4J_ONNX_DIR is set");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> assertTimeoutPreemptively(
                Duration.ofSeconds(30), () -> CompiledConvProfile.main(new String[] {"resnet152", "224x224", "20"})));
        assertTrue(e.getMessage().contains("no resnet152.onnx") && e.getMessage().contains("export_onnx.py"),
                e.getMessage());
    }
}
