package dir4j.retrieval.data;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.Unpickler;
import dir4j.retrieval.eval.Judgement;
import dir4j.retrieval.eval.RevisitedGroundTruth;
import dir4j.retrieval.image.BoundingBox;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * An Oxford/Paris-style retrieval benchmark: database images, query images with their query
 * regions, and per-query ground truth, read from the published ground-truth pickle.
 *
 * <p>Layout under a data root (cnnimageretrieval-pytorch's, which the revisited datasets ship
 * in): {@code <root>/roxford5k/jpg/<name>.jpg} and {@code <root>/roxford5k/gnd_roxford5k.pkl};
 * the same for {@code rparis6k}, and for the old protocol's {@code oxford5k}/{@code paris6k}
 * with {@code gnd_oxford5k.pkl}/{@code gnd_paris6k.pkl}. The reference (dirtorch) keeps the
 * revisited pickles beside the old ones ({@code <root>/oxford5k/gnd_roxford5k.pkl} with images
 * in {@code <root>/oxford5k/jpg}); that layout is found too. dir4j's synthetic benchmark
 * ({@code dir4j synth}) is {@code synth} (test split, {@code <root>/synth/gnd_synth.pkl}) and
 * {@code synth-val} ({@code <root>/synth/gnd_synth-val.pkl}), both with images in
 * {@code <root>/synth/jpg}, in the revisited format.
 *
 * <p>The pickle is a dict: {@code imlist} (database image names), {@code qimlist} (query image
 * names), {@code gnd} (one dict per query: {@code bbx} = [x1, y1, x2, y2] in the query image's
 * pixels, and {@code easy}/{@code hard}/{@code junk} for the revisited protocol or
 * {@code ok}/{@code junk} for the old one, as lists or NumPy arrays of database indices). It is
 * read by the restricted unpickler with only plain containers and NumPy arrays allowed. A name
 * without an extension gets {@code .jpg}, as the reference adds.
 */
public final class RetrievalDataset {
    /** Revisited (easy/hard/junk, Radenović et al. 2018) or classic (ok/junk) ground truth. */
    public enum Protocol { REVISITED, CLASSIC }

    /**
     * Where a known dataset lives: its protocol and the folders under a data root that may hold
     * {@code gnd_<name>.pkl} and {@code jpg/}, in the order they are tried.
     */
    private record Layout(Protocol protocol, List<String> folders) {}

    private static final Map<String, Layout> LAYOUTS = Map.of(
            "roxford5k", new Layout(Protocol.REVISITED, List.of("roxford5k", "oxford5k")), // dirtorch: oxford5k/gnd_roxford5k.pkl
            "rparis6k", new Layout(Protocol.REVISITED, List.of("rparis6k", "paris6k")),
            "oxford5k", new Layout(Protocol.CLASSIC, List.of("oxford5k")),
            "paris6k", new Layout(Protocol.CLASSIC, List.of("paris6k")),
            // dir4j's synthetic benchmark (dir4j synth): both splits share <root>/synth/jpg
            "synth", new Layout(Protocol.REVISITED, List.of("synth")),
            "synth-val", new Layout(Protocol.REVISITED, List.of("synth")));

    /** The datasets {@link #load} knows, with their protocol. */
    public static final Map<String, Protocol> KNOWN = LAYOUTS.entrySet().stream().collect(
            java.util.stream.Collectors.toUnmodifiableMap(Map.Entry::getKey, e -> e.getValue().protocol()));

    private final String name;
    private final Protocol protocol;
    private final Path groundTruthFile;
    private final Path imageDir;
    private final List<String> imageNames;
    private final List<String> queryNames;
    private final List<BoundingBox> queryBoxes;
    private final List<int[][]> labels; // per query: {easy, hard, junk} or {ok, junk}

    private RetrievalDataset(String name, Protocol protocol, Path groundTruthFile, Path imageDir,
                             List<String> imageNames, List<String> queryNames, List<BoundingBox> queryBoxes,
                             List<int[][]> labels) {
        this.name = name;
        this.protocol = protocol;
        this.groundTruthFile = groundTruthFile;
        this.imageDir = imageDir;
        this.imageNames = List.copyOf(imageNames);
        this.queryNames = List.copyOf(queryNames);
        this.queryBoxes = Collections.unmodifiableList(new ArrayList<>(queryBoxes));
        this.labels = List.copyOf(labels);
    }

    /**
     * Loads a known dataset ({@link #KNOWN}) from a data root, checking that the ground truth
     * and every image exist.
     *
     * @throws IOException naming what was expected where, when the root, the pickle or images
     *     are missing, or the pickle is not a ground truth
     */
    public static RetrievalDataset load(String name, Path dataRoot) throws IOException {
        return load(name, dataRoot, true);
    }

    /**
     * Loads a known dataset, checking that every image exists only when {@code checkImages}
     * (an evaluation of descriptors made earlier needs the ground truth, not the images).
     */
    public static RetrievalDataset load(String name, Path dataRoot, boolean checkImages) throws IOException {
        String key = name.toLowerCase(Locale.ROOT);
        Layout layout = LAYOUTS.get(key);
        if (layout == null) {
            throw new IllegalArgumentException("unknown dataset '" + name + "': use one of " + String.join(", ",
                    KNOWN.keySet().stream().sorted().toList()));
        }
        String gnd = "gnd_" + key + ".pkl";
        if (!Files.isDirectory(dataRoot)) {
            throw new IOException("data root " + dataRoot + " does not exist or is not a folder (it should hold "
                    + layout.folders().getFirst() + "/" + gnd + " and " + layout.folders().getFirst() + "/jpg/)");
        }
        List<Path> folders = layout.folders().stream().map(dataRoot::resolve).toList();
        for (Path folder : folders) {
            if (Files.isRegularFile(folder.resolve(gnd))) {
                return read(key, layout.protocol(), folder.resolve(gnd), folder.resolve("jpg"), checkImages);
            }
        }
        throw new IOException("no ground truth for " + key + " under " + dataRoot + ": expected "
                + String.join(" or ", folders.stream().map(f -> f.resolve(gnd).toString()).toList()));
    }

    /**
     * Reads a ground-truth pickle whose images lie in {@code imageDir}.
     *
     * @param checkImages fail, naming the missing images, unless every database and query image exists
     */
    public static RetrievalDataset read(String name, Protocol protocol, Path groundTruthFile, Path imageDir,
                                        boolean checkImages) throws IOException {
        Object root = Unpickler.load(groundTruthFile, Unpickler.Options.strict());
        RetrievalDataset d;
        try {
            d = parse(name, protocol, groundTruthFile, imageDir, root);
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
        if (checkImages) {
            d.checkImages();
        }
        return d;
    }

    private static RetrievalDataset parse(String name, Protocol protocol, Path file, Path imageDir, Object root)
            throws IOException {
        String where = file.toString();
        if (!(root instanceof Map<?, ?> top)) {
            throw new IOException(where + ": not a ground truth: expected a dict with imlist, qimlist and gnd, found "
                    + describe(root));
        }
        List<String> images = strings(where, "imlist", top.get("imlist"));
        List<String> queries = strings(where, "qimlist", top.get("qimlist"));
        if (!(top.get("gnd") instanceof List<?> gnd)) {
            throw new IOException(where + ": 'gnd' should be a list of per-query dicts, found " + describe(top.get("gnd")));
        }
        if (gnd.size() != queries.size()) {
            throw new IOException(where + ": " + queries.size() + " queries in qimlist but " + gnd.size()
                    + " entries in gnd");
        }
        String[] keys = protocol == Protocol.REVISITED ? new String[] {"easy", "hard", "junk"}
                : new String[] {"ok", "junk"};
        List<BoundingBox> boxes = new ArrayList<>();
        List<int[][]> labels = new ArrayList<>();
        for (int q = 0; q < gnd.size(); q++) {
            String at = where + ": gnd[" + q + "]";
            if (!(gnd.get(q) instanceof Map<?, ?> entry)) {
                throw new IOException(at + " should be a dict, found " + describe(gnd.get(q)));
            }
            boxes.add(box(at, entry.get("bbx")));
            int[][] l = new int[keys.length][];
            for (int k = 0; k < keys.length; k++) {
                if (!entry.containsKey(keys[k])) {
                    throw new IOException(at + " has no '" + keys[k] + "' (a " + protocol.name().toLowerCase(Locale.ROOT)
                            + "-protocol ground truth has " + String.join(", ", keys) + "; found keys "
                            + entry.keySet() + ")");
                }
                l[k] = indices(at + "['" + keys[k] + "']", entry.get(keys[k]), images.size());
            }
            labels.add(l);
        }
        return new RetrievalDataset(name, protocol, file, imageDir, images, queries, boxes, labels);
    }

    private void checkImages() throws IOException {
        List<String> missing = new ArrayList<>();
        for (ImageRef r : databaseImages()) {
            if (!Files.isRegularFile(r.path())) {
                missing.add(r.path().toString());
            }
        }
        for (ImageRef r : queryImages()) {
            if (!Files.isRegularFile(r.path()) && !missing.contains(r.path().toString())) {
                missing.add(r.path().toString());
            }
        }
        if (!missing.isEmpty()) {
            throw new IOException(name + ": " + missing.size() + " of the images named by " + groundTruthFile
                    + " are missing from " + imageDir + ":" + ListFiles.listing(missing));
        }
    }

    // ---------------------------------------------------------------- accessors

    public String name() {
        return name;
    }

    public Protocol protocol() {
        return protocol;
    }

    public Path groundTruthFile() {
        return groundTruthFile;
    }

    public Path imageDir() {
        return imageDir;
    }

    /** Database image names as the pickle's imlist spells them. */
    public List<String> imageNames() {
        return imageNames;
    }

    /** Query image names as the pickle's qimlist spells them. */
    public List<String> queryNames() {
        return queryNames;
    }

    /** Each query's region (null where the pickle gives none). */
    public List<BoundingBox> queryBoxes() {
        return queryBoxes;
    }

    /** The database images (whole), in imlist order. */
    public List<ImageRef> databaseImages() {
        List<ImageRef> out = new ArrayList<>(imageNames.size());
        for (String n : imageNames) {
            out.add(ImageRef.of(n, file(n)));
        }
        return out;
    }

    /** The query images, each cropped to its region, in qimlist order. */
    public List<ImageRef> queryImages() {
        List<ImageRef> out = new ArrayList<>(queryNames.size());
        for (int q = 0; q < queryNames.size(); q++) {
            out.add(new ImageRef(queryNames.get(q), file(queryNames.get(q)), queryBoxes.get(q)));
        }
        return out;
    }

    /** The file of an image name: {@code <imageDir>/<name>}, with {@code .jpg} added when it has no extension. */
    public Path file(String imageName) {
        String fileName = Path.of(imageName).getFileName().toString();
        return imageDir.resolve(fileName.contains(".") ? imageName : imageName + ".jpg");
    }

    /** Per-query easy/hard/junk database indices (the revisited protocol only). */
    public List<RevisitedGroundTruth> revisitedGroundTruth() {
        if (protocol != Protocol.REVISITED) {
            throw new IllegalStateException(name + " has the classic ok/junk ground truth, not easy/hard/junk");
        }
        return labels.stream().map(l -> new RevisitedGroundTruth(l[0], l[1], l[2])).toList();
    }

    /** Per-query positives (ok) and junk database indices (the classic protocol only). */
    public List<Judgement> classicGroundTruth() {
        if (protocol != Protocol.CLASSIC) {
            throw new IllegalStateException(name + " has the revisited easy/hard/junk ground truth, not ok/junk");
        }
        return labels.stream().map(l -> new Judgement(l[0], l[1])).toList();
    }

    @Override
    public String toString() {
        return name + " (" + protocol.name().toLowerCase(Locale.ROOT) + " protocol): " + imageNames.size()
                + " database images, " + queryNames.size() + " queries, from " + groundTruthFile;
    }

    // ---------------------------------------------------------------- pickle values

    private static List<String> strings(String where, String key, Object v) throws IOException {
        if (!(v instanceof List<?> list)) {
            throw new IOException(where + ": '" + key + "' should be a list of image names, found " + describe(v));
        }
        List<String> out = new ArrayList<>(list.size());
        for (int i = 0; i < list.size(); i++) {
            Object o = list.get(i);
            if (o instanceof String s) {
                out.add(s);
            } else if (o instanceof byte[] b) {
                out.add(new String(b, java.nio.charset.StandardCharsets.UTF_8));
            } else {
                throw new IOException(where + ": " + key + "[" + i + "] should be a name, found " + describe(o));
            }
        }
        return out;
    }

    private static BoundingBox box(String at, Object v) throws IOException {
        if (v == null) {
            return null;
        }
        double[] c = numbers(at + "['bbx']", v);
        if (c.length != 4) {
            throw new IOException(at + "['bbx'] should hold 4 numbers (x1, y1, x2, y2), found " + c.length);
        }
        try {
            return new BoundingBox(c[0], c[1], c[2], c[3]);
        } catch (IllegalArgumentException e) {
            throw new IOException(at + "['bbx']: " + e.getMessage());
        }
    }

    private static int[] indices(String at, Object v, int databaseSize) throws IOException {
        double[] d = numbers(at, v);
        int[] out = new int[d.length];
        for (int i = 0; i < d.length; i++) {
            if (d[i] != Math.rint(d[i]) || d[i] < 0 || d[i] >= databaseSize) {
                throw new IOException(at + "[" + i + "] = " + d[i] + " is not an index of the " + databaseSize
                        + " database images");
            }
            out[i] = (int) d[i];
        }
        return out;
    }

    /** A list/tuple of numbers or a NumPy array (a tensor here), flattened. */
    private static double[] numbers(String at, Object v) throws IOException {
        if (v instanceof Tensor t) {
            return t.dtype() == DType.INT32 || t.dtype().isFloating() ? t.toDoubleArray() : fail(at, v);
        }
        if (v instanceof List<?> list) {
            double[] out = new double[list.size()];
            for (int i = 0; i < out.length; i++) {
                if (!(list.get(i) instanceof Number n) || list.get(i) instanceof java.math.BigInteger) {
                    throw new IOException(at + "[" + i + "] should be a number, found " + describe(list.get(i)));
                }
                out[i] = n.doubleValue();
            }
            return out;
        }
        return fail(at, v);
    }

    private static double[] fail(String at, Object v) throws IOException {
        throw new IOException(at + " should be a list or array of numbers, found " + describe(v));
    }

    private static String describe(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Tensor t) {
            return "an array " + t;
        }
        return "a " + v.getClass().getSimpleName();
    }
}
