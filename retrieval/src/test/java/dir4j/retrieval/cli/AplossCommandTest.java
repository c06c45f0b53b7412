package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * `dir4j aploss` end to end on the descriptor fixture: its printed loss and excluded count and
 * its .npy outputs equal the PyTorch reference (ap_descriptors_exclude_self).
 */
class AplossCommandTest {
    @TempDir
    Path dir;

    private Path copy(String stem) throws Exception {
        Path p = dir.resolve(stem + ".npy");
        try (InputStream in = getClass().getResourceAsStream("/fixtures/aploss/ap_descriptors_exclude_self/" + stem
                + ".npy")) {
            Files.copy(in, p);
        }
        return p;
    }

    @Test
    void writesReferenceLossApAndGradient() throws Exception {
        Path d = copy("descriptors");
        Path c = copy("classes");
        Path out = dir.resolve("out");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream saved = System.out;
        int rc;
        try {
            System.setOut(new PrintStream(buf, true));
            rc = new CommandLine(new Main()).execute("aploss", "--descriptors", d.toString(), "--labels", c.toString(),
                    "--nq", "20", "--min", "-1", "--max", "1", "--out", out.toString(), "--show", "-1");
        } finally {
            System.setOut(saved);
        }
        String text = buf.toString();
        assertEquals(0, rc, text);
        double expectedLoss;
        try (InputStream in = getClass().getResourceAsStream(
                "/fixtures/aploss/ap_descriptors_exclude_self/loss.npy")) {
            try (Tensor loss = Npy.parse(in.readAllBytes())) {
                expectedLoss = loss.item();
            }
        }
        assertTrue(text.contains(String.format("%.6f", expectedLoss)), text);
        assertTrue(text.contains("excluded for having no positive: 1"), text);
        try (InputStream in = getClass().getResourceAsStream("/fixtures/aploss/ap_descriptors_exclude_self/grad.npy");
             Tensor want = Npy.parse(in.readAllBytes()); Tensor got = Npy.read(out.resolve("grad.npy"))) {
            dir4j.retrieval.loss.APLossFixtureTest.assertClose("grad.npy", want.toDoubleArray(), got.toDoubleArray(),
                    1e-9, 1e-11);
        }
        try (Tensor h = Npy.read(out.resolve("histograms.npy"))) {
            assertEquals(java.util.List.of(12, 2, 20), java.util.Arrays.stream(h.shape()).boxed().toList());
            // every score's bin weights sum to 1: n_k sums to the 11 other images per query
            double[] v = h.toDoubleArray();
            for (int q = 0; q < 12; q++) {
                double sum = 0;
                for (int k = 0; k < 20; k++) {
                    sum += v[q * 40 + k];
                }
                assertEquals(11.0, sum, 1e-9);
            }
        }
        try (Tensor exact = Npy.read(out.resolve("exact_ap.npy")); Tensor ap = Npy.read(out.resolve("ap.npy"))) {
            double[] e = exact.toDoubleArray();
            double[] q = ap.toDoubleArray();
            assertTrue(Double.isNaN(e[11]), "class with one image has no exact AP");
            // the exact AP beside the quantised one: close (20 bins), and the printed mean gap is theirs
            double gap = 0;
            for (int i = 0; i < 11; i++) {
                assertTrue(e[i] > 0 && e[i] <= 1 && Math.abs(e[i] - q[i]) < 0.1, "query " + i + ": exact " + e[i]
                        + ", quantised " + q[i]);
                gap += Math.abs(e[i] - q[i]);
                // and its table row: query, class, quantised, exact, gap
                assertTrue(text.contains(String.format("%12.6f %12.6f %10.6f", q[i], e[i], e[i] - q[i])),
                        "row of query " + i + " in\n" + text);
            }
            assertTrue(text.contains(String.format("mean |exact AP - quantised AP| over included queries: %.6f",
                    gap / 11)), text);
        }
        assertFalse(text.contains("more (use --show -1)"), "--show -1 prints every query");
    }

    /**
     * The .npy outputs have the shapes and dtypes --help documents (the descriptors' dtype, float64
     * for the exact AP), and the printed loss is 1 − the mean of ap.npy over the included queries.
     */
    @Test
    void outputsHaveTheDocumentedShapesAndDtypes() throws Exception {
        CliRun.Run help = CliRun.run("aploss", "--help");
        String text = help.out().replaceAll("\\s+", " ");
        for (String documented : new String[] {"histograms.npy [N,2,nq]", "ap.npy [N]", "grad.npy [N,D]",
            "in the descriptors' dtype", "exact_ap.npy [N] float64", "NaN for a query without a positive"}) {
            assertTrue(text.contains(documented), "'" + documented + "' in\n" + help.out());
        }
        Path d = dir.resolve("d32.npy");
        try (Tensor t = Tensor.of(new float[] {1, 0, 0, 0.6f, 0.8f, 0, 0, 0.8f, 0.6f, 0, 0, 1, 0, 1, 0}, 5, 3)) {
            Npy.write(d, t);
        }
        Path labels = dir.resolve("labels.txt");
        Files.writeString(labels, "a\na\nb\nb\nc\n"); // c: no positive
        Path out = dir.resolve("out32");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(), "--out",
                out.toString(), "--nq", "10");
        assertEquals(0, r.rc(), r.toString());
        try (Tensor h = Npy.read(out.resolve("histograms.npy")); Tensor ap = Npy.read(out.resolve("ap.npy"));
             Tensor exact = Npy.read(out.resolve("exact_ap.npy")); Tensor g = Npy.read(out.resolve("grad.npy"))) {
            assertEquals("[5, 2, 10] FLOAT32", java.util.Arrays.toString(h.shape()) + " " + h.dtype().name());
            assertEquals("[5] FLOAT32", java.util.Arrays.toString(ap.shape()) + " " + ap.dtype().name());
            assertEquals("[5, 3] FLOAT32", java.util.Arrays.toString(g.shape()) + " " + g.dtype().name());
            assertEquals("[5] FLOAT64", java.util.Arrays.toString(exact.shape()) + " " + exact.dtype().name());
            double[] a = ap.toDoubleArray();
            assertTrue(Double.isNaN(a[4]), "query 4 has no positive");
            double mean = (a[0] + a[1] + a[2] + a[3]) / 4;
            assertTrue(r.out().contains(String.format("): %.6f%n", 1 - mean)), r.out());
        }
    }

    /** Outputs written over the descriptors or labels (an earlier run's grad.npy given back as input) are refused. */
    @Test
    void outputsCannotReplaceTheInputs() throws Exception {
        Path out = Files.createDirectories(dir.resolve("ap"));
        Path d = out.resolve("grad.npy");
        try (Tensor t = Tensor.of(new float[] {1, 0, 0, 1, 0, 1, 0, 0, 1}, 3, 3)) {
            Npy.write(d, t);
        }
        byte[] before = Files.readAllBytes(d);
        Path labels = dir.resolve("l.txt");
        Files.writeString(labels, "0\n0\n1\n");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(), "--out",
                out.toString());
        assertEquals(2, r.rc(), r.toString());
        assertTrue(r.err().contains("--out's grad.npy " + d + " is --descriptors " + d), r.err());
        org.junit.jupiter.api.Assertions.assertArrayEquals(before, Files.readAllBytes(d));
    }

    @Test
    void quietLeavesOutTheNormWarningButNotTheResults() throws Exception {
        Path d = dir.resolve("twice.npy");
        try (Tensor t = Tensor.of(new float[] {2, 0, 0, 2, 0, 2, 0, 0, 2}, 3, 3)) {
            Npy.write(d, t); // rows of norm 2
        }
        Path labels = dir.resolve("labels.txt");
        Files.writeString(labels, "0\n0\n1\n");
        CliRun.Run loud = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString());
        assertEquals(0, loud.rc(), loud.toString());
        assertEquals("warning: descriptor 0 has norm 2.0000; the AP loss expects unit rows (pass --normalize)\n",
                loud.err());
        CliRun.Run quiet = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--quiet");
        assertEquals(0, quiet.rc(), quiet.toString());
        assertEquals("", quiet.err());
        assertEquals(loud.out(), quiet.out());
        assertTrue(quiet.out().contains("queries: 3, excluded for having no positive: 1"), quiet.out());
        CliRun.Run one = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--quiet", "--show", "1");
        assertEquals(0, one.rc(), one.toString());
        assertTrue(one.out().contains("... 2 more (use --show -1)"), one.out());
    }

    /** Three rows of norm 1 or 2 (two classes by the labels below). */
    private Path threeRows() throws Exception {
        Path d = dir.resolve("three.npy");
        try (Tensor t = Tensor.of(new float[] {1, 0, 0, 0.6f, 0.8f, 0, 0, 0, 2}, 3, 3)) {
            Npy.write(d, t);
        }
        return d;
    }

    /** A little-endian int64 .npy of the given shape, as numpy.save writes one. */
    private Path int64Npy(String name, long[] values, int... shape) throws Exception {
        StringBuilder dims = new StringBuilder();
        for (int s : shape) {
            dims.append(s).append(", ");
        }
        String shapeText = shape.length == 1 ? shape[0] + "," : dims.substring(0, dims.length() - 2);
        StringBuilder header = new StringBuilder("{'descr': '<i8', 'fortran_order': False, 'shape': (" + shapeText
                + "), }");
        while ((10 + header.length() + 1) % 64 != 0) {
            header.append(' ');
        }
        header.append('\n');
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + 8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0});
        b.putShort((short) header.length());
        b.put(header.toString().getBytes(StandardCharsets.ISO_8859_1));
        for (long v : values) {
            b.putLong(v);
        }
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    /** --normalize cannot give an all-zero row a direction: refused naming the row, not warned about. */
    @Test
    void normalizeRefusesAnAllZeroRowNamingIt() throws Exception {
        Path d = dir.resolve("zero.npy");
        try (Tensor t = Tensor.of(new float[] {2, 0, 0, 0, 0, 0, 0, 3, 0, 0, 2, 0}, 4, 3)) {
            Npy.write(d, t);
        }
        Path labels = dir.resolve("labels.txt");
        Files.writeString(labels, "a\na\nb\nb\n");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--normalize");
        assertEquals(1, r.rc(), r.toString());
        assertEquals("", r.out(), "no loss computed from a zero row");
        assertEquals("dir4j aploss: " + d + ": descriptor 1 (of 4, counting from 0) is all zeros: --normalize "
                + "cannot make it unit length (it has no direction); remove it, with its label, or fix the "
                + "descriptor that made it\n", r.err());
        // a row too short for l2Normalize's floor is refused the same way, with its norm
        Path tiny = dir.resolve("tiny.npy");
        try (Tensor t = Tensor.ofDoubles(new double[] {2, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 3e-13}, 4, 3)) {
            Npy.write(tiny, t);
        }
        CliRun.Run small = CliRun.run("aploss", "--descriptors", tiny.toString(), "--labels", labels.toString(),
                "--normalize");
        assertEquals(1, small.rc(), small.toString());
        assertEquals("dir4j aploss: " + tiny + ": descriptor 3 (of 4, counting from 0) has L2 norm 3.0E-13, below the "
                + "1.0E-12 that --normalize divides by at least: it would not come out unit length; remove it, with "
                + "its label, or fix the descriptor that made it\n", small.err());
        // rows that only need scaling are normalised without a warning; without --normalize, the warning stays
        Path ok = dir.resolve("ok.npy");
        try (Tensor t = Tensor.of(new float[] {2, 0, 0, 0, 3, 0, 0, 3, 0, 0, 0, 2}, 4, 3)) {
            Npy.write(ok, t);
        }
        CliRun.Run normalised = CliRun.run("aploss", "--descriptors", ok.toString(), "--labels", labels.toString(),
                "--normalize");
        assertEquals(0, normalised.rc(), normalised.toString());
        assertEquals("", normalised.err());
        CliRun.Run raw = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString());
        assertEquals(0, raw.rc(), raw.toString());
        assertEquals("warning: descriptor 0 has norm 2.0000; the AP loss expects unit rows (pass --normalize)\n",
                raw.err());
    }

    /** --show takes -1 (all), 0 or a count; anything below -1 is a usage error. */
    @Test
    void showBelowMinusOneIsAUsageError() throws Exception {
        Path d = threeRows();
        Path labels = dir.resolve("labels.txt");
        Files.writeString(labels, "0\n0\n1\n");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--show", "-5");
        assertEquals(2, r.rc(), r.toString());
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("dir4j aploss: --show must be -1 (every query) or a number of queries (0 or "
                + "more), got -5\n"), r.err());
        CliRun.Run none = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--show", "0", "--quiet");
        assertEquals(0, none.rc(), none.toString());
        assertFalse(none.out().contains("   query    class"), "no table: " + none.out());
        assertTrue(none.out().contains("queries: 3, excluded for having no positive: 1"), none.out());
        CliRun.Run all = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--show", "-1", "--quiet");
        assertEquals(0, all.rc(), all.toString());
        assertTrue(all.out().contains("\n       2        1 "), all.out());
    }

    /**
     * int64 class ids of any size are classes: ids beyond int32 (which used to be refused) and ids
     * that differ only above bit 32 stay distinct; the loss equals the same classes given as text,
     * and the table shows the ids as stored.
     */
    @Test
    void int64ClassIdsOfAnySizeAreClasses() throws Exception {
        Path d = threeRows();
        long big = 5_000_000_000L;
        Path ids = int64Npy("ids.npy", new long[] {big, big, big + (1L << 32)}, 3);
        Path text = dir.resolve("labels.txt");
        Files.writeString(text, "x\nx\ny\n");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", ids.toString(), "--quiet",
                "--show", "-1");
        assertEquals(0, r.rc(), r.toString());
        CliRun.Run t = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", text.toString(), "--quiet",
                "--show", "-1");
        assertEquals(0, t.rc(), t.toString());
        String[] got = r.out().split("\n");
        String[] want = t.out().split("\n");
        assertEquals(want[0], got[0], "same loss");
        assertEquals("queries: 3, excluded for having no positive: 1", got[1]);
        assertEquals(want[1], got[1]);
        assertTrue(r.out().contains("       0 5000000000 "), r.out());
        assertTrue(r.out().contains("       2 9294967296 "), r.out());
        // negative ids too
        Path negative = int64Npy("neg.npy", new long[] {-1, -1, Long.MIN_VALUE}, 3);
        CliRun.Run n = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", negative.toString(),
                "--quiet");
        assertEquals(0, n.rc(), n.toString());
        assertEquals(want[0], n.out().split("\n")[0]);
    }

    /** A label array of the wrong shape is reported with its stored type (int64, not int32). */
    @Test
    void wrongShapedInt64LabelsAreReportedAsInt64() throws Exception {
        Path d = threeRows();
        Path ids = int64Npy("ids2d.npy", new long[] {1, 1, 2, 2, 3, 3}, 3, 2);
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", ids.toString());
        assertEquals(1, r.rc(), r.toString());
        assertEquals("dir4j aploss: " + ids + ": labels must be a vector of integers, got shape [3, 2] int64\n",
                r.err());
        Path floats = dir.resolve("floats.npy");
        try (Tensor t = Tensor.of(new float[] {0, 0, 1}, 3)) {
            Npy.write(floats, t);
        }
        CliRun.Run f = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", floats.toString());
        assertEquals(1, f.rc(), f.toString());
        assertEquals("dir4j aploss: " + floats + ": labels must be a vector of integers, got shape [3] float32\n",
                f.err());
        Path broken = dir.resolve("broken.npy");
        Files.write(broken, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        CliRun.Run b = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", broken.toString());
        assertEquals(1, b.rc(), b.toString());
        assertEquals("dir4j aploss: " + broken + ": not a .npy file (bad magic)\n", b.err());
    }

    /**
     * An --out that cannot be made or written is reported before any work (stdout stays empty),
     * naming the option and the reason; a folder made for a run that then fails is removed again.
     */
    @Test
    void anUnwritableOutFolderIsReportedBeforeTheWork() throws Exception {
        Path d = threeRows();
        Path labels = dir.resolve("labels.txt");
        Files.writeString(labels, "0\n0\n1\n");
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        Path under = file.resolve("out");
        CliRun.Run r = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--out", under.toString());
        assertEquals(1, r.rc(), r.toString());
        assertEquals("", r.out(), "nothing computed");
        assertEquals("dir4j aploss: " + file + ": already exists and is not a folder, so --out " + under + " cannot "
                + "be made under it; name a folder for the .npy outputs\n", r.err());
        if (Files.isDirectory(Path.of("/proc/self"))) {
            CliRun.Run proc = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                    "--out", "/proc/nope");
            assertEquals(1, proc.rc(), proc.toString());
            assertEquals("", proc.out(), "nothing computed");
            assertEquals("dir4j aploss: /proc/nope: the --out folder for the .npy outputs cannot be created or "
                    + "written (the file system refuses to create it); name a folder you can write to\n", proc.err());
        }
        // made for a run that then fails (a label short): removed again, with the parents it needed
        Path fresh = dir.resolve("new").resolve("out");
        Path two = dir.resolve("two.txt");
        Files.writeString(two, "0\n0\n");
        CliRun.Run failed = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", two.toString(),
                "--out", fresh.toString());
        assertEquals(1, failed.rc(), failed.toString());
        assertTrue(failed.err().contains("2 labels for 3 descriptors"), failed.err());
        assertFalse(Files.exists(dir.resolve("new")), "no empty folders left behind");
        // and a good run writes there
        CliRun.Run good = CliRun.run("aploss", "--descriptors", d.toString(), "--labels", labels.toString(),
                "--out", fresh.toString(), "--quiet");
        assertEquals(0, good.rc(), good.toString());
        try (var files = Files.list(fresh)) {
            assertEquals(java.util.List.of("ap.npy", "exact_ap.npy", "grad.npy", "histograms.npy"),
                    files.map(p -> p.getFileName().toString()).sorted().toList(), "no probe file left");
        }
    }
}
