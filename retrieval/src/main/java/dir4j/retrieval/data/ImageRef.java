package dir4j.retrieval.data;

import dir4j.retrieval.image.BoundingBox;
import java.nio.file.Path;
import java.util.Objects;

/**
 * One image to describe: its id (what output id lists and rankings call it), its file, and an
 * optional query region to crop before resizing.
 *
 * @param id   the image's name as its list or ground truth spells it
 * @param path the file to read
 * @param crop the region to keep (revisited protocol queries), or null for the whole image
 */
public record ImageRef(String id, Path path, BoundingBox crop) {
    public ImageRef {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(path, "path");
        if (id.contains("\n") || id.contains("\r")) {
            throw new IllegalArgumentException("image id must be one line: " + id.replace("\n", "\\n"));
        }
    }

    /** The whole image. */
    public static ImageRef of(String id, Path path) {
        return new ImageRef(id, path, null);
    }
}
