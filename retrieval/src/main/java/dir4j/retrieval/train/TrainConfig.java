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

    /**
     * The recipe as a JSON object, one setting a line, numbers and booleans as such: a file that
     * {@link #withFile} (and so {@code dir4j train --config}) reads back.
     */
    public String toJson() {
        return toJson(Map.of());
    }

    /**
     * {@link #toJson()} with {@code extra} entries after the settings (keys no setting has: a run's
     * own record beside its recipe, such as the loss that replaced the recipe's).
     */
    public String toJson(Map<String, ?> extra) {
        StringBuilder sb = new StringBuilder("{\n");
        var comps = TrainConfig.class.getRecordComponents();
        for (int i = 0; i < comps.length; i++) {
            Object v;
            try {
                v = comps[i].getAccessor().invoke(this);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
            boolean plain = v instanceof Boolean || v instanceof Number n && Double.isFinite(n.doubleValue());
            sb.append("  ").append(dir4j.nn.io.Json.write(comps[i].getName())).append(": ")
                    .append(dir4j.nn.io.Json.write(plain ? v : String.valueOf(v)))
                    .append(i + 1 < comps.length || !extra.isEmpty() ? ",\n" : "\n");
        }
        int left = extra.size();
        for (var e : extra.entrySet()) {
            sb.append("  ").append(dir4j.nn.io.Json.write(e.getKey())).append(": ")
                    .append(dir4j.nn.io.Json.write(e.getValue())).append(--left > 0 ? ",\n" : "\n");
        }
        return sb.append("}\n").toString();
    }

    /** A copy with the given keys replaced (values parsed to each component's type), validated. */
    public TrainConfig with(Map<String, String> overrides) {
        return merged(overrides).validated();
    }

    /**
     * A copy with the given keys replaced (values parsed to each component's type), not yet
     * validated: for a caller that derives one setting from others before checking the whole
     * ({@code dir4j train --batch-size}); {@link #validated()} checks the result.
     *
     * @throws IllegalArgumentException for an unknown key or a value that does not parse
     */
    public TrainConfig merged(Map<String, String> overrides) {
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
            return TrainConfig.class.getDeclaredConstructor(types).newInstance(args);
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
        Map<String, String> m = readFile(file);
        try {
            return with(m);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * The settings a file gives, as {@link #withFile} reads them (not yet parsed to their types or
     * checked): a caller can merge them with others before validating, and knows which settings
     * came from the file.
     *
     * @throws IllegalArgumentException when a .json file is not a flat JSON object (naming the file)
     */
    public static Map<String, String> readFile(Path file) throws IOException {
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
        return m;
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

    /**
     * Checks every setting, alone and beside the others, against what the training needs (the
     * loss's bins, the sampler's batch, the augmentation's sizes, the optimiser's ranges), so that
     * a run can be refused before it writes anything; returns this.
     *
     * @throws InvalidSetting naming the first setting out of range and the value it has
     */
    public TrainConfig validated() {
        if (!java.util.Set.of("ap", "tap", "tap-simplified", "triplet").contains(loss)) {
            throw new InvalidSetting("{loss} must be ap, tap, tap-simplified or triplet, got " + loss);
        }
        // the AP loss's histogram (Backend.ApBins): 2..100 bins over [binMin, binMax]
        if (nq < 2 || nq > 100) {
            throw new InvalidSetting("{nq} must be in [2, 100] (the AP loss's bins), got " + nq);
        }
        requireFinite("binMin", binMin);
        requireFinite("binMax", binMax);
        if (!(binMax > binMin)) {
            throw new InvalidSetting("{binMax} must exceed {binMin} (" + binMin + "), got " + binMax);
        }
        requireNonNegative("margin", margin);
        if (classesPerBatch < 2) {
            throw new InvalidSetting("{classesPerBatch} must be at least 2 (a query needs negatives from another "
                    + "class), got " + classesPerBatch);
        }
        if (imagesPerClass < 2) {
            throw new InvalidSetting("{imagesPerClass} must be at least 2 (a query needs a positive), got "
                    + imagesPerClass);
        }
        requireAtLeast("subBatch", subBatch, 1);
        if (!java.util.Set.of("adam", "adamw", "sgd").contains(optimizer)) {
            throw new InvalidSetting("{optimizer} must be adam, adamw or sgd, got " + optimizer);
        }
        requireNonNegative("lr", lr);
        requireNonNegative("weightDecay", weightDecay);
        if (!(momentum >= 0 && momentum < 1)) {
            throw new InvalidSetting("{momentum} must be in [0, 1), got " + momentum);
        }
        if (!java.util.Set.of("constant", "step", "exponential", "cosine").contains(schedule)) {
            throw new InvalidSetting("{schedule} must be constant, step, exponential or cosine, got " + schedule);
        }
        requireAtLeast("warmup", warmup, 0);
        requireAtLeast("steps", steps, 1);
        // the augmentation (Augmentation): a crop of cropSize² from an image scaled to [minSize, maxSize]
        requireAtLeast("cropSize", cropSize, 1);
        if (maxSize < minSize) {
            throw new InvalidSetting("{maxSize} must be at least {minSize} (" + minSize + "), got " + maxSize);
        }
        if (minSize < cropSize) {
            throw new InvalidSetting("{minSize} must be at least {cropSize} (" + cropSize + "): the crop is cut "
                    + "from the scaled image, got " + minSize);
        }
        requireNonNegative("tilt", tilt);
        if (!(jitter >= 0 && jitter <= 1)) {
            throw new InvalidSetting("{jitter} must be in [0, 1], got " + jitter);
        }
        requireAtLeast("checkpointEvery", checkpointEvery, 1);
        if (validateEvery < 0) {
            throw new InvalidSetting("{validateEvery} must be at least 0 (0: never), got " + validateEvery);
        }
        return this;
    }

    private static void requireFinite(String key, double v) {
        if (!Double.isFinite(v)) {
            throw new InvalidSetting("{" + key + "} must be a finite number, got " + v);
        }
    }

    private static void requireNonNegative(String key, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new InvalidSetting("{" + key + "} must be a finite number, at least 0, got " + v);
        }
    }

    private static void requireAtLeast(String key, long v, long min) {
        if (v < min) {
            throw new InvalidSetting("{" + key + "} must be at least " + min + ", got " + v);
        }
    }

    /**
     * A setting out of range, alone or beside another. The message names each setting as
     * {@code {key}} in a template, so that a command can name it as its user gave it (an option
     * such as {@code --crop-size}, or the key of a recipe file); {@link #getMessage()} uses the
     * keys themselves.
     */
    public static final class InvalidSetting extends IllegalArgumentException {
        private static final java.util.regex.Pattern KEY = java.util.regex.Pattern.compile("\\{([A-Za-z]+)}");
        private final String template;

        /** @param template the message, each setting named as {@code {key}} */
        public InvalidSetting(String template) {
            super(fill(template, k -> k));
            this.template = template;
        }

        /** The message with each setting named by {@code name} (given the setting's key). */
        public String message(java.util.function.Function<String, String> name) {
            return fill(template, name);
        }

        /** The settings the message names, in order. */
        public java.util.List<String> settings() {
            return KEY.matcher(template).results().map(r -> r.group(1)).distinct().toList();
        }

        private static String fill(String template, java.util.function.Function<String, String> name) {
            return KEY.matcher(template)
                    .replaceAll(r -> java.util.regex.Matcher.quoteReplacement(name.apply(r.group(1))));
        }
    }
}
