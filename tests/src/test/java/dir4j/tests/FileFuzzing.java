package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;

/**
 * Hostile and damaged files for reader tests: a few hundred seeded mutations of a valid file
 * (truncations, bit flips, 32-bit fields overwritten with extreme values, runs of bytes deleted,
 * duplicated, zeroed or set to 0xFF), each of which the reader must either load or refuse with its
 * documented error: an IOException with a message, or an IllegalArgumentException with a message
 * for a well-formed file without the expected contents. An Error (out of memory, stack overflow),
 * any other RuntimeException, or more than ten seconds is a defect, reported with the mutation
 * that caused it and where the error left the reader. Zip files can be fuzzed with their entries'
 * CRCs recomputed, so the mutations reach the data instead of stopping at the zip's checksum.
 */
final class FileFuzzing {
    /** The repository root (surefire runs in the tests module's folder). */
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    /** Mutations per seed file. */
    public static final int MUTATIONS = 250;

    private FileFuzzing() {}

    /** A test fixture of another module, by its path under the repository root. */
    static Path fixture(String path) {
        Path p = ROOT.resolve(path);
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException("missing fixture " + p + " (run the tests from the repository)");
        }
        return p;
    }

    /** Reads a file the way the reader under test does (closing what it loads). */
    public interface Reader {
        void read(Path file) throws IOException;
    }

    /**
     * Feeds {@link #MUTATIONS} mutations of {@code seedFile} to {@code reader} (files under
     * {@code dir}, named after the seed so that extension checks see the real one), after checking
     * that the unmutated file loads. {@code zip}: every other mutation gets its CRCs recomputed.
     */
    public static void fuzz(Path dir, String name, Path seedFile, Reader reader, boolean zip) throws Exception {
        fuzz(dir, name, seedFile, reader, zip, MUTATIONS);
    }

    /** {@link #fuzz(Path, String, Path, Reader, boolean)} with {@code mutations} mutations. */
    public static void fuzz(Path dir, String name, Path seedFile, Reader reader, boolean zip, int mutations)
            throws Exception {
        byte[] seed = Files.readAllBytes(seedFile);
        reader.read(seedFile); // the unmutated file loads
        Random rng = new Random(name.hashCode());
        List<String> defects = new ArrayList<>();
        for (int i = 0; i < mutations; i++) {
            StringBuilder how = new StringBuilder();
            byte[] bad = mutate(seed, rng, how);
            if (zip && i % 2 == 1) {
                bad = ZipCrc.recompute(bad);
                how.append(", CRCs recomputed");
            }
            Path file = dir.resolve("m" + i + "-" + seedFile.getFileName());
            Files.write(file, bad);
            String what = name + " mutation " + i + " (" + how + ")";
            Throwable t = null;
            try {
                assertTimeoutPreemptively(Duration.ofSeconds(10), () -> reader.read(file), what + " took over 10 s");
            } catch (Throwable e) {
                t = e;
            }
            if (t instanceof IOException || t instanceof IllegalArgumentException) {
                if (t.getMessage() == null || t.getMessage().isBlank()) {
                    defects.add(what + ": " + t.getClass().getName() + " without a message, at " + origin(t));
                }
            } else if (t != null) {
                defects.add(what + ": " + t + ", at " + origin(t));
            }
            Files.delete(file);
        }
        if (!defects.isEmpty()) {
            fail(defects.size() + " of " + mutations + " mutations failed badly:\n  " + String.join("\n  ",
                    defects.subList(0, Math.min(20, defects.size()))));
        }
    }

    /** The frames of the reader that let the error out: the first dir4j frame and the one that threw. */
    static String origin(Throwable t) {
        StackTraceElement[] st = t.getStackTrace();
        String ours = java.util.Arrays.stream(st).filter(f -> f.getClassName().startsWith("dir4j.")).findFirst()
                .map(StackTraceElement::toString).orElse("?");
        return (st.length > 0 ? st[0] : "?") + " via " + ours;
    }

    /** One to three damages of one kind, described in {@code how}. */
    public static byte[] mutate(byte[] seed, Random rng, StringBuilder how) {
        byte[] b = seed.clone();
        int n = b.length;
        switch (rng.nextInt(6)) {
            case 0 -> {
                int len = rng.nextInt(n);
                how.append("truncated to ").append(len).append(" bytes");
                return java.util.Arrays.copyOf(b, len);
            }
            case 1 -> {
                int flips = 1 + rng.nextInt(8);
                how.append(flips).append(" bit flips at");
                for (int k = 0; k < flips; k++) {
                    int at = rng.nextInt(n);
                    b[at] ^= (byte) (1 << rng.nextInt(8));
                    how.append(' ').append(at);
                }
                return b;
            }
            case 2 -> {
                int[] extremes = {0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x7FFFFFF0, 0x10000000, 0, 1, -2};
                int k = 1 + rng.nextInt(3);
                how.append(k).append(" 32-bit fields overwritten:");
                for (int j = 0; j < k && n >= 4; j++) {
                    int at = rng.nextInt(n - 3);
                    int v = extremes[rng.nextInt(extremes.length)];
                    for (int q = 0; q < 4; q++) {
                        b[at + q] = (byte) (v >>> (8 * q));
                    }
                    how.append(" @").append(at).append('=').append(Integer.toHexString(v));
                }
                return b;
            }
            case 3 -> {
                int at = rng.nextInt(n);
                int len = 1 + rng.nextInt(Math.min(64, n - at));
                how.append("deleted ").append(len).append(" bytes at ").append(at);
                byte[] out = new byte[n - len];
                System.arraycopy(b, 0, out, 0, at);
                System.arraycopy(b, at + len, out, at, n - at - len);
                return out;
            }
            case 4 -> {
                int at = rng.nextInt(n);
                int len = 1 + rng.nextInt(Math.min(64, n - at));
                how.append("duplicated ").append(len).append(" bytes at ").append(at);
                byte[] out = new byte[n + len];
                System.arraycopy(b, 0, out, 0, at + len);
                System.arraycopy(b, at, out, at + len, n - at);
                return out;
            }
            default -> {
                int at = rng.nextInt(n);
                int len = 1 + rng.nextInt(Math.min(32, n - at));
                byte fill = rng.nextBoolean() ? 0 : (byte) 0xFF;
                how.append(len).append(" bytes set to ").append(fill & 0xFF).append(" at ").append(at);
                java.util.Arrays.fill(b, at, at + len, fill);
                return b;
            }
        }
    }

    /** Rewrites the CRC-32 of every stored (uncompressed) zip entry to match its damaged data. */
    public static final class ZipCrc {
        private ZipCrc() {}

        public static byte[] recompute(byte[] z) {
            byte[] b = z.clone();
            // Local headers: signature PK\3\4, method at +8, crc at +14, compressed size at +18,
            // name length at +26, extra length at +28, data after.
            for (int p = 0; p + 30 <= b.length; p++) {
                if (b[p] == 'P' && b[p + 1] == 'K' && b[p + 2] == 3 && b[p + 3] == 4) {
                    int method = u16(b, p + 8);
                    long size = u32(b, p + 18);
                    int data = p + 30 + u16(b, p + 26) + u16(b, p + 28);
                    if (method != 0 || data + size > b.length) {
                        continue;
                    }
                    CRC32 crc = new CRC32();
                    crc.update(b, data, (int) size);
                    int v = (int) crc.getValue();
                    put32(b, p + 14, v);
                    // The central directory's copy of the same entry.
                    for (int c = 0; c + 46 <= b.length; c++) {
                        if (b[c] == 'P' && b[c + 1] == 'K' && b[c + 2] == 1 && b[c + 3] == 2 && u32(b, c + 42) == p) {
                            put32(b, c + 16, v);
                        }
                    }
                }
            }
            return b;
        }

        private static int u16(byte[] b, int at) {
            return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8;
        }

        private static long u32(byte[] b, int at) {
            return (b[at] & 0xFFL) | (b[at + 1] & 0xFFL) << 8 | (b[at + 2] & 0xFFL) << 16 | (b[at + 3] & 0xFFL) << 24;
        }

        private static void put32(byte[] b, int at, int v) {
            for (int q = 0; q < 4; q++) {
                b[at + q] = (byte) (v >>> (8 * q));
            }
        }
    }
}
