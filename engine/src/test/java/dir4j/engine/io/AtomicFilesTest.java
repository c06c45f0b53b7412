package dir4j.engine.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AtomicFilesTest {
    @TempDir
    Path dir;

    @Test
    void writeReplacesTheTargetAndLeavesNoTemporaryFile() throws IOException {
        Path f = dir.resolve("sub/out.bin");
        AtomicFiles.write(f, new byte[] {1, 2, 3});
        AtomicFiles.write(f, new byte[] {4, 5});
        assertArrayEquals(new byte[] {4, 5}, Files.readAllBytes(f));
        try (var s = Files.list(f.getParent())) {
            assertEquals(1, s.count(), "only the target remains");
        }
    }

    /** In a folder of the caller's own, every dir4j temporary file goes, of any target; nothing else. */
    @Test
    void temporariesInAFolderGoWhateverTheirTargetAndNothingElse() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("own"));
        Path a = AtomicFiles.temporaryBeside(folder.resolve("a.jpg"));
        Path b = AtomicFiles.temporaryBeside(folder.resolve("part-000001.npy"));
        List<Path> kept = List.of(Files.createFile(folder.resolve("a.jpg")),
                Files.createFile(folder.resolve(".a.jpg.tmp")), Files.createFile(folder.resolve(".a.jpg.dir4j-ABC.tmp")),
                Files.createDirectory(folder.resolve(".c.dir4j-abc.tmp")));
        assertEquals(Set.of(a, b), Set.copyOf(AtomicFiles.removeTemporariesIn(folder)));
        for (Path p : kept) {
            assertTrue(Files.exists(p), p + " kept");
        }
        assertEquals(List.of(), AtomicFiles.removeTemporariesIn(dir.resolve("absent")));
    }

    @Test
    void aFailedWriteKeepsThePreviousTarget() throws IOException {
        Path f = dir.resolve("keep.bin");
        AtomicFiles.write(f, new byte[] {7});
        // the target's folder is a file: the temporary file cannot be created, the old target stays
        Path blocked = dir.resolve("notADir");
        Files.write(blocked, new byte[] {0});
        assertThrows(IOException.class, () -> AtomicFiles.write(blocked.resolve("x.bin"), new byte[] {1}));
        Path tmp = AtomicFiles.temporaryBeside(f);
        Files.write(tmp, new byte[] {9, 9});
        Files.delete(tmp); // abandoned before the rename: the target is untouched
        assertArrayEquals(new byte[] {7}, Files.readAllBytes(f));
    }

    /**
     * Files and folders written atomically get the permissions any new file or folder gets here
     * (the umask's), as a plain write would: Files.createTempFile's owner-only 0600 / 0700 would
     * otherwise survive the rename, leaving descriptors, indexes and datasets unreadable to others.
     */
    @Test
    void resultsHaveTheFolderUsualPermissionsNotOwnerOnly() throws IOException {
        Set<PosixFilePermission> usualFile = Files.getPosixFilePermissions(Files.createFile(dir.resolve("plain")));
        Set<PosixFilePermission> usualFolder = Files.getPosixFilePermissions(
                Files.createDirectory(dir.resolve("plainDir")));
        Path f = dir.resolve("atomic.bin");
        AtomicFiles.write(f, new byte[] {1});
        assertEquals(usualFile, Files.getPosixFilePermissions(f));
        Path npy = dir.resolve("x.npy");
        try (dir4j.engine.Tensor t = dir4j.engine.Tensor.of(new float[] {1, 2}, 2)) {
            Npy.write(npy, t);
        }
        assertEquals(usualFile, Files.getPosixFilePermissions(npy));
        Path folder = AtomicFiles.temporaryFolderBeside(dir.resolve("index"));
        assertEquals(usualFolder, Files.getPosixFilePermissions(folder));
        assertEquals(dir, folder.getParent());
        assertTrue(folder.getFileName().toString().startsWith(".index."), folder.toString());
    }

    /** A folder replaced whole; a replacement that fails (here the new folder is gone) leaves the old one in place. */
    @Test
    void aFolderIsReplacedWholeOrNotAtAll() throws IOException {
        Path target = Files.createDirectories(dir.resolve("idx"));
        Files.writeString(target.resolve("old.txt"), "old");
        Path tmp = AtomicFiles.temporaryFolderBeside(target);
        Files.writeString(tmp.resolve("new.txt"), "new");
        AtomicFiles.replaceFolder(tmp, target);
        try (var s = Files.list(target)) {
            assertEquals(List.of("new.txt"), s.map(p -> p.getFileName().toString()).toList());
        }
        try (var s = Files.list(dir)) {
            assertEquals(List.of("idx"), s.map(p -> p.getFileName().toString()).toList(), "nothing left aside");
        }
        Path gone = AtomicFiles.temporaryFolderBeside(target);
        Files.delete(gone);
        assertThrows(IOException.class, () -> AtomicFiles.replaceFolder(gone, target));
        assertEquals("new", Files.readString(target.resolve("new.txt")), "the old folder is back in place");
        try (var s = Files.list(dir)) {
            assertEquals(List.of("idx"), s.map(p -> p.getFileName().toString()).toList());
        }
    }
}
