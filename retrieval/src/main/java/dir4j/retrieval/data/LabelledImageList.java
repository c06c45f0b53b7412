package dir4j.retrieval.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A labelled image list, the reference's training format ({@code ImageListLabels}): one
 * {@code path label} per line. The label is the last whitespace-separated token and the path
 * everything before it (the reference splits on single spaces and takes the first two tokens;
 * the two agree for every line without spaces in its path). Class indices are given in order of
 * first appearance, as the reference's {@code find_and_list_classes}. The list is UTF-8 text, read
 * as {@link ImageList}'s (blank and {@code #} lines skipped; a missing list, a directory or text
 * that is not UTF-8 fails naming the file).
 *
 * @param images     the images, ids as written in the list
 * @param labels     each image's label
 * @param classes    the distinct labels, index = class id
 * @param classIndex each image's class id
 */
public record LabelledImageList(List<ImageRef> images, List<String> labels, List<String> classes, int[] classIndex) {
    public LabelledImageList {
        images = List.copyOf(images);
        labels = List.copyOf(labels);
        classes = List.copyOf(classes);
        classIndex = classIndex.clone();
    }

    @Override
    public int[] classIndex() {
        return classIndex.clone();
    }

    /** Reads the list, resolving against the list's folder, and checks every file exists. */
    public static LabelledImageList read(Path listFile) throws IOException {
        return read(listFile, null, true);
    }

    /**
     * Reads the list.
     *
     * @param root       folder relative paths are resolved against (null: the list's folder)
     * @param checkFiles fail, naming every missing file with its line number, unless all exist
     */
    public static LabelledImageList read(Path listFile, Path root, boolean checkFiles) throws IOException {
        Path base = root != null ? root : listFile.toAbsolutePath().getParent();
        List<ListFiles.Line> lines = ListFiles.contentLines(listFile);
        List<ImageRef> images = new ArrayList<>();
        List<String> labels = new ArrayList<>();
        List<String> malformed = new ArrayList<>();
        for (ListFiles.Line line : lines) {
            String t = line.text();
            int cut = lastWhitespace(t);
            if (cut < 0) {
                malformed.add("line " + line.number() + ": '" + t + "' has no label (expected 'path label')");
                continue;
            }
            String path = t.substring(0, cut).strip();
            images.add(ImageRef.of(path, ListFiles.resolve(base, path, listFile, line)));
            labels.add(t.substring(cut + 1).strip());
        }
        if (!malformed.isEmpty()) {
            throw new IOException(listFile + ": " + malformed.size() + " malformed line"
                    + (malformed.size() == 1 ? "" : "s") + ":" + ListFiles.listing(malformed));
        }
        if (images.isEmpty()) {
            throw new IOException(listFile + ": the list names no image");
        }
        if (checkFiles) {
            ListFiles.checkFilesExist(listFile, images, lines);
        }
        Map<String, Integer> index = new LinkedHashMap<>();
        int[] classIndex = new int[labels.size()];
        for (int i = 0; i < labels.size(); i++) {
            classIndex[i] = index.computeIfAbsent(labels.get(i), k -> index.size());
        }
        return new LabelledImageList(images, labels, new ArrayList<>(index.keySet()), classIndex);
    }

    /** The images of each class id, in list order. */
    public List<List<Integer>> imagesPerClass() {
        List<List<Integer>> out = new ArrayList<>();
        for (int c = 0; c < classes.size(); c++) {
            out.add(new ArrayList<>());
        }
        for (int i = 0; i < classIndex.length; i++) {
            out.get(classIndex[i]).add(i);
        }
        return Collections.unmodifiableList(out);
    }

    private static int lastWhitespace(String s) {
        for (int i = s.length() - 1; i >= 0; i--) {
            if (Character.isWhitespace(s.charAt(i))) {
                return i;
            }
        }
        return -1;
    }
}
