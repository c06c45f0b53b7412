package dir4j.retrieval.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Batches of {@code classesPerBatch} classes × {@code imagesPerClass} images, so that every image
 * in a batch has at least one positive (the AP loss needs them). Batch {@code step} depends only
 * on the seed and the step, so a resumed run draws the same batches as an uninterrupted one.
 * Classes with fewer than two images cannot give a positive and are left out (reported by
 * {@link #droppedClasses()}); a class with fewer images than {@code imagesPerClass} repeats some.
 */
public final class ClassBalancedSampler {
    private final int[][] byClass;
    private final int[] classIds;
    private final int classesPerBatch;
    private final int imagesPerClass;
    private final long seed;
    private final List<Integer> dropped = new ArrayList<>();

    /**
     * A sampler of the labelled images.
     *
     * @throws TrainConfig.InvalidSetting when {@code classesPerBatch} or {@code imagesPerClass} is
     *     out of range, by itself or for these labels (more classes per batch than they have)
     * @throws IllegalArgumentException when the labels have fewer than two classes of two or more
     *     images, whatever the settings
     */
    public ClassBalancedSampler(int[] labels, int classesPerBatch, int imagesPerClass, long seed) {
        if (imagesPerClass < 2) {
            throw new TrainConfig.InvalidSetting("{imagesPerClass} must be at least 2 (a query needs a positive), "
                    + "got " + imagesPerClass);
        }
        if (classesPerBatch < 2) {
            throw new TrainConfig.InvalidSetting("{classesPerBatch} must be at least 2 (a query needs negatives "
                    + "from another class), got " + classesPerBatch);
        }
        Map<Integer, List<Integer>> groups = new LinkedHashMap<>();
        for (int i = 0; i < labels.length; i++) {
            groups.computeIfAbsent(labels[i], k -> new ArrayList<>()).add(i);
        }
        List<int[]> kept = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        groups.forEach((c, idx) -> {
            if (idx.size() < 2) {
                dropped.add(c);
            } else {
                kept.add(idx.stream().mapToInt(Integer::intValue).toArray());
                ids.add(c);
            }
        });
        if (kept.size() < 2) {
            throw new IllegalArgumentException("sampler: need at least two classes with two or more images, found "
                    + kept.size() + " (of " + groups.size() + " classes)");
        }
        if (classesPerBatch > kept.size()) {
            throw new TrainConfig.InvalidSetting("{classesPerBatch} must be at most " + kept.size() + ", the classes "
                    + "of the training data with two or more images, got " + classesPerBatch);
        }
        this.byClass = kept.toArray(int[][]::new);
        this.classIds = ids.stream().mapToInt(Integer::intValue).toArray();
        this.classesPerBatch = classesPerBatch;
        this.imagesPerClass = imagesPerClass;
        this.seed = seed;
    }

    /** Classes left out for having one image. */
    public List<Integer> droppedClasses() {
        return List.copyOf(dropped);
    }

    /** Images per batch. */
    public int batchSize() {
        return classesPerBatch * imagesPerClass;
    }

    /** One batch: image indices and their labels, grouped by class. */
    public record Batch(int[] images, int[] labels) {}

    /** The batch of a step (deterministic in seed and step). */
    public Batch batch(long step) {
        Random r = new Random(seed * 0x9E3779B97F4A7C15L + step);
        int[] order = r.ints(0, Integer.MAX_VALUE).limit(byClass.length).toArray();
        Integer[] cls = new Integer[byClass.length];
        for (int i = 0; i < cls.length; i++) {
            cls[i] = i;
        }
        Arrays.sort(cls, (a, b) -> Integer.compare(order[a], order[b]));
        int[] images = new int[batchSize()];
        int[] labels = new int[batchSize()];
        int k = 0;
        for (int c = 0; c < classesPerBatch; c++) {
            int[] members = byClass[cls[c]].clone();
            for (int i = members.length - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                int t = members[i];
                members[i] = members[j];
                members[j] = t;
            }
            for (int i = 0; i < imagesPerClass; i++) {
                images[k] = members[i % members.length];
                labels[k++] = classIds[cls[c]];
            }
        }
        return new Batch(images, labels);
    }
}
