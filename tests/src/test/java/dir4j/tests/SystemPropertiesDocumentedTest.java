package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every system property the code reads is a row of the README's table of JVM options, and every
 * row names a property the code reads: an option nobody can find is as good as none, and a row
 * for an option that no longer exists misleads.
 */
class SystemPropertiesDocumentedTest {
    /**
     * A read of a dir4j property (through System, Integer, Long, Boolean, or CudaBackend's
     * tf32Default), or a constant holding its name (…_PROPERTY = "dir4j.…").
     */
    private static final Pattern READ = Pattern.compile(
            "(?:getProperty|getInteger|getLong|getBoolean|tf32Default)\\(\\s*\"(dir4j\\.[A-Za-z0-9.]+)\"|_PROPERTY\\s*=\\s*\"(dir4j\\.[A-Za-z0-9.]+)\"");
    /** A row of the table: | `dir4j.…` | */
    private static final Pattern ROW = Pattern.compile("(?m)^\\| `(dir4j\\.[A-Za-z0-9.]+)` \\|");

    static Set<String> readIn(String code) {
        Set<String> found = new TreeSet<>();
        Matcher m = READ.matcher(code);
        while (m.find()) {
            found.add(m.group(1) != null ? m.group(1) : m.group(2));
        }
        return found;
    }

    @Test
    void theReadPatternFindsEachKindOfRead() {
        assertEquals(Set.of("dir4j.a", "dir4j.b2.c", "dir4j.d", "dir4j.e", "dir4j.f", "dir4j.g"), readIn("""
                x = System.getProperty("dir4j.a", "1"); y = Integer.getInteger("dir4j.b2.c", 3);
                z = Long.getLong(
                        "dir4j.d", 4L); w = Boolean.getBoolean("dir4j.e");
                public static final String CHANNELS_PROPERTY = "dir4j.f"; t = tf32Default("dir4j.g", true);
                Class.forName("dir4j.engine.cuda.CudaBackend"); m.put("class", "dir4j.retrieval.X");
                """));
    }

    @Test
    void everyPropertyReadIsInTheReadmeTableAndNoOther() throws IOException {
        Path root = Path.of("..").toAbsolutePath().normalize();
        Path readme = root.resolve("README.md");
        assertTrue(Files.isRegularFile(readme), "run from the tests module: " + readme);
        Set<String> read = new TreeSet<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java") && p.toString().contains("/src/main/java/"))
                    .toList()) {
                read.addAll(readIn(Files.readString(f)));
            }
        }
        assertTrue(read.size() >= 15, "found too few property reads to trust the scan: " + read);
        Set<String> documented = new TreeSet<>();
        Matcher m = ROW.matcher(Files.readString(readme));
        while (m.find()) {
            documented.add(m.group(1));
        }
        Set<String> missing = new TreeSet<>(read);
        missing.removeAll(documented);
        Set<String> stale = new TreeSet<>(documented);
        stale.removeAll(read);
        assertTrue(missing.isEmpty(), "read by the code but not in the README's table of JVM options: " + missing);
        assertTrue(stale.isEmpty(), "in the README's table but read nowhere: " + stale);
    }
}
