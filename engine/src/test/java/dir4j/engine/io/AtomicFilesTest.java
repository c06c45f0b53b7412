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

    /**
     * Across file systems no rename works: the content is copied beside the target and renamed
     * over it, the temporary removed, nothing else left; a copy that fails leaves the old target.
     */
    @Test
    void replaceByCopyPutsTheContentInPlaceInOneStep() throws IOException {
        Path target = dir.resolve("out.npy");
        Files.write(target, new byte[] {9});
        Path parts = Files.createDirectories(dir.resolve("out.npy.parts"));
        Path tmp = Files.write(parts.resolve("assembled.npy"), new byte[] {1, 2, 3});
        AtomicFiles.replaceByCopy(tmp, target);
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(target));
        assertTrue(Files.notExists(tmp));
        try (var s = Files.list(dir)) {
            assertEquals(List.of(target, parts), s.sorted().toList(),
                    "no temporary beside the target");
        }
        assertThrows(java.nio.file.NoSuchFileException.class, () -> AtomicFiles.replaceByCopy(tmp, target));
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(target), "a failed copy leaves the target");
        try (var s = Files.list(dir)) {
            assertEquals(2, s.count(), "and no temporary");
        }
    }

    /** The same through {@link AtomicFiles#replace} where this machine has a second file system (tmpfs). */
    @Test
    void replaceCrossesFileSystems() throws IOException {
        Path shm = Path.of("/dev/shm");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm)
                && !Files.getFileStore(shm).equals(Files.getFileStore(dir)), "no second file system here");
        Path tmp = Files.createTempFile(shm, "dir4j-atomic-files-test", ".bin");
        try {
            Files.write(tmp, new byte[] {4, 5, 6});
            Path target = dir.resolve("out.bin");
            AtomicFiles.replace(tmp, target);
            assertArrayEquals(new byte[] {4, 5, 6}, Files.readAllBytes(target));
            assertTrue(Files.notExists(tmp));
            try (var s = Files.list(dir)) {
                assertEquals(1, s.count(), "only the target");
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * A kill between replaceFolder's two renames leaves the place empty and the old folder aside:
     * restoreReplaced puts the newest aside folder back; with the place taken it does nothing and
     * removeLeftovers deletes what is aside (folders only, never a look-alike file).
     */
    @Test
    void aFolderSetAsideByAKilledReplacementGoesBack() throws IOException {
        Path target = dir.resolve("idx");
        Files.createDirectories(target);
        Files.write(target.resolve("f"), new byte[] {1});
        Path fresh = AtomicFiles.temporaryFolderBeside(target);
        Files.write(fresh.resolve("f"), new byte[] {2});
        AtomicFiles.replaceFolder(fresh, target);
        assertArrayEquals(new byte[] {2}, Files.readAllBytes(target.resolve("f")));
        try (var s = Files.list(dir)) {
            assertEquals(List.of(target), s.toList(), "the old folder deleted after the swap");
        }
        // the state a kill between the renames leaves: the old folder aside, a new one under a temporary name
        Path older = Files.createDirectory(dir.resolve(".idx.dir4j-aa.old"));
        Files.write(older.resolve("f"), new byte[] {0});
        Files.setLastModifiedTime(older, java.nio.file.attribute.FileTime.fromMillis(1_000));
        Path aside = dir.resolve(".idx.dir4j-bb.old");
        Files.move(target, aside);
        Path unfinished = AtomicFiles.temporaryFolderBeside(target);
        Path lookAlike = Files.write(dir.resolve(".idx.dir4j-cc.old"), new byte[] {9});
        assertEquals(aside, AtomicFiles.restoreReplaced(target), "the newest folder aside");
        assertArrayEquals(new byte[] {2}, Files.readAllBytes(target.resolve("f")));
        assertEquals(null, AtomicFiles.restoreReplaced(target), "nothing to do with the place taken");
        List<Path> removed = AtomicFiles.removeLeftovers(target, true);
        assertEquals(java.util.Set.of(older, unfinished), java.util.Set.copyOf(removed));
        assertTrue(Files.exists(lookAlike), "a file named like an old folder is not dir4j's");
        assertEquals(null, AtomicFiles.restoreReplaced(dir.resolve("nothing")));
        // an old folder alone (killed after the swap, the target deleted since) stays where it is
        Path stale = Files.createDirectory(dir.resolve(".gone.dir4j-dd.old"));
        assertEquals(null, AtomicFiles.restoreReplaced(dir.resolve("gone")));
        assertTrue(Files.isDirectory(stale) && Files.notExists(dir.resolve("gone")));
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

    /**
     * An output given as a symbolic link (to a folder on a larger disk, say) is written where the
     * link points and the link stays: renaming onto the link itself would put the new content
     * beside the link and leave the old, unreferenced, at the far end.
     */
    @Test
    void writesGoThroughALinkAndKeepIt() throws IOException {
        Path far = Files.createDirectories(dir.resolve("far"));
        Path near = Files.createDirectories(dir.resolve("near"));
        Path real = Files.write(far.resolve("out.bin"), new byte[] {1});
        Path link = Files.createSymbolicLink(near.resolve("out.bin"), real);
        AtomicFiles.write(link, new byte[] {2, 3});
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        assertArrayEquals(new byte[] {2, 3}, Files.readAllBytes(real));
        try (var s = Files.list(near)) {
            assertEquals(List.of(link), s.toList(), "nothing written beside the link");
        }
        try (var s = Files.list(far)) {
            assertEquals(List.of(real), s.toList(), "no temporary left at the far end");
        }
        // a dangling link (relative, through a second link) is followed to where it points, and the file made there
        Path later = far.resolve("later.bin");
        Path hop = Files.createSymbolicLink(near.resolve("hop.bin"), Path.of("../far/later.bin"));
        Path first = Files.createSymbolicLink(near.resolve("first.bin"), Path.of("hop.bin"));
        assertEquals(later.toAbsolutePath(), AtomicFiles.throughLinks(first).toAbsolutePath().normalize());
        AtomicFiles.write(first, new byte[] {4});
        assertArrayEquals(new byte[] {4}, Files.readAllBytes(later));
        assertTrue(Files.isSymbolicLink(first) && Files.isSymbolicLink(hop), "both links stay");
        // a plain path is returned as it is, relative or not
        assertEquals(Path.of("x/y"), AtomicFiles.throughLinks(Path.of("x/y")));
    }

    /**
     * A relative link that lies in a linked folder: its {@code ..} leads from where the link really
     * lies (as the system follows it), and the result names that real folder, not the one that
     * dropping {@code a/..} by name gives (where a caller's lock file or temporary would go astray).
     */
    @Test
    void aRelativeLinkInALinkedFolderLeadsFromWhereItReallyLies() throws IOException {
        Path deep = Files.createDirectories(dir.resolve("deep/x"));
        Path far = Files.createDirectories(dir.resolve("deep/far"));
        Files.createDirectories(dir.resolve("far")); // dir/a/../far by name
        Path linked = Files.createSymbolicLink(dir.resolve("a"), deep);
        Files.createSymbolicLink(deep.resolve("out.bin"), Path.of("../far/out.bin"));
        Path via = linked.resolve("out.bin");
        assertEquals(far.toRealPath().resolve("out.bin"), AtomicFiles.throughLinks(via));
        // dangling into folders not made yet: the existing part real, the rest by name
        Files.createSymbolicLink(deep.resolve("later.bin"), Path.of("../new/sub/../later.bin"));
        assertEquals(dir.resolve("deep").toRealPath().resolve("new/later.bin"),
                AtomicFiles.throughLinks(linked.resolve("later.bin")));
        AtomicFiles.write(via, new byte[] {7});
        assertArrayEquals(new byte[] {7}, Files.readAllBytes(far.resolve("out.bin")));
        try (var s = Files.list(dir.resolve("far"))) {
            assertEquals(0, s.count(), "nothing in the folder of the same name");
        }
    }

    @Test
    void aLinkLoopIsNamed() throws IOException {
        Path a = dir.resolve("a");
        Path b = Files.createSymbolicLink(dir.resolve("b"), a);
        Files.createSymbolicLink(a, b);
        java.nio.file.FileSystemException e = assertThrows(java.nio.file.FileSystemException.class,
                () -> AtomicFiles.write(a, new byte[] {1}));
        assertTrue(e.getMessage().contains("too many levels of symbolic links"), e.getMessage());
    }

    /**
     * A folder replaced through a link: the new folder takes the old one's place at the far end
     * (where its temporary was built), the old one is deleted there, the link stays; a kill between
     * the renames is repaired at the far end too.
     */
    @Test
    void foldersAreReplacedThroughALink() throws IOException {
        Path far = Files.createDirectories(dir.resolve("far"));
        Path near = Files.createDirectories(dir.resolve("near"));
        Path real = Files.createDirectories(far.resolve("index"));
        Files.write(real.resolve("old.bin"), new byte[] {1});
        Path link = Files.createSymbolicLink(near.resolve("index"), real);
        Path tmp = AtomicFiles.temporaryFolderBeside(link);
        assertEquals(far.toAbsolutePath(), tmp.getParent().toAbsolutePath(), "built at the far end");
        Files.write(tmp.resolve("new.bin"), new byte[] {2});
        AtomicFiles.replaceFolder(tmp, link);
        assertTrue(Files.isSymbolicLink(link), "the link stays a link");
        try (var s = Files.list(real)) {
            assertEquals(List.of(real.resolve("new.bin")), s.toList(), "the new folder, and nothing of the old");
        }
        try (var s = Files.list(far)) {
            assertEquals(List.of(real), s.toList(), "nothing set aside left at the far end");
        }
        try (var s = Files.list(near)) {
            assertEquals(List.of(link), s.toList());
        }
        // the state a kill between the two renames leaves, at the far end: restored through the link
        Path aside = far.resolve(".index.dir4j-abc.old");
        Files.move(real, aside);
        Path unfinished = Files.createDirectories(far.resolve(".index.dir4j-def.tmp"));
        assertEquals(aside, AtomicFiles.restoreReplaced(link));
        assertTrue(Files.isRegularFile(real.resolve("new.bin")), "put back where the link points");
        assertEquals(List.of(unfinished), AtomicFiles.removeLeftovers(link, true));
    }
}
