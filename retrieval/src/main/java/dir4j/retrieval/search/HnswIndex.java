package dir4j.retrieval.search;

import dir4j.engine.cpu.ScoreOrder;
import dir4j.engine.cpu.TopK;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.apache.lucene.codecs.KnnVectorsFormat;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.KnnVectorsWriter;
import org.apache.lucene.codecs.lucene104.Lucene104Codec;
import org.apache.lucene.codecs.lucene99.Lucene99HnswVectorsFormat;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.KnnFloatVectorField;
import org.apache.lucene.document.NumericDocValuesField;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.SegmentReadState;
import org.apache.lucene.index.SegmentWriteState;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.search.AcceptDocs;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.TopDocs;
import org.apache.lucene.store.AlreadyClosedException;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Version;

/**
 * Approximate nearest-neighbour search over unit descriptors with Apache Lucene's HNSW graph
 * ({@link KnnFloatVectorField} with {@link VectorSimilarityFunction#DOT_PRODUCT}), stored on disk
 * and memory-mapped when opened. The Lucene index inside is an ordinary one, so the same vectors
 * and graph parameters carry over to Lucene-based search clusters (OpenSearch, Elasticsearch,
 * Solr).
 *
 * <p>On disk an index is a folder: {@value #PROPERTIES} (format, dimension, size, graph
 * parameters), {@value ExactIndex#IDS} (one id per row, as {@link ExactIndex} writes it) and
 * {@code lucene/} (one document per row: the vector in field {@code vector}, the row number in
 * doc values {@code row}). {@link #build} writes it in a temporary folder and renames it into
 * place, so a folder is whole or absent.
 *
 * <p>Scores: Lucene scores a dot product s as {@code (1 + s) / 2}; {@link #search} returns
 * {@code 2·score − 1}, the dot product to float precision, so results compare with
 * {@link ExactIndex}'s. Descriptors and queries must be unit vectors (checked, to 1e-3): for
 * them the dot product is the cosine similarity Lucene's graph is built on.
 *
 * <p>Lucene's per-field vector format refuses more than 1024 dimensions by default; this index
 * lifts the limit to {@value #MAX_DIMENSION} (2048-d descriptors are the point) with a format that
 * writes exactly Lucene's {@code Lucene99HnswVectorsFormat} files under that name, so any Lucene
 * 10 reader opens them.
 *
 * <p>Thread-safe for searching; close it to unmap the files. Once closed, {@link #search} (and
 * anything else that reads the Lucene index) throws {@link IllegalStateException}, as a closed
 * {@link ExactIndex} does; closing again does nothing. Closing while other threads search does
 * not wait for them: searches already in progress finish on the open files, which are unmapped
 * when the last of them ends.
 */
public final class HnswIndex implements DescriptorIndex {
    /** File of a saved index holding its format and parameters. */
    public static final String PROPERTIES = "hnsw.properties";
    /** Sub-folder holding the Lucene index. */
    public static final String LUCENE = "lucene";
    /** The most dimensions accepted (Elasticsearch's limit for dense vectors). */
    public static final int MAX_DIMENSION = 4096;
    /** Candidates explored per query ("ef") when none is given. */
    public static final int DEFAULT_CANDIDATES = 100;

    static final String VECTOR_FIELD = "vector";
    static final String ROW_FIELD = "row";
    private static final String FORMAT = "dir4j-hnsw-1";
    private static final float UNIT_TOLERANCE = 1e-3f;
    /** What a closed index says, in {@link ExactIndex}'s words. */
    private static final String CLOSED = "the index was closed";

    /**
     * How the graph is built.
     *
     * @param maxConn   M: neighbours kept per node and layer (Lucene's default 16); more gives
     *                  better recall for more memory and slower building
     * @param beamWidth candidates examined when inserting a node (efConstruction; default 100)
     * @param threads   indexing threads: each fills its own segment and the segments are then
     *                  merged into one graph with as many merge workers
     */
    public record Options(int maxConn, int beamWidth, int threads) {
        /** Lucene's defaults (M = 16, beam width 100), one thread. */
        public static final Options DEFAULTS = new Options(Lucene99HnswVectorsFormat.DEFAULT_MAX_CONN,
                Lucene99HnswVectorsFormat.DEFAULT_BEAM_WIDTH, 1);

        public Options {
            if (maxConn < 2 || maxConn > Lucene99HnswVectorsFormat.MAXIMUM_MAX_CONN) {
                throw new IllegalArgumentException("HNSW max connections (M) must be in 2.."
                        + Lucene99HnswVectorsFormat.MAXIMUM_MAX_CONN + ", got " + maxConn);
            }
            if (beamWidth < 1 || beamWidth > Lucene99HnswVectorsFormat.MAXIMUM_BEAM_WIDTH) {
                throw new IllegalArgumentException("HNSW beam width must be in 1.."
                        + Lucene99HnswVectorsFormat.MAXIMUM_BEAM_WIDTH + ", got " + beamWidth);
            }
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be at least 1, got " + threads);
            }
        }

        public Options withMaxConn(int m) {
            return new Options(m, beamWidth, threads);
        }

        public Options withBeamWidth(int b) {
            return new Options(maxConn, b, threads);
        }

        public Options withThreads(int t) {
            return new Options(maxConn, beamWidth, t);
        }
    }

    private final Path folder;
    private final int dimension;
    private final Options options;
    private final List<String> ids;
    private final Directory directory;
    private final DirectoryReader reader;
    private final int[] rowOfDoc;
    private volatile boolean closed;
    /**
     * Holders of the Lucene reader: one for the index until {@link #close()}, plus one per search in
     * progress; the reader and its files are closed when none is left, so a close from another thread
     * never pulls the mapped files from under a search (Lucene then fails with a
     * NullPointerException or the unmapped file's "Already closed").
     */
    private final java.util.concurrent.atomic.AtomicInteger holders = new java.util.concurrent.atomic.AtomicInteger(1);

    private HnswIndex(Path folder, int dimension, Options options, List<String> ids, Directory directory,
                      DirectoryReader reader, int[] rowOfDoc) {
        this.folder = folder;
        this.dimension = dimension;
        this.options = options;
        this.ids = Collections.unmodifiableList(ids);
        this.directory = directory;
        this.reader = reader;
        this.rowOfDoc = rowOfDoc;
    }

    // ---------------------------------------------------------------- building

    /**
     * Builds an index of N x D unit descriptors (float32 or float64, any device) with one id per
     * row into {@code folder}, replacing an index that is there (a folder holding anything else
     * is refused), and opens it.
     *
     * @throws IllegalArgumentException for a shape, id count, dimension or non-unit row that
     *     cannot be indexed (the message names the row)
     */
    public static HnswIndex build(Path folder, Tensor descriptors, List<String> ids, Options options)
            throws IOException {
        try {
            return buildAndOpen(folder, descriptors, ids, options);
        } catch (IOException e) {
            throw Interrupts.explained(e, "building the HNSW index in " + folder);
        }
    }

    private static void checkRows(Tensor descriptors, List<String> ids) {
        if (descriptors.rank() != 2 || !descriptors.dtype().isFloating()) {
            throw new IllegalArgumentException("descriptors must be an N x D float tensor, got "
                    + Shape.str(descriptors.shape()) + " " + descriptors.dtype());
        }
        int d = descriptors.shape(1);
        if (d < 1 || d > MAX_DIMENSION) {
            throw new IllegalArgumentException("descriptor dimension " + d + " is outside 1.." + MAX_DIMENSION);
        }
        if (ids.size() != descriptors.shape(0)) {
            throw new IllegalArgumentException(descriptors.shape(0) + " descriptors but " + ids.size() + " ids");
        }
        IdsFile.check(ids);
    }

    /** The rows as a contiguous float32 CPU tensor (the tensor itself when it is one). */
    private static Tensor cpuFloatRows(Tensor descriptors) {
        Tensor rows = descriptors.device().equals(Device.CPU) ? descriptors : descriptors.to(Device.CPU);
        if (rows.dtype() != DType.FLOAT32) {
            rows = rows.to(DType.FLOAT32);
        }
        return rows.isContiguous() ? rows : rows.contiguous();
    }

    private static HnswIndex buildAndOpen(Path folder, Tensor descriptors, List<String> ids, Options options)
            throws IOException {
        checkRows(descriptors, ids);
        int n = descriptors.shape(0);
        int d = descriptors.shape(1);
        Path target = folder.toAbsolutePath();
        Path parent = target.getParent();
        Files.createDirectories(parent);
        String existing = Files.isDirectory(target) ? DescriptorIndex.kind(target) : null;
        if (Files.exists(target) && existing == null && !isEmptyFolder(target)) {
            throw new IOException(target + " exists and is not an index folder; choose another place or remove it");
        }
        Path tmp = AtomicFiles.temporaryFolderBeside(target);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor rows = cpuFloatRows(descriptors);
            writeLucene(tmp.resolve(LUCENE), IndexWriterConfig.OpenMode.CREATE, rows.segment(), rows.offset(), n, d,
                    0, options);
            IdsFile.write(tmp.resolve(ExactIndex.IDS), ids);
            writeProperties(tmp, d, n, options);
            AtomicFiles.replaceFolder(tmp, target);
        } finally {
            if (Files.exists(tmp)) {
                AtomicFiles.deleteTree(tmp);
            }
        }
        return openFolder(target); // build() says what an interrupt stopped, once
    }

    private static void writeProperties(Path folder, int d, int n, Options options) throws IOException {
        Properties p = new Properties();
        p.setProperty("format", FORMAT);
        p.setProperty("dimension", Integer.toString(d));
        p.setProperty("size", Integer.toString(n));
        p.setProperty("similarity", "dot_product");
        p.setProperty("maxConn", Integer.toString(options.maxConn()));
        p.setProperty("beamWidth", Integer.toString(options.beamWidth()));
        p.setProperty("lucene", Version.LATEST.toString());
        StringWriter text = new StringWriter();
        p.store(text, "dir4j HNSW index (Apache Lucene)");
        IdsFile.writeAtomically(folder.resolve(PROPERTIES), text.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    /**
     * Adds N x D unit descriptors (float32 or float64, any device) with one id per row to the index
     * in {@code folder} as its rows size() .. size() + N - 1, and opens the result. The index is
     * copied beside itself (Lucene's files hard-linked where the file system can, else copied:
     * Lucene never rewrites a file), the rows are added to the copy with the index's own graph
     * parameters ({@code threads} indexing threads) and merged into one segment as {@link #build}
     * leaves it, and the copy is renamed into place: a failure or a kill leaves the old index as it
     * was. Lucene's merge starts from the old segment's graph, so an append is not a rebuild:
     * the new rows' graph is built in their own segment and their nodes inserted again into the
     * old graph by the merge (20,000 rows onto 139,000 took 12.4 s where building the 20,000 alone
     * took 8.1). One writer at a time: of two appends (or an
     * append and a {@link #build}) into one folder at once, the later rename wins and the other's
     * rows are lost without an error; {@code dir4j index} holds the folder's lock around it, a
     * service must serialise its own. An {@code HnswIndex} opened before keeps searching the old
     * rows: search the returned one.
     *
     * @throws IllegalArgumentException for a dimension other than the index's, a shape, id count or
     *     non-unit row that cannot be indexed (the message names the row, counted in the new rows)
     */
    public static HnswIndex append(Path folder, Tensor descriptors, List<String> ids, int threads)
            throws IOException {
        try {
            return appendAndOpen(folder, descriptors, ids, threads);
        } catch (IOException e) {
            throw Interrupts.explained(e, "adding to the HNSW index in " + folder);
        }
    }

    private static HnswIndex appendAndOpen(Path folder, Tensor descriptors, List<String> newIds, int threads)
            throws IOException {
        checkRows(descriptors, newIds);
        Path target = folder.toAbsolutePath();
        int size;
        int d;
        Options options;
        List<String> ids;
        try (HnswIndex old = openFolder(target)) {
            size = old.size();
            d = old.dimension();
            options = new Options(old.options.maxConn(), old.options.beamWidth(), threads);
            ids = new ArrayList<>(old.ids);
        }
        if (descriptors.shape(1) != d) {
            throw new IllegalArgumentException("the index in " + folder + " holds " + d + "-d descriptors; these are "
                    + descriptors.shape(1) + "-d");
        }
        int n = descriptors.shape(0);
        if ((long) size + n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("the index in " + folder + " holds " + size + " rows: " + n
                    + " more would exceed " + (Integer.MAX_VALUE - 8));
        }
        ids.addAll(newIds);
        Path tmp = AtomicFiles.temporaryFolderBeside(target);
        try (MemoryScope scope = MemoryScope.open()) {
            Path lucene = Files.createDirectory(tmp.resolve(LUCENE));
            try (var files = Files.list(target.resolve(LUCENE))) {
                for (Path f : files.toList()) {
                    String name = f.getFileName().toString();
                    if (name.equals(IndexWriter.WRITE_LOCK_NAME) || !Files.isRegularFile(f)) {
                        continue;
                    }
                    try {
                        Files.createLink(lucene.resolve(name), f);
                    } catch (IOException | UnsupportedOperationException e) {
                        Files.copy(f, lucene.resolve(name));
                    }
                }
            }
            Tensor rows = cpuFloatRows(descriptors);
            writeLucene(lucene, IndexWriterConfig.OpenMode.APPEND, rows.segment(), rows.offset(), n, d, size, options);
            IdsFile.write(tmp.resolve(ExactIndex.IDS), ids);
            writeProperties(tmp, d, size + n, options);
            AtomicFiles.replaceFolder(tmp, target);
        } finally {
            if (Files.exists(tmp)) {
                AtomicFiles.deleteTree(tmp);
            }
        }
        return openFolder(target);
    }

    /**
     * Writes rows 0..n-1 of {@code data} as documents with row numbers {@code rowBase + r} into a
     * new ({@code CREATE}) or existing ({@code APPEND}) Lucene index in {@code dir}, merged into one
     * segment.
     */
    private static void writeLucene(Path dir, IndexWriterConfig.OpenMode mode, MemorySegment data, long offset, int n,
                                    int d, int rowBase, Options options) throws IOException {
        ExecutorService mergeWorkers = options.threads() > 1 ? Executors.newFixedThreadPool(options.threads()) : null;
        ExecutorService indexers = options.threads() > 1 ? Executors.newFixedThreadPool(options.threads()) : null;
        KnnVectorsFormat format = new HighDimensionHnswFormat(options, mergeWorkers);
        IndexWriterConfig config = new IndexWriterConfig()
                .setCodec(new Lucene104Codec() {
                    @Override
                    public KnnVectorsFormat getKnnVectorsFormatForField(String field) {
                        return format;
                    }
                })
                .setOpenMode(mode)
                // one segment per indexing thread when the vectors fit (graphs are built as documents arrive),
                // within a quarter of the heap: a buffer larger than the heap ends in an OutOfMemoryError in
                // Lucene's threads, which leaves the JVM hanging
                .setRAMBufferSizeMB(ramBufferMb(n, d))
                .setUseCompoundFile(false);
        try (Directory out = FSDirectory.open(dir); IndexWriter writer = new IndexWriter(out, config)) {
            int threads = Math.min(options.threads(), Math.max(1, n / 256)); // small inputs: one segment
            if (threads == 1) {
                addRows(writer, data, offset, 0, n, d, rowBase);
            } else {
                List<Future<?>> work = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int from = (int) ((long) n * t / threads);
                    int to = (int) ((long) n * (t + 1) / threads);
                    work.add(indexers.submit(() -> {
                        addRows(writer, data, offset, from, to, d, rowBase);
                        return null;
                    }));
                }
                for (Future<?> f : work) {
                    await(f);
                }
            }
            writer.forceMerge(1);
            writer.commit();
        } finally {
            if (indexers != null) {
                indexers.shutdownNow();
            }
            if (mergeWorkers != null) {
                mergeWorkers.shutdownNow();
            }
        }
    }

    /** Lucene's indexing buffer: twice the vectors, at least 64 MB, at most 1900 MB and a quarter of the heap. */
    static double ramBufferMb(int n, int d) {
        double heapMb = Runtime.getRuntime().maxMemory() / (double) (1 << 20);
        return Math.max(1, Math.min(heapMb / 4, Math.min(1900, Math.max(64, 2.0 * n * d * Float.BYTES / (1 << 20)))));
    }

    private static void addRows(IndexWriter writer, MemorySegment data, long offset, int from, int to, int d,
                                int rowBase) throws IOException {
        float[] v = new float[d];
        for (int r = from; r < to; r++) {
            MemorySegment.copy(data, ValueLayout.JAVA_FLOAT, (offset + (long) r * d) * Float.BYTES, v, 0, d);
            checkUnit("descriptor row " + r, v);
            Document doc = new Document();
            // Lucene copies the vector when the document is added, so v is reused
            doc.add(new KnnFloatVectorField(VECTOR_FIELD, v, VectorSimilarityFunction.DOT_PRODUCT));
            doc.add(new NumericDocValuesField(ROW_FIELD, rowBase + r));
            writer.addDocument(doc);
        }
    }

    private static void await(Future<?> f) throws IOException {
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while building the HNSW index", e);
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case IOException io -> throw io;
                case RuntimeException re -> throw re;
                case Error err -> throw err;
                default -> throw new IOException(e.getCause());
            }
        }
    }

    /**
     * Lucene's HNSW vector format with the dimension limit raised: writes and reads through
     * {@link Lucene99HnswVectorsFormat}, under its name, so the files are Lucene's own.
     */
    private static final class HighDimensionHnswFormat extends KnnVectorsFormat {
        private final KnnVectorsFormat delegate;

        HighDimensionHnswFormat(Options options, ExecutorService mergeWorkers) {
            super("Lucene99HnswVectorsFormat");
            this.delegate = mergeWorkers == null
                    ? new Lucene99HnswVectorsFormat(options.maxConn(), options.beamWidth())
                    : new Lucene99HnswVectorsFormat(options.maxConn(), options.beamWidth(), options.threads(),
                            mergeWorkers);
        }

        @Override
        public KnnVectorsWriter fieldsWriter(SegmentWriteState state) throws IOException {
            return delegate.fieldsWriter(state);
        }

        @Override
        public KnnVectorsReader fieldsReader(SegmentReadState state) throws IOException {
            return delegate.fieldsReader(state);
        }

        @Override
        public int getMaxDimensions(String fieldName) {
            return MAX_DIMENSION;
        }
    }

    // ---------------------------------------------------------------- opening

    /**
     * Opens an index written by {@link #build} (memory-mapped; close it when done). An index that
     * another process replaces meanwhile ({@link #append}, or a build over it) is opened whole, the
     * old one or the new one: an open that overlapped the swap is tried again.
     */
    public static HnswIndex open(Path folder) throws IOException {
        return IndexSwaps.open(folder, HnswIndex::openOnce);
    }

    /** {@link #open} without the retry across a swap. */
    static HnswIndex openOnce(Path folder) throws IOException {
        try {
            return openFolder(folder);
        } catch (IOException e) {
            throw Interrupts.explained(e, "opening the HNSW index in " + folder);
        }
    }

    private static HnswIndex openFolder(Path folder) throws IOException {
        Path props = folder.resolve(PROPERTIES);
        if (!Files.isRegularFile(props)) {
            throw new NoSuchFileException(props.toString(), null, "not an HNSW index folder: expected " + PROPERTIES
                    + ", " + ExactIndex.IDS + " and " + LUCENE + "/ in " + folder);
        }
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(props, StandardCharsets.ISO_8859_1)) {
            p.load(r);
        }
        if (!FORMAT.equals(p.getProperty("format"))) {
            throw new IOException(props + ": format '" + p.getProperty("format") + "' is not " + FORMAT);
        }
        int dimension;
        int size;
        Options options;
        try {
            dimension = Integer.parseInt(p.getProperty("dimension"));
            size = Integer.parseInt(p.getProperty("size"));
            options = new Options(Integer.parseInt(p.getProperty("maxConn")), Integer.parseInt(p.getProperty("beamWidth")),
                    1);
        } catch (NumberFormatException | NullPointerException e) {
            throw new IOException(props + ": dimension, size, maxConn and beamWidth must be numbers (" + p + ")", e);
        }
        List<String> ids = IdsFile.read(folder.resolve(ExactIndex.IDS));
        if (ids.size() != size) {
            throw new IOException(folder + ": " + ExactIndex.IDS + " has " + ids.size() + " ids but " + PROPERTIES
                    + " says " + size + " rows; the index is incomplete, rebuild it");
        }
        Directory dir = FSDirectory.open(folder.resolve(LUCENE));
        DirectoryReader reader = null;
        try {
            reader = DirectoryReader.open(dir);
            if (reader.numDocs() != size) {
                throw new IOException(folder + ": the Lucene index holds " + reader.numDocs() + " vectors but "
                        + PROPERTIES + " says " + size + "; rebuild it");
            }
            int[] rowOfDoc = new int[reader.maxDoc()];
            java.util.Arrays.fill(rowOfDoc, -1);
            for (LeafReaderContext leaf : reader.leaves()) {
                NumericDocValues rows = leaf.reader().getNumericDocValues(ROW_FIELD);
                if (rows == null) {
                    throw new IOException(folder + ": a segment has no '" + ROW_FIELD + "' values; not a dir4j index");
                }
                for (int doc = rows.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = rows.nextDoc()) {
                    long row = rows.longValue();
                    if (row < 0 || row >= size) {
                        throw new IOException(folder + ": document " + (leaf.docBase + doc) + " has row " + row
                                + " outside 0.." + (size - 1));
                    }
                    rowOfDoc[leaf.docBase + doc] = (int) row;
                }
            }
            return new HnswIndex(folder, dimension, options, new ArrayList<>(ids), dir, reader, rowOfDoc);
        } catch (IOException | RuntimeException e) {
            if (reader != null) {
                reader.close();
            }
            dir.close();
            throw e;
        }
    }

    // ---------------------------------------------------------------- searching

    @Override
    public int dimension() {
        return dimension;
    }

    @Override
    public int size() {
        return ids.size();
    }

    @Override
    public String id(int row) {
        return ids.get(row);
    }

    @Override
    public List<String> ids() {
        return ids;
    }

    /** The graph parameters the index was built with (threads: 1). */
    public Options options() {
        return options;
    }

    /** The index folder. */
    public Path folder() {
        return folder;
    }

    /** Lucene segments, each with its own graph (one after {@link #build}). */
    int segments() {
        checkOpen();
        hold();
        try {
            return reader.leaves().size();
        } finally {
            release(true);
        }
    }

    /** The k nearest rows of each query, exploring {@link #DEFAULT_CANDIDATES} (or k, if more) candidates. */
    @Override
    public Neighbours search(Tensor queries, int k) {
        return search(queries, k, Math.max(k, DEFAULT_CANDIDATES), 1);
    }

    /**
     * The k nearest rows of each query row, best first (ties by lower row).
     *
     * @param candidates how many candidates the graph search keeps (HNSW's ef, Lucene's k):
     *                   at least k; more raises recall and costs time
     * @param threads    queries searched in parallel
     */
    public Neighbours search(Tensor queries, int k, int candidates, int threads) {
        checkOpen();
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        if (candidates < k) {
            throw new IllegalArgumentException("candidates (ef) must be at least k = " + k + ", got " + candidates);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        if (queries.rank() != 2 || queries.shape(1) != dimension) {
            throw new IllegalArgumentException("queries of shape " + Shape.str(queries.shape())
                    + " do not match an index of dimension " + dimension + " (expected Q x " + dimension + ")");
        }
        DescriptorMatrix q = DescriptorMatrix.of(queries);
        TopK[] best = new TopK[q.rows()];
        int kept = Math.max(1, Math.min(k, size()));
        java.util.stream.IntStream rows = java.util.stream.IntStream.range(0, q.rows());
        Runnable all = () -> (threads > 1 ? rows.parallel() : rows).forEach(i -> {
            float[] v = new float[dimension];
            System.arraycopy(q.data(), i * dimension, v, 0, dimension);
            checkUnit("query row " + i, v);
            best[i] = searchOne(v, kept, Math.max(candidates, kept));
        });
        hold();
        try {
            if (threads > 1) {
                try (var pool = new java.util.concurrent.ForkJoinPool(threads)) {
                    pool.submit(all).join();
                }
            } else {
                all.run();
            }
        } finally {
            release(true);
        }
        return Neighbours.of(best);
    }

    /** One query against every segment (one after {@link #build}); rows by {@link ScoreOrder}. */
    private TopK searchOne(float[] query, int k, int candidates) {
        TopK top = new TopK(k);
        try {
            for (LeafReaderContext leaf : reader.leaves()) {
                LeafReader r = leaf.reader();
                TopDocs td = r.searchNearestVectors(VECTOR_FIELD, query, candidates,
                        AcceptDocs.fromLiveDocs(r.getLiveDocs(), r.maxDoc()), Integer.MAX_VALUE);
                for (ScoreDoc sd : td.scoreDocs) {
                    top.offer(2 * sd.score - 1, rowOfDoc[leaf.docBase + sd.doc]);
                }
            }
        } catch (AlreadyClosedException e) { // not from close(), which leaves the reader open to searches in progress
            throw new IllegalStateException(CLOSED, e);
        } catch (IOException e) {
            throw new UncheckedIOException("HNSW search in " + folder + " failed: " + e.getMessage(), e);
        }
        return top;
    }

    private static void checkUnit(String what, float[] v) {
        double sq = 0;
        for (float x : v) {
            sq += (double) x * x;
        }
        double norm = Math.sqrt(sq);
        if (!(Math.abs(norm - 1) <= UNIT_TOLERANCE)) {
            throw new IllegalArgumentException(what + " has L2 norm " + (float) norm + ", not 1: HNSW dot-product "
                    + "search needs unit descriptors (L2-normalise them, as extraction and whitening do)");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(CLOSED);
        }
    }

    /** Keeps the reader open until {@link #release}; throws as a closed index when it is closed already. */
    private void hold() {
        while (true) {
            int h = holders.get();
            if (h == 0) {
                throw new IllegalStateException(CLOSED);
            }
            if (holders.compareAndSet(h, h + 1)) {
                return;
            }
        }
    }

    /**
     * Lets go of the reader: the last holder closes it and its files. A failure to close is thrown
     * to {@link #close}, but only logged after a read ({@code afterRead}: the last search after a
     * close), whose results stand.
     */
    private void release(boolean afterRead) {
        if (holders.decrementAndGet() > 0) {
            return;
        }
        // both closed whatever either throws (reader first, then its directory)
        try (Directory d = directory; DirectoryReader r = reader) {
            // nothing: the resources' close is the work
        } catch (IOException e) {
            if (!afterRead) {
                throw new UncheckedIOException("closing the HNSW index in " + folder + ": " + e.getMessage(), e);
            }
            // the last search after a close: its results stand; the failure is the close's, reported on the side
            System.getLogger(HnswIndex.class.getName()).log(System.Logger.Level.WARNING,
                    "closing the HNSW index in " + folder + " after its last search: " + e.getMessage(), e);
        }
    }


    /** Closes the index: at once, or when the last search in progress ends. Idempotent. */
    @Override
    public void close() {
        synchronized (holders) {
            if (closed) {
                return;
            }
            closed = true;
        }
        release(false);
    }

    @Override
    public String toString() {
        return "HNSW index of " + size() + " x " + dimension + " descriptors (M=" + options.maxConn() + ", beam width "
                + options.beamWidth() + ") in " + folder;
    }

    // ---------------------------------------------------------------- files

    private static boolean isEmptyFolder(Path p) throws IOException {
        if (!Files.isDirectory(p)) {
            return false;
        }
        try (Stream<Path> s = Files.list(p)) {
            return s.findAny().isEmpty();
        }
    }
}
