package dir4j.engine.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;

/**
 * Files that appear whole or not at all: content goes to a temporary file beside the target,
 * is forced to disk, and is renamed over the target (atomically where the file system can). A
 * failure at any point (a full disk, a kill) leaves the previous target untouched.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {}

    /** Links followed at most, as Linux's ELOOP limit. */
    private static final int MAX_LINKS = 40;

    /**
     * {@code path} itself, or, when it is a symbolic link, the path it leads to (links to links
     * followed, a dangling link's target included). Every method here that writes or replaces a
     * target goes through it, so that an output given as a link (an index folder linked to a larger
     * disk, say) is written and replaced where the link points, on that file system, and the link
     * stays: a rename onto the link itself would put the new output beside the link and leave the
     * old one, unreferenced, where the link pointed. A path that is not a link comes back as it
     * is; where a link is followed, the folder the result lies in is given as its real path (links
     * and dot segments resolved, as far as it exists), so that a relative link's {@code ..} is
     * taken as the system takes it, from where the link really lies, and whatever is named beside
     * the result (a lock file, a temporary folder) is named in the folder the system writes to:
     * {@code Path.normalize}, which drops {@code x/..} by name, would put it elsewhere when
     * {@code x} is itself a link.
     *
     * @throws FileSystemException for a loop, or more than 40 links in a row
     */
    public static Path throughLinks(Path path) throws IOException {
        if (!Files.isSymbolicLink(path)) {
            return path;
        }
        Path cur = path.toAbsolutePath();
        for (int i = 0; i < MAX_LINKS && Files.isSymbolicLink(cur); i++) {
            cur = realFolder(cur.getParent()).resolve(Files.readSymbolicLink(cur));
        }
        if (Files.isSymbolicLink(cur)) {
            throw new FileSystemException(path.toString(), null, "too many levels of symbolic links (a loop?)");
        }
        Path name = cur.getFileName();
        if (name == null || name.toString().equals(".") || name.toString().equals("..")) {
            return cur; // a link to "/", ".", "..": a folder no caller writes beside
        }
        return realFolder(cur.getParent()).resolve(name);
    }

    /**
     * An absolute folder's real path as far as it exists (the nearest existing folder's
     * {@code toRealPath}), the missing rest appended by name.
     */
    private static Path realFolder(Path folder) {
        Path existing = folder;
        while (existing != null && !Files.isDirectory(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return folder.normalize();
        }
        try {
            return existing.toRealPath().resolve(existing.relativize(folder)).normalize();
        } catch (IOException e) {
            return folder.normalize();
        }
    }

    /**
     * A fresh temporary file in the target's folder (created if needed), named after the target.
     * It gets the permissions of any new file (the umask's), not {@code Files.createTempFile}'s
     * owner-only ones, which the rename would pass on to the result.
     */
    public static Path temporaryBeside(Path file) throws IOException {
        file = throughLinks(file);
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        while (true) {
            try {
                return Files.createFile(dir.resolve(uniqueName(file)));
            } catch (FileAlreadyExistsException e) {
                // another writer drew the same name: draw again
            }
        }
    }

    /**
     * A fresh temporary folder beside {@code folder} (its parent created if needed), to be renamed
     * onto it when complete; with the permissions of any new folder, not owner-only ones.
     */
    public static Path temporaryFolderBeside(Path folder) throws IOException {
        folder = throughLinks(folder);
        Path parent = folder.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        while (true) {
            try {
                return Files.createDirectory(parent.resolve(uniqueName(folder)));
            } catch (FileAlreadyExistsException e) {
                // another writer drew the same name: draw again
            }
        }
    }

    /**
     * Deletes the temporary files that writers of {@code target} killed mid-write left beside it,
     * which can be as large as the target: exactly the names {@link #temporaryBeside} gives
     * ({@code .<name>.dir4j-<random>.tmp}), never a user's look-alike. Folders of that name
     * ({@link #temporaryFolderBeside}), and old folders a replacement set aside
     * ({@code .<name>.dir4j-<random>.old}, {@link #replaceFolder}; call {@link #restoreReplaced}
     * first, in case one should go back), go too only when {@code folders} is true (a caller that
     * makes such folders). Call it only while holding the target's {@link OutputLock}: a live
     * writer's temporary file looks the same.
     *
     * @return the paths deleted, for the caller to name
     */
    public static java.util.List<Path> removeLeftovers(Path target, boolean folders) throws IOException {
        target = throughLinks(target);
        Path dir = target.toAbsolutePath().getParent();
        java.util.List<Path> removed = new java.util.ArrayList<>();
        if (dir == null || !Files.isDirectory(dir)) {
            return removed;
        }
        java.util.regex.Pattern own = java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(
                "." + target.getFileName() + MARK) + "[0-9a-z]{1,13}\\.(tmp|old)");
        try (var entries = Files.newDirectoryStream(dir, e -> own.matcher(e.getFileName().toString()).matches())) {
            for (Path p : entries) {
                boolean folder = Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if ((folder && !folders) || (!folder && p.getFileName().toString().endsWith(".old"))) {
                    continue; // (dir4j sets only folders aside)
                }
                if (folder) {
                    deleteTree(p);
                    removed.add(p);
                } else if (Files.deleteIfExists(p)) {
                    removed.add(p);
                }
            }
        }
        return removed;
    }

    /**
     * Deletes every temporary file ({@link #temporaryBeside}'s names, of any target) directly in
     * {@code folder}, a folder that belongs to the caller alone (an extraction's parts, a
     * generation in progress); as {@link #removeLeftovers}, only while holding its lock.
     *
     * @return the files deleted
     */
    public static java.util.List<Path> removeTemporariesIn(Path folder) throws IOException {
        java.util.List<Path> removed = new java.util.ArrayList<>();
        if (!Files.isDirectory(folder)) {
            return removed;
        }
        java.util.regex.Pattern any = java.util.regex.Pattern.compile("\\..+" + java.util.regex.Pattern.quote(MARK)
                + "[0-9a-z]{1,13}\\.tmp");
        try (var entries = Files.newDirectoryStream(folder, e -> any.matcher(e.getFileName().toString()).matches()
                && Files.isRegularFile(e, java.nio.file.LinkOption.NOFOLLOW_LINKS))) {
            for (Path p : entries) {
                if (Files.deleteIfExists(p)) {
                    removed.add(p);
                }
            }
        }
        return removed;
    }

    /** {@link #removeLeftovers(Path, boolean)} of files only. */
    public static java.util.List<Path> removeLeftovers(Path target) throws IOException {
        return removeLeftovers(target, false);
    }

    /**
     * Puts the completed temporary folder {@code tmp} (from {@link #temporaryFolderBeside}) in the
     * place of {@code target}: the old folder is renamed aside (whole, as
     * {@code .<name>.dir4j-<random>.old}), the new one renamed in, then the old one deleted.
     * Nothing is lost if a step fails (an old folder that cannot be moved aside stays where it
     * is); a kill between the two renames leaves the place empty with the old folder aside, which
     * {@link #restoreReplaced} puts back.
     */
    public static void replaceFolder(Path tmp, Path target) throws IOException {
        target = throughLinks(target);
        Path aside = null;
        if (Files.exists(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            aside = target.toAbsolutePath().getParent().resolve(
                    "." + target.getFileName() + MARK + Long.toUnsignedString(RANDOM.nextLong(), 36) + ".old");
            Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            if (aside != null) {
                Files.move(aside, target, StandardCopyOption.ATOMIC_MOVE); // the old one back
            }
            throw e;
        }
        if (aside != null) {
            deleteTree(aside);
        }
    }

    /**
     * After a kill between {@link #replaceFolder}'s two renames: when {@code target} is missing, the
     * folder it held stands aside ({@code .<name>.dir4j-<random>.old}) and the unfinished
     * replacement beside it too ({@code .<name>.dir4j-<random>.tmp}, the state that kill leaves),
     * renames the folder aside back (the newest, should there be several) and returns it; null
     * when there is nothing to restore. An old folder alone (a kill after the swap, before its
     * deletion, and the target removed since) is not brought back.
     * Call it, as {@link #removeLeftovers}, only while holding the target's {@link OutputLock}, and
     * before it (which deletes what is aside).
     */
    public static Path restoreReplaced(Path target) throws IOException {
        Path abs = throughLinks(target).toAbsolutePath();
        Path dir = abs.getParent();
        if (dir == null || !Files.isDirectory(dir) || Files.exists(abs, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return null;
        }
        java.util.regex.Pattern aside = java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(
                "." + abs.getFileName() + MARK) + "[0-9a-z]{1,13}\\.old");
        java.util.regex.Pattern replacement = java.util.regex.Pattern.compile(java.util.regex.Pattern.quote(
                "." + abs.getFileName() + MARK) + "[0-9a-z]{1,13}\\.tmp");
        try (var entries = Files.newDirectoryStream(dir, e -> replacement.matcher(e.getFileName().toString()).matches()
                && Files.isDirectory(e, java.nio.file.LinkOption.NOFOLLOW_LINKS))) {
            if (!entries.iterator().hasNext()) {
                return null;
            }
        }
        Path newest = null;
        java.nio.file.attribute.FileTime newestTime = null;
        try (var entries = Files.newDirectoryStream(dir, e -> aside.matcher(e.getFileName().toString()).matches()
                && Files.isDirectory(e, java.nio.file.LinkOption.NOFOLLOW_LINKS))) {
            for (Path p : entries) {
                java.nio.file.attribute.FileTime t = Files.getLastModifiedTime(p, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                if (newest == null || t.compareTo(newestTime) > 0) {
                    newest = p;
                    newestTime = t;
                }
            }
        }
        if (newest == null) {
            return null;
        }
        Files.move(newest, abs, StandardCopyOption.ATOMIC_MOVE);
        return newest;
    }

    /** Deletes a file or a folder with everything in it (links are deleted, not followed). */
    public static void deleteTree(Path p) throws IOException {
        if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (var s = Files.list(p)) {
                for (Path c : s.toList()) {
                    deleteTree(c);
                }
            }
        }
        Files.deleteIfExists(p);
    }

    /** What sets dir4j's temporary names apart from a user's: {@code .<name>.dir4j-<random>.tmp}. */
    private static final String MARK = ".dir4j-";

    private static String uniqueName(Path target) {
        return "." + target.getFileName() + MARK + Long.toUnsignedString(RANDOM.nextLong(), 36) + ".tmp";
    }

    /**
     * Renames a completed temporary file over {@code file}, atomically. When the two are on
     * different file systems (a parts folder that is a mount point or a link to another disk),
     * where no rename can cross, {@code tmp} is first copied to a temporary file beside
     * {@code file} and forced to disk, and that one is renamed: {@code file} still changes in one
     * step, and a failed copy (a full disk) leaves it and {@code tmp} as they were. Only a file
     * system without atomic renames at all gets a plain replacing move.
     */
    public static void replace(Path tmp, Path file) throws IOException {
        file = throughLinks(file);
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            replaceByCopy(tmp, file);
        }
    }

    /** {@link #replace}'s way across file systems: a forced copy beside {@code file}, renamed over it. */
    static void replaceByCopy(Path tmp, Path file) throws IOException {
        Path beside = temporaryBeside(file);
        try {
            try (FileChannel in = FileChannel.open(tmp, StandardOpenOption.READ);
                    FileChannel out = FileChannel.open(beside, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING)) {
                long size = in.size();
                for (long done = 0; done < size; ) {
                    long moved = in.transferTo(done, size - done, out);
                    if (moved == 0 && in.size() < size) {
                        throw new IOException(tmp + " shrank from " + size + " to " + in.size()
                                + " bytes while being copied to " + file + "; nothing was replaced");
                    }
                    done += moved;
                }
                out.force(true);
            }
            try {
                Files.move(beside, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(beside, file, StandardCopyOption.REPLACE_EXISTING); // no atomic rename on this file system
            }
            Files.delete(tmp);
        } finally {
            Files.deleteIfExists(beside);
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
