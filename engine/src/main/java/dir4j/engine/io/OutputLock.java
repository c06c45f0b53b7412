package dir4j.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One writer at a time for an output (a training folder, a descriptor file): an exclusive lock
 * on a small lock file, taken by the operating system ({@link FileChannel#tryLock}) and so
 * released when the process ends, however it ends (a kill leaves the file, not the lock). A
 * second writer, in this process or another, is refused at once with an error naming the
 * holder's process id instead of interleaving its work with the first's.
 *
 * <p>The lock file holds the holder's process id as text and stays when the lock is released (a
 * lock file deleted on release could be locked by one writer while another creates and locks a
 * new one). Writers in one process are told apart without opening the file a second time, since
 * closing any descriptor of a file drops the process's record locks on it. Locks on network file
 * systems are only as good as the file system's.
 */
public final class OutputLock implements AutoCloseable {
    /** The lock files this process holds, by absolute path. */
    private static final Map<Path, Boolean> HELD = new ConcurrentHashMap<>();

    private final Path key;
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private OutputLock(Path key, Path file, FileChannel channel, FileLock lock) {
        this.key = key;
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Takes the lock {@code lockFile} (created, with its folder, if absent).
     *
     * @param what the output in words, for the error ("runs/x (a training run)")
     * @throws IOException naming {@code what} and the holder's process id when another writer
     *                     holds it, or the file when it cannot be created
     */
    public static OutputLock acquire(Path lockFile, String what) throws IOException {
        Path key = lockFile.toAbsolutePath().normalize();
        // refused here, before a second channel is opened: closing any descriptor of a file drops
        // every lock the process holds on it (POSIX record locks), the first writer's included
        if (HELD.putIfAbsent(key, Boolean.TRUE) != null) {
            throw refused(what, "another task of this process", lockFile);
        }
        try {
            Files.createDirectories(key.getParent());
            FileChannel ch = FileChannel.open(key, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
                if (l == null) {
                    String holder = holder(ch);
                    throw refused(what, "another process" + (holder.isEmpty() ? "" : " (pid " + holder + ")"), lockFile);
                }
                ch.truncate(0);
                ch.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)), 0);
                ch.force(false);
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            return new OutputLock(key, lockFile, ch, l);
        } catch (IOException | RuntimeException e) {
            HELD.remove(key);
            throw e;
        }
    }

    private static IOException refused(String what, String who, Path lockFile) {
        return new IOException(what + " is being written by " + who + "; wait for it to finish or stop it (lock file "
                + lockFile + ")");
    }

    private static String holder(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate(32);
            int n = ch.read(b, 0);
            String text = n <= 0 ? "" : new String(b.array(), 0, n, StandardCharsets.UTF_8).strip();
            int space = text.indexOf(' ');
            return space < 0 ? text : text.substring(0, space);
        } catch (IOException e) {
            return "";
        }
    }

    /** The lock file. */
    public Path file() {
        return file;
    }

    /** Releases the lock (the file stays: deleting it would let two writers lock two files). */
    @Override
    public void close() throws IOException {
        if (!channel.isOpen()) {
            return;
        }
        try {
            lock.release();
        } finally {
            try {
                channel.close();
            } finally {
                HELD.remove(key);
            }
        }
    }
}
