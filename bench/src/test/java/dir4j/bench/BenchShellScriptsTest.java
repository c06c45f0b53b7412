package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The side-by-side shell scripts' choice of java and their report of a JMH run that gave nothing. */
class BenchShellScriptsTest {
    /** The repository root, whether the tests run in the bench module (Maven) or the root. */
    private static Path root() {
        Path here = Path.of("").toAbsolutePath();
        return Files.isDirectory(here.resolve(".ci")) ? here : here.getParent();
    }

    private static boolean hasBash() {
        return Files.isExecutable(Path.of("/bin/bash")) || Files.isExecutable(Path.of("/usr/bin/bash"));
    }

    /** A fake JDK whose java reports {@code version} and, run on a jar, prints {@code output}. */
    private static Path fakeJdk(Path dir, String version, String output) throws IOException {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        String script = "#!/bin/sh\ncase \"$*\" in *-XshowSettings*) echo '    java.specification.version = " + version
                + "' >&2; exit 0;; esac\nprintf '%s' '" + output + "'\n";
        for (String tool : new String[] {"java", "javac"}) {
            Path p = bin.resolve(tool);
            Files.writeString(p, script);
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return dir;
    }

    private record Run(int exit, String output) {}

    private static Run bash(Map<String, String> env, String... command) throws Exception {
        return bashIn(root(), env, command);
    }

    private static Run bashIn(Path dir, Map<String, String> env, String... command) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("bash"));
        cmd.addAll(List.of(command));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        p.getOutputStream().close();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + ": still running after 60 s");
        }
        return new Run(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    /**
     * A JMH run whose benchmark failed (JMH itself exits 0 with an empty table) ends the script with
     * the failure's own lines, not only JMH's closing boilerplate.
     */
    @Test
    void aJmhRunWithoutResultsEndsWithItsErrors(@TempDir Path tmp) throws Exception {
        assumeTrue(hasBash(), "no bash");
        // the script, what it sources and a stand-in jar in a tree of their own (the real jar is
        // not built by the tests, and the fake java never opens it)
        Path tree = tmp.resolve("tree");
        for (String f : List.of("bench/sgemm_vs_numpy.sh", "bench/common.sh", ".ci/jdk25.sh")) {
            Files.createDirectories(tree.resolve(f).getParent());
            Files.copy(root().resolve(f), tree.resolve(f));
        }
        Files.createDirectories(tree.resolve("bench/target"));
        Files.writeString(tree.resolve("bench/target/benchmarks.jar"), "not a jar");
        String jmh = "# Fork: 1 of 1\n<failure>\n\njava.lang.IllegalStateException: the setup failed here\n"
                + "\tat x.Y.setup(Y.java:1)\n\n\n# Run complete. Total time: 00:00:00\n\n"
                + "REMEMBER: The numbers below are just data.\nDo not assume the numbers tell you what you want.\n\n"
                + "Benchmark  Mode  Cnt  Score   Error  Units\n";
        Path jdk = fakeJdk(tmp.resolve("jdk"), "25", jmh);
        Path py = Files.createDirectories(tmp.resolve("py"));
        Files.writeString(py.resolve("python3"), "#!/bin/sh\necho numpy stand-in\n");
        Files.setPosixFilePermissions(py.resolve("python3"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Run r = bashIn(tree, Map.of("JAVA_HOME", jdk.toString(), "PATH", py + ":" + System.getenv("PATH")),
                "bench/sgemm_vs_numpy.sh", "256");
        assertEquals(1, r.exit(), r.output());
        assertTrue(r.output().contains("JMH gave no results")
                && r.output().contains("java.lang.IllegalStateException: the setup failed here"), r.output());
    }

    /**
     * A JAVA_HOME at an older JDK is passed over for a JDK 25 (as ./dir4j does), or the script stops
     * saying none was found; it never runs JMH on a JVM that cannot load dir4j's classes.
     */
    @Test
    void aJavaHomeAtAnOlderJdkIsNotUsed(@TempDir Path tmp) throws Exception {
        assumeTrue(hasBash(), "no bash");
        Path jdk17 = fakeJdk(tmp.resolve("jdk17"), "17", "the old java ran");
        Run r = bash(Map.of("JAVA_HOME", jdk17.toString()), "-c",
                "set -euo pipefail; root=\"$PWD\"; . bench/common.sh; echo \"java=$java\"");
        assertFalse(r.output().contains("java=" + jdk17), r.output());
        assertTrue(r.exit() == 0 ? r.output().contains("java=") : r.output().contains("no JDK 25 found"), r.output());
    }

    /** Every bench shell script that runs java takes it from bench/common.sh. */
    @Test
    void everyScriptRunningJavaUsesCommonSh() throws IOException {
        List<String> own = new ArrayList<>();
        try (var files = Files.list(root().resolve("bench"))) {
            for (Path f : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".sh"))::iterator) {
                String text = Files.readString(f);
                if (f.getFileName().toString().equals("common.sh")) {
                    continue;
                }
                if (text.contains("JAVA_HOME:-") || (text.contains("java") && text.contains("-jar")
                        && !text.contains("bench/common.sh"))) {
                    own.add(f.getFileName().toString());
                }
            }
        }
        assertEquals(List.of(), own);
    }
}
