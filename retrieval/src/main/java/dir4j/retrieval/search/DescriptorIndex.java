package dir4j.retrieval.search;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * A searchable set of unit descriptors with ids, compared by dot product: the exact
 * {@link ExactIndex} or the approximate {@link HnswIndex}. Results are {@link Neighbours}, best
 * first, ties by lower row.
 */
public interface DescriptorIndex extends AutoCloseable {
    /** Descriptor dimension D. */
    int dimension();

    /** Number of descriptors (rows). */
    int size();

    /** The id of a row. */
    String id(int row);

    /** All ids in row order (read-only). */
    List<String> ids();

    /** The k most similar rows of each query row of a Q x D tensor, best first. */
    Neighbours search(dir4j.engine.Tensor queries, int k);

    @Override
    void close();

    /**
     * Opens an index folder written by {@link ExactIndex#save} ({@value ExactIndex#DESCRIPTORS}) or
     * {@link HnswIndex#build} ({@value HnswIndex#PROPERTIES}), telling them apart by their files.
     * An index that another process replaces meanwhile ({@code dir4j index --append} or
     * {@code --overwrite}) is opened whole, old or new: an open that overlapped the swap is tried
     * again.
     */
    static DescriptorIndex open(Path folder) throws IOException {
        return IndexSwaps.open(folder, f -> {
            if (Files.isRegularFile(f.resolve(HnswIndex.PROPERTIES))) {
                return HnswIndex.openOnce(f);
            }
            if (Files.isRegularFile(f.resolve(ExactIndex.DESCRIPTORS))) {
                return ExactIndex.load(f);
            }
            if (!Files.exists(f)) { // (a swap's folder beside it was waited for; one set aside is named)
                throw new IOException(f + ": no such index folder (dir4j index makes one)");
            }
            throw new NoSuchFileException(f.toString(), null, "not an index folder: expected "
                    + HnswIndex.PROPERTIES + " (hnsw) or " + ExactIndex.DESCRIPTORS + " (exact) in it");
        });
    }

    /**
     * Whether {@code folder}, missing, is in a swap's hands: a dir4j folder beside it (where a link
     * leads, when it is one) is the new index between a replacement's two renames
     * ({@code .<name>.dir4j-<random>.tmp}), which {@link #open} waits for, or the index a build or
     * append stopped between them set aside ({@code .old}), which {@link #open} names and the next
     * {@code dir4j index} puts back. A caller that checks for the folder before opening it leaves
     * such a folder to {@link #open} rather than calling it absent.
     */
    static boolean swapBeside(Path folder) {
        return IndexSwaps.swapBeside(folder);
    }

    /** The kind of index a folder holds ("hnsw", "exact"), or null when it holds none. */
    static String kind(Path folder) {
        if (Files.isRegularFile(folder.resolve(HnswIndex.PROPERTIES))) {
            return "hnsw";
        }
        return Files.isRegularFile(folder.resolve(ExactIndex.DESCRIPTORS)) ? "exact" : null;
    }
}
