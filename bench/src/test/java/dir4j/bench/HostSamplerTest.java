package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class HostSamplerTest {
    private static StackTraceElement frame(String cls, String method) {
        return new StackTraceElement(cls, method, null, -1);
    }

    /** Counts by top frame, and by the innermost dir4j frame (the engine method that called out). */
    @Test
    void samplesAreCountedByTopFrameAndInnermostDir4jFrame() {
        try (HostSampler s = new HostSampler(Thread.currentThread(), 1000)) {
            StackTraceElement launch = frame("jcuda.driver.JCudaDriver", "cuLaunchKernelNative");
            StackTraceElement cudnn = frame("jdk.internal.foreign.abi.DowncallStub", "invoke");
            for (int i = 0; i < 3; i++) {
                s.record(new StackTraceElement[] {launch, frame("dir4j.engine.cuda.CudaModules", "launch"),
                        frame("dir4j.engine.Ops", "add"), frame("Main", "main")});
            }
            s.record(new StackTraceElement[] {cudnn, frame("dir4j.engine.cuda.Cudnn", "run"),
                    frame("dir4j.engine.cuda.CudnnConvolutions", "run")});
            s.record(new StackTraceElement[] {frame("java.util.HashMap", "get"), frame("Main", "main")});
            s.record(new StackTraceElement[0]); // a thread that had ended: not a sample
            assertEquals(5, s.samples());
            String r = s.report(10);
            assertTrue(r.contains("60.0%       3  JCudaDriver.cuLaunchKernelNative"), r);
            assertTrue(r.contains("20.0%       1  DowncallStub.invoke"), r);
            assertTrue(r.contains("60.0%       3  CudaModules.launch"), r);
            assertTrue(r.contains("20.0%       1  Cudnn.run"), r);
            assertTrue(r.contains("20.0%       1  HashMap.get"), r);
            String inner = r.substring(r.indexOf("by innermost dir4j frame"));
            assertTrue(!inner.contains("Ops.add") && !inner.contains("HashMap"), "only the innermost dir4j frame: " + r);
        }
    }

    /** A thread asleep in a known method: most samples name it. */
    @Test
    void aLiveThreadIsSampledWhereItWaits() throws Exception {
        Thread sleeper = Thread.ofPlatform().start(HostSamplerTest::sleepInAKnownMethod);
        try (HostSampler s = new HostSampler(sleeper, 500)) {
            s.start();
            Thread.sleep(400);
            s.stop();
            int n = s.samples();
            assertTrue(n >= 20, "samples in 400 ms at 500 µs: " + n);
            String r = s.report(3);
            String inner = r.substring(r.indexOf("by innermost dir4j frame"));
            String line = inner.lines().skip(1).findFirst().orElseThrow();
            assertTrue(line.endsWith("HostSamplerTest.sleepInAKnownMethod"), r);
            double share = Double.parseDouble(line.trim().split("%")[0]);
            assertTrue(share > 50, r);
        } finally {
            sleeper.interrupt();
            sleeper.join();
        }
    }

    private static void sleepInAKnownMethod() {
        try {
            Thread.sleep(5000);
        } catch (InterruptedException e) {
            // done
        }
    }
}
