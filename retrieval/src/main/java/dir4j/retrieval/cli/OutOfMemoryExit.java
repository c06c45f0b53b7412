package dir4j.retrieval.cli;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.IntConsumer;

/**
 * The command line's last resort for an {@link OutOfMemoryError} that no code handled: one thrown
 * in a worker thread (Lucene's merges, an executor's task) leaves the threads waiting for that
 * work blocked for ever, and the JVM ignores SIGTERM once its shutdown cannot allocate either. As
 * the default uncaught-exception handler, this writes a message prepared in advance (nothing to
 * allocate) and ends the process with status 1 at once. Outputs are written whole or not at all,
 * so nothing is left half-written; a rerun with more heap redoes or resumes the work. Other
 * uncaught exceptions are printed as the JVM prints them.
 */
final class OutOfMemoryExit implements Thread.UncaughtExceptionHandler {
    private final byte[] message;
    private final OutputStream err;
    private final IntConsumer exit;

    OutOfMemoryExit(long maxHeapBytes, OutputStream err, IntConsumer exit) {
        this.message = ("\ndir4j: out of Java heap (" + maxHeapBytes / (1 << 20) + " MiB at most: -Xmx); stopped. "
                + "Outputs are written whole or not at all. Give the JVM more heap, e.g. DIR4J_JAVA_OPTS=-Xmx8g "
                + "./dir4j ..., or do less at once (smaller batches, fewer --threads).\n")
                .getBytes(StandardCharsets.UTF_8);
        this.err = err;
        this.exit = exit;
    }

    /** Installs it for this JVM (the command line's, not a library user's: Main calls it). */
    static void install() {
        Thread.setDefaultUncaughtExceptionHandler(new OutOfMemoryExit(Runtime.getRuntime().maxMemory(),
                new FileOutputStream(FileDescriptor.err), status -> Runtime.getRuntime().halt(status)));
    }

    @Override
    public void uncaughtException(Thread t, Throwable e) {
        if (outOfMemory(e)) {
            try {
                err.write(message);
                err.flush();
            } catch (Throwable ignored) {
                // nothing more can be said
            }
            exit.accept(1);
            return;
        }
        PrintStream p = new PrintStream(err, true, StandardCharsets.UTF_8);
        p.print("Exception in thread \"" + t.getName() + "\" ");
        e.printStackTrace(p);
    }

    /** Whether e is, or was caused by, an OutOfMemoryError (Lucene wraps a merge's in a MergeException). */
    static boolean outOfMemory(Throwable e) {
        int depth = 0;
        for (Throwable c = e; c != null && depth < 16; c = c.getCause(), depth++) {
            if (c instanceof OutOfMemoryError) {
                return true;
            }
        }
        return false;
    }
}
