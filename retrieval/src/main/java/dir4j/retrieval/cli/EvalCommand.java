package dir4j.retrieval.cli;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import dir4j.engine.io.AtomicFiles;
import dir4j.engine.io.Npy;
import dir4j.engine.io.OutputLock;
import dir4j.nn.io.Json;
import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.eval.OldProtocol;
import dir4j.retrieval.eval.ProtocolResult;
import dir4j.retrieval.eval.RevisitedProtocol;
import dir4j.retrieval.eval.RevisitedResult;
import dir4j.retrieval.extract.ExtractionOptions;
import dir4j.retrieval.extract.FeatureExtractor;
import dir4j.retrieval.extract.ProgressBar;
import dir4j.retrieval.net.NetworkCheckpoint;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.net.WhiteningFile;
import dir4j.retrieval.search.AlphaExpansion;
import dir4j.retrieval.search.DescriptorMatrix;
import dir4j.retrieval.search.ExtendedDatabase;
import dir4j.retrieval.search.Rankings;
import dir4j.retrieval.whiten.PcaWhitening;
import dir4j.retrieval.whiten.WhiteningOptions;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code dir4j eval}: the reference's test_dir.py. Describe (or reuse the descriptors of) a
 * benchmark's queries and database, whiten, apply αDBA to the database and then αQE to the
 * queries against it, rank the whole database by dot product (extended by distractor descriptors
 * streamed from a file: {@link ExtendedDatabase}), and print and store mAP (and mP@k for the
 * revisited protocol).
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Evaluate a retrieval network on a benchmark, as the reference's test_dir.py does: extract (or "
                + "reuse) query and database descriptors, optionally whiten them, apply alpha-DBA to the database then "
                + "alpha-QE to the queries, rank the whole database (extended by --distractors, as in +R1M) and print "
                + "mAP per protocol: Easy/Medium/Hard with "
                + "mP@1,5,10 for the revisited datasets (roxford5k, rparis6k, synth, synth-val), mAP for the old ones "
                + "(oxford5k, paris6k).",
            "Output: the revisited table ('>> roxford5k: mAP E: .., M: .., H: ..' and the mP@k line), then the "
                + "reference's ' * mAP-medium = 0.803098' lines; --json stores them."},
        exitCodeListHeading = ToolCommand.EXIT_HEADING,
        exitCodeList = {ToolCommand.EXIT_OK, ToolCommand.EXIT_FAILED, ToolCommand.EXIT_USAGE})
final class EvalCommand extends ToolCommand {
    @Option(names = "--dataset", required = true, paramLabel = "NAME",
            description = "roxford5k, rparis6k (revisited protocol), oxford5k, paris6k (old protocol), or dir4j's "
                    + "synthetic benchmark synth (test split) / synth-val (made by dir4j synth).")
    String dataset;

    @Option(names = "--data-root", required = true, paramLabel = "DIR",
            description = "The folder holding <name>/gnd_<name>.pkl and <name>/jpg/ (the reference's "
                    + "<root>/oxford5k/gnd_roxford5k.pkl layout is found too; synth lives in <root>/synth/). The images "
                    + "are not needed when --descriptors-dir holds the descriptors.")
    Path dataRoot;

    @Mixin
    NetworkOptions network;

    @Option(names = "--whiten", arity = "1..2", paramLabel = "MODE [ARG]", hideParamSyntax = true, defaultValue = "none",
            description = "PCA whitening of both descriptor sets: 'none' (default); 'learn-on-db' (learned on this "
                    + "benchmark's database descriptors; without --whitenv it keeps the components they give "
                    + "variance to, one fewer than the distinct descriptors at most); 'from-checkpoint NAME' (the "
                    + "checkpoint's PCA learned on NAME, as the reference's --whiten Landmarks_clean; NAME may be left "
                    + "out when it has only one); 'file FILE' (a whitening written by dir4j whiten, or any checkpoint "
                    + "with one PCA).")
    List<String> whiten;

    @Mixin
    WhiteningSettings whitening;

    @Option(names = "--aqe", arity = "2", paramLabel = "K ALPHA", hideParamSyntax = true,
            description = "Alpha query expansion: each query is replaced by the normalised sum of itself and its K "
                    + "nearest database descriptors weighted by similarity^ALPHA (applied after --adba).")
    List<String> aqe;

    @Option(names = "--adba", arity = "2", paramLabel = "K ALPHA", hideParamSyntax = true,
            description = "Alpha database-side augmentation: the same for each database descriptor with its K nearest "
                    + "other database descriptors (applied first).")
    List<String> adba;

    @Mixin
    ExtractionSettings extraction;

    @Option(names = "--distractors", paramLabel = "FILE.npy",
            description = "Extend the database with distractor descriptors (N x D, made by dir4j extract with the "
                    + "same network and extraction settings as the benchmark's), as the revisited protocol's +R1M "
                    + "(or Oxford105k's 100k Flickr images): they are whitened as the database, never positive or "
                    + "junk, and rank after a database image of exactly the same score. Read a block at a time, so "
                    + "a million 2048-d descriptors need no more memory than a block; not with --adba. Results are "
                    + "printed and stored under '<dataset>+distractors'.")
    Path distractors;

    @Option(names = "--distractor-block", paramLabel = "ROWS", defaultValue = "" + ExtendedDatabase.DEFAULT_BLOCK_ROWS,
            description = "Distractor rows read and scored at a time (default ${DEFAULT-VALUE}: 64 MiB of 2048-d "
                    + "descriptors).")
    int distractorBlock;

    @Option(names = "--descriptors-dir", paramLabel = "DIR",
            description = "Keep descriptors as <DIR>/<dataset>.qdescs.npy and .dbdescs.npy (with .ids.txt): reused "
                    + "when present (as written by an earlier eval or by dir4j extract --dataset NAME --out "
                    + "DIR/NAME.npy; then no network is needed unless --whiten from-checkpoint), else extracted into "
                    + "them, resumably. Descriptors an earlier eval made with another network or extraction settings "
                    + "are refused, not reused. Without it every eval extracts them again and keeps none.")
    Path descriptorsDir;

    @Option(names = "--json", paramLabel = "FILE",
            description = "Write the results as JSON under the dataset's name, keeping other datasets' entries of an "
                    + "existing file (as the reference's --out-json): mAP-easy/-medium/-hard (or mAP), mP@k, queries, "
                    + "settings. Fractions, not percentages.")
    Path json;

    @Option(names = "--detailed", description = "Also store each query's AP in the JSON (the reference's --detailed).")
    boolean detailed;

    @Option(names = "--quiet", description = "No progress bars or notes on stderr (errors are still printed).")
    boolean quiet;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the network runs during extraction (cuda: decoding and resizing stay on the host, "
                    + "each batch goes to the GPU and its descriptors come back; ranking and evaluation run on the "
                    + "host). Default: ${DEFAULT-VALUE}.")
    String device;

    private static final String PROVENANCE = ".extraction.properties";

    private record Expansion(int k, double alpha) {
        @Override
        public String toString() {
            return "k=" + k + " alpha=" + alpha;
        }
    }

    @Override
    int run() throws IOException {
        Device dev = DeviceOption.usable(device);
        String name = dataset.toLowerCase(Locale.ROOT);
        if (!RetrievalDataset.KNOWN.containsKey(name)) {
            throw new UsageException("unknown dataset '" + dataset + "': use one of "
                    + String.join(", ", RetrievalDataset.KNOWN.keySet().stream().sorted().toList()));
        }
        for (String option : List.of("--whiten", "--aqe", "--adba", "--distractors")) {
            if (occurrences(option) > 1) {
                throw new UsageException(option + " was given " + occurrences(option) + " times: give it once");
            }
        }
        Expansion dba = expansion("--adba", adba);
        Expansion qe = expansion("--aqe", aqe);
        if (distractors == null && spec.commandLine().getParseResult().hasMatchedOption("--distractor-block")) {
            throw new UsageException("--distractor-block goes with --distractors");
        }
        if (json != null && Files.isDirectory(json)) {
            throw new UsageException("--json " + json + " is a directory: name a file");
        }
        if (distractors != null) {
            try (Npy.RowReader r = Npy.RowReader.open(distractors)) { // a missing or broken file now, not later
                if (r.rows() == 0) {
                    throw new IOException(distractors + " holds no distractor descriptors (0 rows): the table would be "
                            + "the one without distractors");
                }
            }
        }
        requireOutputNotInput(json, "--json", distractors, "--distractors");
        requireOutputNotInput(json, "--json", network.checkpoint, "--checkpoint");
        if (distractors != null && dba != null) {
            throw new UsageException("--adba cannot be used with --distractors: it would augment every distractor "
                    + "with its nearest distractors (a k-nearest-neighbour search of the whole distractor set); "
                    + "evaluate with --aqe only");
        }
        if (distractorBlock < 1) {
            throw new UsageException("--distractor-block must be at least 1, got " + distractorBlock);
        }
        String mode = whiten.getFirst().toLowerCase(Locale.ROOT);
        String modeArg = whiten.size() > 1 ? whiten.get(1) : null;
        switch (mode) {
            case "none", "learn-on-db" -> {
                if (modeArg != null) {
                    throw new UsageException("--whiten " + mode + " takes no argument, got '" + modeArg + "'");
                }
                if (mode.equals("none") && whitening.given()) {
                    throw new UsageException("--whitenp/--whitenv/--whitenm need --whiten");
                }
            }
            case "from-checkpoint" -> {
                if (network.checkpoint == null) {
                    throw new UsageException("--whiten from-checkpoint needs --checkpoint");
                }
            }
            case "file" -> {
                if (modeArg == null) {
                    throw new UsageException("--whiten file needs the whitening file: --whiten file FILE");
                }
                requireOutputNotInput(json, "--json", Path.of(modeArg), "--whiten file");
            }
            default -> throw new UsageException("--whiten must be none, learn-on-db, from-checkpoint [NAME] or file "
                    + "FILE, got '" + String.join(" ", whiten) + "'");
        }
        if (network.given()) {
            network.check();
        }

        Path qFile = descriptorsDir == null ? null : descriptorsDir.resolve(name + ".qdescs.npy");
        Path dbFile = descriptorsDir == null ? null : descriptorsDir.resolve(name + ".dbdescs.npy");
        for (Path kept : descriptorsDir == null ? List.<Path>of()
                : List.of(qFile, dbFile, FeatureExtractor.idsFile(qFile), FeatureExtractor.idsFile(dbFile))) {
            requireOutputNotInput(json, "--json", kept, "a descriptor file of --descriptors-dir:");
        }
        // one eval at a time writes or reads a dataset's kept descriptors (another's deletions before it extracts
        // would take this one's files away mid-read): a second waits, held no longer than reading once extracted
        OutputLock descriptorsLock = null;
        if (descriptorsDir != null) {
            try {
                descriptorsLock = OutputLock.acquire(descriptorsDir.resolve("." + name + ".eval.lock"),
                        descriptorsDir.resolve(name) + ".*descs.npy (descriptors of " + name + ")", DESCRIPTORS_WAIT,
                        this::note);
            } catch (OutputLock.Busy busy) {
                throw busy;
            } catch (IOException e) {
                if (!(qFile != null && Files.isRegularFile(qFile) && Files.isRegularFile(dbFile))) {
                    throw e; // this eval would extract into the folder: never without the lock
                }
                // descriptors to read from a folder this user may read but not lock (shared, read-only)
                note("cannot lock " + descriptorsDir + " (" + e.getMessage() + "); reading its descriptors "
                        + "without");
            }
        }
        try {
            boolean reuse = qFile != null && Files.isRegularFile(qFile) && Files.isRegularFile(dbFile);
            // descriptors made earlier need the ground truth only, not the images
            RetrievalDataset d = RetrievalDataset.load(name, dataRoot, !reuse);
            note("dataset: " + d);
            if (!reuse && !network.given()) {
                throw new UsageException("a network is needed to describe the images: --checkpoint FILE, or --arch "
                        + "NAME --random-init" + (descriptorsDir == null ? " (or --descriptors-dir with earlier descriptors)"
                        : " (" + descriptorsDir + " holds no " + name + ".qdescs.npy and .dbdescs.npy to reuse)"));
            }
            Map<String, WhiteningFile.Stored> checkpointWhitenings = Map.of();
            long t0 = System.nanoTime();
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor queries;
                Tensor database;
                if (reuse) {
                    checkProvenance(name);
                    // a plain `extract --out` to one of these files (not an eval) takes the file's own lock, not
                    // eval's: wait for it too, so that a .npy and its ids are read from one writer's output
                    boolean locked = descriptorsLock != null;
                    try (OutputLock dbRead = locked ? readLock(dbFile) : null;
                            OutputLock qRead = locked ? readLock(qFile) : null) {
                        database = readDescriptors(dbFile, d.imageNames(), "database");
                        queries = readDescriptors(qFile, d.queryNames(), "query");
                    }
                    note("reusing " + database.shape(0) + " database and " + queries.shape(0) + " query descriptors ("
                            + database.shape(1) + "-d) from " + descriptorsDir);
                    if (mode.equals("from-checkpoint")) {
                        network.requireCheckpointFile();
                        checkpointWhitenings = WhiteningFile.read(network.checkpoint);
                    }
                } else {
                    NetworkCheckpoint.Loaded loaded = network.load();
                    try (RetrievalNet net = loaded.net()) {
                        NetworkOptions.ready(loaded, net, dev, quiet);
                        checkpointWhitenings = loaded.whitenings();
                        if (mode.equals("none") && !checkpointWhitenings.isEmpty()) {
                            note("the checkpoint carries whitening " + checkpointWhitenings.keySet() + "; the "
                                    + "reference evaluates with it: --whiten from-checkpoint "
                                    + checkpointWhitenings.keySet().iterator().next());
                        }
                        ExtractionOptions options = extraction.options(loaded, quiet);
                        FeatureExtractor fx;
                        try {
                            fx = new FeatureExtractor(net, options);
                        } catch (IllegalArgumentException e) {
                            throw new UsageException("--scale-pooling-p net: " + e.getMessage());
                        }
                        if (descriptorsDir != null) {
                            // the record and a leftover file of an earlier eval go first: a run stopped between the
                            // two files must not leave one of its own beside one of another network's, vouched for
                            // by the other's record
                            // (through links: a kept file that is a link is rewritten where it points)
                            Files.deleteIfExists(AtomicFiles.throughLinks(provenanceFile(name)));
                            Files.deleteIfExists(AtomicFiles.throughLinks(qFile));
                            Files.deleteIfExists(AtomicFiles.throughLinks(dbFile));
                            fx.extractToFile(d.databaseImages(), dbFile, "DB");
                            fx.extractToFile(d.queryImages(), qFile, "query");
                            writeProvenance(name);
                            database = readDescriptors(dbFile, d.imageNames(), "database");
                            queries = readDescriptors(qFile, d.queryNames(), "query");
                        } else {
                            database = fx.extract(d.databaseImages(), "DB").descriptors();
                            queries = fx.extract(d.queryImages(), "query").descriptors();
                        }
                    }
                }
                if (descriptorsLock != null) {
                    descriptorsLock.close(); // read: the files may change now
                    descriptorsLock = null;
                }
                if (queries.shape(1) != database.shape(1)) {
                    throw new IOException("query descriptors are " + queries.shape(1) + "-d but database descriptors "
                            + database.shape(1) + "-d");
                }
                int rawDimension = database.shape(1);
                boolean unitDatabase = distractors != null && firstNonUnit(DescriptorMatrix.of(database)) < 0;
                Map<String, Object> settings = new LinkedHashMap<>();
                settings.put("network", network.given() ? network.describe() : "descriptors from " + descriptorsDir);
                settings.put("extraction", reuse ? "reused from " + descriptorsDir : extraction.describe());

                // whitening, then DBA on the database, then QE against the augmented database (test_dir.py's order)
                WhiteningOptions used = null;
                PcaWhitening w = null;
                if (!mode.equals("none")) {
                    WhiteningOptions stored = null;
                    String source;
                    if (mode.equals("learn-on-db")) {
                        w = PcaWhitening.learn(database);
                        source = "learned on the " + database.shape(0) + " database descriptors";
                    } else {
                        Path file = mode.equals("file") ? Path.of(modeArg) : network.checkpoint;
                        Map<String, WhiteningFile.Stored> all = mode.equals("file") ? WhiteningFile.read(file)
                                : checkpointWhitenings;
                        WhiteningFile.Stored s = WhiteningSettings.pick(file, all, mode.equals("file") ? null : modeArg,
                                "--whiten from-checkpoint NAME");
                        w = PcaWhitening.of(s.pca());
                        stored = s.options();
                        source = "from " + file;
                    }
                    used = whitening.resolve(stored);
                    if (mode.equals("learn-on-db")) {
                        used = whitening.forLearned(used, w, database, this::note);
                    }
                    if (w.parameters().dimension() != database.shape(1)) {
                        throw new IOException("the whitening is for " + w.parameters().dimension()
                                + "-d descriptors, these are " + database.shape(1) + "-d");
                    }
                    used = WhiteningSettings.effective(used, w.parameters(), this::note);
                    database = WhiteningSettings.requireFinite(w.apply(database, used), "database descriptor", 0);
                    queries = WhiteningSettings.requireFinite(w.apply(queries, used), "query descriptor", 0);
                    note("whitening " + source + " (" + WhiteningSettings.describe(used) + ")");
                    settings.put("whiten", String.join(" ", whiten) + ", " + source);
                    settings.put("whitenp", used.power());
                    settings.put("whitenv", used.components() == WhiteningOptions.ALL_COMPONENTS ? null
                            : (long) used.components());
                    settings.put("whitenm", used.multiplier());
                } else {
                    settings.put("whiten", null);
                }
                if (dba != null) {
                    checkK("--adba", dba, database.shape(0));
                    database = AlphaExpansion.databaseAugmentation(database, dba.k(), dba.alpha());
                }
                settings.put("adba", dba == null ? null : List.of((long) dba.k(), dba.alpha()));
                settings.put("aqe", qe == null ? null : List.of((long) qe.k(), qe.alpha()));
                int[][] rankings;
                int[][] positions = null;
                String label = name;
                long extended = database.shape(0);
                if (distractors == null) {
                    if (qe != null) {
                        checkK("--aqe", qe, database.shape(0));
                        queries = AlphaExpansion.queryExpansion(queries, database, qe.k(), qe.alpha());
                    }
                    rankings = Rankings.bySimilarity(queries, database);
                } else {
                    try (Npy.RowReader reader = Npy.RowReader.open(distractors)) {
                        if (reader.columns() != rawDimension) {
                            throw new IOException(distractors + " holds " + reader.columns() + "-d descriptors, the "
                                    + "benchmark's are " + rawDimension + "-d: they must come from the same network");
                        }
                        ExtendedDatabase.Rows rows = distractorRows(reader, w, used, database.shape(1), unitDatabase);
                        settings.put("distractors", distractors.toString());
                        settings.put("distractor-count", reader.rows());
                        label = name + "+distractors";
                        extended += reader.rows();
                        note(String.format(Locale.ROOT, "distractors: %,d %d-d descriptors from %s", reader.rows(),
                                reader.columns(), distractors));
                        if (qe != null) {
                            if (qe.k() > extended) {
                                throw new UsageException("--aqe: K = " + qe.k() + " exceeds the " + extended
                                        + " database and distractor descriptors");
                            }
                            queries = ExtendedDatabase.queryExpansion(queries, database, rows, qe.k(), qe.alpha(),
                                    distractorBlock, progress("distractors (aQE)", reader.rows()));
                            finish();
                        }
                        ExtendedDatabase.Ranked ranked = ExtendedDatabase.rank(queries, database, relevant(d), rows,
                                distractorBlock, progress("distractors", reader.rows()));
                        finish();
                        rankings = ranked.rankings();
                        positions = ranked.positions();
                    }
                }

                Map<String, Object> res = new LinkedHashMap<>();
                StringBuilder out = new StringBuilder();
                if (d.protocol() == RetrievalDataset.Protocol.REVISITED) {
                    RevisitedResult r = RevisitedProtocol.evaluate(rankings, positions, d.revisitedGroundTruth(),
                            RevisitedProtocol.DEFAULT_KAPPAS);
                    out.append(r.report(label)).append('\n');
                    Map<String, ProtocolResult> modes = new LinkedHashMap<>();
                    modes.put("easy", r.easy());
                    modes.put("medium", r.medium());
                    modes.put("hard", r.hard());
                    modes.forEach((m, p) -> res.put("mAP-" + m, p.map()));
                    modes.forEach((m, p) -> out.append(" * mAP-").append(m).append(" = ").append(pythonG(p.map()))
                            .append('\n'));
                    Map<String, Object> prec = new LinkedHashMap<>();
                    prec.put("k", java.util.Arrays.stream(r.medium().kappas()).mapToObj(k -> (long) k).toList());
                    modes.forEach((m, p) -> prec.put(m, PrettyJson.list(p.meanPrecisionAt())));
                    res.put("mP@k", prec);
                    res.put("queries", (long) rankings.length);
                    Map<String, Object> excluded = new LinkedHashMap<>();
                    modes.forEach((m, p) -> excluded.put(m, (long) p.excludedQueries()));
                    res.put("queries-without-positives", excluded);
                    if (detailed) {
                        modes.forEach((m, p) -> res.put("APs-" + m, PrettyJson.list(p.aps())));
                    }
                } else {
                    ProtocolResult r = OldProtocol.evaluate(rankings, positions, d.classicGroundTruth());
                    out.append(OldProtocol.report(label, r)).append('\n');
                    out.append(" * mAP = ").append(pythonG(r.map())).append('\n');
                    res.put("mAP", r.map());
                    res.put("queries", (long) rankings.length);
                    res.put("queries-without-positives", (long) r.excludedQueries());
                    if (detailed) {
                        res.put("APs", PrettyJson.list(r.aps()));
                    }
                }
                res.put("settings", settings);
                System.out.print(out);
                if (json != null) {
                    writeJson(label, res);
                    System.out.println("saved to " + json);
                }
                note(String.format(Locale.ROOT, "evaluated %d queries against %d images in %.1f s", rankings.length,
                        extended, (System.nanoTime() - t0) / 1e9));
            }
        } finally {
            if (descriptorsLock != null) {
                descriptorsLock.close();
            }
        }
        return 0;
    }

    /** How long an eval waits for another that is extracting or reading the same kept descriptors. */
    private static final java.time.Duration DESCRIPTORS_WAIT = java.time.Duration.ofHours(24);

    /** The lock an extraction into {@code npy} holds ({@link FeatureExtractor#lockFile}), waited for. */
    private OutputLock readLock(Path npy) throws IOException {
        return OutputLock.acquire(FeatureExtractor.lockFile(npy), npy + " (a descriptor file)", DESCRIPTORS_WAIT,
                this::note);
    }

    /**
     * The distractor file's rows, checked for NaN and infinity and whitened as the database was,
     * a block at a time.
     */
    private ExtendedDatabase.Rows distractorRows(Npy.RowReader reader, PcaWhitening w, WhiteningOptions used,
            int dimension, boolean unitDatabase) {
        return new ExtendedDatabase.Rows() {
            @Override
            public long count() {
                return reader.rows();
            }

            @Override
            public int dimension() {
                return dimension;
            }

            @Override
            public Tensor read(long from, int n) throws IOException {
                Tensor raw = reader.read(from, n);
                long bad = FiniteValues.firstNonFinite(raw);
                if (bad >= 0) {
                    throw new IOException(distractors + ": distractor " + (from + bad / reader.columns()) + " (of "
                            + reader.rows() + ", counting from 0) holds " + FiniteValues.value(raw, bad)
                            + "; expected finite values");
                }
                if (from == 0 && unitDatabase) {
                    DescriptorMatrix first = DescriptorMatrix.of(raw);
                    int odd = firstNonUnit(first);
                    if (odd >= 0) {
                        note("distractor " + odd + " has length " + String.format(Locale.ROOT, "%.3f",
                                rowNorm(first, odd)) + ", while the database's descriptors have unit length: were "
                                + "the distractors described by the same network?");
                    }
                }
                return w == null ? raw
                        : WhiteningSettings.requireFinite(w.apply(raw, used), distractors + ": distractor", from);
            }
        };
    }

    /** The first row of {@code m} whose length is not 1 (within 1e-3), or -1. */
    private static int firstNonUnit(DescriptorMatrix m) {
        for (int r = 0; r < m.rows(); r++) {
            if (Math.abs(rowNorm(m, r) - 1) > 1e-3) {
                return r;
            }
        }
        return -1;
    }

    private static double rowNorm(DescriptorMatrix m, int r) {
        double s = 0;
        for (int c = 0; c < m.cols(); c++) {
            s += (double) m.get(r, c) * m.get(r, c);
        }
        return Math.sqrt(s);
    }

    /** Each query's positive and junk images under every setup: the images whose places mAP reads. */
    private static int[][] relevant(RetrievalDataset d) {
        List<int[]> out = new ArrayList<>();
        if (d.protocol() == RetrievalDataset.Protocol.REVISITED) {
            for (var g : d.revisitedGroundTruth()) {
                out.add(java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(
                        java.util.Arrays.stream(g.easy()), java.util.Arrays.stream(g.hard())),
                        java.util.Arrays.stream(g.junk())).toArray());
            }
        } else {
            for (var j : d.classicGroundTruth()) {
                out.add(java.util.stream.IntStream.concat(java.util.Arrays.stream(j.positives()),
                        java.util.Arrays.stream(j.junk())).toArray());
            }
        }
        return out.toArray(int[][]::new);
    }

    private ProgressBar bar;

    private java.util.function.LongConsumer progress(String label, long total) {
        bar = new ProgressBar(label, total, 0, System.err, !quiet);
        return bar::update;
    }

    private void finish() {
        if (bar != null) {
            bar.finish();
            bar = null;
        }
    }

    /** How many times {@code option} appears on the command line (as {@code --opt V} or {@code --opt=V}). */
    private long occurrences(String option) {
        return spec.commandLine().getParseResult().originalArgs().stream()
                .filter(a -> a.equals(option) || a.startsWith(option + "=")).count();
    }

    private static Expansion expansion(String option, List<String> values) {
        if (values == null) {
            return null;
        }
        try {
            int k = Integer.parseInt(values.get(0));
            double alpha = Double.parseDouble(values.get(1));
            if (k < 0 || !(alpha >= 0) || Double.isInfinite(alpha)) {
                throw new UsageException(option + ": K must be >= 0 and ALPHA a number >= 0, got " + values.get(0) + " "
                        + values.get(1));
            }
            return new Expansion(k, alpha);
        } catch (NumberFormatException e) {
            throw new UsageException(option + " takes K ALPHA (an integer and a number), got '"
                    + String.join(" ", values) + "'");
        }
    }

    private static void checkK(String option, Expansion e, int rows) {
        if (e.k() > rows) {
            throw new UsageException(option + ": K = " + e.k() + " exceeds the " + rows + " database descriptors");
        }
    }

    /** A descriptor file whose rows must be {@code names}, in order (checked against its .ids.txt when present). */
    private static Tensor readDescriptors(Path file, List<String> names, String what) throws IOException {
        Tensor t = Npy.read(file);
        if (t.rank() != 2 || !t.dtype().isFloating()) {
            throw new IOException(file + ": expected N x D float descriptors, found " + Shape.str(t.shape()) + " " + t.dtype());
        }
        FiniteValues.require(file, t, what + " descriptor");
        if (t.shape(0) != names.size()) {
            throw new IOException(file + " holds " + t.shape(0) + " " + what + " descriptors but the dataset has "
                    + names.size() + " " + what + " images (images left out by --on-error skip cannot be evaluated)");
        }
        Path ids = FeatureExtractor.idsFile(file);
        if (Files.isRegularFile(ids)) {
            List<String> got = dir4j.retrieval.data.InputFiles.readLines(ids, "ids");
            if (!got.equals(names)) {
                int i = 0;
                while (i < Math.min(got.size(), names.size()) && got.get(i).equals(names.get(i))) {
                    i++;
                }
                throw new IOException(ids + " does not list the dataset's " + what + " images in order (first "
                        + "difference at row " + i + "): these descriptors belong to another dataset or order");
            }
        }
        return t;
    }

    private Path provenanceFile(String name) {
        return descriptorsDir.resolve(name + PROVENANCE);
    }

    private void writeProvenance(String name) throws IOException {
        Properties p = new Properties();
        p.setProperty("network", network.describe());
        p.setProperty("extraction", extraction.describe());
        StringWriter text = new StringWriter();
        p.store(text, "what dir4j eval made " + name + ".qdescs.npy and .dbdescs.npy with");
        Files.writeString(provenanceFile(name), text.toString(), StandardCharsets.ISO_8859_1);
    }

    /** Refuses descriptors made with another network or settings than this run names. */
    private void checkProvenance(String name) throws IOException {
        Path f = provenanceFile(name);
        if (!Files.isRegularFile(f)) {
            note("reusing descriptors in " + descriptorsDir + " of unknown origin (no " + f.getFileName() + ")");
            return;
        }
        Properties p = new Properties();
        try (var r = Files.newBufferedReader(f, StandardCharsets.ISO_8859_1)) {
            p.load(r);
        }
        List<String> diff = new ArrayList<>();
        if (network.given() && !network.describe().equals(p.getProperty("network"))) {
            diff.add("network " + p.getProperty("network") + ", now " + network.describe());
        }
        // without a network, extraction options given on the command line must still match: they cannot be
        // applied to reused descriptors, and ignoring them would report a table for settings never used
        boolean extractionGiven = network.given() || java.util.stream.Stream.of("--image-size", "--scales",
                "--scale-pooling-p").anyMatch(o -> spec.commandLine().getParseResult().hasMatchedOption(o));
        if (extractionGiven && !extraction.describe().equals(p.getProperty("extraction"))) {
            diff.add("extraction " + p.getProperty("extraction") + ", now " + extraction.describe());
        }
        if (!diff.isEmpty()) {
            throw new IOException(descriptorsDir + " holds " + name + " descriptors made with " + String.join("; ", diff)
                    + ". Delete them or choose another --descriptors-dir");
        }
        note("descriptors were made with " + p.getProperty("network") + "; " + p.getProperty("extraction"));
    }

    /** Stores {@code res} as {@code data[dataset]} of the JSON file, keeping its other entries. */
    private void writeJson(String name, Map<String, Object> res) throws IOException {
        Map<String, Object> data = new LinkedHashMap<>();
        if (Files.isRegularFile(json)) {
            Object old;
            try {
                old = Json.parse(Files.readString(json, StandardCharsets.UTF_8));
            } catch (IllegalArgumentException e) {
                throw new IOException(json + " exists but is not JSON (" + e.getMessage() + "); remove it or choose "
                        + "another --json file", e);
            } catch (java.nio.charset.CharacterCodingException e) {
                throw new IOException(json + " exists but is not JSON (not UTF-8 text); remove it or choose "
                        + "another --json file", e);
            }
            if (!(old instanceof Map<?, ?> m)) {
                throw new IOException(json + " exists but is not a JSON object; remove it or choose another --json file");
            }
            m.forEach((k, v) -> data.put(String.valueOf(k), v));
        }
        data.put(name, res);
        dir4j.engine.io.AtomicFiles.write(json, PrettyJson.write(data).getBytes(StandardCharsets.UTF_8));
    }

    private void note(String s) {
        if (!quiet) {
            System.err.println(s);
        }
    }

    /** Python's {@code '%g' % x}: 6 significant digits, trailing zeros dropped, exponent below 1e-4 or from 1e6. */
    static String pythonG(double x) {
        if (Double.isNaN(x)) {
            return "nan";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "inf" : "-inf";
        }
        if (x == 0) {
            return (1 / x < 0) ? "-0" : "0";
        }
        BigDecimal r = new BigDecimal(x).round(new MathContext(6, RoundingMode.HALF_EVEN));
        int exponent = r.precision() - r.scale() - 1;
        if (exponent < -4 || exponent >= 6) {
            BigDecimal mantissa = r.movePointLeft(exponent).stripTrailingZeros();
            String m = mantissa.toPlainString();
            return m + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
        }
        String plain = r.stripTrailingZeros().toPlainString();
        return plain;
    }
}
