package dir4j.bench;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where one thread's time goes on the host: a daemon thread takes the target's stack
 * ({@link Thread#getStackTrace}) every {@code intervalMicros} while sampling is on, and
 * {@link #report} counts the samples by their top frame (the method running, or the Java method
 * inside a native call: a cuDNN call, a kernel launch, a wait for the device) and by their
 * innermost frame in {@code dir4j.} (the engine's method that was running or had called out).
 *
 * <p>Stacks are taken at safepoints, so time in compiled Java code is attributed to the nearest
 * safepoint poll (loop back-edges, returns); time in native code is attributed exactly to the
 * Java method that made the call. Good for "which calls take the host's time", not for
 * instruction-level work. The JDK's Flight Recorder does the same with less bias where the
 * runtime includes it (the GPU machine's jlink runtime does not). Each sample also stops the
 * target at a safepoint for a moment, so the sampled steps run slower than the timed ones: read
 * the report's shares, not its times.
 */
public final class HostSampler implements AutoCloseable {
    private final Thread target;
    private final long intervalNanos;
    private final Map<String, Integer> top = new HashMap<>();
    private final Map<String, Integer> dir4j = new HashMap<>();
    private final Thread sampler;
    private volatile boolean on;
    private volatile boolean closed;
    private int samples;

    /** Samples {@code target} every {@code intervalMicros} between {@link #start} and {@link #stop}. */
    public HostSampler(Thread target, long intervalMicros) {
        if (intervalMicros < 1) {
            throw new IllegalArgumentException("sampling interval must be ≥ 1 µs, got " + intervalMicros);
        }
        this.target = target;
        this.intervalNanos = intervalMicros * 1000;
        this.sampler = Thread.ofPlatform().daemon().name("dir4j-host-sampler").start(this::loop);
    }

    public void start() {
        on = true;
    }

    public void stop() {
        on = false;
    }

    /** Samples taken so far. */
    public synchronized int samples() {
        return samples;
    }

    private void loop() {
        long next = System.nanoTime();
        while (!closed) {
            next += intervalNanos;
            long wait = next - System.nanoTime();
            if (wait > 0) {
                java.util.concurrent.locks.LockSupport.parkNanos(wait);
            } else {
                next = System.nanoTime(); // fell behind: do not try to catch up
            }
            if (on) {
                record(target.getStackTrace());
            }
        }
    }

    /** Counts one stack (top frame first), as the sampling thread does; for tests. */
    synchronized void record(StackTraceElement[] stack) {
        if (stack.length == 0) {
            return;
        }
        samples++;
        top.merge(name(stack[0]), 1, Integer::sum);
        for (StackTraceElement e : stack) {
            if (e.getClassName().startsWith("dir4j.")) {
                dir4j.merge(name(e), 1, Integer::sum);
                break;
            }
        }
    }

    private static String name(StackTraceElement e) {
        String cls = e.getClassName();
        return cls.substring(cls.lastIndexOf('.') + 1) + "." + e.getMethodName();
    }

    /** The {@code rows} most frequent top frames and innermost dir4j frames, with their share of the samples. */
    public synchronized String report(int rows) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "host samples: %d (every %d µs)%n", samples, intervalNanos / 1000));
        table(sb, "by top frame (the method running, or the one in a native call)", top, rows);
        table(sb, "by innermost dir4j frame", dir4j, rows);
        return sb.toString();
    }

    private void table(StringBuilder sb, String title, Map<String, Integer> counts, int rows) {
        sb.append(title).append(":\n");
        List<Map.Entry<String, Integer>> sorted = counts.entrySet().stream()
                .sorted(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
                .limit(rows).toList();
        for (Map.Entry<String, Integer> e : sorted) {
            sb.append(String.format(Locale.ROOT, "  %6.1f%%  %6d  %s%n", 100.0 * e.getValue() / Math.max(1, samples),
                    e.getValue(), e.getKey()));
        }
    }

    @Override
    public void close() {
        closed = true;
        on = false;
        sampler.interrupt();
        try {
            sampler.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
