package dir4j.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import dir4j.engine.cpu.Sgemm;

/**
 * The dir4j half of bench/sgemm_paired.py: reads lines "size seconds" on stdin, runs square
 * SGEMMs (as {@link SgemmBench} does) for that long and answers "wall cpu": GFLOP per second of
 * wall time and per second of this process's CPU time. The script alternates these bursts with
 * numpy's so both see the same machine load, which on a shared machine moves faster than a whole
 * JMH run; CPU time discounts the time other processes hold the cores.
 */
public final class SgemmPaired {
    private SgemmPaired() {}

    public static void main(String[] args) throws Exception {
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (Arena arena = Arena.ofConfined()) {
            int allocated = 0;
            MemorySegment a = null;
            MemorySegment b = null;
            MemorySegment c = null;
            for (String line; (line = in.readLine()) != null; ) {
                String[] f = line.trim().split("\\s+");
                int n = Integer.parseInt(f[0]);
                long budget = (long) (Double.parseDouble(f[1]) * 1e9);
                if (n > allocated) {
                    long bytes = (long) n * n * Float.BYTES;
                    a = arena.allocate(bytes, 64);
                    b = arena.allocate(bytes, 64);
                    c = arena.allocate(bytes, 64);
                    SplittableRandom rnd = new SplittableRandom(1);
                    for (long i = 0; i < (long) n * n; i++) {
                        a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
                        b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
                    }
                    allocated = n;
                }
                var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
                long cpu = os.getProcessCpuTime();
                long start = System.nanoTime();
                int reps = 0;
                do {
                    Sgemm.sgemm(n, n, n, 1f, a, 0, n, 1, b, 0, n, 1, 0f, c, 0, n);
                    reps++;
                } while (System.nanoTime() - start < budget);
                double flops = 2.0 * n * n * n * reps;
                System.out.printf("%.2f %.2f%n", flops / (System.nanoTime() - start), flops / (os.getProcessCpuTime() - cpu));
                System.out.flush();
            }
        }
    }
}
