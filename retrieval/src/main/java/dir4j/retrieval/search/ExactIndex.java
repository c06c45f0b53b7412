package dir4j.retrieval.search;

import dir4j.engine.cpu.TopK;
import dir4j.engine.DType;
import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.cpu.FloatScan;
import dir4j.engine.io.AtomicFiles;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Exact nearest-neighbour search by dot product over N x D float32 descriptors held in memory
 * (off-heap, in one growing tensor). A batch of queries is scored against the database block by
 * block with the engine's SGEMM ({@link SimilarityBlocks}); each block's k best rows per query
 * are selected in parallel over the queries (Backend#topk, for k up to
 * {@link dir4j.engine.Backend#TOPK_MAX}; above it every score is offered) and merged into a bounded
 * heap per query ({@link TopK}). Results are best first, ties by lower row.
 *
 * <p>On disk an index is a folder holding {@value #DESCRIPTORS} (float32, N x D) and
 * {@value #IDS} (one id per line, row order), each written atomically (temporary file, then
 * rename); loading checks that they agree.
 *
 * <p>Descriptors and queries must be finite: one NaN or infinity makes every score it touches NaN
 * (and NaN scores would rank first), so {@link #add} and {@link #search} refuse them, naming the
 * row, the element and the value, before anything is stored or sent to a device.
 *
 * <p>Thread-safe, for a service that adds while it searches: searches (and reads of the ids and
 * descriptors, and saves) run concurrently with each other; {@link #add}, {@link #computeOn} and
 * {@link #close} wait for those in progress and run alone (the SGEMM of each search runs on the
 * engine's CPU threads). Row numbers never change, so a result's rows keep their ids however much
 * is added later. Close the index to free its memory; a search after that is refused.
 */
public final class ExactIndex implements DescriptorIndex {
    /** File name of the descriptors in a saved index. */
    public static final String DESCRIPTORS = "descriptors.npy";
    /** File name of the ids in a saved index. */
    public static final String IDS = "ids.txt";

    private final int dimension;
    /** Read: searches and reads; write: add, computeOn, close. */
    private final java.util.concurrent.locks.ReentrantReadWriteLock lock =
            new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final List<String> ids = new ArrayList<>();
    private Tensor rows;
    private int size;
    private Device device = Device.CPU;
    /** rows[0:size] on {@link #device} when that is not the CPU; null until needed or after a change. */
    private Tensor deviceRows;

    /** An empty index of descriptors of the given dimension. */
    public ExactIndex(int dimension) {
        if (dimension < 1) {
            throw new IllegalArgumentException("descriptor dimension must be positive, got " + dimension);
        }
        this.dimension = dimension;
        this.rows = allocate(16);
    }

    @Override
    public int dimension() {
        return dimension;
    }

    /** Number of descriptors held. */
    @Override
    public int size() {
        lock.readLock().lock();
        try {
            return size;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The id of a row. */
    @Override
    public String id(int row) {
        lock.readLock().lock();
        try {
            return ids.get(row);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** All ids, in row order: a copy, which later additions leave as it is. */
    @Override
    public List<String> ids() {
        lock.readLock().lock();
        try {
            return List.copyOf(ids);
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Runs the similarity products of {@link #search} on {@code device} (e.g. cuda:0): the
     * descriptors are copied there once, at the first search after a change; each block of scores
     * has its k best per query selected on the device (Backend#topk; for k above
     * {@link dir4j.engine.Backend#TOPK_MAX} the whole block comes back and is selected on the host)
     * and the blocks' selections are merged on the host. Returns this. The CPU is the default; the
     * stored descriptors stay in host memory either way.
     */
    public ExactIndex computeOn(Device device) {
        lock.writeLock().lock();
        try {
            checkOpen();
            if (!device.equals(this.device)) {
                dropDeviceRows();
                this.device = device;
            }
            return this;
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** Where the similarity products run. */
    public Device computeDevice() {
        lock.readLock().lock();
        try {
            return device;
        } finally {
            lock.readLock().unlock();
        }
    }

    private void dropDeviceRows() {
        if (deviceRows != null) {
            deviceRows.close();
            deviceRows = null;
        }
    }

    /** Appends descriptors (rows of an M x D tensor) with their row numbers as ids ("0", "1", …). */
    public void add(Tensor descriptors) {
        lock.writeLock().lock();
        try {
            List<String> generated = new ArrayList<>();
            for (int i = 0; i < descriptors.shape(0); i++) {
                generated.add(Integer.toString(size + i));
            }
            addLocked(descriptors, generated);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * Appends descriptors (rows of an M x D tensor) with one id each (no line breaks in ids).
     *
     * @throws IllegalArgumentException for a shape or id count that does not fit, or a row holding
     *     NaN or an infinity (float32 being what is stored, a float64 value beyond its range counts
     *     as infinite); the message names the row of {@code descriptors}, the element and the value,
     *     and nothing is added
     */
    public void add(Tensor descriptors, List<String> newIds) {
        lock.writeLock().lock();
        try {
            addLocked(descriptors, newIds);
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void addLocked(Tensor descriptors, List<String> newIds) {
        checkOpen();
        if (descriptors.rank() != 2 || descriptors.shape(1) != dimension) {
            throw new IllegalArgumentException("cannot add descriptors of shape " + Shape.str(descriptors.shape())
                    + " to an index of dimension " + dimension + " (expected M x " + dimension + ")");
        }
        int m = descriptors.shape(0);
        if (newIds.size() != m) {
            throw new IllegalArgumentException(m + " descriptors but " + newIds.size() + " ids");
        }
        IdsFile.check(newIds);
        if ((long) size + m > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("index would exceed " + Integer.MAX_VALUE + " rows");
        }
        ensureCapacity(size + m);
        long at = (long) size * dimension * Float.BYTES;
        if (descriptors.dtype() == DType.FLOAT32 && descriptors.device().equals(Device.CPU)
                && descriptors.isContiguous()) {
            MemorySegment.copy(descriptors.segment(), descriptors.offset() * Float.BYTES, rows.segment(), at,
                    (long) m * dimension * Float.BYTES);
        } else {
            float[] data = DescriptorMatrix.of(descriptors).data();
            MemorySegment.copy(data, 0, rows.segment(), ValueLayout.JAVA_FLOAT, at, data.length);
        }
        // checked as stored (float32, in host memory), beyond the rows held: a refused block is never counted
        requireFinite(rows.segment(), (long) size * dimension, m, descriptors, "descriptor row");
        dropDeviceRows();
        size += m;
        ids.addAll(newIds);
    }

    /**
     * The k most similar rows (dot product) of each query row, best first; k larger than the
     * index returns every row.
     *
     * @throws IllegalArgumentException for k below 1, queries of another dimension, or a query
     *     row holding NaN or an infinity (checked in host memory, as the float32 values that are
     *     scored, before the queries go to a device; the message names the row, element and value)
     */
    @Override
    public Neighbours search(Tensor queries, int k) {
        lock.readLock().lock();
        try {
            return searchLocked(queries, k);
        } finally {
            lock.readLock().unlock();
        }
    }

    private Neighbours searchLocked(Tensor queries, int k) {
        checkOpen();
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        if (queries.rank() != 2 || queries.shape(1) != dimension) {
            throw new IllegalArgumentException("queries of shape " + Shape.str(queries.shape())
                    + " do not match an index of dimension " + dimension + " (expected Q x " + dimension + ")");
        }
        TopK[] best = new TopK[queries.shape(0)];
        int kept = Math.max(1, Math.min(k, size));
        for (int q = 0; q < best.length; q++) {
            best[q] = new TopK(kept);
        }
        try (MemoryScope scope = MemoryScope.open()) {
            // the float32 values that are scored, in host memory: the queries themselves when they are that
            // already, else a copy owned by this scope (float64 narrowed as SimilarityBlocks narrows it)
            Tensor host = queries;
            if (!host.device().equals(Device.CPU)) {
                host = host.to(Device.CPU);
            }
            if (host.dtype() != DType.FLOAT32) {
                host = host.to(DType.FLOAT32);
            }
            if (!host.isContiguous()) {
                host = host.contiguous();
            }
            requireFinite(host.segment(), host.offset(), host.shape(0), queries, "query row");
            if (size > 0) {
                Tensor database = rows;
                Tensor q = host;
                if (!device.equals(Device.CPU)) {
                    database = deviceRows();
                    q = queries.device().equals(device) ? queries : queries.to(device);
                }
                offerAll(q, database, best);
            }
        }
        return Neighbours.of(best);
    }

    /** rows[0:size] on the device, copied by the first search that needs them (searches run concurrently). */
    private Tensor deviceRows() {
        synchronized (deviceCopy) {
            if (deviceRows == null) {
                deviceRows = MemoryScope.detached(() -> rows.slice(0, 0, size).to(device));
            }
            return deviceRows;
        }
    }

    /** Guards the device copy's creation (a private monitor: callers may lock the index itself). */
    private final Object deviceCopy = new Object();

    private void offerAll(Tensor queries, Tensor database, TopK[] best) {
        int k = best.length == 0 ? 1 : best[0].capacity();
        if (k <= dir4j.engine.Backend.TOPK_MAX) {
            // each block's k best per query are selected where the scores are (on the CPU by the
            // backend's row-parallel top-k), and only those are merged here: the merge of every
            // score ran on one thread
            SimilarityBlocks.forEachTop(queries, database, size, k, (values, columns, q0, qn, d0, kept) -> {
                for (int i = 0; i < qn; i++) {
                    TopK t = best[q0 + i];
                    for (int r = 0; r < kept; r++) {
                        t.offer(values[i * kept + r], d0 + columns[i * kept + r]);
                    }
                }
            });
            return;
        }
        SimilarityBlocks.forEach(queries, database, size, (scores, q0, qn, d0, dn) -> {
            for (int i = 0; i < qn; i++) {
                TopK t = best[q0 + i];
                int base = i * dn;
                for (int j = 0; j < dn; j++) {
                    t.offer(scores[base + j], d0 + j);
                }
            }
        });
    }

    /**
     * Throws naming the first row (of {@code count} rows of {@link #dimension} float32 values from
     * element {@code base} of {@code seg}) that holds NaN or an infinity, its element and value;
     * {@code what} names a row ("descriptor row", "query row") and {@code source} is the tensor the
     * values came from (for the value it held where float32 overflowed).
     */
    private void requireFinite(MemorySegment seg, long base, int count, Tensor source, String what) {
        long at = FloatScan.firstNonFinite(seg, base, (long) count * dimension);
        if (at < 0) {
            return;
        }
        int row = (int) (at / dimension);
        int col = (int) (at % dimension);
        float stored = seg.getAtIndex(ValueLayout.JAVA_FLOAT, base + at);
        String value = Float.isNaN(stored) ? "NaN" : stored > 0 ? "+infinity" : "-infinity";
        if (source.dtype() != DType.FLOAT32 && !Float.isNaN(stored)) {
            double original;
            try (MemoryScope scope = MemoryScope.open()) {
                original = source.slice(0, row, row + 1).toDoubleArray()[col];
            }
            if (Double.isFinite(original)) {
                value = original + " (" + value + " as float32, beyond its range)";
            }
        }
        throw new IllegalArgumentException(what + " " + row + " holds " + value + " at element " + col
                + ", not a finite value: dot-product search needs finite " + (what.startsWith("query") ? "queries"
                : "descriptors") + " (one NaN or infinity makes every score it touches NaN)");
    }

    /** A copy of the descriptors, N x D float32 (the caller owns it). */
    public Tensor descriptors() {
        lock.readLock().lock();
        try {
            checkOpen();
            Tensor out = Tensor.empty(DType.FLOAT32, Device.CPU, size, dimension);
            MemorySegment.copy(rows.segment(), 0, out.segment(), 0, (long) size * dimension * Float.BYTES);
            return out;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** Writes {@value #DESCRIPTORS} and {@value #IDS} into {@code folder} (created if absent). */
    public void save(Path folder) throws IOException {
        lock.readLock().lock();
        try {
            checkOpen();
            Files.createDirectories(folder);
            try (MemoryScope scope = MemoryScope.open()) {
                Npy.write(folder.resolve(DESCRIPTORS), rows.slice(0, 0, size));
            }
            IdsFile.write(folder.resolve(IDS), ids);
        } catch (IOException e) {
            throw Interrupts.explained(e, "saving the index in " + folder);
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Adds M x D descriptors (float32 or float64, any device) with one id per row to the index
     * saved in {@code folder}, as its rows N .. N + M - 1, without loading it: the saved rows are
     * copied a block at a time (64 MiB) into a new folder beside it, the new rows after them, and the
     * new folder renamed into place ({@link AtomicFiles#replaceFolder}). Memory holds one block and
     * the new rows, not the index (a loaded index and its grown copy took twice its size), and a
     * failure or a kill leaves the old index as it was. The saved rows are not checked again (they
     * were when added); the new ones are, as {@link #add} checks them. One writer at a time: of two
     * appends into one folder at once the later rename wins ({@code dir4j index} holds the folder's
     * lock around it). An index loaded before keeps the old rows.
     *
     * @return N, the number of rows before (the first new row's number)
     * @throws IllegalArgumentException for a dimension other than the index's, an id count that does
     *     not fit, a row holding NaN or an infinity (named, counted in the new rows)
     * @throws IOException for a folder that is not a saved index, or whose files disagree
     */
    public static int append(Path folder, Tensor descriptors, List<String> newIds) throws IOException {
        try {
            return appendFiles(AtomicFiles.throughLinks(folder.toAbsolutePath()), folder, descriptors, newIds);
        } catch (IOException e) {
            throw Interrupts.explained(e, "adding to the index in " + folder);
        }
    }

    /** Bytes of saved rows {@link #append} copies at a time (tests make it small). */
    static long appendBlockBytes = 64L << 20;

    private static int appendFiles(Path target, Path folder, Tensor descriptors, List<String> newIds)
            throws IOException {
        Path descriptorFile = target.resolve(DESCRIPTORS);
        Path idFile = target.resolve(IDS);
        requireIndexFiles(folder, descriptorFile, idFile);
        List<String> ids = IdsFile.read(idFile);
        Path tmp = null;
        try {
            int n;
            try (Npy.RowReader reader = Npy.RowReader.open(descriptorFile);
                 ExactIndex fresh = new ExactIndex(reader.columns())) {
                int d = reader.columns();
                if (reader.rows() != ids.size()) {
                    throw new IOException(folder + ": " + DESCRIPTORS + " has " + reader.rows() + " rows but " + IDS
                            + " has " + ids.size() + " ids; the index is incomplete, rebuild it");
                }
                n = ids.size();
                if (descriptors.rank() != 2 || descriptors.shape(1) != d) {
                    throw new IllegalArgumentException("the index in " + folder + " holds " + d + "-d descriptors; "
                            + "these are " + (descriptors.rank() == 2 ? descriptors.shape(1) + "-d"
                            : "of shape " + Shape.str(descriptors.shape())));
                }
                int m = descriptors.shape(0);
                if ((long) n + m > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("the index in " + folder + " holds " + n + " rows: " + m
                            + " more would exceed " + Integer.MAX_VALUE);
                }
                fresh.add(descriptors, newIds); // shape, ids and finiteness checked, as float32 in host memory
                tmp = AtomicFiles.temporaryFolderBeside(target);
                try (Npy.Writer w = Npy.Writer.create(tmp.resolve(DESCRIPTORS), DType.FLOAT32, n + m, d);
                     MemoryScope scope = MemoryScope.open()) {
                    int block = (int) Math.max(1, Math.min(n, appendBlockBytes / ((long) d * Float.BYTES)));
                    for (long r = 0; r < n; r += block) {
                        try (Tensor t = reader.read(r, (int) Math.min(block, n - r))) {
                            w.write(t);
                        }
                    }
                    w.write(fresh.rows.slice(0, 0, m));
                    w.finish();
                }
            }
            List<String> all = new ArrayList<>(ids.size() + newIds.size());
            all.addAll(ids);
            all.addAll(newIds);
            IdsFile.write(tmp.resolve(IDS), all);
            AtomicFiles.replaceFolder(tmp, target);
            return n;
        } finally {
            if (tmp != null && Files.exists(tmp)) {
                AtomicFiles.deleteTree(tmp);
            }
        }
    }

    private static void requireIndexFiles(Path folder, Path descriptorFile, Path idFile) throws IOException {
        for (Path p : List.of(descriptorFile, idFile)) {
            if (!Files.isRegularFile(p)) {
                throw new NoSuchFileException(p.toString(), null, "not an index folder: expected " + DESCRIPTORS
                        + " and " + IDS + " in " + folder);
            }
        }
    }

    /** Reads an index written by {@link #save}. */
    public static ExactIndex load(Path folder) throws IOException {
        try {
            return loadFolder(folder);
        } catch (IOException e) {
            throw Interrupts.explained(e, "loading the index in " + folder);
        }
    }

    private static ExactIndex loadFolder(Path folder) throws IOException {
        Path descriptorFile = folder.resolve(DESCRIPTORS);
        Path idFile = folder.resolve(IDS);
        requireIndexFiles(folder, descriptorFile, idFile);
        List<String> lines = IdsFile.read(idFile);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor d = Npy.read(descriptorFile);
            if (d.rank() != 2 || !d.dtype().isFloating()) {
                throw new IOException(descriptorFile + ": expected an N x D float matrix, found "
                        + Shape.str(d.shape()) + " " + d.dtype());
            }
            if (d.shape(0) != lines.size()) {
                throw new IOException(folder + ": " + DESCRIPTORS + " has " + d.shape(0) + " rows but " + IDS + " has "
                        + lines.size() + " ids; the index is incomplete, rebuild it");
            }
            ExactIndex index = new ExactIndex(d.shape(1));
            try {
                index.add(d, lines);
            } catch (IllegalArgumentException e) { // a NaN or infinity: the file's fault, named with it
                index.close();
                throw new IOException(descriptorFile + ": " + e.getMessage(), e);
            }
            return index;
        }
    }

    /** Frees the descriptors, once the searches in progress are done; idempotent. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            dropDeviceRows();
            if (rows != null) {
                rows.close();
                rows = null;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    private void checkOpen() {
        if (rows == null) {
            throw new IllegalStateException("the index was closed");
        }
    }

    private void ensureCapacity(int needed) {
        int capacity = rows.shape(0);
        if (needed <= capacity) {
            return;
        }
        int grown = (int) Math.min(Integer.MAX_VALUE, Math.max(needed, 2L * capacity));
        Tensor bigger = allocate(grown);
        MemorySegment.copy(rows.segment(), 0, bigger.segment(), 0, (long) size * dimension * Float.BYTES);
        rows.close();
        rows = bigger;
    }

    /** Storage owned by the index, never by a scope the caller happens to have open. */
    private Tensor allocate(int capacity) {
        return MemoryScope.detached(() -> Tensor.empty(DType.FLOAT32, Device.CPU, capacity, dimension));
    }
}
