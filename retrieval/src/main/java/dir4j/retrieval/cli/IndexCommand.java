package dir4j.retrieval.cli;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import dir4j.engine.io.Npy;
import dir4j.engine.io.OutputLock;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.search.DescriptorIndex;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.HnswIndex;
import dir4j.retrieval.search.IdsFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code dir4j index}: an exact or HNSW index of descriptors with their ids, in a folder. */
@Command(name = "index", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Build a search index of unit descriptors (N x D .npy, as dir4j extract or whiten write them) "
                + "with their ids, in a folder that dir4j search opens, or add descriptors to one (--append).",
            "exact: the descriptors and ids as they are (descriptors.npy, ids.txt), searched by blocked matrix "
                + "products. hnsw: an Apache Lucene index (KnnFloatVectorField, dot product) under lucene/, with "
                + "hnsw.properties and ids.txt: approximate, fast on large collections."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class IndexCommand extends ToolCommand {
    @Option(names = "--descriptors", required = true, paramLabel = "X.npy",
            description = "N x D float descriptors, one per row (unit vectors for hnsw).")
    Path descriptors;

    @Option(names = "--ids", paramLabel = "FILE",
            description = "One id per line for the rows, UTF-8: non-blank, without tabs; an id may repeat (blank lines at "
                    + "the end are ignored). Default: X.ids.txt beside the descriptors when it exists (dir4j extract "
                    + "writes it), else the row numbers 0, 1, ... (with --append, numbers continuing the index's: "
                    + "size, size + 1, ...)")
    Path ids;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "The index folder (a symbolic link "
            + "is followed: the index is built, replaced and grown where it points, and the link stays).")
    Path out;

    @Option(names = "--type", paramLabel = "exact|hnsw",
            description = "Exact search, or Lucene's approximate HNSW graph. Default: exact (with --append, the "
                    + "index's own).")
    String type;

    @Option(names = "--max-conn", paramLabel = "M",
            description = "hnsw: neighbours per node and layer (more: better recall, more memory, slower build). "
                    + "Default: 16.")
    Integer maxConn;

    @Option(names = "--beam-width", paramLabel = "N",
            description = "hnsw: candidates examined while inserting (efConstruction). Default: 100.")
    Integer beamWidth;

    @Option(names = "--threads", paramLabel = "N",
            description = "hnsw: indexing threads (segments built side by side, then merged with as many workers). "
                    + "Default: 1.")
    Integer threads;

    @Option(names = "--overwrite", description = "Replace an index already in --out (a folder holding anything "
            + "else is never touched).")
    boolean overwrite;

    @Option(names = "--append", description = "Add the descriptors to the index already in --out (exact or hnsw, "
            + "whichever it is) as rows after its own, with its dimension and, for hnsw, its graph parameters "
            + "(--max-conn, --beam-width and --overwrite do not go with it; --threads does). Their ids: --ids, else "
            + "X.ids.txt, else row numbers continuing the index's. The extended index is written beside the old one "
            + "(free space for the whole of it is needed meanwhile) and renamed into its place when complete: a "
            + "failure or a kill keeps the old index, and searches see the old one or the new one. exact: the saved "
            + "rows are copied, not loaded (memory holds the new rows and a 64 MiB block). hnsw: the new rows are "
            + "inserted into the existing graph, not a rebuild.")
    boolean append;

    @Option(names = "--quiet", description = "Print nothing on success.")
    boolean quiet;

    @Mixin
    DeviceOption device;

    @Override
    int run() throws IOException {
        device.requireCpu("index");
        String kind = type == null ? "exact" : type.toLowerCase(Locale.ROOT);
        if (!kind.equals("exact") && !kind.equals("hnsw")) {
            throw new UsageException("--type must be exact or hnsw, got '" + type + "'");
        }
        if (append && overwrite) {
            throw new UsageException("--append adds to the index in --out and --overwrite replaces it: choose one");
        }
        if (append && (maxConn != null || beamWidth != null)) {
            throw new UsageException("--append keeps the index's own graph parameters: --max-conn and --beam-width go "
                    + "with a build");
        }
        if (!append && kind.equals("exact") && (maxConn != null || beamWidth != null || threads != null)) {
            throw new UsageException("--max-conn, --beam-width and --threads go with --type hnsw");
        }
        HnswIndex.Options options = HnswIndex.Options.DEFAULTS;
        try {
            options = new HnswIndex.Options(maxConn != null ? maxConn : options.maxConn(),
                    beamWidth != null ? beamWidth : options.beamWidth(), threads != null ? threads : options.threads());
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        // rebuilding an index from its own files would read what it is about to replace (and, without --ids, lose
        // its ids): copy them out first
        requireOutputNotInput(out, "--out", descriptors, "--descriptors");
        requireOutputNotInput(out, "--out", ids, "--ids");
        requireInputNotInside(descriptors, "--descriptors", out, "--out");
        requireInputNotInside(ids, "--ids", out, "--out");
        // an --out that is a link (to a larger disk, say) is built and swapped where it points, the link kept
        Path target = AtomicFiles.throughLinks(out.toAbsolutePath().normalize());
        // one build per index folder at a time; what killed builds left beside it goes
        try (OutputLock lock = OutputLock.acquire(target.resolveSibling("." + target.getFileName() + ".lock"),
                out + " (an index)")) {
            // a build killed between its two renames left the old index aside: it goes back first,
            // before the checks (without --overwrite, the index put back is refused, not replaced)
            Path restored = AtomicFiles.restoreReplaced(target);
            if (restored != null && !quiet) {
                System.err.println("note: put back the index a stopped build had set aside (" + restored + ")");
            }
            if (Files.exists(out) && !append) {
                String existing = Files.isDirectory(out) ? DescriptorIndex.kind(out) : null;
                if (existing == null && !isEmptyFolder(out)) {
                    throw new IOException(out + " exists and is not an index folder; choose another --out");
                }
                if (existing != null && !overwrite) {
                    throw new IOException(out + " already holds an " + existing + " index; pass --overwrite to replace "
                            + "it");
                }
            }
            if (append) {
                String existing = Files.isDirectory(out) ? DescriptorIndex.kind(out) : null;
                if (existing == null) {
                    throw new UsageException("--append: " + out + " holds no index; build one first (without "
                            + "--append)");
                }
                if (type != null && !kind.equals(existing)) {
                    throw new UsageException("--append: " + out + " holds an " + existing + " index, not " + kind);
                }
                kind = existing;
                if (kind.equals("exact") && threads != null) {
                    throw new UsageException("--threads goes with an hnsw index; " + out + " holds an exact one");
                }
            }
            for (Path p : AtomicFiles.removeLeftovers(target, true)) {
                if (!quiet) {
                    System.err.println("note: removed " + p + ", left half-written by a stopped build");
                }
            }
            long t0 = System.nanoTime();
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor x = WhitenCommand.descriptors(descriptors);
                if (append) {
                    int before = appendTo(kind, x, options);
                    if (!quiet) {
                        System.out.printf(Locale.ROOT, "added %d descriptors to the %s index in %s (%d rows now) in "
                                + "%.1f s%n", x.shape(0), kind, out, before + x.shape(0), (System.nanoTime() - t0) / 1e9);
                    }
                    return 0;
                }
                List<String> rowIds = rowIds(x.shape(0), 0);
                boolean replacing = Files.isDirectory(out) && DescriptorIndex.kind(out) != null;
                if (kind.equals("exact")) {
                    // built beside, then put in the old one's place: a failed build (a full disk) keeps the old index
                    Path tmp = null;
                    try (ExactIndex index = new ExactIndex(x.shape(1))) {
                        index.add(x, rowIds);
                        tmp = AtomicFiles.temporaryFolderBeside(target);
                        index.save(tmp);
                        AtomicFiles.replaceFolder(tmp, target);
                    } catch (IOException e) {
                        throw writeFailed("building the index in " + out, replacing, e);
                    } finally {
                        if (tmp != null && Files.exists(tmp)) {
                            AtomicFiles.deleteTree(tmp);
                        }
                    }
                } else {
                    try {
                        HnswIndex.build(out, x, rowIds, options).close();
                    } catch (IOException e) {
                        throw writeFailed("building the index in " + out, replacing, e);
                    } catch (IllegalArgumentException e) { // a row that is not a unit vector
                        throw new IllegalArgumentException(descriptors + ": " + e.getMessage(), e);
                    }
                }
                if (!quiet) {
                    System.out.printf(Locale.ROOT, "built %s index of %d descriptors (%d-d) in %s in %.1f s%s%n", kind,
                            x.shape(0), x.shape(1), out, (System.nanoTime() - t0) / 1e9, kind.equals("hnsw")
                                    ? " (M=" + options.maxConn() + ", beam width " + options.beamWidth() + ")" : "");
                }
            }
        }
        return 0;
    }

    /** Adds x to the index in --out (of this kind); returns the rows it held before. */
    private int appendTo(String kind, Tensor x, HnswIndex.Options options) throws IOException {
        Path target = out.toAbsolutePath().normalize();
        if (kind.equals("hnsw")) {
            int n = x.shape(0);
            int first = 0;
            if (ids == null && !Files.isRegularFile(FeatureExtractor.idsFile(descriptors))) {
                try (HnswIndex old = HnswIndex.open(target)) { // row numbers continue the index's
                    first = old.size();
                }
            }
            List<String> newIds = rowIds(n, first);
            try (HnswIndex grown = HnswIndex.append(target, x, newIds, options.threads())) {
                return grown.size() - n;
            } catch (IOException e) {
                throw writeFailed("adding " + descriptors + " to the index in " + out, true, e);
            } catch (IllegalArgumentException e) { // a row that is not a unit vector, another dimension
                throw new IllegalArgumentException(descriptors + ": " + e.getMessage(), e);
            }
        }
        // the saved rows are copied, not loaded: memory holds a block and the new rows
        int first = 0;
        if (ids == null && !Files.isRegularFile(FeatureExtractor.idsFile(descriptors))) {
            try (Npy.RowReader saved = Npy.RowReader.open(target.resolve(ExactIndex.DESCRIPTORS))) {
                first = (int) saved.rows(); // row numbers continue the index's
            }
        }
        try {
            return ExactIndex.append(target, x, rowIds(x.shape(0), first));
        } catch (IOException e) {
            throw writeFailed("adding " + descriptors + " to the index in " + out, true, e);
        } catch (IllegalArgumentException e) { // another dimension, a NaN row
            throw new IllegalArgumentException(descriptors + ": " + e.getMessage(), e);
        }
    }

    /**
     * A failure to write the index (a full disk: the JDK's and Lucene's message is then "No space
     * left on device" alone, naming nothing), saying what failed and that an index already there is
     * as it was (the new one is written beside it and renamed into place only when complete).
     */
    private static IOException writeFailed(String what, boolean kept, IOException e) {
        return new IOException(what + " failed" + (kept ? " (the index there is as it was)" : "") + ": " + message(e),
                e);
    }

    private List<String> rowIds(int rows, int first) throws IOException {
        Path file = ids != null ? ids : FeatureExtractor.idsFile(descriptors);
        if (ids == null && !Files.isRegularFile(file)) {
            return IntStream.range(first, first + rows).mapToObj(Integer::toString).toList();
        }
        List<String> lines = IdsFile.readIds(file);
        if (lines.size() != rows) {
            throw new IOException(file + " has " + lines.size() + " ids but " + descriptors + " has " + rows + " rows");
        }
        return lines;
    }

    private static boolean isEmptyFolder(Path p) throws IOException {
        if (!Files.isDirectory(p)) {
            return false;
        }
        try (Stream<Path> s = Files.list(p)) {
            return s.findAny().isEmpty();
        }
    }
}
