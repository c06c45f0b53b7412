package dir4j.engine.cpu;

/**
 * The one ordering of search results: higher score first, equal scores by lower database index,
 * NaN scores last. Packed into a long so that sorting or heap comparisons are single integer
 * comparisons: ascending keys are best-first.
 */
public final class ScoreOrder {
    private ScoreOrder() {}

    /** The sort key of (score, index): smaller is better. */
    public static long key(float score, int index) {
        int s = sortable(score);
        // ~s reverses the order (higher score → smaller key) without overflow
        return ((long) ~s << 32) | (index & 0xffffffffL);
    }

    public static int index(long key) {
        return (int) key;
    }

    public static float score(long key) {
        int s = ~(int) (key >> 32);
        return Float.intBitsToFloat(s ^ ((s >> 31) & 0x7fffffff));
    }

    /**
     * A score as an int whose signed order is this ordering's score order: IEEE-754 bits
     * reordered so that int order equals float order (−0 just below +0), NaN below everything.
     */
    public static int sortable(float score) {
        if (Float.isNaN(score)) {
            return Integer.MIN_VALUE;
        }
        int bits = Float.floatToRawIntBits(score);
        return bits ^ ((bits >> 31) & 0x7fffffff);
    }
}
