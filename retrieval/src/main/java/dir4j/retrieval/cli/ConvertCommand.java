package dir4j.retrieval.cli;

import dir4j.engine.Tensor;
import dir4j.nn.io.Json;
import dir4j.nn.io.Npz;
import dir4j.nn.io.PickledObject;
import dir4j.nn.io.Safetensors;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.TorchSave;
import dir4j.nn.io.Unpickler;
import dir4j.nn.io.UnsafePickleException;
import dir4j.retrieval.data.InputFiles;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code dir4j convert IN OUT}: PyTorch checkpoints (.pt/.pth, the zip format and the legacy
 * format of the reference's released models), safetensors or .npz in; safetensors, .npz or a
 * PyTorch .pt/.pth (torch.save's zip format, in the reference's layout) out.
 * The state dict's tensors keep PyTorch's names without the {@code module.} prefix;
 * {@code model_options} and other plain entries go into the safetensors metadata as JSON text;
 * a pickled sklearn PCA per dataset becomes tensors {@code pca.<dataset>.<attribute>} (its
 * scalar attributes metadata {@code pca.<dataset>}); whatever cannot be kept is named in a note.
 * Nothing in the input is ever run.
 */
@Command(name = "convert", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Convert a checkpoint between PyTorch .pt/.pth, .safetensors and .npz.",
            "Strips 'module.' from state-dict keys, keeps model_options as safetensors metadata (JSON text), "
                + "stores PCA arrays as tensors pca.<dataset>.<attribute>, and notes every entry it drops (on stderr; "
                + "the summary line goes to stdout).",
            "A .pt/.pth OUT is written as torch.save writes it (the zip format of PyTorch 1.6 and later) in the "
                + "reference's layout, so that torch.load and the reference's load_model read it: {'state_dict': "
                + "OrderedDict of the network's tensors, 'model_options': {...}, the other metadata entries, 'pca': "
                + "{dataset: dict of the PCA's arrays}} (a dict, not a scikit-learn object: dir4j reads either, the "
                + "reference's whitening wants the object). Integer tensors are written as int64.",
            "A dir4j training checkpoint (train's or the demo's checkpoint.safetensors) converts to a .pt of its "
                + "network; to .safetensors or .npz it is copied whole (the optimiser's state and settings included)."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, "2:bad command line: unknown or malformed "
                + "options, or an OUT that is not .safetensors, .npz, .pt or .pth, or is a directory"})
final class ConvertCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "IN", description = "A .pt/.pth/.tar PyTorch checkpoint, .safetensors or .npz.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT",
            description = "The .safetensors, .npz or .pt/.pth file to write (replaced atomically).")
    Path out;

    @Option(names = "--float32", description = "Narrow float64 tensors to float32 (they are kept otherwise).")
    boolean float32;

    @Option(names = "--strict", description = "Refuse checkpoints that pickle objects of classes outside the allow-list "
            + "(such as the reference's sklearn PCA) instead of reading them as inert attribute maps.")
    boolean strict;

    @Option(names = "--compress", description = "Deflate the entries of a .npz output.")
    boolean compress;

    @Option(names = "--quiet", description = "No notes on stderr about what was renamed, kept as metadata or dropped "
            + "(the summary line and errors are still printed).")
    boolean quiet;

    private static final String TRAINING_FORMAT = "dir4j-train-1";

    /**
     * What a conversion carries: tensors by name, string metadata, notes for the user, and how
     * many of the tensors (the first ones) came from a PyTorch state dict (-1 for other inputs).
     */
    private record Converted(Map<String, Tensor> tensors, Map<String, String> metadata, List<String> notes,
            int stateDictTensors) {}

    @Override
    public Integer call() {
        String outName = out.getFileName().toString().toLowerCase(Locale.ROOT);
        boolean torchOut = outName.endsWith(".pt") || outName.endsWith(".pth");
        if (!outName.endsWith(".safetensors") && !outName.endsWith(".npz") && !torchOut) {
            System.err.println("dir4j convert: OUT must end in .safetensors, .npz, .pt or .pth, not "
                    + out.getFileName());
            return 2;
        }
        if (Files.isDirectory(out)) {
            System.err.println("dir4j convert: OUT " + out + " is a directory: name a file");
            return 2;
        }
        String inName = in.getFileName().toString().toLowerCase(Locale.ROOT);
        Object root = null;
        Map<String, Tensor> owned = null;
        try {
            InputFiles.requireFile(in, "checkpoint");
            Converted c;
            if (inName.endsWith(".safetensors")) {
                Safetensors.Contents s = Safetensors.read(in, float32);
                owned = s.tensors();
                c = new Converted(s.tensors(), new LinkedHashMap<>(s.metadata()), new ArrayList<>(), -1);
                if (torchOut && TRAINING_FORMAT.equals(s.metadata().get("format"))) {
                    c = trainedNetwork(in, c);
                }
            } else if (inName.endsWith(".npz")) {
                owned = Npz.read(in);
                c = new Converted(owned, new LinkedHashMap<>(), new ArrayList<>(), -1);
            } else {
                Unpickler.Options options = (strict ? Unpickler.Options.strict() : Unpickler.Options.inertObjects())
                        .withFloat64ToFloat32(float32);
                root = TorchCheckpoint.read(in, options);
                try {
                    c = fromPyTorch(root);
                } catch (IllegalArgumentException | ClassCastException e) {
                    throw new IllegalArgumentException(in + ": " + e.getMessage(), e);
                }
            }
            if (c.tensors().isEmpty() && c.metadata().isEmpty()) {
                throw new IllegalArgumentException(in + ": holds no tensors; nothing to convert");
            }
            if (outName.endsWith(".npz") && !c.metadata().isEmpty()) {
                c.notes().add("the .npz format has no metadata: " + String.join(", ", c.metadata().keySet())
                        + " not written (write .safetensors to keep them)");
            }
            String written = null;
            if (torchOut) {
                Map<String, Object> torch = torchRoot(c);
                TorchSave.write(out, torch);
                written = String.join(", ", torch.keySet());
            } else if (outName.endsWith(".npz")) {
                Npz.write(out, c.tensors(), compress);
            } else {
                Safetensors.write(out, c.tensors(), c.metadata());
            }
            // after the write: a failed conversion reports its error alone
            if (!quiet) {
                for (String note : c.notes()) {
                    System.err.println("note: " + note);
                }
            }
            summarize(c, written);
            return 0;
        } catch (UnsafePickleException e) {
            System.err.println("dir4j convert: " + e.messageWithoutApiRemedy());
            if (!e.couldRunCode()) {
                System.err.println("dir4j convert: run without --strict to read " + e.reference()
                        + " as an inert attribute map (none of its code is run)");
            }
            return 1;
        } catch (IOException | java.io.UncheckedIOException | IllegalArgumentException | IllegalStateException e) {
            System.err.println("dir4j convert: " + ToolCommand.message(e));
            return 1;
        } finally {
            if (root != null) {
                TorchCheckpoint.closeTensors(root);
            }
            if (owned != null) {
                owned.values().forEach(Tensor::close);
            }
        }
    }

    /**
     * The reference's checkpoint layout for torch.save: the state dict (the PyTorch input's state
     * dict, or every tensor outside {@code pca.*} of a safetensors or .npz input) as an
     * OrderedDict, left out when empty (a whitening alone); each metadata entry as the Python value
     * of its JSON text (model_options a dict; text that is not JSON stays a string), the PCAs as
     * dicts of their arrays and scalars; a PyTorch input's other top-level tensors as themselves.
     */
    private static Map<String, Object> torchRoot(Converted c) {
        Map<String, String> meta = c.metadata();
        Map<String, Tensor> stateDict = new LinkedHashMap<>();
        Map<String, Object> root = new LinkedHashMap<>();
        Map<String, Map<String, Object>> pca = new java.util.TreeMap<>();
        int i = 0;
        for (Map.Entry<String, Tensor> e : c.tensors().entrySet()) {
            String name = e.getKey();
            boolean inStateDict = c.stateDictTensors() >= 0 ? i < c.stateDictTensors() : !name.startsWith("pca.");
            i++;
            int dot = name.lastIndexOf('.');
            if (inStateDict) {
                stateDict.put(name, e.getValue());
            } else if (name.startsWith("pca.") && dot > 4) {
                pca.computeIfAbsent(name.substring(4, dot), d -> new LinkedHashMap<>())
                        .put(name.substring(dot + 1), e.getValue());
            } else {
                root.put(name, e.getValue());
            }
        }
        if (root.containsKey("state_dict")) {
            throw new IllegalArgumentException("a tensor named 'state_dict' outside the state dict");
        }
        if (!stateDict.isEmpty()) {
            root.put("state_dict", new TorchSave.StateDict(stateDict));
        }
        for (Map.Entry<String, String> e : meta.entrySet()) {
            String key = e.getKey();
            if (key.equals("format") && "pt".equals(e.getValue())) {
                continue; // dir4j's marker of a network checkpoint
            }
            Object value;
            try {
                value = Json.parse(e.getValue());
            } catch (IllegalArgumentException notJson) {
                value = e.getValue();
            }
            if (key.startsWith("pca.") && value instanceof Map<?, ?> scalars) {
                Map<String, Object> d = pca.computeIfAbsent(key.substring(4), n -> new LinkedHashMap<>());
                scalars.forEach((k, v) -> {
                    if (!"class".equals(k)) {
                        d.putIfAbsent(String.valueOf(k), v);
                    }
                });
            } else if (key.equals("model_options") && value instanceof Map<?, ?> options) {
                Map<String, Object> o = new LinkedHashMap<>();
                options.forEach((k, v) -> o.put(String.valueOf(k), v));
                // the reference's create_model(**model_options) takes no base_width; 64 is its width
                if (o.get("base_width") instanceof Number w && w.longValue() == 64) {
                    o.remove("base_width");
                    c.notes().add("model_options: base_width 64 left out (the reference's width; its create_model "
                            + "takes no such option)");
                } else if (o.containsKey("base_width")) {
                    c.notes().add("model_options keeps base_width " + o.get("base_width") + ": dir4j reads it, the "
                            + "reference's create_model does not (its networks are 64 wide)");
                }
                root.put(key, o);
            } else if (key.equals("pca") || key.equals("state_dict") || root.putIfAbsent(key, value) != null) {
                throw new IllegalArgumentException("metadata '" + key + "' would take the name of another entry");
            }
        }
        if (!pca.isEmpty()) {
            root.put("pca", new LinkedHashMap<String, Object>(pca));
            c.notes().add("pca " + pca.keySet() + " written as dicts of arrays (mean_, components_, explained_variance_"
                    + "...), not scikit-learn objects: dir4j reads them, the reference's whiten_features wants the object");
        }
        return root;
    }

    /**
     * The network of a dir4j training checkpoint (its {@code model.*} tensors, with the network's
     * options) for a .pt: the reference's layout has no place for the optimiser's state or the
     * run's settings, which are left out with a note.
     */
    private static Converted trainedNetwork(Path in, Converted c) {
        Map<String, Tensor> network = new LinkedHashMap<>();
        c.tensors().forEach((k, v) -> {
            if (k.startsWith("model.")) {
                network.put(k.substring("model.".length()), v);
            }
        });
        if (network.isEmpty()) {
            throw new IllegalArgumentException(in + ": a dir4j training checkpoint without its network ('model.' "
                    + "tensors)");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        if (c.metadata().containsKey("model_options")) {
            metadata.put("model_options", c.metadata().get("model_options"));
        }
        List<String> notes = new ArrayList<>();
        notes.add(in.getFileName() + " is a dir4j training checkpoint (step " + c.metadata().getOrDefault("step", "?")
                + "): converted its network; the optimiser's state and the run's settings are left out");
        return new Converted(network, metadata, notes, -1);
    }

    private static Converted fromPyTorch(Object root) {
        Map<String, Tensor> tensors = new LinkedHashMap<>(TorchCheckpoint.stateDict(root));
        int fromStateDict = tensors.size();
        Map<String, String> metadata = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        Map<?, ?> top = (Map<?, ?>) root;
        Object sd = top.get("state_dict") instanceof Map<?, ?> inner ? inner : top;
        long prefixed = ((Map<?, ?>) sd).keySet().stream()
                .filter(k -> k instanceof String s && s.startsWith("module.")).count();
        if (prefixed > 0) {
            notes.add("stripped 'module.' from " + prefixed + " state-dict keys");
        }
        for (Map.Entry<?, ?> e : ((Map<?, ?>) sd).entrySet()) {
            if (!(e.getValue() instanceof Tensor)) {
                notes.add("dropped state-dict entry '" + e.getKey() + "' (" + describe(e.getValue()) + "): not a tensor");
            }
        }
        if (sd == top) {
            return new Converted(tensors, metadata, notes, fromStateDict);
        }
        for (Map.Entry<?, ?> e : top.entrySet()) {
            String key = String.valueOf(e.getKey());
            Object v = e.getValue();
            switch (key) {
                case "state_dict" -> { }
                case "pca" -> pca(v, tensors, metadata, notes);
                default -> {
                    if (v instanceof Tensor t) {
                        putNew(tensors, key, t);
                        notes.add("kept top-level tensor '" + key + "'");
                    } else {
                        Optional<Object> json = jsonable(v, 0);
                        if (json.isPresent()) {
                            metadata.put(key, Json.write(unwrap(json.get())));
                            notes.add("kept '" + key + "' as metadata (JSON): " + clip(metadata.get(key)));
                        } else {
                            notes.add("dropped '" + key + "' (" + describe(v) + "): neither a tensor nor JSON-representable");
                        }
                    }
                }
            }
        }
        return new Converted(tensors, metadata, notes, fromStateDict);
    }

    /** One fitted PCA per dataset: arrays as tensors pca.<dataset>.<attr>, scalars as metadata pca.<dataset>. */
    private static void pca(Object v, Map<String, Tensor> tensors, Map<String, String> metadata, List<String> notes) {
        if (!(v instanceof Map<?, ?> perDataset)) {
            notes.add("dropped 'pca' (" + describe(v) + "): expected a dict of fitted PCAs per dataset");
            return;
        }
        for (Map.Entry<?, ?> d : perDataset.entrySet()) {
            String dataset = String.valueOf(d.getKey());
            Map<String, Object> attributes;
            Map<String, Object> scalars = new LinkedHashMap<>();
            if (d.getValue() instanceof PickledObject p) {
                attributes = p.attributes();
                scalars.put("class", p.className());
            } else if (d.getValue() instanceof Map<?, ?> m) {
                attributes = new LinkedHashMap<>();
                m.forEach((k, x) -> attributes.put(String.valueOf(k), x));
            } else {
                notes.add("dropped pca entry '" + dataset + "' (" + describe(d.getValue()) + ")");
                continue;
            }
            List<String> names = new ArrayList<>();
            List<String> dropped = new ArrayList<>();
            for (Map.Entry<String, Object> a : attributes.entrySet()) {
                if (a.getValue() instanceof Tensor t) {
                    String name = "pca." + dataset + "." + a.getKey();
                    putNew(tensors, name, t);
                    names.add(name);
                } else {
                    Optional<Object> json = jsonable(a.getValue(), 0);
                    if (json.isPresent()) {
                        scalars.put(a.getKey(), unwrap(json.get()));
                    } else {
                        dropped.add(a.getKey());
                    }
                }
            }
            metadata.put("pca." + dataset, Json.write(scalars));
            notes.add("pca entry '" + dataset + "'" + (scalars.containsKey("class") ? " (" + scalars.get("class") + ")" : "")
                    + " kept as " + (names.isEmpty() ? "no tensors" : String.join(", ", names))
                    + "; its other attributes as metadata 'pca." + dataset + "'"
                    + (dropped.isEmpty() ? "" : "; dropped " + dropped));
        }
    }

    private static void putNew(Map<String, Tensor> tensors, String name, Tensor t) {
        if (tensors.putIfAbsent(name, t) != null) {
            throw new IllegalArgumentException("two tensors would be named '" + name + "'");
        }
    }

    /** The value as plain JSON data, or empty when it holds anything else (tensors, objects, bytes, NaN). */
    private static Optional<Object> jsonable(Object v, int depth) {
        if (depth > 32) {
            return Optional.empty();
        }
        switch (v) {
            case null -> {
                return Optional.of(JsonNull.NULL);
            }
            case String s -> {
                return Optional.of(s);
            }
            case Boolean b -> {
                return Optional.of(b);
            }
            case Long l -> {
                return Optional.of(l);
            }
            case BigInteger b -> {
                return Optional.of(b);
            }
            case Double d -> {
                return d.isNaN() || d.isInfinite() ? Optional.empty() : Optional.of(d);
            }
            case List<?> list -> {
                List<Object> out = new ArrayList<>();
                for (Object o : list) {
                    Optional<Object> j = jsonable(o, depth + 1);
                    if (j.isEmpty()) {
                        return Optional.empty();
                    }
                    out.add(unwrap(j.get()));
                }
                return Optional.of(out);
            }
            case Map<?, ?> m -> {
                Map<String, Object> out = new LinkedHashMap<>();
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    Optional<Object> j = jsonable(e.getValue(), depth + 1);
                    if (j.isEmpty() || !(e.getKey() instanceof String || e.getKey() instanceof Long)) {
                        return Optional.empty();
                    }
                    out.put(String.valueOf(e.getKey()), unwrap(j.get()));
                }
                return Optional.of(out);
            }
            default -> {
                return Optional.empty();
            }
        }
    }

    /** Optional cannot hold null; JSON null travels as this marker until it is placed. */
    private enum JsonNull { NULL }

    private static Object unwrap(Object o) {
        return o == JsonNull.NULL ? null : o;
    }

    private static String describe(Object v) {
        return switch (v) {
            case null -> "None";
            case Map<?, ?> m -> "dict of " + m.size();
            case List<?> l -> "sequence of " + l.size();
            case PickledObject p -> "object of " + p.className();
            case byte[] b -> b.length + " bytes";
            default -> v.getClass().getSimpleName();
        };
    }

    private static String clip(String s) {
        return s.length() <= 200 ? s : s.substring(0, 197) + "...";
    }

    /** The summary line; {@code entries}: a .pt's top-level keys (null for other outputs). */
    private void summarize(Converted c, String entries) throws IOException {
        long values = 0;
        long bytes = 0;
        for (Tensor t : c.tensors().values()) {
            values += t.numel();
            bytes += t.numel() * t.dtype().byteSize();
        }
        String stateDict = "";
        if (c.stateDictTensors() >= 0 && c.stateDictTensors() < c.tensors().size()) {
            long stateValues = c.tensors().values().stream().limit(c.stateDictTensors()).mapToLong(Tensor::numel).sum();
            stateDict = String.format(Locale.ROOT, " (state dict: %d tensors, %,d parameters and buffers)",
                    c.stateDictTensors(), stateValues);
        }
        System.out.printf(Locale.ROOT, "wrote %s: %d tensors, %,d values%s, %,d bytes of tensor data, %,d bytes in all%s%n",
                out, c.tensors().size(), values, stateDict, bytes, Files.size(out),
                entries != null ? "; entries: " + entries
                        : c.metadata().isEmpty() || out.toString().endsWith(".npz") ? ""
                        : "; metadata: " + String.join(", ", c.metadata().keySet()));
    }
}
