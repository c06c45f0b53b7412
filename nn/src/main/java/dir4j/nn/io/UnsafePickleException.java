package dir4j.nn.io;

import java.io.IOException;

/**
 * A pickle referenced a global the {@link Unpickler} will not resolve: one that could run code
 * (always refused), or a class outside the allow-list while inert objects were not allowed.
 * Nothing was executed; the message names the global and the byte of the pickle that named it.
 */
public final class UnsafePickleException extends IOException {
    private final String reference;
    private final boolean couldRunCode;

    UnsafePickleException(String message, String reference, boolean couldRunCode) {
        super(message);
        this.reference = reference;
        this.couldRunCode = couldRunCode;
    }

    /** How a Java caller reads objects outside the allow-list: the end of the message of one that could not run code. */
    static final String API_REMEDY = "; load it with Unpickler.Options.inertObjects() to read such objects as inert "
            + "attribute maps (nothing is run)";

    /**
     * The message without the Java remedy ({@link #API_REMEDY}), for a front end that offers its own
     * (a command-line option): "…, which is not on the allow-list (pickle byte N); nothing was run".
     */
    public String messageWithoutApiRemedy() {
        String m = getMessage();
        return m.endsWith(API_REMEDY) ? m.substring(0, m.length() - API_REMEDY.length()) + "; nothing was run" : m;
    }

    /** The refused global, "module.name" ("os.system"). */
    public String reference() {
        return reference;
    }

    /**
     * True when the global is refused in every mode (it could run code); false when it is only
     * outside the allow-list and inert objects were not allowed.
     */
    public boolean couldRunCode() {
        return couldRunCode;
    }
}
