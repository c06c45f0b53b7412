package dir4j.retrieval.extract;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar on stderr: {@code DB [########------] 1200/4993 3.1 img/s ETA 0:20:24}.
 * Speed counts only images described in this run (not parts reused from an earlier one). On a
 * terminal the line is redrawn in place at most 4 times a second; when stderr is a file or a
 * pipe a plain line is written every 30 seconds instead, so logs stay readable. Not thread-safe:
 * callers from several threads update it under one lock.
 */
public final class ProgressBar {
    private static final int WIDTH = 24;

    private final String label;
    private final long total;
    private final long startDone;
    private final PrintStream out;
    private final boolean enabled;
    private final boolean terminal;
    private final long startNanos;
    private final long intervalNanos;
    private long lastDraw;
    private long done;

    /**
     * A bar for {@code total} images of which {@code alreadyDone} were done by an earlier run,
     * drawn on {@code out} when {@code enabled}, in place when stderr is a terminal.
     */
    public ProgressBar(String label, long total, long alreadyDone, PrintStream out, boolean enabled) {
        this(label, total, alreadyDone, out, enabled, System.console() != null);
    }

    ProgressBar(String label, long total, long alreadyDone, PrintStream out, boolean enabled, boolean terminal) {
        this.label = label;
        this.total = total;
        this.startDone = alreadyDone;
        this.done = alreadyDone;
        this.out = out;
        this.enabled = enabled;
        this.terminal = terminal;
        this.startNanos = System.nanoTime();
        this.intervalNanos = terminal ? 250_000_000L : 30_000_000_000L;
        this.lastDraw = startNanos - intervalNanos;
    }

    /** Sets the number of images done and redraws when due. */
    public void update(long images) {
        done = images;
        long now = System.nanoTime();
        if (enabled && now - lastDraw >= intervalNanos) {
            lastDraw = now;
            String line = line(now);
            if (terminal) {
                out.print("\r" + line);
            } else {
                out.println(line);
            }
            out.flush();
        }
    }

    /** The final line: how many images, how long, how fast. */
    public void finish() {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        double seconds = (now - startNanos) / 1e9;
        long described = done - startDone;
        String line = String.format(Locale.ROOT, "%s: %d images in %s (%.2f img/s)%s", label, done, clock(seconds),
                seconds > 0 ? described / seconds : 0.0,
                startDone > 0 ? ", " + startDone + " reused from an earlier run" : "");
        out.print(terminal ? "\r" + line + " ".repeat(12) + "\n" : line + "\n");
        out.flush();
    }

    String line(long now) {
        double seconds = (now - startNanos) / 1e9;
        long described = done - startDone;
        double rate = seconds > 0 ? described / seconds : 0;
        int filled = total == 0 ? WIDTH : (int) (WIDTH * done / total);
        String eta = rate > 0 ? clock((total - done) / rate) : "?";
        return String.format(Locale.ROOT, "%s [%s%s] %d/%d %.1f img/s ETA %s", label, "#".repeat(filled),
                "-".repeat(WIDTH - filled), done, total, rate, eta);
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }
}
