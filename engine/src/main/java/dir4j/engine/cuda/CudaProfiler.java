package dir4j.engine.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;

/**
 * Device time per operation, for diagnosis: while on, each kernel launch, cuDNN call, cuBLAS
 * product and copy is bracketed by two CUDA events on the stream, and {@link #collect} sums the
 * elapsed times by name. Names are paths, e.g. {@code kernel/ap_hist_accumulate_private_f32} or
 * {@code conv/BACKWARD_FILTER/NHWC/3x3 s1 256->256 at 32x32}; an op inside another (a ReLU kernel
 * inside a convolution op) counts toward the outer one only. Each span costs two event records
 * (a few microseconds of host time, which a launch-bound op's span also contains); off, a span is
 * a no-op. Used from the thread that queues the work (the stream's order is the ops' order).
 */
public final class CudaProfiler {
    /** One operation name: how often it ran and its device milliseconds in all. */
    public record Entry(String name, long calls, double millis) {}

    /** A bracket around one operation; closing it records the end. */
    public interface Span extends AutoCloseable {
        @Override
        void close();
    }

    private static final Span NONE = () -> { };

    /** The span that records nothing. */
    static Span none() {
        return NONE;
    }

    private record Pending(String name, CUevent start, CUevent end) {}

    private final CudaContext ctx;
    private final ArrayDeque<CUevent> free = new ArrayDeque<>();
    private final List<Pending> pending = new ArrayList<>();
    private final Map<String, double[]> totals = new LinkedHashMap<>();
    private volatile boolean on;
    private int depth;

    CudaProfiler(CudaContext ctx) {
        this.ctx = ctx;
    }

    /** Starts or stops recording (what was recorded stays until {@link #collect}). */
    public void enable(boolean on) {
        this.on = on;
    }

    public boolean enabled() {
        return on;
    }

    /** Brackets one operation (a no-op when off, or inside another bracketed operation). */
    Span time(String name) {
        if (!on) {
            return NONE;
        }
        synchronized (this) {
            if (depth++ > 0) {
                return this::leave;
            }
            CUevent start = take();
            CudaDriver.check(cuEventRecord(start, ctx.stream), "cuEventRecord (profiler)");
            return () -> {
                synchronized (CudaProfiler.this) {
                    depth--;
                    CUevent end = take();
                    CudaDriver.check(cuEventRecord(end, ctx.stream), "cuEventRecord (profiler)");
                    pending.add(new Pending(name, start, end));
                }
            };
        }
    }

    private synchronized void leave() {
        depth--;
    }

    private CUevent take() {
        CUevent e = free.poll();
        if (e == null) {
            e = new CUevent();
            CudaDriver.check(cuEventCreate(e, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate (profiler)");
        }
        return e;
    }

    /**
     * Waits for the recorded operations, adds their times to the totals and returns all totals,
     * longest first; then starts the totals afresh.
     */
    public synchronized List<Entry> collect() {
        ctx.bind();
        float[] ms = new float[1];
        for (Pending p : pending) {
            CudaDriver.check(cuEventSynchronize(p.end()), "cuEventSynchronize (profiler)");
            CudaDriver.check(cuEventElapsedTime(ms, p.start(), p.end()), "cuEventElapsedTime (profiler)");
            double[] t = totals.computeIfAbsent(p.name(), k -> new double[2]);
            t[0]++;
            t[1] += ms[0];
            free.push(p.start());
            free.push(p.end());
        }
        pending.clear();
        List<Entry> out = new ArrayList<>();
        totals.forEach((k, v) -> out.add(new Entry(k, (long) v[0], v[1])));
        totals.clear();
        out.sort(Comparator.comparingDouble(Entry::millis).reversed());
        return out;
    }

    /** Frees the events (after {@link #collect}, or dropping what is pending). */
    synchronized void close() {
        for (Pending p : pending) {
            free.push(p.start());
            free.push(p.end());
        }
        pending.clear();
        for (CUevent e : free) {
            cuEventDestroy(e);
        }
        free.clear();
    }

    /**
     * A report: the total, then the time by category (the name up to its second '/', e.g.
     * {@code conv/FORWARD}), then the {@code top} longest names, each with calls, milliseconds,
     * share of the total and milliseconds per call.
     */
    public static String format(List<Entry> entries, int top) {
        double sum = 0;
        Map<String, double[]> byCategory = new LinkedHashMap<>();
        for (Entry e : entries) {
            sum += e.millis();
            double[] c = byCategory.computeIfAbsent(category(e.name()), k -> new double[2]);
            c[0] += e.calls();
            c[1] += e.millis();
        }
        final double total = sum;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "device time %.3f ms in %d operation names%n", total, entries.size()));
        List<Map.Entry<String, double[]>> cats = new ArrayList<>(byCategory.entrySet());
        cats.sort((a, b) -> Double.compare(b.getValue()[1], a.getValue()[1]));
        for (Map.Entry<String, double[]> c : cats) {
            sb.append(line(c.getKey() + "/*", (long) c.getValue()[0], c.getValue()[1], total));
        }
        sb.append(String.format(Locale.ROOT, "longest %d:%n", Math.min(top, entries.size())));
        entries.stream().sorted(Comparator.comparingDouble(Entry::millis).reversed()).limit(top)
                .forEach(e -> sb.append(line(e.name(), e.calls(), e.millis(), total)));
        return sb.toString();
    }

    static String category(String name) {
        int first = name.indexOf('/');
        if (first < 0) {
            return name;
        }
        int second = name.indexOf('/', first + 1);
        return second < 0 ? name : name.substring(0, second);
    }

    private static String line(String name, long calls, double ms, double total) {
        return String.format(Locale.ROOT, "  %9.3f ms %5.1f%% %7d calls %9.4f ms/call  %s%n", ms,
                total > 0 ? 100 * ms / total : 0, calls, calls > 0 ? ms / calls : 0, name);
    }
}
