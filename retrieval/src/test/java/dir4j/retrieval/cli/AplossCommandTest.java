package dir4j.retrieval.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
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
}
