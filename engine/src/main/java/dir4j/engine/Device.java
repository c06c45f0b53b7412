package dir4j.engine;

/**
 * Where a tensor's storage lives: the CPU, or a CUDA device by ordinal.
 *
 * @param kind  CPU or CUDA
 * @param index device ordinal (0 for the CPU)
 */
public record Device(Kind kind, int index) {
    /** The host. */
    public static final Device CPU = new Device(Kind.CPU, 0);

    /** Device kinds. */
    public enum Kind { CPU, CUDA }

    /** The CUDA device with this ordinal. */
    public static Device cuda(int index) {
        return new Device(Kind.CUDA, index);
    }

    /** Parses "cpu", "cuda" or "cuda:N". */
    public static Device parse(String s) {
        String t = s.trim().toLowerCase(java.util.Locale.ROOT);
        if (t.equals("cpu")) {
            return CPU;
        }
        if (t.equals("cuda")) {
            return cuda(0);
        }
        if (t.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(t.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("unknown device '" + s + "': use cpu, cuda or cuda:N");
    }

    @Override
    public String toString() {
        return kind == Kind.CPU ? "cpu" : "cuda:" + index;
    }
}
