package dir4j.retrieval.train;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/**
 * Everything a training run depends on. Read from a .properties file (keys = component names)
 * and overridden from the command line; saved in each checkpoint's metadata so that a resumed
 * run continues the same recipe.
 *
 * @param loss            ap (default), tap, tap-simplified or triplet
 * @param nq              AP bins
 * @param binMin          lowest bin centre (descriptors are unit: scores lie in [−1, 1])
 * @param binMax          highest bin centre
 * @param margin          triplet margin
 * @param classesPerBatch classes in each batch
 * @param imagesPerClass  images per class in each batch (≥ 2)
 * @param subBatch        images per forward in multistage back-propagation
 * @param optimizer       adam, adamw or sgd
 * @param lr              base learning rate
 * @param weightDecay     weight decay
 * @param momentum        SGD momentum
 * @param schedule        constant, step, exponential or cosine
 * @param warmup          warm-up steps
 * @param steps           optimiser steps
 * @param cropSize        training crop side
 * @param minSize         smallest longer side before cropping (random scale)
 * @param maxSize         largest longer side before cropping
 * @param tilt            largest random rotation in degrees
 * @param jitter          colour jitter strength
 * @param frozenBatchNorm normalise with running statistics while training (the reference's recipe)
 * @param seed            seed of batches and augmentations
 * @param checkpointEvery steps between checkpoints
 * @param validateEvery   steps between validations (0: never)
 */
public record TrainConfig(String loss, int nq, double binMin, double binMax, double margin, int classesPerBatch,
                          int imagesPerClass, int subBatch, String optimizer, double lr, double weightDecay,
                          double momentum, String schedule, long warmup, int steps, int cropSize, int minSize,
                          int maxSize, double tilt, double jitter, boolean frozenBatchNorm, long seed,
                          int checkpointEvery, int validateEvery) {

    /** Defaults close to the reference's AP training (Adam, AP loss with 20 bins). */
    public static TrainConfig defaults() {
        return new TrainConfig("ap", 20, -1, 1, 0.5, 16, 4, 32, "adam", 1e-4, 1e-5, 0.9, "cosine", 0, 1000, 224,
                256, 320, 10, 0.2, true, 0, 100, 0);
    }

    /** The record as ordered key/value strings (checkpoint metadata, logs). */
    public Map<String, String> toMap() {
        Map<String, String> m = new LinkedHashMap<>();
        for (var c : TrainConfig.class.getRecordComponents()) {
            try {
                m.put(c.getName(), String.valueOf(c.getAccessor().invoke(this)));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return m;
    }

    /** A copy with the given keys replaced (values parsed to each component's type). */
    public TrainConfig with(Map<String, String> overrides) {
        Map<String, String> m = toMap();
        for (var e : overrides.entrySet()) {
            if (!m.containsKey(e.getKey())) {
                throw new IllegalArgumentException("unknown training setting '" + e.getKey() + "'; known: "
                        + String.join(", ", m.keySet()));
            }
            m.put(e.getKey(), e.getValue().strip());
        }
        var comps = TrainConfig.class.getRecordComponents();
        Object[] args = new Object[comps.length];
        Class<?>[] types = new Class<?>[comps.length];
        for (int i = 0; i < comps.length; i++) {
            types[i] = comps[i].getType();
            String v = m.get(comps[i].getName());
            try {
                args[i] = switch (types[i].getName()) {
                    case "int" -> Integer.parseInt(v);
                    case "long" -> Long.parseLong(v);
                    case "double" -> Double.parseDouble(v);
                    case "boolean" -> parseBoolean(comps[i].getName(), v);
                    default -> v;
                };
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException("training setting " + comps[i].getName() + ": '" + v
                        + "' is not a valid " + types[i].getSimpleName());
            }
        }
        try {
            return TrainConfig.class.getDeclaredConstructor(types).newInstance(args).validated();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    private static boolean parseBoolean(String key, String v) {
        if (v.equalsIgnoreCase("true") || v.equalsIgnoreCase("false")) {
            return Boolean.parseBoolean(v);
        }
        throw new IllegalArgumentException("training setting " + key + ": '" + v + "' is not true or false");
    }

    /**
     * Overrides from a file: a flat JSON object ({@code .json}; keys are the component names,
     * values numbers, strings or booleans; keys starting with {@code _} are comments and ignored)
     * or a {@code .properties} file (any other name; {@code key = value} lines).
     */
    public TrainConfig withFile(Path file) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        if (file.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".json")) {
            Object root;
            try {
                root = dir4j.nn.io.Json.parse(Files.readString(file));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ": not valid JSON: " + e.getMessage(), e);
            }
            if (!(root instanceof Map<?, ?> obj)) {
                throw new IllegalArgumentException(file + ": expected a JSON object of training settings");
            }
            for (var e : obj.entrySet()) {
                String key = String.valueOf(e.getKey());
                if (key.startsWith("_")) {
                    continue;
                }
                Object v = e.getValue();
                if (v instanceof Map<?, ?> || v instanceof java.util.List<?> || v == null) {
                    throw new IllegalArgumentException(file + ": training setting " + key
                            + " must be a number, string or boolean");
                }
                m.put(key, v instanceof Number n ? numberText(n) : String.valueOf(v));
            }
        } else {
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(file)) {
                p.load(in);
            }
            p.stringPropertyNames().forEach(k -> m.put(k, p.getProperty(k)));
        }
        try {
            return with(m);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** A JSON number as text that the component parsers accept (20.0 → "20" for int settings). */
    private static String numberText(Number n) {
        double d = n.doubleValue();
        if (n instanceof Double || n instanceof Float || n instanceof java.math.BigDecimal) {
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                return Long.toString((long) d);
            }
            return Double.toString(d);
        }
        return n.toString();
    }

    /** Checks ranges; returns this. */
    public TrainConfig validated() {
        if (!java.util.Set.of("ap", "tap", "tap-simplified", "triplet").contains(loss)) {
            throw new IllegalArgumentException("loss must be ap, tap, tap-simplified or triplet, got " + loss);
        }
        if (!java.util.Set.of("adam", "adamw", "sgd").contains(optimizer)) {
            throw new IllegalArgumentException("optimizer must be adam, adamw or sgd, got " + optimizer);
        }
        if (!java.util.Set.of("constant", "step", "exponential", "cosine").contains(schedule)) {
            throw new IllegalArgumentException("schedule must be constant, step, exponential or cosine, got "
                    + schedule);
        }
        if (steps <= 0 || subBatch <= 0 || checkpointEvery <= 0 || lr < 0 || validateEvery < 0) {
            throw new IllegalArgumentException("steps, subBatch and checkpointEvery must be positive, lr and "
                    + "validateEvery non-negative");
        }
        return this;
    }
}
