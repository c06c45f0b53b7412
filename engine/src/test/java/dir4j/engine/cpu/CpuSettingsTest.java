package dir4j.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** Bad CPU settings are one sentence naming the property, found before any Vector API class loads. */
class CpuSettingsTest {
    private static String with(String key, String value) {
        String old = System.getProperty(key);
        System.setProperty(key, value);
        try {
            return CpuSettings.problem();
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
    }

    @Test
    void badThreadsAndVectorWidthsAreNamed() {
        assertNull(CpuSettings.problem(), "the tests' JVM has the module and no bad setting");
        assertEquals("-Ddir4j.threads must be a whole number of at least 1, got '0'", with("dir4j.threads", "0"));
        assertEquals("-Ddir4j.threads must be a whole number of at least 1, got 'two'", with("dir4j.threads", "two"));
        assertNull(with("dir4j.threads", "3"));
        assertEquals("-Ddir4j.vector.bits must be 128, 256 or 512, got '100'", with("dir4j.vector.bits", "100"));
        assertNull(with("dir4j.vector.bits", "256"));
    }
}
