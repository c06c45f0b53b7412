package dir4j.retrieval.search;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;

/** What an interrupt of the thread doing an index's file work looks like to its caller. */
final class Interrupts {
    private Interrupts() {}

    /**
     * The error for {@code e} when an interrupt of this thread caused it (Java closes the channel a
     * thread is reading or writing when it is interrupted, with no message, which may come wrapped),
     * saying so and naming {@code what}; {@code e} otherwise.
     */
    static IOException explained(IOException e, String what) {
        if (Thread.currentThread().isInterrupted()) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof ClosedChannelException) {
                    return new IOException("interrupted while " + what + " (an interrupt closes the files a thread "
                            + "is reading or writing)", e);
                }
            }
        }
        return e;
    }
}
