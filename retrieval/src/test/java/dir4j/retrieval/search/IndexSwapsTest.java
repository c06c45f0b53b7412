package dir4j.retrieval.search;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Opening an index folder that another process replaces meanwhile (dir4j index --append or
 * --overwrite rename a complete new folder into place): the swap is made to happen inside the
 * open, at the moments a reader meets it (files of the old index read, then the new ones; no
 * folder between the two renames), and the open is tried again to give the new index whole.
 */
class IndexSwapsTest {
    @TempDir
    Path dir;

    /** An exact index of n rows (ids "r0".."r{n-1}") saved in folder. */
    private static void exact(Path folder, int n) throws IOException {
        try (MemoryScope scope = MemoryScope.open(); ExactIndex e = new ExactIndex(4)) {
            e.add(Tensor.of(HnswIndexTest.unitRows(new Random(n), n, 4), n, 4),
                    java.util.stream.IntStream.range(0, n).mapToObj(i -> "r" + i).toList());
            e.save(folder);
        }
    }

    /** Puts a new index of n rows in folder's place, as IndexCommand does. */
    private void swapIn(Path folder, int n) throws IOException {
        Path tmp = AtomicFiles.temporaryFolderBeside(folder);
        exact(tmp, n);
        AtomicFiles.replaceFolder(tmp, folder);
    }

    /** The open that read the old index's first file and then the new one's fails ("rebuild it"): tried again. */
    @Test
    void anOpenThatFailedAcrossASwapIsTriedAgainAndGivesTheNewIndex() throws IOException {
        Path folder = dir.resolve("idx");
        exact(folder, 5);
        AtomicInteger calls = new AtomicInteger();
        try (DescriptorIndex idx = IndexSwaps.open(folder, f -> {
            if (calls.incrementAndGet() == 1) {
                swapIn(f, 7);
                throw new IOException(f + ": descriptors.npy has 5 rows but ids.txt has 7 ids; rebuild it");
            }
            return ExactIndex.load(f);
        })) {
            assertEquals(2, calls.get());
            assertEquals(7, idx.size(), "the new index");
            assertEquals("r6", idx.id(6));
        }
    }

    /** An open that succeeded while the folder was swapped (its files may mix both) is closed and made again. */
    @Test
    void anIndexOpenedAcrossASwapIsClosedAndOpenedAgain() throws IOException {
        Path folder = dir.resolve("idx");
        exact(folder, 5);
        List<ExactIndex> opened = new ArrayList<>();
        DescriptorIndex idx = IndexSwaps.open(folder, f -> {
            ExactIndex e = ExactIndex.load(f);
            opened.add(e);
            if (opened.size() == 1) {
                swapIn(f, 9);
            }
            return e;
        });
        try (idx) {
            assertEquals(2, opened.size());
            assertSame(opened.get(1), idx);
            assertEquals(9, idx.size());
            // the first, read across the swap, was closed
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor q = Tensor.of(new float[] {1, 0, 0, 0}, 1, 4);
                assertThrows(IllegalStateException.class, () -> opened.get(0).search(q, 1));
            }
        }
    }

    /**
     * Two swaps during one open, the second folder made on the inode the first swap freed (ext4
     * reuses a deleted folder's inode at once): the folder is not the one the open began with,
     * though its file key is, and the open that read the old ids and the newest descriptors is
     * tried again.
     */
    @Test
    void twoSwapsOnAReusedInodeAreSeenAsSwaps() throws IOException {
        Path folder = dir.resolve("idx");
        exact(folder, 4);
        swapIn(folder, 5); // ext4 then alternates two inodes: the folder after next has this one's
        Files.setLastModifiedTime(folder, java.nio.file.attribute.FileTime.fromMillis(
                System.currentTimeMillis() - 3_600_000)); // written an hour ago
        Object key = Files.readAttributes(folder, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        AtomicInteger calls = new AtomicInteger();
        boolean[] reused = new boolean[1];
        try (DescriptorIndex idx = IndexSwaps.open(folder, f -> {
            if (calls.incrementAndGet() == 1) {
                // swaps until one lands on the first folder's inode (at the second on ext4, unless other
                // processes take the freed inodes meanwhile)
                for (int i = 0; i < 40 && !reused[0]; i++) {
                    swapIn(f, 6 + i);
                    reused[0] = key != null && key.equals(Files.readAttributes(f,
                            java.nio.file.attribute.BasicFileAttributes.class).fileKey());
                }
                throw new IOException(f + ": ids.txt has 5 ids but descriptors.npy has 7 rows; rebuild it");
            }
            return ExactIndex.load(f);
        })) {
            org.junit.jupiter.api.Assumptions.assumeTrue(reused[0], "this file system gave no folder the old inode");
            assertEquals(2, calls.get(), "tried again");
            try (ExactIndex newest = ExactIndex.load(folder)) {
                assertEquals(newest.size(), idx.size(), "the newest index");
                assertEquals(newest.ids(), idx.ids());
            }
        }
    }

    /** Two folders on one inode (the second made after the first was deleted) are told apart by their times. */
    @Test
    void aFolderOnAReusedInodeIsAnotherFolder() {
        java.nio.file.attribute.FileTime made = java.nio.file.attribute.FileTime.fromMillis(1_000_000);
        java.nio.file.attribute.FileTime later = java.nio.file.attribute.FileTime.fromMillis(2_000_000);
        assertEquals(IndexSwaps.identity(folderAttributes("ino=7", made)),
                IndexSwaps.identity(folderAttributes("ino=7", made)));
        assertTrue(!IndexSwaps.identity(folderAttributes("ino=7", made)).equals(
                IndexSwaps.identity(folderAttributes("ino=7", later))), "the same key, made later: another folder");
    }

    /** A folder's attributes: its key, made and last changed at {@code time}. */
    private static java.nio.file.attribute.BasicFileAttributes folderAttributes(Object key,
            java.nio.file.attribute.FileTime time) {
        return new java.nio.file.attribute.BasicFileAttributes() {
            @Override
            public java.nio.file.attribute.FileTime lastModifiedTime() {
                return time;
            }

            @Override
            public java.nio.file.attribute.FileTime lastAccessTime() {
                return time;
            }

            @Override
            public java.nio.file.attribute.FileTime creationTime() {
                return time;
            }

            @Override
            public boolean isRegularFile() {
                return false;
            }

            @Override
            public boolean isDirectory() {
                return true;
            }

            @Override
            public boolean isSymbolicLink() {
                return false;
            }

            @Override
            public boolean isOther() {
                return false;
            }

            @Override
            public long size() {
                return 4096;
            }

            @Override
            public Object fileKey() {
                return key;
            }
        };
    }

    /** Between the swap's two renames there is no folder, only dir4j's temporary folders beside it: waited for. */
    @Test
    void aFolderMissingBetweenTheRenamesIsWaitedFor() throws IOException {
        Path folder = dir.resolve("idx");
        exact(folder, 3);
        Path aside = dir.resolve(".idx.dir4j-0abc.tmp");
        Files.move(folder, aside, StandardCopyOption.ATOMIC_MOVE);
        AtomicInteger calls = new AtomicInteger();
        try (DescriptorIndex idx = IndexSwaps.open(folder, f -> {
            if (calls.incrementAndGet() == 1) {
                throw new NoSuchFileException(f.toString());
            }
            if (Files.exists(aside)) { // the second rename, done by the next try: that try saw the folder appear
                Files.move(aside, f, StandardCopyOption.ATOMIC_MOVE);
            }
            return ExactIndex.load(f);
        })) {
            assertEquals(3, calls.get(), "missing, appearing, there");
            assertEquals(3, idx.size());
        }
    }

    /** A failure with the folder unchanged, or absent with nothing beside it, is thrown at once. */
    @Test
    void otherFailuresAreThrownAtOnce() throws IOException {
        Path folder = dir.resolve("idx");
        exact(folder, 3);
        AtomicInteger calls = new AtomicInteger();
        IOException damaged = new IOException("damaged");
        assertSame(damaged, assertThrows(IOException.class, () -> IndexSwaps.open(folder, f -> {
            calls.incrementAndGet();
            throw damaged;
        })));
        assertEquals(1, calls.get());
        Path absent = dir.resolve("absent");
        long t0 = System.nanoTime();
        NoSuchFileException none = new NoSuchFileException(absent.toString());
        assertSame(none, assertThrows(NoSuchFileException.class, () -> IndexSwaps.open(absent, f -> {
            calls.incrementAndGet();
            throw none;
        })));
        assertEquals(2, calls.get());
        assertTrue(System.nanoTime() - t0 < IndexSwaps.PAUSE_MS * 1_000_000 * IndexSwaps.RETRIES / 2,
                "not waited for");
        // a swap that never ends: the last failure after the retries
        AtomicInteger swaps = new AtomicInteger();
        assertThrows(IOException.class, () -> IndexSwaps.open(folder, f -> {
            swapIn(f, 3 + swaps.incrementAndGet());
            throw new IOException("always mixed");
        }));
        assertEquals(IndexSwaps.RETRIES + 1, swaps.get());
    }

    /**
     * A build killed between its renames leaves the folder missing, the old index set aside and its
     * replacement beside it: the open, after waiting for a swap that never ends, says where the
     * index is and how to get it back. Through a link to the folder too (the replacement and the
     * index set aside are beside the folder it leads to).
     */
    @Test
    void anIndexSetAsideByAKilledBuildIsNamed() throws IOException {
        Path far = Files.createDirectories(dir.resolve("far"));
        Path folder = far.resolve("idx");
        exact(folder, 3);
        Path link = Files.createSymbolicLink(dir.resolve("idx"), folder);
        Path aside = far.resolve(".idx.dir4j-0abc.old");
        Files.move(folder, aside, StandardCopyOption.ATOMIC_MOVE);
        Files.createDirectories(far.resolve(".idx.dir4j-0def.tmp"));
        for (Path p : List.of(folder, link)) {
            AtomicInteger calls = new AtomicInteger();
            NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> IndexSwaps.open(p, f -> {
                calls.incrementAndGet();
                return ExactIndex.load(f);
            }));
            assertEquals(IndexSwaps.RETRIES + 1, calls.get(), p + ": waited for, the replacement beside it");
            assertTrue(e.getMessage().contains("left the index set aside as " + aside)
                    && e.getMessage().contains("the next `dir4j index` on this folder puts it back"), e.getMessage());
        }
    }

    /** An HNSW append (the index copied, extended, renamed into place) during an open: the open gives the new index. */
    @Test
    void anHnswAppendDuringAnOpenIsMetByOpeningAgain() throws IOException {
        Path h = dir.resolve("h");
        Object[] identities = new Object[2];
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor rows = Tensor.of(HnswIndexTest.unitRows(new Random(1), 20, 4), 20, 4);
            HnswIndex.build(h, rows.slice(0, 0, 10), HnswIndexTest.ids(10), HnswIndex.Options.DEFAULTS).close();
            AtomicInteger calls = new AtomicInteger();
            try (HnswIndex idx = IndexSwaps.open(h, f -> {
                if (calls.incrementAndGet() == 1) {
                    identities[0] = IndexSwaps.identity(f);
                    HnswIndex.append(f, rows.slice(0, 10, 20), HnswIndexTest.ids(20).subList(10, 20), 1).close();
                    throw new IOException("mixed");
                }
                return HnswIndex.openOnce(f);
            })) {
                assertEquals(2, calls.get());
                assertEquals(20, idx.size());
                assertEquals(HnswIndexTest.ids(20), idx.ids());
                identities[1] = IndexSwaps.identity(h);
                assertTrue(!identities[0].equals(identities[1]), "the appended index is another folder");
            }
        }
    }
}
