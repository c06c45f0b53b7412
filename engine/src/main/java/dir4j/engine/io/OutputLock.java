package dir4j.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
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
 * new one). Writers in one process are told apart by the file's identity (device and inode, so
 * another spelling of the path is the same lock) without opening it a second time, since closing
 * any descriptor of a file drops the process's record locks on it. Where the file system cannot
 * lock (NFS without lockd, some FUSE mounts) the writer goes on unprotected, with a warning.
 */
public final class OutputLock implements AutoCloseable {
    /** Channels that must never be closed (see acquire). */
    private static final java.util.Set<FileChannel> PARKED = ConcurrentHashMap.newKeySet();
    /** The lock files this process holds, by file identity (else absolute path). */
    private static final Map<Object, Boolean> HELD = new ConcurrentHashMap<>();

    private final Object key;
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private OutputLock(Object key, Path file, FileChannel channel, FileLock lock) {
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
        Path abs = lockFile.toAbsolutePath().normalize();
        try {
            Files.createDirectories(abs.getParent());
            try {
                Files.createFile(abs); // O_EXCL: fails without leaving a descriptor when the file is there
            } catch (FileAlreadyExistsException e) {
                // an earlier writer's, or a live holder's
            }
        } catch (IOException e) {
            throw new IOException(lockFile + ": the lock file for " + what + " cannot be created (" + reason(e) + ")",
                    e);
        }
        // the file's identity (device and inode), read by stat: another spelling of the same file (a link, a
        // symlinked folder) is the same lock, and no second descriptor is opened, whose close would drop every
        // lock this process holds on the file (POSIX record locks)
        Object identity = Files.readAttributes(abs, BasicFileAttributes.class).fileKey();
        Object key = identity != null ? identity : abs;
        if (HELD.putIfAbsent(key, Boolean.TRUE) != null) {
            throw refused(what, "another task of this process", lockFile);
        }
        try {
            FileChannel ch = FileChannel.open(abs, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                // held in this process under an identity stat did not give: closing ch (or letting it be collected)
                // would release that lock, so ch is kept open for the life of the process
                PARKED.add(ch);
                throw refused(what, "another task of this process", lockFile);
            } catch (IOException e) {
                // a file system without locks (NFS without lockd, some FUSE mounts): go on, unprotected, and say so
                System.getLogger(OutputLock.class.getName()).log(System.Logger.Level.WARNING, "cannot lock " + lockFile
                        + " (" + e.getMessage() + "): " + what + " is not protected against a second writer");
                return new OutputLock(key, lockFile, ch, null);
            }
            try {
                if (l == null) {
                    String holder = holder(ch);
                    throw refused(what, "another process" + (holder.isEmpty() ? "" : " (pid " + holder + ")"), lockFile);
                }
                try {
                    ch.truncate(0);
                    ch.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)),
                            0);
                    ch.force(false);
                } catch (IOException e) {
                    throw new IOException(lockFile + ": the lock file for " + what + " cannot be written (" + reason(e)
                            + ")", e);
                }
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

    private static String reason(IOException e) {
        if (e instanceof java.nio.file.FileSystemException f) { // its message is the path alone when the OS gave none
            return f.getReason() != null ? f.getReason() : f.getClass().getSimpleName() + ": " + f.getFile();
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    private static Busy refused(String what, String who, Path lockFile) {
        return new Busy(what + " is being written by " + who + "; wait for it to finish or stop it (lock file "
                + lockFile + ")");
    }

    /** The refusal of {@link #acquire}: another writer holds the lock. */
    public static final class Busy extends IOException {
        Busy(String message) {
            super(message);
        }
    }

    /**
     * {@link #acquire}, waiting up to {@code maxWait} while another writer holds the lock (checked
     * every 200 ms); {@code waiting} is told once, with the refusal's message, when it has to wait.
     *
     * @throws Busy when the lock is still held after {@code maxWait}
     */
    public static OutputLock acquire(Path lockFile, String what, java.time.Duration maxWait,
            java.util.function.Consumer<String> waiting) throws IOException {
        long deadline = System.nanoTime() + maxWait.toNanos();
        boolean told = false;
        while (true) {
            try {
                return acquire(lockFile, what);
            } catch (Busy busy) {
                if (System.nanoTime() - deadline >= 0) {
                    throw busy;
                }
                if (!told) {
                    waiting.accept(busy.getMessage().replace("; wait for it to finish or stop it", "; waiting"));
                    told = true;
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw busy;
                }
            }
        }
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
            if (lock != null) {
                lock.release();
            }
        } finally {
            try {
                channel.close();
            } finally {
                HELD.remove(key);
            }
        }
    }
}
