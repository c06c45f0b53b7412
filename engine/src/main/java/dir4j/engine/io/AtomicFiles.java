package dir4j.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Files that appear whole or not at all: content goes to a temporary file beside the target,
 * is forced to disk, and is renamed over the target (atomically where the file system can). A
 * failure at any point (a full disk, a kill) leaves the previous target untouched.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** A fresh temporary file in the target's folder (created if needed), named after the target. */
    public static Path temporaryBeside(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        return Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
    }

    /**
     * Renames a completed temporary file over {@code file}: an atomic rename where supported,
     * otherwise a plain replacing move.
     */
    public static void replace(Path tmp, Path file) throws IOException {
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Writes {@code bytes} to {@code file} atomically (temporary file, fsync, rename). */
    public static void write(Path file, byte[] bytes) throws IOException {
        Path tmp = temporaryBeside(file);
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer b = ByteBuffer.wrap(bytes);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
            replace(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
