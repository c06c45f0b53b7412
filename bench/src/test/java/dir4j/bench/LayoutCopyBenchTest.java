package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dir4j.engine.cpu.NhwcConv;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class LayoutCopyBenchTest {
    /**
     * fromNchw times the copy alone, into the padded activation kept from setup (training copies into
     * a borrowed buffer), not a new zeroed array each call, and writes what NhwcConv.fromNchw makes.
     */
    @Test
    void fromNchwCopiesIntoTheActivationKeptFromSetup() {
        LayoutCopyBench b = new LayoutCopyBench();
        b.shape = "16-6";
        b.setup();
        try {
            NhwcConv.Activation first = b.fromNchw();
            NhwcConv.Activation second = b.fromNchw();
            assertSame(first, second, "a new activation per call: the allocation and zeroing are timed too");
            NhwcConv.Activation expected = NhwcConv.fromNchw(b.nchw, 0, LayoutCopyBench.BATCH, 16, 6, 6, 1);
            assertArrayEquals(expected.data(), second.data());
        } finally {
            b.tearDown();
        }
    }

    /** toNchw writes the NCHW tensor back from the channels-last copy made in setup. */
    @Test
    void toNchwRestoresTheNchwTensor() {
        LayoutCopyBench b = new LayoutCopyBench();
        b.shape = "16-6";
        b.setup();
        try {
            float[] before = b.nchw.toArray(ValueLayout.JAVA_FLOAT);
            b.nchw.fill((byte) 0);
            b.toNchw();
            assertArrayEquals(before, b.nchw.toArray(ValueLayout.JAVA_FLOAT));
        } finally {
            b.tearDown();
        }
    }
}
