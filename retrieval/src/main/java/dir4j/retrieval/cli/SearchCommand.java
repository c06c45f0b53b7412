package dir4j.retrieval.cli;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import dir4j.retrieval.data.ImageList;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.data.InputFiles;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.search.DescriptorIndex;
import dir4j.retrieval.search.ExactIndex;
import dir4j.retrieval.search.HnswIndex;
import dir4j.retrieval.search.IdsFile;
import dir4j.retrieval.search.Neighbours;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.IntStream;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code dir4j search}: ranked ids with scores for query images or query descriptors. */
@Command(name = "search", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Search an index (dir4j index) with query images, described by a network, or with query "
                + "descriptors: the top-k ids of each query with their dot-product scores, best first.",
            "Text output: one 'query ID' line per query, then 'RANK<tab>SCORE<tab>ID' per result. JSON output: "
                + "{\"index\": .., \"k\": .., \"results\": [{\"query\": ID, \"neighbours\": [{\"rank\": 1, \"id\": .., "
                + "\"score\": ..}, ..]}, ..]}."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class SearchCommand extends ToolCommand {
    @Option(names = "--index", required = true, paramLabel = "DIR", description = "An index folder (exact or hnsw).")
    Path index;

    static final class Queries {
        @Option(names = "--descriptors", required = true, paramLabel = "Q.npy",
                description = "Query descriptors, Q x D float32 (unit vectors for an hnsw index).")
        Path descriptors;

        @Option(names = "--image", required = true, arity = "1..*", paramLabel = "FILE",
                description = "Query image file(s), whole images, described with the network (--checkpoint).")
        List<Path> images;

        @Option(names = "--image-list", required = true, paramLabel = "LIST",
                description = "A text file of query images, one path per line (relative to --root, else the list's "
                        + "folder).")
        Path imageList;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Queries queries;

    @Option(names = "--query-ids", paramLabel = "FILE",
            description = "With --descriptors: one id per query row, UTF-8, as for dir4j index --ids (non-blank, "
                    + "without tabs, may repeat; blank lines at the end are ignored). Default: Q.ids.txt beside them when "
                    + "it exists, else the row numbers.")
    Path queryIds;

    @Option(names = "--root", paramLabel = "DIR", description = "With --image-list: the folder relative paths resolve "
            + "against.")
    Path root;

    @Mixin
    NetworkOptions network;

    @Mixin
    ExtractionSettings extraction;

    @Option(names = "--whitening", paramLabel = "FILE",
            description = "Whiten the queries first (as the indexed descriptors were): a dir4j whiten file or a "
                    + "checkpoint carrying a PCA.")
    Path whiteningFile;

    @Option(names = "--whitening-name", paramLabel = "NAME",
            description = "Which whitening of --whitening, when it holds several.")
    String whiteningName;

    @Mixin
    WhiteningSettings whitening;

    @Option(names = {"-k", "--top-k"}, defaultValue = "10", paramLabel = "K",
            description = "Results per query. Default: ${DEFAULT-VALUE}.")
    int topK;

    @Option(names = "--ef", paramLabel = "N",
            description = "hnsw: candidates explored per query (at least K; more: better recall, slower). "
                    + "Default: max(K, 100).")
    Integer ef;

    @Option(names = "--format", defaultValue = "text", paramLabel = "text|json",
            description = "Output format. Default: ${DEFAULT-VALUE}.")
    String format;

    @Option(names = "--out", paramLabel = "FILE",
            description = "Write the results here instead of stdout (replaced atomically; not a directory).")
    Path out;

    @Option(names = "--on-error", defaultValue = "fail", paramLabel = "fail|skip",
            description = "Query images: an unreadable one (missing, empty, truncated, corrupt, unsupported) stops the "
                    + "search, or is left out with a note on stderr (and, with --format json, listed under "
                    + "\"skipped\"). Default: ${DEFAULT-VALUE}.")
    String onError;

    @Option(names = "--quiet", description = "No progress or notes on stderr (errors are still printed).")
    boolean quiet;

    @Mixin
    DeviceOption device;

    @Override
    int run() throws IOException {
        Device dev = DeviceOption.usable(device.device);
        String fmt = format.toLowerCase(Locale.ROOT);
        if (!fmt.equals("text") && !fmt.equals("json")) {
            throw new UsageException("--format must be text or json, got '" + format + "'");
        }
        if (topK < 1) {
            throw new UsageException("--top-k must be at least 1, got " + topK);
        }
        if (ef != null && ef < topK) {
            throw new UsageException("--ef must be at least --top-k (" + topK + "), got " + ef);
        }
        boolean fromImages = queries.descriptors == null;
        ExtractionOptions.OnError policy;
        try {
            policy = ExtractionOptions.OnError.parse(onError);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        if (!fromImages && policy == ExtractionOptions.OnError.SKIP) {
            throw new UsageException("--on-error goes with query images (--image, --image-list)");
        }
        if (fromImages) {
            network.check();
            if (queryIds != null) {
                throw new UsageException("--query-ids goes with --descriptors; image queries are named by their paths");
            }
        } else if (network.given()) {
            throw new UsageException("--checkpoint/--random-init describe query images; --descriptors are used as "
                    + "they are");
        }
        if (root != null && queries.imageList == null) {
            throw new UsageException("--root goes with --image-list");
        }
        if (whiteningFile == null && (whiteningName != null || whitening.given())) {
            throw new UsageException("--whitening-name and --whitenp/--whitenv/--whitenm need --whitening FILE");
        }
        if (out != null && Files.isDirectory(out)) {
            throw new UsageException("--out " + out + " is a directory: name a file");
        }
        requireOutputNotInput(out, "--out", index, "--index");
        requireOutputNotInput(out, "--out", queries.descriptors, "--descriptors");
        if (queries.descriptors != null) {
            requireOutputNotInput(out, "--out", FeatureExtractor.idsFile(queries.descriptors), "the query ids");
        }
        requireOutputNotInput(out, "--out", queryIds, "--query-ids");
        requireOutputNotInput(out, "--out", queries.imageList, "--image-list");
        for (Path image : queries.images == null ? List.<Path>of() : queries.images) {
            requireOutputNotInput(out, "--out", image, "--image");
        }
        requireOutputNotInput(out, "--out", whiteningFile, "--whitening");
        requireOutputNotInput(out, "--out", network.checkpoint, "--checkpoint");
        checkIndexFolder(index);
        if (fromImages) {
            network.requireCheckpointFile();
        }
        if (whiteningFile != null) {
            InputFiles.requireFile(whiteningFile, "whitening");
        }
        try (DescriptorIndex idx = DescriptorIndex.open(index); MemoryScope scope = MemoryScope.open()) {
            if (ef != null && !(idx instanceof HnswIndex)) {
                throw new UsageException("--ef goes with an hnsw index; " + index + " is exact");
            }
            if (!dev.equals(Device.CPU)) {
                if (!(idx instanceof ExactIndex exact)) {
                    throw new UsageException("--device " + device.device + ": an hnsw index is searched by Lucene on "
                            + "the CPU; use --device cpu (exact indexes search on the GPU)");
                }
                exact.computeOn(dev);
            }
            List<String> ids;
            List<FeatureExtractor.Skipped> skipped = List.of();
            Tensor q;
            if (fromImages) {
                List<ImageRef> refs = new ArrayList<>();
                if (queries.images != null) {
                    for (Path p : queries.images) {
                        refs.add(ImageRef.of(p.toString(), p));
                    }
                } else {
                    refs.addAll(ImageList.read(queries.imageList, root, true));
                    if (out != null) {
                        for (ImageRef ref : refs) {
                            requireOutputNotInput(out, "--out", ref.path(), "an image of --image-list,");
                        }
                    }
                }
                NetworkCheckpoint.Loaded loaded = network.load();
                if (!quiet) {
                    loaded.notes().forEach(n -> System.err.println("note: " + n));
                }
                try (RetrievalNet net = loaded.net()) {
                    if (!dev.equals(Device.CPU)) {
                        net.to(dev); // FeatureExtractor sends each batch to the network's device
                    }
                    FeatureExtractor fx = new FeatureExtractor(net, extraction.options(loaded, quiet).withOnError(policy));
                    FeatureExtractor.Result r = fx.extract(refs, "query");
                    q = r.descriptors();
                    ids = r.ids();
                    skipped = r.skipped();
                }
                for (FeatureExtractor.Skipped k : skipped) {
                    if (!quiet) {
                        System.err.println("note: left out query " + k.id() + ": " + k.reason());
                    }
                }
                if (ids.isEmpty()) {
                    throw new IOException("every query image was unreadable (" + skipped.getFirst().reason()
                            + (skipped.size() > 1 ? ", ..." : "") + "); nothing to search");
                }
            } else {
                q = WhitenCommand.descriptors(queries.descriptors);
                ids = queryIds(q.shape(0));
            }
            if (whiteningFile != null) {
                WhiteningFile.Stored s = WhiteningSettings.pick(whiteningFile, WhiteningFile.read(whiteningFile),
                        whiteningName, "--whitening-name");
                if (s.pca().dimension() != q.shape(1)) {
                    throw new IOException("the whitening in " + whiteningFile + " is for " + s.pca().dimension()
                            + "-d descriptors, the queries are " + q.shape(1) + "-d");
                }
                WhiteningOptions o = whitening.resolve(s.options());
                q = PcaWhitening.of(s.pca()).apply(q, o);
            }
            if (q.shape(1) != idx.dimension()) {
                throw new IOException("the queries are " + q.shape(1) + "-d but the index holds " + idx.dimension()
                        + "-d descriptors" + (whiteningFile == null ? " (were they whitened? see --whitening)" : ""));
            }
            long t0 = System.nanoTime();
            Neighbours n = idx instanceof HnswIndex h && ef != null ? h.search(q, topK, ef, 1) : idx.search(q, topK);
            double seconds = (System.nanoTime() - t0) / 1e9;
            String text = fmt.equals("json") ? json(idx, ids, n, skipped) : text(idx, ids, n);
            if (out != null) {
                AtomicFiles.write(out, text.getBytes(StandardCharsets.UTF_8));
            } else {
                System.out.print(text);
            }
            if (!quiet) {
                System.err.printf(Locale.ROOT, "searched %d quer%s in %s (%d descriptors) in %.3f s%n", n.queries(),
                        n.queries() == 1 ? "y" : "ies", index, idx.size(), seconds);
            }
        }
        return 0;
    }

    /**
     * Fails, before any work, unless {@code folder} holds an index (its files are checked when it
     * is opened): a missing path, a file, or a folder of something else each say so.
     */
    static void checkIndexFolder(Path folder) throws IOException {
        if (!Files.exists(folder)) {
            Path target = AtomicFiles.throughLinks(folder); // a link loop is named as one
            if (DescriptorIndex.swapBeside(folder)) {
                return; // being replaced (opened once the swap is done), or set aside by a stopped one (named by open)
            }
            throw new IOException(folder + (target.equals(folder) ? "" : " (a link to " + target + ")")
                    + ": no such index folder (dir4j index makes one)");
        }
        if (!Files.isDirectory(folder)) {
            throw new IOException(folder + ": a file, not an index folder (dir4j index makes one)");
        }
        if (DescriptorIndex.kind(folder) == null) {
            throw new IOException(folder + ": not an index folder: it holds neither " + ExactIndex.DESCRIPTORS
                    + " (an exact index, beside " + ExactIndex.IDS + ") nor " + HnswIndex.PROPERTIES + " (an hnsw "
                    + "index, beside " + ExactIndex.IDS + " and " + HnswIndex.LUCENE + "/); dir4j index makes one");
        }
    }

    private List<String> queryIds(int rows) throws IOException {
        Path file = queryIds != null ? queryIds : FeatureExtractor.idsFile(queries.descriptors);
        if (queryIds == null && !Files.isRegularFile(file)) {
            return IntStream.range(0, rows).mapToObj(Integer::toString).toList();
        }
        List<String> lines = IdsFile.readIds(file);
        if (lines.size() != rows) {
            throw new IOException(file + " has " + lines.size() + " ids but " + queries.descriptors + " has " + rows
                    + " rows");
        }
        return lines;
    }

    private static String text(DescriptorIndex idx, List<String> ids, Neighbours n) {
        StringBuilder sb = new StringBuilder();
        for (int q = 0; q < n.queries(); q++) {
            sb.append("query ").append(ids.get(q)).append('\n');
            for (int r = 0; r < n.indices()[q].length; r++) {
                sb.append(r + 1).append('\t').append(String.format(Locale.ROOT, "%.6f", n.scores()[q][r])).append('\t')
                        .append(idx.id(n.indices()[q][r])).append('\n');
            }
        }
        return sb.toString();
    }

    private String json(DescriptorIndex idx, List<String> ids, Neighbours n, List<FeatureExtractor.Skipped> skipped) {
        List<Object> results = new ArrayList<>();
        for (int q = 0; q < n.queries(); q++) {
            List<Object> hits = new ArrayList<>();
            for (int r = 0; r < n.indices()[q].length; r++) {
                Map<String, Object> h = new LinkedHashMap<>();
                h.put("rank", (long) r + 1);
                h.put("id", idx.id(n.indices()[q][r]));
                h.put("score", Double.parseDouble(Float.toString(n.scores()[q][r]))); // the float's shortest digits
                hits.add(h);
            }
            Map<String, Object> one = new LinkedHashMap<>();
            one.put("query", ids.get(q));
            one.put("neighbours", hits);
            results.add(one);
        }
        Map<String, Object> all = new LinkedHashMap<>();
        all.put("index", index.toString());
        all.put("k", (long) topK);
        all.put("results", results);
        if (!skipped.isEmpty()) {
            List<Object> left = new ArrayList<>();
            for (FeatureExtractor.Skipped k : skipped) {
                Map<String, Object> one = new LinkedHashMap<>();
                one.put("query", k.id());
                one.put("reason", k.reason());
                left.add(one);
            }
            all.put("skipped", left);
        }
        return PrettyJson.write(all);
    }
}
