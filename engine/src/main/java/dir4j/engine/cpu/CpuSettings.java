package dir4j.engine.cpu;

/**
 * What the CPU backend needs before any class touching the Vector API loads: the
 * {@code jdk.incubator.vector} module, and valid {@code -Ddir4j.vector.bits} and
 * {@code -Ddir4j.threads}. Checked here, by a class that does not itself use the Vector API, so
 * that a JVM started without the module or with a bad setting gets one sentence naming the fix
 * instead of a NoClassDefFoundError or an ExceptionInInitializerError.
 */
public final class CpuSettings {
    private CpuSettings() {}

    /** Why the CPU backend cannot start here, or null when it can. */
    public static String problem() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "the Vector API module is missing: start java with --add-modules jdk.incubator.vector "
                    + "(the ./dir4j launcher and the Maven build pass it); dir4j does not fall back to scalar code";
        }
        String bits = System.getProperty("dir4j.vector.bits");
        if (bits != null && !(bits.equals("128") || bits.equals("256") || bits.equals("512"))) {
            return "-Ddir4j.vector.bits must be 128, 256 or 512, got '" + bits + "'";
        }
        String threads = System.getProperty("dir4j.threads");
        if (threads != null) {
            int n;
            try {
                n = Integer.parseInt(threads.strip());
            } catch (NumberFormatException e) {
                n = 0;
            }
            if (n < 1) {
                return "-Ddir4j.threads must be a whole number of at least 1, got '" + threads + "'";
            }
        }
        return null;
    }

    /** Throws an IllegalStateException with {@link #problem()}'s sentence when there is one. */
    public static void require() {
        String p = problem();
        if (p != null) {
            throw new IllegalStateException(p);
        }
    }
}
