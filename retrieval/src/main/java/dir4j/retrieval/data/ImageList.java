package dir4j.retrieval.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain image list, the reference's {@code ImageList}: one image path per line. Blank lines
 * and lines starting with {@code #} are skipped; surrounding spaces are trimmed; relative paths
 * are resolved against a root folder (by default the folder holding the list). The id of each
 * image is its path as the list writes it. The list is UTF-8 text; a missing list, a directory or
 * text that is not UTF-8 fails with a message naming the file ({@link InputFiles}).
 */
public final class ImageList {
    private ImageList() {}

    /** Reads the list, resolving against the list's folder, and checks every file exists. */
    public static List<ImageRef> read(Path listFile) throws IOException {
        return read(listFile, null, true);
    }

    /**
     * Reads the list.
     *
     * @param root       folder relative paths are resolved against (null: the list's folder)
     * @param checkFiles fail, naming every missing file with its line number, unless all exist
     */
    public static List<ImageRef> read(Path listFile, Path root, boolean checkFiles) throws IOException {
        Path base = root != null ? root : listFile.toAbsolutePath().getParent();
        List<ListFiles.Line> lines = ListFiles.contentLines(listFile);
        List<ImageRef> refs = new ArrayList<>(lines.size());
        for (ListFiles.Line line : lines) {
            refs.add(ImageRef.of(line.text(), ListFiles.resolve(base, line.text(), listFile, line)));
        }
        if (refs.isEmpty()) {
            throw new IOException(listFile + ": the list names no image");
        }
        if (checkFiles) {
            ListFiles.checkFilesExist(listFile, refs, lines);
        }
        return refs;
    }
}
