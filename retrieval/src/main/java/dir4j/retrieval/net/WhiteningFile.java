package dir4j.retrieval.net;

import dir4j.engine.DType;
import dir4j.engine.Tensor;
import dir4j.nn.io.Json;
import dir4j.nn.io.PickledObject;
import dir4j.nn.io.Safetensors;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.Unpickler;
import dir4j.retrieval.whiten.PcaParameters;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * PCA whitenings stored by name, the way the reference's checkpoints carry them: a {@code pca}
 * entry holding one fitted sklearn PCA per training set ({@code Landmarks_clean}). Four files
 * hold them, and one reader takes them all:
 * <ul>
 * <li>a reference PyTorch {@code .pt}/{@code .pth}: the pickled sklearn objects, read inert
 *     (no code of theirs runs), fields {@code mean_}, {@code components_},
 *     {@code explained_variance_}, {@code whiten};</li>
 * <li>a {@code .safetensors} made from one by {@code dir4j convert}: tensors
 *     {@code pca.<name>.<field>} and the scalar fields as JSON in metadata {@code pca.<name>};</li>
 * <li>a whitening learned by {@code dir4j whiten} ({@link #write}): the same layout, its
 *     metadata also holding the options to apply it with ({@code whitenp}, {@code whitenv},
 *     {@code whitenm});</li>
 * <li>a {@code .pt}/{@code .pth} written by {@code dir4j convert}: each PCA a dict of the same
 *     fields (and the options, when the converted file had them).</li>
 * </ul>
 */
public final class WhiteningFile {
    private static final String PREFIX = "pca.";

    /**
     * One stored whitening.
     *
     * @param pca     the PCA's fields
     * @param options how it is meant to be applied, when the file says ({@code dir4j whiten}
     *                writes them); null otherwise (the reference's checkpoints do not)
     */
    public record Stored(PcaParameters pca, WhiteningOptions options) {}

    private WhiteningFile() {}

    /** The whitenings in a .pt/.pth or .safetensors file by name (empty when it has none). */
    public static Map<String, Stored> read(Path file) throws IOException {
        dir4j.retrieval.data.InputFiles.requireFile(file, "whitening");
        if (file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors")) {
            try (Safetensors.Contents c = Safetensors.read(file, false)) {
                return fromSafetensors(file, c.tensors(), c.metadata());
            }
        }
        Object root = TorchCheckpoint.read(file, Unpickler.Options.inertObjects());
        try {
            return fromPickle(file, root);
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    /**
     * The PCAs of a checkpoint's {@code pca} entry (arrays copied out): the reference's pickled
     * scikit-learn objects, or dicts of their attributes (as {@code dir4j convert} writes a .pt).
     */
    static Map<String, Stored> fromPickle(Path file, Object root) throws IOException {
        Map<String, Stored> out = new TreeMap<>();
        if (!(root instanceof Map<?, ?> top) || !(top.get("pca") instanceof Map<?, ?> entries)) {
            return Collections.unmodifiableMap(out);
        }
        for (Map.Entry<?, ?> e : entries.entrySet()) {
            Map<String, Object> a = new LinkedHashMap<>();
            boolean dict = false;
            if (e.getValue() instanceof PickledObject p) {
                a.putAll(p.attributes());
            } else if (e.getValue() instanceof Map<?, ?> m && m.containsKey("components_")) {
                m.forEach((k, v) -> a.put(String.valueOf(k), v));
                dict = true;
            } else {
                continue; // another form (the reference's use_sklearn=False dict of means and W)
            }
            String at = file + ": pca['" + e.getKey() + "']";
            double[] mean = array(at, "mean_", a.get("mean_"));
            double[] components = array(at, "components_", a.get("components_"));
            double[] variance = array(at, "explained_variance_", a.get("explained_variance_"));
            boolean whiten = !(a.get("whiten") instanceof Boolean b) || b;
            // a converted dir4j whitening keeps its options; the reference's sklearn objects have none
            out.put(String.valueOf(e.getKey()), new Stored(parameters(at, mean, components, variance, whiten),
                    dict ? options(at, a) : null));
        }
        return Collections.unmodifiableMap(out);
    }

    /** Tensors {@code pca.<name>.<field>} with metadata {@code pca.<name>}, as convert and write make them. */
    static Map<String, Stored> fromSafetensors(Path file, Map<String, Tensor> tensors, Map<String, String> metadata)
            throws IOException {
        Map<String, Map<String, Tensor>> byName = new TreeMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String k = e.getKey();
            int dot = k.lastIndexOf('.');
            if (k.startsWith(PREFIX) && dot > PREFIX.length()) {
                byName.computeIfAbsent(k.substring(PREFIX.length(), dot), n -> new LinkedHashMap<>())
                        .put(k.substring(dot + 1), e.getValue());
            }
        }
        Map<String, Stored> out = new TreeMap<>();
        for (Map.Entry<String, Map<String, Tensor>> e : byName.entrySet()) {
            String name = e.getKey();
            String at = file + ": whitening '" + name + "'";
            Map<String, Object> meta = new LinkedHashMap<>();
            String json = metadata.get(PREFIX + name);
            if (json != null) {
                try {
                    if (Json.parse(json) instanceof Map<?, ?> m) {
                        m.forEach((k, v) -> meta.put(String.valueOf(k), v));
                    }
                } catch (IllegalArgumentException ex) {
                    throw new IOException(at + ": metadata '" + PREFIX + name + "' is not JSON: " + ex.getMessage(), ex);
                }
            }
            Map<String, Tensor> f = e.getValue();
            boolean whiten = !(meta.get("whiten") instanceof Boolean b) || b;
            PcaParameters pca = parameters(at, array(at, "mean_", f.get("mean_")),
                    array(at, "components_", f.get("components_")),
                    array(at, "explained_variance_", f.get("explained_variance_")), whiten);
            out.put(name, new Stored(pca, options(at, meta)));
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * Writes one whitening as safetensors: float64 tensors {@code pca.<name>.mean_},
     * {@code .components_} (K x D), {@code .explained_variance_}, and metadata {@code pca.<name>}
     * holding {@code whiten}, the options ({@code whitenp}, {@code whitenv} (null for all),
     * {@code whitenm}) and the given notes (where it was learned). Atomic.
     */
    public static void write(Path file, String name, PcaParameters pca, WhiteningOptions options,
                             Map<String, Object> notes) throws IOException {
        if (name.isEmpty() || name.indexOf('.') >= 0) {
            throw new IllegalArgumentException("a whitening name must be non-empty without dots, got '" + name + "'");
        }
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("class", "dir4j.retrieval.whiten.PcaWhitening");
        meta.put("whiten", pca.whiten());
        meta.put("whitenp", options.power());
        meta.put("whitenv", options.components() == WhiteningOptions.ALL_COMPONENTS ? null : (long) options.components());
        meta.put("whitenm", options.multiplier());
        meta.putAll(notes);
        int d = pca.dimension();
        int k = pca.componentCount();
        try (Tensor mean = Tensor.ofDoubles(pca.mean(), d);
             Tensor components = Tensor.ofDoubles(pca.components(), k, d);
             Tensor variance = Tensor.ofDoubles(pca.explainedVariance(), k)) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put(PREFIX + name + ".mean_", mean);
            tensors.put(PREFIX + name + ".components_", components);
            tensors.put(PREFIX + name + ".explained_variance_", variance);
            Safetensors.write(file, tensors, Map.of(PREFIX + name, Json.write(meta)));
        }
    }

    private static WhiteningOptions options(String at, Map<String, Object> meta) throws IOException {
        if (!meta.containsKey("whitenp")) {
            return null;
        }
        try {
            double p = ((Number) meta.get("whitenp")).doubleValue();
            int v = meta.get("whitenv") == null ? WhiteningOptions.ALL_COMPONENTS
                    : ((Number) meta.get("whitenv")).intValue();
            double m = meta.get("whitenm") == null ? 1.0 : ((Number) meta.get("whitenm")).doubleValue();
            return new WhiteningOptions(p, v, m);
        } catch (ClassCastException | IllegalArgumentException e) {
            throw new IOException(at + ": whitening options in the metadata are not numbers: whitenp="
                    + meta.get("whitenp") + ", whitenv=" + meta.get("whitenv") + ", whitenm=" + meta.get("whitenm"), e);
        }
    }

    private static PcaParameters parameters(String at, double[] mean, double[] components, double[] variance,
                                            boolean whiten) throws IOException {
        try {
            return new PcaParameters(mean, components, variance, whiten);
        } catch (IllegalArgumentException e) {
            throw new IOException(at + ": " + e.getMessage(), e);
        }
    }

    private static double[] array(String at, String field, Object v) throws IOException {
        if (!(v instanceof Tensor t) || !(t.dtype().isFloating() || t.dtype() == DType.INT32)) {
            throw new IOException(at + " has no numeric array '" + field + "' (found "
                    + (v == null ? "nothing" : v instanceof Tensor t ? t.toString() : v.getClass().getSimpleName())
                    + "): not a fitted PCA");
        }
        return t.toDoubleArray();
    }
}
