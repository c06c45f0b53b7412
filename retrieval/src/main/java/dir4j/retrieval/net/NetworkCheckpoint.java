package dir4j.retrieval.net;

import dir4j.engine.Tensor;
import dir4j.nn.Module;
import dir4j.nn.io.Json;
import dir4j.nn.io.Safetensors;
import dir4j.nn.io.TorchCheckpoint;
import dir4j.nn.io.Unpickler;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@link RetrievalNet} from a checkpoint file: the reference's PyTorch {@code .pt}/{@code .pth}
 * (read by the restricted unpickler; the pickled sklearn PCA it carries is read inert, its arrays
 * handed over as {@link Loaded#whitenings()}), or a {@code .safetensors} written by dir4j
 * ({@code dir4j convert}), whose metadata may hold {@code model_options} as JSON. This is the one
 * loader of retrieval networks: extraction, evaluation and {@code dir4j describe} all use it.
 *
 * <p>The architecture is read from the state dict itself (blocks per stage, bottleneck or basic
 * blocks, base width from {@code conv1.weight}, descriptor size from {@code fc.weight}), and
 * {@code model_options} supplies what the weights cannot tell: pooling, {@code without_fc},
 * {@code norm_features}, {@code center_bias}. {@code dropout_p} (training only) and keys the
 * reference's network does not take are reported in {@link Loaded#notes()}. A reference
 * {@code arch} such as {@code resnet101_rmac} must agree with the weights; FPN variants are refused.
 */
public final class NetworkCheckpoint {
    private static final Pattern BLOCK = Pattern.compile("layer([1-4])\\.(\\d+)\\..*");

    /**
     * A loaded network and what the checkpoint says about its input and output.
     *
     * @param net        the network (the caller closes it)
     * @param means      per-channel input means from the checkpoint's {@code preprocess}, or null
     * @param stds       per-channel input standard deviations from {@code preprocess}, or null
     * @param notes      things the user should know (ignored entries)
     * @param whitenings the PCA whitenings the checkpoint carries by training set (its
     *                   {@code pca} entry; {@link WhiteningFile}), possibly none; read with the
     *                   weights, so float64 arrays arrive narrowed to float32 (the whitening's
     *                   projection runs in float32 anyway); {@link WhiteningFile#read} keeps float64
     */
    public record Loaded(RetrievalNet net, float[] means, float[] stds, List<String> notes,
                         Map<String, WhiteningFile.Stored> whitenings) {
        public Loaded {
            whitenings = Map.copyOf(whitenings);
        }

        /** A network without preprocessing or whitening from a checkpoint (e.g. randomly initialised). */
        public Loaded(RetrievalNet net, float[] means, float[] stds, List<String> notes) {
            this(net, means, stds, notes, Map.of());
        }

        /**
         * The input preprocessing this network expects: longer side at most {@code maxSide}
         * (never upscaled), bilinear, normalised by the checkpoint's means and standard
         * deviations, or ImageNet's when it carries none (what {@code dir4j extract} uses).
         */
        public dir4j.retrieval.image.Preprocessing preprocessing(int maxSide) {
            dir4j.retrieval.image.Preprocessing p = dir4j.retrieval.image.Preprocessing.imagenet(maxSide);
            return means == null || stds == null ? p
                    : new dir4j.retrieval.image.Preprocessing(maxSide, false, p.filter(), means, stds);
        }
    }

    private NetworkCheckpoint() {}

    /**
     * Loads a .pt/.pth (reference) or .safetensors (dir4j) checkpoint; a dir4j training checkpoint
     * (train's checkpoint.safetensors) gives its network, so that a run can be evaluated before it ends.
     */
    public static Loaded load(Path file) throws IOException {
        dir4j.retrieval.data.InputFiles.requireFile(file, "checkpoint");
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".safetensors")) {
            try (Safetensors.Contents c = Safetensors.read(file, true)) {
                Map<String, Object> options = new LinkedHashMap<>();
                String json = c.metadata().get("model_options");
                if (json != null) {
                    try {
                        if (Json.parse(json) instanceof Map<?, ?> m) {
                            m.forEach((k, v) -> options.put(String.valueOf(k), v));
                        }
                    } catch (IllegalArgumentException e) {
                        throw new IOException(file + ": metadata 'model_options' is not JSON: " + e.getMessage(), e);
                    }
                }
                Map<String, Tensor> sd = new LinkedHashMap<>();
                // dir4j train's checkpoint.safetensors: the network under model., beside the optimiser's state
                boolean training = "dir4j-train-1".equals(c.metadata().get("format"));
                c.tensors().forEach((k, v) -> {
                    if (training) {
                        if (k.startsWith("model.")) {
                            sd.put(k.substring(6), v);
                        }
                    } else if (!k.startsWith("pca.")) {
                        sd.put(k.startsWith("module.") ? k.substring(7) : k, v);
                    }
                });
                return build(file, sd, options, null,
                        WhiteningFile.fromSafetensors(file, c.tensors(), c.metadata()));
            }
        }
        Object root = TorchCheckpoint.read(file, Unpickler.Options.inertObjects().withFloat64ToFloat32(true));
        try {
            Map<String, Tensor> sd;
            try {
                sd = TorchCheckpoint.stateDict(root);
            } catch (IllegalArgumentException e) {
                throw new IOException(file + ": " + e.getMessage(), e);
            }
            Object pre = root instanceof Map<?, ?> m ? m.get("preprocess") : null;
            return build(file, sd, TorchCheckpoint.modelOptions(root), pre, WhiteningFile.fromPickle(file, root));
        } finally {
            TorchCheckpoint.closeTensors(root);
        }
    }

    private static Loaded build(Path file, Map<String, Tensor> sd, Map<String, Object> modelOptions, Object preprocess,
                                Map<String, WhiteningFile.Stored> whitenings) throws IOException {
        List<String> notes = new ArrayList<>();
        RetrievalNet.Options options;
        try {
            options = inferOptions(sd, modelOptions);
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
        notes.addAll(optionNotes(modelOptions));
        // no random initialisation: every parameter comes from the checkpoint (missing ones are an
        // error below), and drawing ResNet-101's would take seconds
        RetrievalNet net = new RetrievalNet(options, null);
        try {
            Module.LoadReport r = net.loadStateDict(sd, false);
            if (!r.missing().isEmpty() || !r.mismatched().isEmpty()) {
                throw new IOException(file + ": the weights do not fit a " + options + ": " + r);
            }
            if (!r.unexpected().isEmpty()) {
                notes.add("ignored " + r.unexpected().size() + " checkpoint entries the network does not have: "
                        + r.unexpected());
            }
        } catch (IOException | RuntimeException e) {
            net.close();
            throw e;
        }
        float[] means = null;
        float[] stds = null;
        if (preprocess instanceof Map<?, ?> p) {
            means = triple(p.get("mean"));
            stds = triple(p.get("std"));
        }
        return new Loaded(net, means, stds, notes, whitenings);
    }

    /** Network options from a state dict, completed by the reference's model_options. */
    static RetrievalNet.Options inferOptions(Map<String, Tensor> sd, Map<String, Object> modelOptions) {
        Tensor conv1 = sd.get("conv1.weight");
        if (conv1 == null) {
            throw new IllegalArgumentException("no conv1.weight: not a ResNet retrieval network (keys start "
                    + sd.keySet().stream().limit(5).toList() + ")");
        }
        Map<Integer, Integer> blocks = new TreeMap<>();
        for (String k : sd.keySet()) {
            Matcher m = BLOCK.matcher(k);
            if (m.matches()) {
                blocks.merge(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)) + 1, Math::max);
            }
        }
        List<Integer> counts = List.of(blocks.getOrDefault(1, 0), blocks.getOrDefault(2, 0), blocks.getOrDefault(3, 0),
                blocks.getOrDefault(4, 0));
        boolean bottleneck = sd.containsKey("layer1.0.conv3.weight");
        String arch = switch (counts.toString() + bottleneck) {
            case "[2, 2, 2, 2]false" -> "resnet18";
            case "[3, 4, 6, 3]false" -> "resnet34";
            case "[3, 4, 6, 3]true" -> "resnet50";
            case "[3, 4, 23, 3]true" -> "resnet101";
            case "[3, 8, 36, 3]true" -> "resnet152";
            default -> throw new IllegalArgumentException("blocks per stage " + counts + (bottleneck ? " (bottleneck)"
                    : " (basic)") + " match no ResNet-18/34/50/101/152");
        };
        Object declared = modelOptions.get("arch");
        if (declared != null) {
            String d = String.valueOf(declared).toLowerCase(Locale.ROOT);
            if (d.contains("fpn")) {
                throw new IllegalArgumentException("architecture '" + declared + "' (FPN) is not supported");
            }
            String base = d.endsWith("_rmac") ? d.substring(0, d.length() - 5) : d;
            if (!base.equals(arch)) {
                throw new IllegalArgumentException("model_options says arch '" + declared + "' but the weights are a "
                        + arch);
            }
        }
        boolean withoutFc = bool(modelOptions.get("without_fc"), !sd.containsKey("fc.weight"));
        int outDim = sd.containsKey("fc.weight") ? sd.get("fc.weight").shape(0)
                : ((Number) modelOptions.getOrDefault("out_dim", 2048)).intValue();
        String pooling = modelOptions.containsKey("pooling") ? String.valueOf(modelOptions.get("pooling"))
                : sd.containsKey("adpool.p") ? "gem" : null;
        if (pooling == null) {
            throw new IllegalArgumentException(modelOptions.isEmpty()
                    ? "a plain " + arch + " state dict (no model_options, no GeM 'adpool.p'), such as torchvision's "
                            + "ImageNet weights: a backbone, not a retrieval network; start training from it with "
                            + "dir4j train --init, or describe with a retrieval checkpoint"
                    : "no 'adpool.p' and no model_options pooling: cannot tell max from avg pooling");
        }
        if (pooling.startsWith("gem")) {
            pooling = "gem";
        }
        double gemp = modelOptions.get("gemp") instanceof Number n ? n.doubleValue() : 3;
        if (!(gemp > 0 && Double.isFinite(gemp))) {
            gemp = 3; // only GeM's starting p: the weights' adpool.p replaces it (and max/avg pooling takes none)
        }
        boolean normFeatures = bool(modelOptions.get("norm_features"), false);
        Object cb = modelOptions.get("center_bias");
        if (cb != null && !(cb instanceof Number)) {
            throw new IllegalArgumentException("model_options center_bias is " + cb + ", not a number");
        }
        // the range (finite, >= 0) is Options' own check
        double centerBias = cb == null ? 0 : ((Number) cb).doubleValue();
        return new RetrievalNet.Options(arch, outDim, pooling, gemp, withoutFc, normFeatures, conv1.shape(0),
                centerBias);
    }

    /** The model_options keys this loader reads (or knows to be irrelevant to the network it builds). */
    private static final java.util.Set<String> KNOWN_OPTIONS = java.util.Set.of("arch", "out_dim", "pooling", "gemp",
            "without_fc", "norm_features", "center_bias", "base_width", "dropout_p", "pretrained", "scales");

    /** Notes on model_options entries that do not shape the descriptors the loaded network computes. */
    static List<String> optionNotes(Map<String, Object> modelOptions) {
        List<String> notes = new ArrayList<>();
        if (modelOptions.get("dropout_p") instanceof Number p && p.doubleValue() > 0) {
            notes.add("model_options dropout_p " + p + " not applied: the reference drops feature-map elements before "
                    + "pooling in training mode only, so descriptors are unaffected; dir4j train does not use dropout");
        }
        List<String> unknown = modelOptions.keySet().stream().filter(k -> !KNOWN_OPTIONS.contains(k)).sorted().toList();
        if (!unknown.isEmpty()) {
            notes.add("ignored model_options " + unknown + ": not options of the reference's ResNet retrieval network");
        }
        return notes;
    }

    private static boolean bool(Object v, boolean otherwise) {
        return v instanceof Boolean b ? b : otherwise;
    }

    private static float[] triple(Object v) {
        if (v instanceof List<?> l && l.size() == 3 && l.stream().allMatch(x -> x instanceof Number)) {
            return new float[] {((Number) l.get(0)).floatValue(), ((Number) l.get(1)).floatValue(),
                ((Number) l.get(2)).floatValue()};
        }
        if (v instanceof Tensor t && t.numel() == 3) {
            double[] d = t.toDoubleArray();
            return new float[] {(float) d[0], (float) d[1], (float) d[2]};
        }
        return null;
    }
}
