package dir4j.retrieval.synth;

import dir4j.engine.io.AtomicFiles;
import dir4j.engine.io.OutputLock;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.stream.IntStream;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/**
 * dir4j's built-in instance-retrieval benchmark, generated deterministically from a seed.
 * Landmarks are procedural buildings ({@link Scene}); images are photographs of them under
 * viewpoint, scale, lighting, blur, occlusion and clutter ({@link Camera}), plus distractors
 * (landmarks never queried). Landmarks are split three ways, disjointly:
 * <ul>
 * <li>training: {@code train.txt}, one "jpg/NAME.jpg LABEL" per line (the reference's format);</li>
 * <li>validation and test: the revisited Oxford/Paris layout, {@code gnd_synth-val.pkl} and
 *     {@code gnd_synth.pkl} with imlist, qimlist and per query bbx/easy/hard/junk (easy: mild
 *     views, hard: strong ones, junk: views showing too little of the landmark).</li>
 * </ul>
 * Everything lives under {@code <root>/synth/}: {@code jpg/}, the ground truths, the training
 * list and {@code synth.properties} (the configuration it was made from). The folder appears
 * atomically when complete. Until then the images go to {@code <root>/.synth.dir4j-partial/},
 * each written whole (beside, then renamed); a generator stopped part-way (killed, out of disk)
 * is resumed by the next one of the same configuration, which renders only the images missing
 * or not whole (every image is a function of the seed alone, so the result is the same file for
 * file).
 */
public final class SyntheticLandmarks {

    /**
     * Sizes of the benchmark.
     *
     * @param seed              everything derives from it
     * @param imageSize         side of each (square) image in pixels
     * @param trainLandmarks    landmarks in the training list
     * @param trainViews        photographs per training landmark
     * @param valLandmarks      queried landmarks of the validation split
     * @param testLandmarks     queried landmarks of the test split
     * @param easyViews         easy database views per queried landmark
     * @param hardViews         hard database views per queried landmark
     * @param junkViews         junk database views per queried landmark
     * @param distractors       distractor images in each of the validation and test databases
     */
    public record Config(long seed, int imageSize, int trainLandmarks, int trainViews, int valLandmarks,
                         int testLandmarks, int easyViews, int hardViews, int junkViews, int distractors) {
        /** Small enough for the CPU demo. */
        public static Config demo() {
            return new Config(2019, 128, 60, 8, 8, 20, 3, 2, 1, 60);
        }

        /** Throws IllegalArgumentException naming the limits when a size is out of range. */
        public void validate() {
            if (imageSize < 32 || trainLandmarks < 2 || trainViews < 2 || valLandmarks < 1 || testLandmarks < 1
                    || easyViews + hardViews < 1 || junkViews < 0 || distractors < 0) {
                throw new IllegalArgumentException("synth: sizes out of range: " + this
                        + " (image ≥ 32 px, ≥ 2 training landmarks with ≥ 2 views, ≥ 1 query, ≥ 1 positive view)");
            }
        }

        Properties toProperties() {
            Properties p = new Properties();
            p.setProperty("seed", Long.toString(seed));
            p.setProperty("imageSize", Integer.toString(imageSize));
            p.setProperty("trainLandmarks", Integer.toString(trainLandmarks));
            p.setProperty("trainViews", Integer.toString(trainViews));
            p.setProperty("valLandmarks", Integer.toString(valLandmarks));
            p.setProperty("testLandmarks", Integer.toString(testLandmarks));
            p.setProperty("easyViews", Integer.toString(easyViews));
            p.setProperty("hardViews", Integer.toString(hardViews));
            p.setProperty("junkViews", Integer.toString(junkViews));
            p.setProperty("distractors", Integer.toString(distractors));
            p.setProperty("format", "1");
            return p;
        }
    }

    /** One image to render: its file name, landmark seed, difficulty and camera seed. */
    private record Job(String name, long sceneSeed, Camera.Difficulty difficulty, long cameraSeed) {}

    private SyntheticLandmarks() {}

    /** The dataset folder for a data root. */
    public static Path folder(Path root) {
        return root.resolve("synth");
    }

    /** Whether {@code root/synth} holds a finished benchmark (of any configuration). */
    public static boolean exists(Path root) {
        return Files.isRegularFile(folder(root).resolve("synth.properties"));
    }

    /**
     * Generates the benchmark under {@code root/synth} unless one made from the same
     * configuration is already there; returns the folder. {@code progress} receives (done, total).
     */
    public static Path generate(Path root, Config config, java.util.function.BiConsumer<Integer, Integer> progress)
            throws IOException {
        System.Logger log = System.getLogger(SyntheticLandmarks.class.getName());
        return generate(root, config, progress, m -> log.log(System.Logger.Level.INFO, m));
    }

    /**
     * {@link #generate(Path, Config, java.util.function.BiConsumer)}, telling {@code notes} when it
     * waits for another generator of the same data root or removes what a stopped one left.
     */
    public static Path generate(Path root, Config config, java.util.function.BiConsumer<Integer, Integer> progress,
            java.util.function.Consumer<String> notes) throws IOException {
        config.validate();
        Path dir = folder(root);
        if (Files.isDirectory(dir) && matches(dir, config)) {
            return dir;
        }
        Files.createDirectories(root);
        // one generator per data root at a time (a second waits: two trainings on a fresh data root both need it);
        // under the lock, what killed generators left goes
        try (OutputLock lock = OutputLock.acquire(root.resolve(".synth.lock"), dir + " (a benchmark being generated)",
                java.time.Duration.ofHours(2), notes)) {
            if (Files.isDirectory(dir) && matches(dir, config)) {
                return dir; // finished by another process while this one waited
            }
            for (Path p : AtomicFiles.removeLeftovers(dir, true)) {
                notes.accept("removed " + p + ", left half-written by a stopped generator");
            }
            return generateLocked(dir, config, progress, notes);
        }
    }

    /** The folder a generation in progress writes to, beside {@code synth/}. */
    static Path partialFolder(Path dir) {
        return dir.resolveSibling(PARTIAL);
    }

    private static final String PARTIAL = ".synth.dir4j-partial";

    private static Path generateLocked(Path dir, Config config, java.util.function.BiConsumer<Integer, Integer> progress,
            java.util.function.Consumer<String> notes) throws IOException {
        if (Files.exists(dir)) {
            throw new IOException(dir + " exists but was made from another configuration (or is not a dir4j synth "
                    + "benchmark); remove it or choose another --data-root");
        }
        Path tmp = partialFolder(dir);
        Path jpg = tmp.resolve("jpg");
        Path marker = tmp.resolve("synth.properties");
        if (Files.exists(tmp, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (Files.isDirectory(tmp, java.nio.file.LinkOption.NOFOLLOW_LINKS) && matches(tmp, config)) {
                AtomicFiles.removeTemporariesIn(jpg); // images a stopped generator was writing
            } else {
                deleteTree(tmp);
                notes.accept("removed " + tmp + ", a stopped generation of another configuration");
            }
        }
        Files.createDirectories(jpg);
        if (!Files.isRegularFile(marker)) { // first, so that a resume knows what the images are of
            java.io.StringWriter w = new java.io.StringWriter();
            config.toProperties().store(w, "dir4j synthetic landmarks benchmark");
            AtomicFiles.write(marker, w.toString().getBytes(StandardCharsets.ISO_8859_1));
        }
        List<Job> jobs = new ArrayList<>();
        StringBuilder train = new StringBuilder();
        Random master = new Random(config.seed());
        long[] landmarkSeeds = master.longs(config.trainLandmarks() + config.valLandmarks()
                + config.testLandmarks() + 2L * config.distractors()).toArray();
        int li = 0;
        for (int l = 0; l < config.trainLandmarks(); l++, li++) {
            for (int v = 0; v < config.trainViews(); v++) {
                String name = String.format("train_l%03d_v%02d", l, v);
                // training views mix mild and strong changes, as landmark photo collections do
                Camera.Difficulty d = v % 3 == 2 ? Camera.Difficulty.HARD : Camera.Difficulty.EASY;
                jobs.add(new Job(name, landmarkSeeds[li], d, master.nextLong()));
                train.append("jpg/").append(name).append(".jpg ").append(l).append('\n');
            }
        }
        Map<String, Object> val = split("val", config, config.valLandmarks(), landmarkSeeds, li, master, jobs);
        li += config.valLandmarks() + config.distractors();
        Map<String, Object> test = split("test", config, config.testLandmarks(), landmarkSeeds, li, master, jobs);
        int total = jobs.size();
        int[] done = {0};
        List<Job> todo = new ArrayList<>();
        for (Job j : jobs) {
            if (!wholeJpeg(jpg.resolve(j.name() + ".jpg"))) {
                todo.add(j);
            }
        }
        done[0] = total - todo.size();
        if (done[0] > 0) {
            notes.accept("resuming a stopped generation in " + tmp + ": " + done[0] + " of " + total
                    + " images already made");
        }
        // every image task ends before this method goes on (the first failure is kept and the rest skip their
        // work): a failure thrown out of the stream would leave tasks writing into the folder deleted below
        java.util.concurrent.atomic.AtomicReference<Throwable> failed = new java.util.concurrent.atomic
                .AtomicReference<>();
        IntStream.range(0, todo.size()).parallel().forEach(i -> {
            if (failed.get() != null) {
                return;
            }
            try {
                renderAndWrite(todo.get(i), config, tmp);
            } catch (RuntimeException | Error e) { // an OutOfMemoryError or Java2D's InternalError too
                failed.compareAndSet(null, e);
                return;
            }
            synchronized (done) {
                done[0]++;
                if (progress != null) {
                    progress.accept(done[0], total);
                }
            }
        });
        if (failed.get() instanceof RuntimeException e) {
            throw e;
        } else if (failed.get() instanceof Error e) {
            throw e;
        }
        Files.writeString(tmp.resolve("train.txt"), train, StandardCharsets.UTF_8);
        Files.write(tmp.resolve("gnd_synth-val.pkl"), PickleWriter.write(val));
        Files.write(tmp.resolve("gnd_synth.pkl"), PickleWriter.write(test));
        try {
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, dir);
        }
        return dir;
    }

    /**
     * Whether {@code file} is a JPEG from its start-of-image marker to its end-of-image one: an
     * image renamed into place but not yet on disk when the machine stopped (a power cut) can be
     * found empty or cut short, and is then rendered again.
     */
    private static boolean wholeJpeg(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try (var ch = java.nio.channels.FileChannel.open(file)) {
            long size = ch.size();
            java.nio.ByteBuffer head = java.nio.ByteBuffer.allocate(2);
            java.nio.ByteBuffer tail = java.nio.ByteBuffer.allocate(2);
            return size >= 4 && ch.read(head, 0) == 2 && ch.read(tail, size - 2) == 2
                    && (head.get(0) & 0xff) == 0xff && (head.get(1) & 0xff) == 0xd8
                    && (tail.get(0) & 0xff) == 0xff && (tail.get(1) & 0xff) == 0xd9;
        }
    }

    /**
     * A query/database split: one query per landmark (an easy photograph; its bbx boxes the
     * landmark), database views by difficulty, distractors; the revisited ground truth.
     */
    private static Map<String, Object> split(String prefix, Config c, int landmarks, long[] seeds, int first,
                                             Random master, List<Job> jobs) {
        List<String> imlist = new ArrayList<>();
        List<String> qimlist = new ArrayList<>();
        List<Object> gnd = new ArrayList<>();
        List<double[]> bboxes = new ArrayList<>();
        for (int l = 0; l < landmarks; l++) {
            long seed = seeds[first + l];
            String q = String.format("%s_q%03d", prefix, l);
            long camSeed = master.nextLong();
            jobs.add(new Job(q, seed, Camera.Difficulty.EASY, camSeed));
            qimlist.add(q);
            // the query's box is known from its camera: re-shoot geometry only (cheap at this size)
            bboxes.add(Camera.shoot(Scene.render(seed, c.imageSize() * 2), c.imageSize(), Camera.Difficulty.EASY,
                    new Random(camSeed)).bbox());
            List<Integer> easy = new ArrayList<>();
            List<Integer> hard = new ArrayList<>();
            List<Integer> junk = new ArrayList<>();
            int v = 0;
            for (int[] spec : new int[][] {{c.easyViews(), 0}, {c.hardViews(), 1}, {c.junkViews(), 2}}) {
                for (int i = 0; i < spec[0]; i++, v++) {
                    String name = String.format("%s_l%03d_v%02d", prefix, l, v);
                    Camera.Difficulty d = Camera.Difficulty.values()[spec[1]];
                    jobs.add(new Job(name, seed, d, master.nextLong()));
                    (spec[1] == 0 ? easy : spec[1] == 1 ? hard : junk).add(imlist.size());
                    imlist.add(name);
                }
            }
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("easy", easy);
            g.put("hard", hard);
            g.put("junk", junk);
            gnd.add(g);
        }
        for (int i = 0; i < c.distractors(); i++) {
            String name = String.format("%s_x%03d", prefix, i);
            Camera.Difficulty d = i % 2 == 0 ? Camera.Difficulty.EASY : Camera.Difficulty.HARD;
            jobs.add(new Job(name, seeds[first + landmarks + i], d, master.nextLong()));
            imlist.add(name);
        }
        for (int q = 0; q < gnd.size(); q++) {
            @SuppressWarnings("unchecked")
            Map<String, Object> g = (Map<String, Object>) gnd.get(q);
            Map<String, Object> ordered = new LinkedHashMap<>();
            ordered.put("bbx", bboxes.get(q));
            ordered.putAll(g);
            gnd.set(q, ordered);
        }
        Map<String, Object> gt = new LinkedHashMap<>();
        gt.put("imlist", imlist);
        gt.put("qimlist", qimlist);
        gt.put("gnd", gnd);
        return gt;
    }

    private static boolean matches(Path dir, Config config) throws IOException {
        Path p = dir.resolve("synth.properties");
        if (!Files.isRegularFile(p)) {
            return false;
        }
        Properties have = new Properties();
        try (var in = Files.newInputStream(p)) {
            have.load(in);
        }
        return have.equals(config.toProperties());
    }

    private static void writeJpeg(BufferedImage img, Path file) {
        try {
            ImageWriter w = ImageIO.getImageWritersByFormatName("jpeg").next();
            ImageWriteParam param = w.getDefaultWriteParam();
            param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            param.setCompressionQuality(0.92f);
            // whole or not at all: a resumed generation keeps every image it finds
            Path tmp = AtomicFiles.temporaryBeside(file);
            try {
                try (ImageOutputStream out = ImageIO.createImageOutputStream(tmp.toFile())) {
                    w.setOutput(out);
                    w.write(null, new IIOImage(img, null, null), param);
                } finally {
                    w.dispose();
                }
                AtomicFiles.replace(tmp, file);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + " (" + (e.getMessage() == null
                    ? e.getClass().getSimpleName() : e.getMessage()) + ")", e);
        }
    }

    private static void renderAndWrite(Job j, Config config, Path tmp) {
        BufferedImage scene = Scene.render(j.sceneSeed(), config.imageSize() * 2);
        Camera.Shot shot = Camera.shoot(scene, config.imageSize(), j.difficulty(), new Random(j.cameraSeed()));
        writeJpeg(shot.image(), tmp.resolve("jpg").resolve(j.name() + ".jpg"));
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var s = Files.walk(p)) {
            for (Path x : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(x);
            }
        }
    }
}
