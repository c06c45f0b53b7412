package dir4j.retrieval.extract;

import dir4j.engine.io.AtomicFiles;
import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.zip.CRC32;

/**
 * The resumable on-disk state of one extraction: {@code <out>.parts/} holds a manifest (what
 * the parts were made from) and, per chunk of images, {@code part-NNNNNN.ids.txt} (the ids of
 * its rows), {@code part-NNNNNN.skipped.txt} (images left out, when any),
 * {@code part-NNNNNN.crc32} (the CRC-32 of its descriptors' float32 data) and
 * {@code part-NNNNNN.npy} (its descriptors, rows × D float32). Every file is written to a
 * temporary name and renamed, and the .npy last (an earlier .npy of the chunk is deleted
 * first), so a chunk whose .npy exists is complete. A part is reused only when its ids are the
 * ones the current list gives its chunk and its data still match their checksum.
 *
 * <p>At the end the parts are joined into {@code <out>}, the ids into {@code <out>.ids.txt}
 * ({@code .npy} replaced) and skipped images into {@code .skipped.txt} (see {@link #assemble}
 * for the order that keeps the pair consistent), and the parts removed.
 *
 * <p>The caller holds the output's {@link dir4j.engine.io.OutputLock} throughout: nothing here
 * guards against a second writer.
 */
final class PartStore {
    static final String MANIFEST = "manifest.txt";
    private static final String HEADER = "dir4j extraction parts v1";
    private static final Pattern OWN_FILE = Pattern.compile("part-\\d{6}\\.(npy|ids\\.txt|skipped\\.txt|crc32)"
            + "|manifest\\.txt|assembled\\.(npy|ids\\.txt|skipped\\.txt)|.*\\.tmp");

    /**
     * Called before each step that writes or publishes a file (a seam for tests to simulate a
     * full disk or a kill at that point).
     */
    interface Fault {
        Fault NONE = (step, file) -> {};

        void at(String step, Path file) throws IOException;
    }

    private final Path out;
    private final Path dir;
    private final Map<String, String> manifest;
    private final int dimension;
    private final PrintStream log;
    private final ExtractionOptions.Remedies remedies;
    Fault fault = Fault.NONE;

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
            writeAtomically(m, s.toString().getBytes(StandardCharsets.UTF_8), "writing the parts' manifest");
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

    private Path checksum(int chunk) {
        return dir.resolve(String.format("part-%06d.crc32", chunk));
    }

    /**
     * Deletes the temporary files that writers killed mid-write left: beside the output (its
     * .npy, ids file and skipped-images report) and in the parts folder. Only for the holder of
     * the output's lock: a live writer's temporary file looks the same.
     *
     * @return the files deleted
     */
    List<Path> removeLeftovers() throws IOException {
        List<Path> removed = new ArrayList<>();
        for (Path target : List.of(out, idsFile(out), skippedFile(out), dir)) {
            removed.addAll(AtomicFiles.removeLeftovers(target));
        }
        removed.addAll(AtomicFiles.removeTemporariesIn(dir)); // the parts folder is this store's own
        return removed;
    }

    /**
     * Whether chunk {@code k} is complete and can be reused: its .npy exists and reads back as
     * float32 rows × D, its ids and skipped images are exactly {@code expectedIds} (the ids the
     * current list gives the chunk, in order), and its data match the CRC-32 recorded when the
     * part was written. A part that fails any check is redone, with a note naming it.
     */
    boolean isDone(int chunk, List<String> expectedIds) throws IOException {
        if (!Files.isRegularFile(npy(chunk)) || !Files.isRegularFile(ids(chunk))) {
            return false;
        }
        String name = npy(chunk).getFileName().toString();
        List<String> rowIds = readIds(ids(chunk));
        List<String> left = new ArrayList<>();
        if (Files.isRegularFile(skipped(chunk))) {
            readSkipped(skipped(chunk)).forEach(k -> left.add(k.id()));
        }
        int rows = rowIds.size();
        if (rows + left.size() != expectedIds.size()) {
            log.println("dir4j extract: " + name + " accounts for " + (rows + left.size()) + " of "
                    + expectedIds.size() + " images; redoing it");
            return false;
        }
        // every id of the chunk, in order, is either the next row's or the next skipped image's
        int r = 0;
        int k = 0;
        for (int i = 0; i < expectedIds.size(); i++) {
            String want = expectedIds.get(i);
            if (r < rows && rowIds.get(r).equals(want)) {
                r++;
            } else if (k < left.size() && left.get(k).equals(want)) {
                k++;
            } else {
                String found = r < rows ? "'" + rowIds.get(r) + "'"
                        : k < left.size() ? "'" + left.get(k) + "'" : "nothing";
                log.println("dir4j extract: " + name + " holds the ids of other images (" + found + " where the list "
                        + "has '" + want + "', image " + (i + 1) + " of the part); redoing it");
                return false;
            }
        }
        if (!Files.isRegularFile(checksum(chunk))) {
            log.println("dir4j extract: " + name + " has no checksum (" + checksum(chunk).getFileName()
                    + "); redoing it");
            return false;
        }
        String recorded = Files.readString(checksum(chunk), StandardCharsets.UTF_8).strip();
        try (Tensor t = Npy.read(npy(chunk))) {
            if (t.dtype() != DType.FLOAT32 || t.rank() != 2 || t.shape(0) != rows || t.shape(1) != dimension) {
                log.println("dir4j extract: " + name + " is " + t + ", not " + rows + "x" + dimension
                        + " float32; redoing it");
                return false;
            }
            String actual = crc32(t.toFloatArray());
            if (!actual.equals(recorded)) {
                log.println("dir4j extract: " + name + " does not match its checksum (CRC-32 " + actual
                        + ", recorded " + recorded + "): its data changed since it was written; redoing it");
                return false;
            }
        } catch (IOException | IllegalArgumentException e) {
            log.println("dir4j extract: " + name + " is unreadable (" + e.getMessage() + "); redoing it");
            return false;
        }
        return true;
    }

    /**
     * The CRC-32 (8 hex digits) of float32 values as stored in a .npy file (little-endian):
     * cheap next to describing the images, and it catches flipped bits and swapped parts.
     */
    static String crc32(float[] values) {
        CRC32 crc = new CRC32();
        ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; ) {
            b.clear();
            int n = Math.min(values.length - i, b.capacity() / Float.BYTES);
            b.asFloatBuffer().put(values, i, n);
            b.limit(n * Float.BYTES);
            crc.update(b);
            i += n;
        }
        return String.format(Locale.ROOT, "%08x", crc.getValue());
    }

    /** Stores a finished chunk: rows × D descriptors, their ids, and the images left out. */
    void write(int chunk, float[] rows, List<String> rowIds, List<FeatureExtractor.Skipped> left) throws IOException {
        if (rows.length != rowIds.size() * dimension) {
            throw new IllegalArgumentException(rows.length + " values for " + rowIds.size() + " rows of " + dimension);
        }
        // an earlier .npy of the chunk goes first: until the new one is in place the chunk is unfinished
        naming(npy(chunk), "removing an earlier version of the part", () -> Files.deleteIfExists(npy(chunk)));
        if (!left.isEmpty()) {
            StringBuilder s = new StringBuilder();
            for (FeatureExtractor.Skipped k : left) {
                s.append(k.id()).append('\t').append(k.path()).append('\t')
                        .append(k.reason().replace('\n', ' ').replace('\t', ' ')).append('\n');
            }
            writeAtomically(skipped(chunk), s.toString().getBytes(StandardCharsets.UTF_8),
                    "writing a part's skipped images");
        } else {
            naming(skipped(chunk), "removing a part's earlier skipped images",
                    () -> Files.deleteIfExists(skipped(chunk)));
        }
        writeAtomically(ids(chunk), lines(rowIds), "writing a part's ids");
        writeAtomically(checksum(chunk), (crc32(rows) + "\n").getBytes(StandardCharsets.UTF_8),
                "writing a part's checksum");
        naming(npy(chunk), "writing a part's descriptors", () -> {
            fault.at("write", npy(chunk));
            try (Tensor t = Tensor.of(rows, rowIds.size(), dimension)) {
                Npy.write(npy(chunk), t);
            }
        });
    }

    /**
     * Concatenates chunks 0..chunks-1 into the final files and removes the parts.
     *
     * <p>The .npy and its ids file cannot be replaced together in one step, so the order keeps
     * any kill harmless: everything is first written in full inside the parts folder
     * ({@code assembled.*}: a full disk stops the run there, leaving the previous files
     * untouched); then, by renames only, the previous .npy is deleted, the ids file and the
     * skipped-images report are put in place, and the .npy comes last. So whenever
     * {@code <out>} exists, the ids file beside it is its own; a kill in between leaves no
     * {@code <out>} (never a new .npy beside stale ids, or the reverse), and the parts, kept
     * until the end, let a rerun finish the job without describing an image again. Readers that
     * take an existing .npy as finished ({@code dir4j eval --descriptors-dir}) are right to.
     *
     * @param publishEmpty whether to write the files when every image was left out (when not,
     *                     an earlier .npy and ids file are deleted and only the report is written:
     *                     an empty file would pass for descriptors)
     * @return ids of all rows, and the skipped images
     */
    Assembled assemble(int chunks, boolean publishEmpty) throws IOException {
        List<String> allIds = new ArrayList<>();
        List<FeatureExtractor.Skipped> allSkipped = new ArrayList<>();
        for (int k = 0; k < chunks; k++) {
            allIds.addAll(readIds(ids(k)));
            if (Files.isRegularFile(skipped(k))) {
                allSkipped.addAll(readSkipped(skipped(k)));
            }
        }
        boolean publish = publishEmpty || !allIds.isEmpty() || allSkipped.isEmpty();
        Path idsOut = idsFile(out);
        Path skippedOut = skippedFile(out);
        Path joinedNpy = dir.resolve("assembled.npy");
        Path joinedIds = dir.resolve("assembled.ids.txt");
        Path joinedSkipped = dir.resolve("assembled.skipped.txt");
        String joining = "joining the parts into " + out.getFileName();
        if (publish) {
            naming(joinedNpy, joining, () -> {
                fault.at("write", joinedNpy);
                try (Npy.Writer w = Npy.Writer.create(joinedNpy, DType.FLOAT32, allIds.size(), dimension)) {
                    long rows = 0;
                    for (int k = 0; k < chunks; k++) {
                        try (Tensor t = Npy.read(npy(k))) {
                            rows += t.shape(0);
                            if (rows > allIds.size() || t.rank() != 2 || t.shape(1) != dimension) {
                                throw new IOException(npy(k) + " is " + t + "; the parts do not add up to "
                                        + allIds.size() + " rows of " + dimension);
                            }
                            w.write(t);
                        }
                    }
                    if (rows != allIds.size()) {
                        throw new IOException(dir + ": parts hold " + rows + " rows but " + allIds.size() + " ids");
                    }
                    w.finish();
                }
            });
            writeAtomically(joinedIds, lines(allIds), joining);
        }
        if (!allSkipped.isEmpty()) {
            StringBuilder s = new StringBuilder("# images left out of " + out.getFileName() + ": id, file, reason\n");
            for (FeatureExtractor.Skipped k : allSkipped) {
                s.append(k.id()).append('\t').append(k.path()).append('\t').append(k.reason()).append('\n');
            }
            writeAtomically(joinedSkipped, s.toString().getBytes(StandardCharsets.UTF_8), joining);
        }
        // from here on renames and deletions only, the .npy last (see above)
        // an output given as a link is deleted and replaced where it points (AtomicFiles.throughLinks), the
        // link kept: deleting the link itself would leave the old file, unreferenced, at the far end
        naming(out, "removing the previous descriptors", () -> Files.deleteIfExists(AtomicFiles.throughLinks(out)));
        if (publish) {
            naming(idsOut, "putting the ids in place", () -> {
                fault.at("publish", idsOut);
                AtomicFiles.replace(joinedIds, idsOut);
            });
        } else {
            naming(idsOut, "removing the previous ids",
                    () -> Files.deleteIfExists(AtomicFiles.throughLinks(idsOut)));
        }
        if (allSkipped.isEmpty()) {
            naming(skippedOut, "removing the previous report",
                    () -> Files.deleteIfExists(AtomicFiles.throughLinks(skippedOut)));
        } else {
            naming(skippedOut, "putting the report in place", () -> AtomicFiles.replace(joinedSkipped, skippedOut));
        }
        if (publish) {
            naming(out, "putting the descriptors in place", () -> {
                fault.at("publish", out);
                AtomicFiles.replace(joinedNpy, out);
            });
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

    private void writeAtomically(Path file, byte[] data, String doing) throws IOException {
        naming(file, doing, () -> {
            fault.at("write", file);
            AtomicFiles.write(file, data);
        });
    }

    private interface IoStep {
        void run() throws IOException;
    }

    /**
     * Runs a step that writes {@code file}, making its failure name the file: a full disk
     * surfaces from the channel as a bare "No space left on device", with no file at all (the
     * one it names would be a temporary file anyway).
     */
    private void naming(Path file, String doing, IoStep step) throws IOException {
        try {
            step.run();
        } catch (IOException e) {
            throw naming(file, doing, e);
        }
    }

    /**
     * {@code e} as "{@code <file>: <reason> (<what was being done>...)}", unless it names its
     * file already (missing folders, permissions: the caller words those) or a file in
     * {@code file}'s folder.
     */
    IOException naming(Path file, String doing, IOException e) {
        String reason = e instanceof FileSystemException fs ? fs.getReason() : e.getMessage();
        if (e instanceof FileSystemException && (reason == null || e.getClass() != FileSystemException.class)) {
            return e;
        }
        if (reason == null || reason.isBlank()) {
            reason = e.getClass().getSimpleName();
        } else if (reason.contains(file.getParent().toString())) {
            return e; // names a file there already (a part that does not add up, say)
        }
        boolean full = reason.toLowerCase(Locale.ROOT).contains("no space left")
                || reason.toLowerCase(Locale.ROOT).contains("quota");
        String text = file + ": " + Character.toLowerCase(reason.charAt(0)) + reason.substring(1) + " (" + doing
                + (full ? "; free some space and rerun: the finished parts in " + dir + " are kept" : "") + ")";
        return new IOException(text, e);
    }

    @Override
    public String toString() {
        return "parts of " + out + " in " + dir;
    }
}
