package dir4j.retrieval.extract;

import dir4j.engine.io.AtomicFiles;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The resumable on-disk state of one extraction: {@code <out>.parts/} holds a manifest (what
 * the parts were made from) and, per chunk of images, {@code part-NNNNNN.ids.txt} (the ids of
 * its rows), {@code part-NNNNNN.skipped.txt} (images left out, when any) and
 * {@code part-NNNNNN.npy} (its descriptors, rows × D float32). Every file is written to a
 * temporary name and renamed, and the .npy last, so a chunk whose .npy exists is complete.
 *
 * <p>At the end the parts are concatenated into {@code <out>} (streamed, then renamed into
 * place, so the final file appears whole or not at all), the ids into {@code <out>.ids.txt}
 * ({@code .npy} replaced), skipped images into {@code .skipped.txt}, and the parts removed.
 */
final class PartStore {
    static final String MANIFEST = "manifest.txt";
    private static final String HEADER = "dir4j extraction parts v1";
    private static final Pattern OWN_FILE = Pattern.compile("part-\\d{6}\\.(npy|ids\\.txt|skipped\\.txt)|manifest\\.txt"
            + "|.*\\.tmp");

    private final Path out;
    private final Path dir;
    private final Map<String, String> manifest;
    private final int dimension;
    private final PrintStream log;
    private final ExtractionOptions.Remedies remedies;

    /**
     * @param manifest what makes the parts valid for this run (compared on resume)
     * @param remedies what the refusal to mix in a different extraction's parts may suggest
     */
    PartStore(Path out, Map<String, String> manifest, int dimension, PrintStream log,
              ExtractionOptions.Remedies remedies) {
        this.out = out.toAbsolutePath();
        this.dir = this.out.resolveSibling(this.out.getFileName() + ".parts");
        this.manifest = new LinkedHashMap<>(manifest);
        this.dimension = dimension;
        this.log = log;
        this.remedies = remedies;
    }

    Path dir() {
        return dir;
    }

    /** The ids file beside a descriptor file: {@code feats.npy} → {@code feats.ids.txt}. */
    static Path idsFile(Path npy) {
        return sibling(npy, ".ids.txt");
    }

    /** The skipped-images report beside a descriptor file: {@code feats.skipped.txt}. */
    static Path skippedFile(Path npy) {
        return sibling(npy, ".skipped.txt");
    }

    private static Path sibling(Path npy, String suffix) {
        String name = npy.getFileName().toString();
        String stem = name.endsWith(".npy") ? name.substring(0, name.length() - 4) : name;
        return npy.resolveSibling(stem + suffix);
    }

    /**
     * Prepares the parts folder: with {@code resume}, keeps parts whose manifest equals this
     * run's (and fails, saying what differs, when it does not); without, deletes any.
     */
    void open(boolean resume) throws IOException {
        if (Files.isDirectory(dir)) {
            Path m = dir.resolve(MANIFEST);
            if (!resume) {
                deleteParts();
            } else if (Files.isRegularFile(m)) {
                Map<String, String> old = readManifest(m);
                List<String> diff = new ArrayList<>();
                for (String k : manifest.keySet()) {
                    if (!manifest.get(k).equals(old.get(k))) {
                        diff.add(k + " " + change(old.get(k), manifest.get(k)));
                    }
                }
                if (!diff.isEmpty() && !holdsParts()) {
                    deleteParts(); // a manifest alone (stopped before its first part): nothing to mix in or lose
                } else if (!diff.isEmpty()) {
                    throw new IOException(dir + " holds parts of a different extraction: " + String.join("; ", diff)
                            + ". Delete the folder" + (remedies.startOver() == null ? ""
                            : " or rerun with " + remedies.startOver()) + " to start over");
                }
            } else {
                // a crash before the manifest was written: nothing reusable
                deleteParts();
            }
        }
        Files.createDirectories(dir);
        Path m = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(m)) {
            StringBuilder s = new StringBuilder(HEADER).append('\n');
            manifest.forEach((k, v) -> s.append(k).append('=').append(v.replace('\n', ' ')).append('\n'));
            writeAtomically(m, s.toString().getBytes(StandardCharsets.UTF_8));
        }
    }

    private static Map<String, String> readManifest(Path m) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(m, StandardCharsets.UTF_8)) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                out.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return out;
    }

    /**
     * "(was A, now B)" for two manifest values, each shown from a little before their first
     * difference: long values (settings, a network with its weights' hash) mostly differ far from
     * their start, and cutting both at the same length would print the same text twice.
     */
    static String change(String was, String now) {
        if (was == null) {
            return "(was absent, now " + clip(now, 0) + ")";
        }
        int p = 0;
        while (p < Math.min(was.length(), now.length()) && was.charAt(p) == now.charAt(p)) {
            p++;
        }
        int from = p > 30 ? p - 20 : 0;
        return "(was " + clip(was, from) + ", now " + clip(now, from) + ")";
    }

    private static String clip(String s, int from) {
        String t = from > 0 ? "..." + s.substring(from) : s;
        return t.length() > 80 ? t.substring(0, 77) + "..." : t;
    }

    private Path npy(int chunk) {
        return dir.resolve(String.format("part-%06d.npy", chunk));
    }

    private Path ids(int chunk) {
        return dir.resolve(String.format("part-%06d.ids.txt", chunk));
    }

    private Path skipped(int chunk) {
        return dir.resolve(String.format("part-%06d.skipped.txt", chunk));
    }

    /**
     * Whether chunk {@code k} is complete: its .npy exists, reads back, and has as many rows as
     * expected ids (an inconsistent chunk is redone).
     */
    boolean isDone(int chunk, int images) throws IOException {
        if (!Files.isRegularFile(npy(chunk)) || !Files.isRegularFile(ids(chunk))) {
            return false;
        }
        int rows = readIds(ids(chunk)).size();
        int left = Files.isRegularFile(skipped(chunk)) ? readSkipped(skipped(chunk)).size() : 0;
        if (rows + left != images) {
            log.println("dir4j extract: " + npy(chunk).getFileName() + " accounts for " + (rows + left) + " of "
                    + images + " images; redoing it");
            return false;
        }
        try (Tensor t = Npy.read(npy(chunk))) {
            if (t.dtype() != DType.FLOAT32 || t.rank() != 2 || t.shape(0) != rows || t.shape(1) != dimension) {
                log.println("dir4j extract: " + npy(chunk).getFileName() + " is " + t + ", not " + rows + "x"
                        + dimension + " float32; redoing it");
                return false;
            }
        } catch (IOException | IllegalArgumentException e) {
            log.println("dir4j extract: " + npy(chunk).getFileName() + " is unreadable (" + e.getMessage()
                    + "); redoing it");
            return false;
        }
        return true;
    }

    /** Stores a finished chunk: rows × D descriptors, their ids, and the images left out. */
    void write(int chunk, float[] rows, List<String> rowIds, List<FeatureExtractor.Skipped> left) throws IOException {
        if (rows.length != rowIds.size() * dimension) {
            throw new IllegalArgumentException(rows.length + " values for " + rowIds.size() + " rows of " + dimension);
        }
        if (!left.isEmpty()) {
            StringBuilder s = new StringBuilder();
            for (FeatureExtractor.Skipped k : left) {
                s.append(k.id()).append('\t').append(k.path()).append('\t')
                        .append(k.reason().replace('\n', ' ').replace('\t', ' ')).append('\n');
            }
            writeAtomically(skipped(chunk), s.toString().getBytes(StandardCharsets.UTF_8));
        } else {
            Files.deleteIfExists(skipped(chunk));
        }
        writeAtomically(ids(chunk), lines(rowIds));
        try (Tensor t = Tensor.of(rows, rowIds.size(), dimension)) {
            Npy.write(npy(chunk), t);
        }
    }

    /**
     * Concatenates chunks 0..chunks-1 into the final files and removes the parts.
     *
     * @return ids of all rows, and the skipped images
     */
    Assembled assemble(int chunks) throws IOException {
        List<String> allIds = new ArrayList<>();
        List<FeatureExtractor.Skipped> allSkipped = new ArrayList<>();
        for (int k = 0; k < chunks; k++) {
            allIds.addAll(readIds(ids(k)));
            if (Files.isRegularFile(skipped(k))) {
                allSkipped.addAll(readSkipped(skipped(k)));
            }
        }
        try (Npy.Writer w = Npy.Writer.create(out, DType.FLOAT32, allIds.size(), dimension)) {
            long rows = 0;
            for (int k = 0; k < chunks; k++) {
                try (Tensor t = Npy.read(npy(k))) {
                    rows += t.shape(0);
                    if (rows > allIds.size() || t.rank() != 2 || t.shape(1) != dimension) {
                        throw new IOException(npy(k) + " is " + t + "; the parts do not add up to " + allIds.size()
                                + " rows of " + dimension);
                    }
                    w.write(t);
                }
            }
            if (rows != allIds.size()) {
                throw new IOException(dir + ": parts hold " + rows + " rows but " + allIds.size() + " ids");
            }
            w.finish();
        }
        writeAtomically(idsFile(out), lines(allIds));
        Path skippedReport = skippedFile(out);
        if (allSkipped.isEmpty()) {
            Files.deleteIfExists(skippedReport);
        } else {
            StringBuilder s = new StringBuilder("# images left out of " + out.getFileName() + ": id, file, reason\n");
            for (FeatureExtractor.Skipped k : allSkipped) {
                s.append(k.id()).append('\t').append(k.path()).append('\t').append(k.reason()).append('\n');
            }
            writeAtomically(skippedReport, s.toString().getBytes(StandardCharsets.UTF_8));
        }
        deleteParts();
        return new Assembled(allIds, allSkipped);
    }

    record Assembled(List<String> ids, List<FeatureExtractor.Skipped> skipped) {}

    /** Whether a finished part (its descriptors) is in the folder. */
    private boolean holdsParts() throws IOException {
        try (var files = Files.list(dir)) {
            return files.anyMatch(f -> f.getFileName().toString().matches("part-\\d{6}\\.npy"));
        }
    }

    private void deleteParts() throws IOException {
        if (!Files.isDirectory(dir)) {
            return;
        }
        List<Path> foreign = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            for (Path p : s) {
                if (Files.isRegularFile(p) && OWN_FILE.matcher(p.getFileName().toString()).matches()) {
                    Files.delete(p);
                } else {
                    foreign.add(p);
                }
            }
        }
        if (foreign.isEmpty()) {
            Files.delete(dir);
        } else {
            log.println("dir4j extract: left " + dir + " in place: it holds files that are not parts "
                    + foreign.stream().map(p -> p.getFileName().toString()).toList());
        }
    }

    private static List<String> readIds(Path p) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(p, StandardCharsets.UTF_8)) {
            out.add(line);
        }
        return out;
    }

    private static List<FeatureExtractor.Skipped> readSkipped(Path p) throws IOException {
        List<FeatureExtractor.Skipped> out = new ArrayList<>();
        for (String line : Files.readAllLines(p, StandardCharsets.UTF_8)) {
            String[] f = line.split("\t", 3);
            if (f.length == 3) {
                out.add(new FeatureExtractor.Skipped(f[0], Path.of(f[1]), f[2]));
            }
        }
        return out;
    }

    private static byte[] lines(List<String> items) {
        StringBuilder s = new StringBuilder();
        for (String i : items) {
            s.append(i).append('\n');
        }
        return s.toString().getBytes(StandardCharsets.UTF_8);
    }

    static void writeAtomically(Path file, byte[] data) throws IOException {
        AtomicFiles.write(file, data);
    }

    @Override
    public String toString() {
        return "parts of " + out + " in " + dir;
    }
}
