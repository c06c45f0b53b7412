package dir4j.engine.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One writer per output: in this process, across processes, and after the holder dies. */
class OutputLockTest {
    @TempDir
    Path dir;

    @Test
    void aSecondWriterIsRefusedUntilTheFirstCloses() throws IOException {
        Path f = dir.resolve("run/.lock");
        try (OutputLock first = OutputLock.acquire(f, "run (a training run)")) {
            assertEquals(f, first.file());
            IOException e = assertThrows(IOException.class, () -> OutputLock.acquire(f, "run (a training run)"));
            assertEquals("run (a training run) is being written by another task of this process; wait for it to "
                    + "finish or stop it (lock file " + f + ")", e.getMessage());
        }
        assertEquals(ProcessHandle.current().pid() + "\n", Files.readString(f, StandardCharsets.UTF_8),
                "the file stays, naming the last holder; the lock goes");
        OutputLock.acquire(f, "run").close();
    }

    /** Another JVM holding the lock refuses this one, naming its pid; killed, it holds nothing. */
    @Test
    void anotherProcessHoldsTheLockUntilItIsKilled() throws Exception {
        Path f = dir.resolve(".out.npy.lock");
        Path ready = dir.resolve("ready");
        String java = ProcessHandle.current().info().command().orElse("java");
        Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Holder.class.getName(),
                f.toString(), ready.toString()).redirectErrorStream(true).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(ready) && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(Files.exists(ready), "the holder started: " + new String(p.getInputStream().readNBytes(
                    p.getInputStream().available())));
            IOException e = assertThrows(IOException.class, () -> OutputLock.acquire(f, "out.npy"));
            assertTrue(e.getMessage().startsWith("out.npy is being written by another process (pid " + p.pid() + ")"),
                    e.getMessage());
        } finally {
            p.destroyForcibly().waitFor();
        }
        // a kill leaves the file, not the lock
        assertTrue(Files.exists(f));
        OutputLock.acquire(f, "out.npy").close();
        assertEquals(ProcessHandle.current().pid() + "\n", Files.readString(f, StandardCharsets.UTF_8));
    }

    /** Takes the lock named by args[0], then signals args[1] and waits to be killed. */
    public static final class Holder {
        public static void main(String[] args) throws Exception {
            OutputLock l = OutputLock.acquire(Path.of(args[0]), "held");
            try {
                OutputLock.acquire(Path.of(args[0]), "held again"); // refused, and the first lock must survive it
                throw new AssertionError("a second lock in one process");
            } catch (java.io.IOException expected) {
                // refused
            }
            Files.createFile(Path.of(args[1]));
            Thread.sleep(120_000);
            l.close();
        }
    }

    /**
     * The same lock file reached through a symlinked folder is the same lock: refused in this
     * process, and the refusal does not drop the first holder's OS lock (another process still
     * finds it held).
     */
    @Test
    void anotherSpellingOfTheSamePathIsTheSameLock() throws Exception {
        Path real = Files.createDirectories(dir.resolve("real"));
        Path alias = Files.createSymbolicLink(dir.resolve("alias"), real);
        try (OutputLock first = OutputLock.acquire(real.resolve(".lock"), "real")) {
            IOException e = assertThrows(IOException.class, () -> OutputLock.acquire(alias.resolve(".lock"), "alias"));
            assertTrue(e.getMessage().startsWith("alias is being written by another task of this process"),
                    e.getMessage());
            String java = ProcessHandle.current().info().command().orElse("java");
            Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Tryer.class.getName(),
                    real.resolve(".lock").toString()).redirectErrorStream(true).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(3, p.exitValue(), "still held against another process: " + said);
            assertTrue(said.contains("(pid " + ProcessHandle.current().pid() + ")"), said);
        }
    }

    /** Tries the lock named by args[0]: exit 3 (printing the refusal) when held, 0 when taken. */
    public static final class Tryer {
        public static void main(String[] args) {
            try (OutputLock l = OutputLock.acquire(Path.of(args[0]), "tried")) {
                System.exit(0);
            } catch (IOException e) {
                System.out.println(e.getMessage());
                System.exit(3);
            }
        }
    }

    /** A lock file that cannot be made (here its folder is a file; a full disk alike) is named with the reason. */
    @Test
    void aLockFileThatCannotBeMadeIsNamed() throws IOException {
        Path file = Files.writeString(dir.resolve("plain"), "x");
        IOException e = assertThrows(IOException.class, () -> OutputLock.acquire(file.resolve(".lock"), "out"));
        assertTrue(e.getMessage().startsWith(file.resolve(".lock") + ": the lock file for out cannot be created ("),
                e.getMessage());
    }

    /** Many threads racing to take, use and drop one lock: never two holders at once. */
    @Test
    void racingWritersNeverHoldItTogether() throws Exception {
        Path f = dir.resolve(".race.lock");
        java.util.concurrent.atomic.AtomicInteger holders = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger most = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger taken = new java.util.concurrent.atomic.AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 4; t++) {
            threads.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < 300; i++) {
                    try (OutputLock l = OutputLock.acquire(f, "race")) {
                        most.accumulateAndGet(holders.incrementAndGet(), Math::max);
                        taken.incrementAndGet();
                        holders.decrementAndGet();
                    } catch (IOException e) {
                        if (!e.getMessage().startsWith("race is being written by")) {
                            failures.add(e);
                        }
                    }
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(List.of(), failures);
        assertEquals(1, most.get(), "at most one holder at any time");
        assertTrue(taken.get() > 0);
    }

    /**
     * Only the names dir4j gives its temporaries go, never a user's look-alike (a backup named
     * like one, a folder of kept files); temporary folders only when asked.
     */
    @Test
    void leftoversOfKilledWritersAreRemovedAndNothingElse() throws IOException {
        Path target = dir.resolve("feats.npy");
        Path tmp = AtomicFiles.temporaryBeside(target);
        Files.write(tmp, new byte[1000]);
        assertTrue(tmp.getFileName().toString().matches("\\.feats\\.npy\\.dir4j-[0-9a-z]{1,13}\\.tmp"), tmp.toString());
        Path folder = AtomicFiles.temporaryFolderBeside(target);
        Files.write(folder.resolve("part"), new byte[10]);
        Path userFolder = Files.createDirectories(dir.resolve(".feats.npy.keepme.tmp"));
        Files.write(userFolder.resolve("mine"), new byte[10]);
        List<Path> kept = List.of(Files.createFile(dir.resolve("feats.npy")),
                Files.createFile(dir.resolve(".feats.npy.lock")), Files.createFile(dir.resolve(".other.npy.dir4j-abc.tmp")),
                Files.createFile(dir.resolve(".feats.npy.mybackup.tmp")), Files.createFile(dir.resolve(".feats.npy..tmp")),
                Files.createFile(dir.resolve(".feats.npy.dir4j-ABC.tmp")), Files.createFile(dir.resolve("feats.npy.tmp")),
                Files.createFile(dir.resolve(".feats.npy.dir4j-abc.tmp.keep")), userFolder.resolve("mine"));
        assertEquals(List.of(tmp), AtomicFiles.removeLeftovers(target), "files only by default");
        assertTrue(Files.exists(folder));
        assertEquals(List.of(folder), AtomicFiles.removeLeftovers(target, true));
        assertFalse(Files.exists(tmp) || Files.exists(folder));
        for (Path k : kept) {
            assertTrue(Files.exists(k), k.toString());
        }
        assertEquals(List.of(), AtomicFiles.removeLeftovers(dir.resolve("absent/x.npy")));
    }
}
