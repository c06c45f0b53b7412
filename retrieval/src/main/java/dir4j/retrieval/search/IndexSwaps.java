package dir4j.retrieval.search;

import dir4j.engine.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Opening an index folder that another process may be replacing. A build with
 * {@code --overwrite} and {@code dir4j index --append} write the new index in a folder beside the
 * old one and rename it into place (the old one renamed aside first, then deleted): an open that
 * overlaps the swap reads some files of the old index and some of the new one (a size in one file
 * that the next contradicts, "rebuild it"), or finds no folder at all between the two renames. Such
 * an open is tried again, so that a reader sees the old index or the new one, whole. Once open, an
 * index keeps its files (memory-mapped or read), whatever happens to the folder.
 */
final class IndexSwaps {
    /** Tries after the first, at {@link #PAUSE_MS} apart: a swap is two renames, done in microseconds. */
    static final int RETRIES = 50;
    static final long PAUSE_MS = 20;

    /** Opens the index in a folder; may be called again when the folder changed meanwhile. */
    @FunctionalInterface
    interface Opener<T extends AutoCloseable> {
        T open(Path folder) throws IOException;
    }

    private IndexSwaps() {}

    /**
     * {@code opener} applied to {@code folder}, again when the folder was replaced while it read
     * it: the folder's identity (its inode where the file system has one) differs before and after,
     * or the folder is missing while a dir4j temporary folder stands beside it (between the swap's
     * two renames). An index opened across a swap is closed and opened again, even when its files
     * happened to agree. A failure with the folder unchanged is thrown at once, as is the last one
     * after {@link #RETRIES} tries.
     */
    static <T extends AutoCloseable> T open(Path folder, Opener<T> opener) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Object before = identity(folder);
            T opened;
            try {
                opened = opener.open(folder);
            } catch (IOException | UncheckedIOException e) {
                if (attempt >= RETRIES || !swapped(folder, before) || !pause()) {
                    if (e instanceof IOException io) {
                        throw setAside(folder, io);
                    }
                    throw e;
                }
                continue;
            }
            if (attempt >= RETRIES || !swapped(folder, before)) {
                return opened;
            }
            closeQuietly(opened);
            if (!pause()) {
                return opener.open(folder); // interrupted: one more plain try, no waiting
            }
        }
    }

    /** Whether the folder is no longer the one that {@code before} identified, or is between a swap's renames. */
    private static boolean swapped(Path folder, Object before) {
        Object now = identity(folder);
        if (before != null && now != null) {
            return !before.equals(now);
        }
        return (before != null || now != null) || replacementBeside(folder);
    }

    /**
     * The folder's identity: its file key (device and inode) where the file system gives one, with
     * its creation and modification times; null when it is absent. The key alone does not tell two
     * folders apart: ext4 gives a new folder the inode of the one deleted just before, so the folder
     * of the swap after next (its temporary made once the old index was deleted) has the key of the
     * one an open began with, and an open that read files of both would pass for one of a
     * single folder. An index
     * folder is not written once in place, so its times stay as they were. A link is followed: the
     * folder it leads to is what a swap replaces.
     */
    static Object identity(Path folder) {
        try {
            return identity(Files.readAttributes(folder, BasicFileAttributes.class));
        } catch (IOException e) {
            return null;
        }
    }

    /** {@link #identity(Path)} of a folder's attributes. */
    static Object identity(BasicFileAttributes a) {
        return java.util.Arrays.asList(a.fileKey(), a.creationTime(), a.lastModifiedTime());
    }

    /**
     * {@code e}, or when the folder is missing and an index set aside by a build or append that was
     * stopped between its two renames stands beside it ({@code .<name>.dir4j-<random>.old}), an
     * exception that says so and how to get it back.
     */
    private static IOException setAside(Path folder, IOException e) {
        if (Files.exists(folder)) {
            return e;
        }
        Path aside = besideOf(folder, ".old");
        if (aside == null) {
            return e;
        }
        IOException named = new java.nio.file.NoSuchFileException(folder.toString(), null, "no index here: a build "
                + "or append stopped between its two renames left the index set aside as " + aside + "; the next "
                + "`dir4j index` on this folder puts it back (or rename it to " + folder.getFileName() + ")");
        named.initCause(e);
        return named;
    }

    /** Whether a dir4j temporary folder or one set aside ({@code .tmp}, {@code .old}) stands beside the folder. */
    static boolean swapBeside(Path folder) {
        return besideOf(folder, ".tmp") != null || besideOf(folder, ".old") != null;
    }

    /**
     * Whether a dir4j temporary folder ({@code .<name>.dir4j-<random>.tmp}) stands beside the
     * folder: the new index, between the swap's two renames (an old folder set aside,
     * {@code .old}, without one is stale, left by a kill, and no reason to wait).
     */
    private static boolean replacementBeside(Path folder) {
        return besideOf(folder, ".tmp") != null;
    }

    /**
     * A dir4j folder {@code .<name>.dir4j-<random><suffix>} beside the folder (where a link leads,
     * when the folder is given as one: its replacement is made there), or null.
     */
    private static Path besideOf(Path folder, String suffix) {
        Path abs;
        try {
            abs = AtomicFiles.throughLinks(folder).toAbsolutePath().normalize();
        } catch (IOException e) {
            abs = folder.toAbsolutePath().normalize();
        }
        Path parent = abs.getParent();
        if (parent == null || abs.getFileName() == null) {
            return null;
        }
        String prefix = "." + abs.getFileName() + ".dir4j-";
        DirectoryStream.Filter<Path> temporary = p -> {
            String n = p.getFileName().toString();
            return n.startsWith(prefix) && n.endsWith(suffix) && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS);
        };
        try (DirectoryStream<Path> s = Files.newDirectoryStream(parent, temporary)) {
            var it = s.iterator();
            return it.hasNext() ? it.next() : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** Waits a little for a swap to finish; false when interrupted (the interrupt kept). */
    private static boolean pause() {
        try {
            Thread.sleep(PAUSE_MS);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            // an index read across a swap: dropped, whatever its close says
        }
    }
}
