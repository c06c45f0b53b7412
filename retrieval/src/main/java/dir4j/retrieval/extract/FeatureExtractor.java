package dir4j.retrieval.extract;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.OutputLock;
import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.image.BoundingBox;
import dir4j.retrieval.image.RgbImage;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Describes images with a {@link RetrievalNet}: decode (a small thread pool, ahead of the
 * network through a bounded queue), crop, resize at each scale, normalise, run the network on
 * batches of images of identical size (so no padding ever enters a descriptor; the reference
 * runs one image at a time for the same reason), combine the scales ({@link ScalePooling}).
 * Rows come out in input order.
 *
 * <p>{@link #extractToFile} writes N×D float32 .npy plus the ids, resumably: work is stored in
 * parts of {@link ExtractionOptions#chunkSize()} images, a rerun with the same inputs and
 * settings skips the finished parts (checked against the list's ids and their checksums), and
 * the final file appears atomically at the end, after its ids file ({@link PartStore}). One
 * extraction at a time writes a given file ({@link #lockFile}).
 *
 * <p>{@link #describe(RgbImage, BoundingBox)} gives one image's descriptor, the same as its row
 * of an extraction: the entry point for services that receive images one at a time.
 *
 * <p>The network is put in evaluation mode (batch-norm running statistics) and run without
 * recording gradients.
 */
public final class FeatureExtractor implements AutoCloseable {
    /** An image left out under {@link ExtractionOptions.OnError#SKIP}, with the reason. */
    public record Skipped(String id, Path path, String reason) {}

    /**
     * Descriptors in memory.
     *
     * @param descriptors rows × D float32 unit descriptors (the caller owns it)
     * @param ids         the id of each row (skipped images have no row)
     * @param skipped     the images left out
     */
    public record Result(Tensor descriptors, List<String> ids, List<Skipped> skipped) implements AutoCloseable {
        @Override
        public void close() {
            descriptors.close();
        }
    }

    /**
     * Descriptors written to disk.
     *
     * @param descriptors  the .npy file (rows × D float32)
     * @param ids          the ids file, one id per row
     * @param rows         rows written
     * @param dimension    D
     * @param skipped      the images left out
     * @param partsReused  parts found finished from an earlier run
     * @param partsWritten parts described in this run
     */
    public record FileResult(Path descriptors, Path ids, int rows, int dimension, List<Skipped> skipped,
                             int partsReused, int partsWritten) {}

    private final RetrievalNet net;
    /**
     * The network as inference runs it (compiled on the CPU), taken at the start of each
     * extraction: the weights cannot change during one, and a later one sees their latest values.
     */
    private RetrievalNet.Inference inference;
    private boolean closed;
    private final ExtractionOptions options;
    private final double scalePoolingP;
    private final PrintStream log;

    /** An extractor reporting progress and notes on stderr. */
    public FeatureExtractor(RetrievalNet net, ExtractionOptions options) {
        this(net, options, System.err);
    }

    /**
     * @param log where the progress bar and notes go
     * @throws IllegalArgumentException when the scale-pooling exponent is to come from a network without GeM
     */
    public FeatureExtractor(RetrievalNet net, ExtractionOptions options, PrintStream log) {
        this.net = net;
        this.options = options;
        this.log = log;
        this.scalePoolingP = Double.isNaN(options.scalePoolingP()) ? networkGemP(net) : options.scalePoolingP();
        net.eval();
    }

    /**
     * The unit descriptor [D] of one decoded image (cropped to {@code crop} first when it is not
     * null), exactly its row of an {@link #extract extraction} with these options: each scale
     * resized and normalised, the network, the scales combined. The network runs as it was at
     * the first call since this extractor was made or last extracted (compiled on the CPU and
     * on CUDA, see {@link RetrievalNet#inference()}, and kept until {@link #close()}); after
     * changing its weights, call {@link #refresh()}. Safe to call from several threads: calls run
     * one at a time (the compiled network reuses its buffers).
     *
     * @throws IOException naming the image when the crop or a scale does not fit it
     */
    public synchronized float[] describe(RgbImage image, BoundingBox crop) throws IOException {
        DecodeQueue.Prepared p = DecodeQueue.prepare(image, crop, options.preprocessing(), options.scales(),
                "image " + image.width() + "x" + image.height());
        requireOpen();
        if (inference == null) {
            inference = net.inference();
        }
        float[][][] perScale = new float[1][p.chw().length][];
        for (int s = 0; s < p.chw().length; s++) {
            long key = (long) p.sizes()[s][0] << 32 | p.sizes()[s][1];
            forward(List.of(new Work(0, s, p.chw()[s])), key, perScale);
        }
        return ScalePooling.combine(perScale[0], scalePoolingP);
    }

    /** Makes {@link #describe(RgbImage, BoundingBox)} take the network's current weights. */
    public synchronized void refresh() {
        requireOpen();
        dropInference();
    }

    /**
     * Frees what {@link #describe(RgbImage, BoundingBox)} keeps (the compiled network); not the
     * network. The extractor cannot be used afterwards. Idempotent.
     */
    @Override
    public synchronized void close() {
        closed = true;
        dropInference();
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("the extractor was closed: make a new FeatureExtractor to describe images");
        }
    }

    private void dropInference() {
        if (inference != null) {
            inference.close();
            inference = null;
        }
    }

    /** The learned GeM exponent of a network ({@code adpool.p}). */
    public static double networkGemP(RetrievalNet net) {
        Tensor p = net.stateDict().get("adpool.p");
        if (p == null) {
            throw new IllegalArgumentException("the network pools with '" + net.options().pooling()
                    + "', so it has no GeM p to combine scales with: give the exponent explicitly");
        }
        return p.item();
    }

    /** The exponent used across scales. */
    public double scalePoolingP() {
        return scalePoolingP;
    }

    /** Describes the images in memory. */
    public synchronized Result extract(List<ImageRef> images, String label) throws IOException {
        requireOpen();
        dropInference();
        inference = net.inference();
        try {
            ProgressBar bar = new ProgressBar(label, images.size(), 0, log, !options.quiet());
            int d = net.dimension();
            Described all;
            try (DecodeQueue queue = queue(images, IntStream.range(0, images.size()).toArray())) {
                all = describe(images, 0, images.size(), queue, bar, 0);
            }
            bar.finish();
            Tensor t = Tensor.of(all.rows(), all.ids().size(), d);
            return new Result(t, all.ids(), all.skipped());
        } finally {
            dropInference();
        }
    }

    /**
     * Describes the images into {@code out} (.npy) and its ids file ({@link #idsFile}),
     * resuming from {@code <out>.parts/} when asked and possible.
     */
    public FileResult extractToFile(List<ImageRef> images, Path out, String label) throws IOException {
        return extractToFile(images, out, label, true);
    }

    /**
     * Describes the images into {@code out} (.npy) and its ids file ({@link #idsFile}),
     * resuming from {@code <out>.parts/} when asked and possible.
     *
     * <p>The whole extraction holds {@code out}'s {@link OutputLock} ({@link #lockFile}): a
     * second extraction to the same file, in this process or another, is refused before it
     * touches any file, instead of mixing its parts with the first's. Under the lock, the
     * temporary files of writers killed mid-write are deleted first.
     *
     * @param publishEmpty whether to write {@code out} and its ids when every image was left out;
     *                     when not, only the report of skipped images is written and an earlier
     *                     {@code out} and ids file are deleted (the result has 0 rows)
     * @throws IOException naming the holder when another writer holds the lock, or naming the
     *                     file that could not be written and why
     */
    public synchronized FileResult extractToFile(List<ImageRef> images, Path out, String label, boolean publishEmpty)
            throws IOException {
        requireOpen();
        try (OutputLock lock = OutputLock.acquire(lockFile(out), out + " (a descriptor file)")) {
            return extractLocked(images, out, label, publishEmpty);
        }
    }

    /**
     * The lock file of an extraction to {@code npy}: {@code .<name>.lock} in its folder, hidden,
     * and kept (see {@link OutputLock}).
     */
    public static Path lockFile(Path npy) {
        Path abs = npy.toAbsolutePath();
        return abs.resolveSibling("." + abs.getFileName() + ".lock");
    }

    private FileResult extractLocked(List<ImageRef> images, Path out, String label, boolean publishEmpty)
            throws IOException {
        dropInference();
        inference = net.inference();
        try {
            int d = net.dimension();
            int chunk = options.chunkSize();
            int chunks = (images.size() + chunk - 1) / chunk;
            PartStore store = new PartStore(out, manifest(images), d, log, options.remedies());
            List<Path> leftovers = store.removeLeftovers();
            if (!leftovers.isEmpty() && !options.quiet()) {
                log.println(label + ": deleted " + leftovers.size() + " temporary file"
                        + (leftovers.size() == 1 ? "" : "s") + " left by an interrupted run (" + leftovers.getFirst().getFileName()
                        + (leftovers.size() > 1 ? ", ..." : "") + ")");
            }
            store.open(options.resume());
            List<Integer> todo = new ArrayList<>();
            long doneImages = 0;
            for (int k = 0; k < chunks; k++) {
                int from = k * chunk;
                int to = Math.min(from + chunk, images.size());
                if (options.resume() && store.isDone(k, images.subList(from, to).stream().map(ImageRef::id).toList())) {
                    doneImages += to - from;
                } else {
                    todo.add(k);
                }
            }
            int reused = chunks - todo.size();
            if (reused > 0 && !options.quiet()) {
                log.println(label + ": resuming, " + reused + " of " + chunks + " parts (" + doneImages
                        + " images) already done in " + store.dir());
            }
            int[] order = todo.stream().flatMapToInt(k -> IntStream.range(k * chunk, Math.min((k + 1) * chunk,
                    images.size()))).toArray();
            ProgressBar bar = new ProgressBar(label, images.size(), doneImages, log, !options.quiet());
            try (DecodeQueue queue = queue(images, order)) {
                for (int k : todo) {
                    int from = k * chunk;
                    int to = Math.min(from + chunk, images.size());
                    Described part = describe(images, from, to, queue, bar, doneImages);
                    store.write(k, part.rows(), part.ids(), part.skipped());
                    doneImages += to - from;
                }
            }
            bar.finish();
            PartStore.Assembled a = store.assemble(chunks, publishEmpty);
            if (!a.skipped().isEmpty()) {
                log.println(label + ": " + a.skipped().size() + " image" + (a.skipped().size() == 1 ? "" : "s")
                        + " left out, listed in " + PartStore.skippedFile(out.toAbsolutePath()));
            }
            return new FileResult(out, PartStore.idsFile(out), a.ids().size(), d, a.skipped(), reused, todo.size());
        } finally {
            dropInference();
        }
    }

    /** The ids file written beside a descriptor file: {@code feats.npy} → {@code feats.ids.txt}. */
    public static Path idsFile(Path npy) {
        return PartStore.idsFile(npy);
    }

    /** The report of skipped images beside a descriptor file: {@code feats.skipped.txt}. */
    public static Path skippedFile(Path npy) {
        return PartStore.skippedFile(npy);
    }

    private DecodeQueue queue(List<ImageRef> images, int[] order) {
        return new DecodeQueue(images, order, options.preprocessing(), options.scales(), options.decode(),
                options.threads(), options.batchSize() + 2 * options.threads());
    }

    // ---------------------------------------------------------------- describing a run of images

    private record Described(float[] rows, List<String> ids, List<Skipped> skipped) {}

    /** One network input waiting for a batch: image {@code local} of the range, at scale {@code scale}. */
    private record Work(int local, int scale, float[] chw) {}

    /** Describes images[from, to), taking them from the queue (which yields exactly them next). */
    private Described describe(List<ImageRef> images, int from, int to, DecodeQueue queue, ProgressBar bar,
                               long doneBefore) throws IOException {
        int n = to - from;
        int scales = options.scales().length;
        float[][][] perScale = new float[n][scales][];
        boolean[] skippedFlag = new boolean[n];
        List<Skipped> skipped = new ArrayList<>();
        Map<Long, List<Work>> groups = new LinkedHashMap<>();
        int pending = 0;
        int maxPending = 2 * options.batchSize();
        for (int i = 0; i < n; i++) {
            DecodeQueue.Prepared p = queue.next();
            if (p.index() != from + i) {
                throw new IllegalStateException("decode queue out of order: " + p.index() + " for " + (from + i));
            }
            if (p.failure() != null) {
                if (options.onError() == ExtractionOptions.OnError.FAIL) {
                    throw new IOException(imageFailure(p.failure().getMessage(), options.remedies()), p.failure());
                }
                ImageRef ref = images.get(p.index());
                skipped.add(new Skipped(ref.id(), ref.path(), p.failure().getMessage()));
                skippedFlag[i] = true;
                log.println("dir4j extract: skipped " + p.failure().getMessage());
            } else {
                for (int s = 0; s < scales; s++) {
                    long key = (long) p.sizes()[s][0] << 32 | p.sizes()[s][1];
                    List<Work> g = groups.computeIfAbsent(key, k -> new ArrayList<>());
                    g.add(new Work(i, s, p.chw()[s]));
                    pending++;
                    if (g.size() == options.batchSize()) {
                        pending -= forward(groups.remove(key), key, perScale);
                    }
                }
                while (pending > maxPending) {
                    long largest = groups.entrySet().stream().max((a, b) -> a.getValue().size() - b.getValue().size())
                            .orElseThrow().getKey();
                    pending -= forward(groups.remove(largest), largest, perScale);
                }
            }
            bar.update(doneBefore + i + 1);
        }
        for (Map.Entry<Long, List<Work>> e : groups.entrySet()) {
            forward(e.getValue(), e.getKey(), perScale);
        }
        int d = net.dimension();
        List<String> ids = new ArrayList<>();
        float[] rows = new float[(n - skipped.size()) * d];
        int r = 0;
        for (int i = 0; i < n; i++) {
            if (skippedFlag[i]) {
                continue;
            }
            float[] v = ScalePooling.combine(perScale[i], scalePoolingP);
            System.arraycopy(v, 0, rows, r * d, d);
            ids.add(images.get(from + i).id());
            r++;
        }
        return new Described(rows, ids, skipped);
    }

    /**
     * The error for an image that stopped an extraction: the decoder's message (it names the file
     * and what is wrong), with the way to leave such images out when the caller offers one.
     */
    static String imageFailure(String decoderMessage, ExtractionOptions.Remedies remedies) {
        return remedies.skipUnreadable() == null ? decoderMessage
                : decoderMessage + " (fix or remove the image, or rerun with " + remedies.skipUnreadable()
                        + " to leave unreadable images out)";
    }

    /** Runs the network on equally sized inputs; returns how many. */
    private int forward(List<Work> batch, long sizeKey, float[][][] perScale) {
        int h = (int) (sizeKey >>> 32);
        int w = (int) sizeKey;
        int n = batch.size();
        int plane = 3 * h * w;
        float[] x = new float[n * plane];
        for (int j = 0; j < n; j++) {
            System.arraycopy(batch.get(j).chw(), 0, x, j * plane, plane);
        }
        Device device = net.device();
        try (MemoryScope scope = MemoryScope.open(); Autograd.NoGrad noGrad = Autograd.noGrad()) {
            Tensor in = Tensor.of(x, n, 3, h, w);
            if (!device.equals(Device.CPU)) {
                in = in.to(device);
            }
            Tensor desc = inference.describe(in);
            if (!desc.device().equals(Device.CPU)) {
                desc = desc.to(Device.CPU);
            }
            float[] out = desc.toFloatArray();
            int d = out.length / n;
            for (int j = 0; j < n; j++) {
                Work wk = batch.get(j);
                float[] row = new float[d];
                System.arraycopy(out, j * d, row, 0, d);
                perScale[wk.local()][wk.scale()] = row;
            }
        }
        return n;
    }

    // ---------------------------------------------------------------- what makes parts reusable

    private Map<String, String> manifest(List<ImageRef> images) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("images", Integer.toString(images.size()));
        m.put("chunk", Integer.toString(options.chunkSize()));
        m.put("dimension", Integer.toString(net.dimension()));
        MessageDigest list = sha256();
        for (ImageRef r : images) {
            list.update((r.id() + "\t" + r.path().toAbsolutePath() + "\t" + r.crop() + "\n")
                    .getBytes(StandardCharsets.UTF_8));
        }
        m.put("inputs", HexFormat.of().formatHex(list.digest()));
        m.put("settings", options.fingerprint() + "; scalePoolingP used=" + scalePoolingP);
        m.put("network", net.options() + " weights sha256 " + weightsDigest(net));
        return m;
    }

    /** SHA-256 over every parameter and buffer, by name: parts from other weights are never mixed in. */
    static String weightsDigest(RetrievalNet net) {
        MessageDigest md = sha256();
        for (Map.Entry<String, Tensor> e : net.stateDict().entrySet()) {
            md.update(e.getKey().getBytes(StandardCharsets.UTF_8));
            Tensor t = e.getValue();
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor c = t.device().equals(Device.CPU) ? t : t.to(Device.CPU);
                c = c.contiguous();
                MemorySegment seg = c.segment();
                long bytes = c.numel() * c.dtype().byteSize();
                md.update(seg.asSlice(c.offset() * c.dtype().byteSize(), bytes).asByteBuffer());
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
