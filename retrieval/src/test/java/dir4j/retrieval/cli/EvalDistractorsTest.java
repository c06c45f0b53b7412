package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.image.ImageFixtures;
import dir4j.retrieval.search.TestFixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code dir4j eval --distractors}: a benchmark extended by distractors (+R1M, Oxford105k) against
 * compute_map on the concatenated database (tests/fixtures/make_retrieval_fixtures.py,
 * fixtures/distractors): without whitening, whitened as the database, with αQE over images and
 * distractors; the revisited and the old protocol; block sizes; errors.
 */
class EvalDistractorsTest {
    static final Path ROOT = ImageFixtures.path("distractors");

    @TempDir
    Path dir;

    /** The eval command line of a fixture case (cases.properties: dataset, whitenp, aqe). */
    static List<String> commandLine(String name, Path json, String... more) {
        String[] c = TestFixtures.properties("distractors/cases.properties").get(name).split(",", 3);
        List<String> a = new ArrayList<>(List.of("eval", "--dataset", c[0], "--data-root", ROOT.toString(),
                "--descriptors-dir", ROOT.resolve("descs").toString(), "--distractors",
                ROOT.resolve("distractors.npy").toString(), "--json", json.toString(), "--quiet"));
        if (!c[1].equals("none")) {
            a.addAll(List.of("--whiten", "learn-on-db", "--whitenp", c[1]));
        }
        if (!c[2].equals("none")) {
            a.add("--aqe");
            a.addAll(Arrays.asList(c[2].split(",")));
        }
        a.addAll(Arrays.asList(more));
        return a;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> results(Path json, String key) throws IOException {
        return (Map<String, Object>) ((Map<String, Object>) dir4j.nn.io.Json.parse(Files.readString(json))).get(key);
    }

    static double number(Object o) {
        return assertInstanceOf(Number.class, o).doubleValue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"rparis6k_plain", "rparis6k_whiten", "rparis6k_whiten_aqe"})
    void revisitedMapAndPrecisionAreThoseOfTheConcatenatedDatabase(String name) throws IOException {
        double[] map = TestFixtures.doubles("distractors/" + name + "_map");
        double[] mpr = TestFixtures.doubles("distractors/" + name + "_mpr");
        String[] modes = {"easy", "medium", "hard"};
        Map<String, Object> first = null;
        for (String block : new String[] {"1", "7", "300", "8192"}) {
            Path json = dir.resolve(name + block + ".json");
            Run r = run(commandLine(name, json, "--distractor-block", block).toArray(String[]::new));
            assertEquals(0, r.rc(), r.toString());
            assertTrue(r.out().startsWith(">> rparis6k+distractors: mAP E: "), r.out());
            Map<String, Object> res = results(json, "rparis6k+distractors");
            for (int m = 0; m < 3; m++) {
                assertEquals(map[m], number(res.get("mAP-" + modes[m])), 1e-12, name + " " + modes[m]);
                @SuppressWarnings("unchecked")
                List<Object> prec = (List<Object>) ((Map<String, Object>) res.get("mP@k")).get(modes[m]);
                for (int k = 0; k < 3; k++) {
                    assertEquals(mpr[m * 3 + k], number(prec.get(k)), 1e-12, name + " " + modes[m] + " k" + k);
                }
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> settings = (Map<String, Object>) res.get("settings");
            assertEquals(300L, settings.get("distractor-count"));
            if (first == null) {
                first = res;
            } else {
                assertEquals(first, res, "block " + block);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"paris6k_plain", "paris6k_whiten", "paris6k_whiten_aqe"})
    void oldProtocolMapIsThatOfTheConcatenatedDatabase(String name) throws IOException {
        Path json = dir.resolve("old.json");
        Run r = run(commandLine(name, json, "--distractor-block", "64").toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.out().startsWith(">> paris6k+distractors: mAP "), r.out());
        assertEquals(TestFixtures.doubles("distractors/" + name + "_map")[0],
                number(results(json, "paris6k+distractors").get("mAP")), 1e-12);
    }

    /**
     * The distractors lower the mAP (the fixture's are not easy); a file without rows is refused
     * (its table would be the plain one under the +distractors label).
     */
    @Test
    void distractorsLowerTheMapAndAnEmptyFileIsRefused() throws IOException {
        Path json = dir.resolve("r.json");
        List<String> without = new ArrayList<>(commandLine("rparis6k_whiten_aqe", json));
        int at = without.indexOf("--distractors");
        without.subList(at, at + 2).clear();
        Run plain = run(without.toArray(String[]::new));
        assertEquals(0, plain.rc(), plain.toString());
        assertTrue(number(results(json, "rparis6k").get("mAP-medium"))
                > TestFixtures.doubles("distractors/rparis6k_whiten_aqe_map")[1],
                "the fixture's distractors take places from the positives");
        Path empty = dir.resolve("none.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(empty, Tensor.zeros(0, 8));
        }
        List<String> withEmpty = new ArrayList<>(commandLine("rparis6k_whiten_aqe", json));
        withEmpty.set(withEmpty.indexOf("--distractors") + 1, empty.toString());
        Run none = run(withEmpty.toArray(String[]::new));
        assertEquals(1, none.rc(), none.toString());
        assertTrue(none.err().contains(empty + " holds no distractor descriptors (0 rows)"), none.err());
    }

    @Test
    void badDistractorsAndCombinationsAreClearErrors() throws IOException {
        Path json = dir.resolve("e.json");
        // αDBA would need every distractor's neighbours among the distractors
        Run dba = run(commandLine("rparis6k_plain", json, "--adba", "2", "3").toArray(String[]::new));
        assertEquals(2, dba.rc(), dba.toString());
        assertTrue(dba.err().contains("--adba cannot be used with --distractors"), dba.err());
        Run block = run(commandLine("rparis6k_plain", json, "--distractor-block", "0").toArray(String[]::new));
        assertEquals(2, block.rc(), block.toString());
        assertTrue(block.err().contains("--distractor-block must be at least 1"), block.err());
        // the results written over the distractors (a copy of them here) would lose them
        Path copy = Files.copy(ROOT.resolve("distractors.npy"), dir.resolve("d.npy"));
        List<String> over = new ArrayList<>(commandLine("rparis6k_plain", copy));
        over.set(over.indexOf("--distractors") + 1, copy.toString());
        Run overDistractors = run(over.toArray(String[]::new));
        assertEquals(2, overDistractors.rc(), overDistractors.toString());
        assertTrue(overDistractors.err().startsWith("dir4j eval: --json " + copy + " is --distractors " + copy),
                overDistractors.err());
        assertArrayEquals(Files.readAllBytes(ROOT.resolve("distractors.npy")), Files.readAllBytes(copy));

        Path other = dir.resolve("six.npy");
        Path nan = dir.resolve("nan.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(other, Tensor.zeros(4, 6));
            float[] v = new float[20 * 8];
            Arrays.fill(v, 0.25f);
            v[13 * 8 + 5] = Float.NaN;
            Npy.write(nan, Tensor.of(v, 20, 8));
        }
        for (Object[] c : new Object[][] {
            {other, "holds 6-d descriptors, the benchmark's are 8-d"},
            {nan, "distractor 13 (of 20, counting from 0) holds NaN"},
            {dir.resolve("absent.npy"), "absent.npy"}}) {
            List<String> a = new ArrayList<>(commandLine("rparis6k_plain", json, "--distractor-block", "6"));
            a.set(a.indexOf("--distractors") + 1, c[0].toString());
            Run r = run(a.toArray(String[]::new));
            assertEquals(1, r.rc(), r.toString());
            assertTrue(r.err().contains((String) c[1]), r.err());
        }
        assertNull(Files.exists(json) ? results(json, "rparis6k+distractors") : null, "no results from a failed run");
    }

    /** Options given twice, a block size without distractors and a directory as --json are bad command lines. */
    @Test
    void repeatedAndMisplacedOptionsAreRefused() throws IOException {
        Path json = dir.resolve("r.json");
        Object[][] cases = {
            {commandLine("rparis6k_plain", json, "--aqe", "2", "1", "--aqe", "3", "1"), "--aqe was given 2 times"},
            {commandLine("rparis6k_plain", json, "--whiten", "none", "--whiten", "learn-on-db"),
                "--whiten was given 2 times"},
            {commandLine("rparis6k_plain", dir), "--json " + dir + " is a directory"},
        };
        for (Object[] c : cases) {
            @SuppressWarnings("unchecked")
            Run r = run(((List<String>) c[0]).toArray(String[]::new));
            assertEquals(2, r.rc(), r.toString());
            assertTrue(r.err().contains((String) c[1]), r.err());
        }
        List<String> noDistractors = new ArrayList<>(commandLine("rparis6k_plain", json, "--distractor-block", "5"));
        int at = noDistractors.indexOf("--distractors");
        noDistractors.subList(at, at + 2).clear();
        Run block = run(noDistractors.toArray(String[]::new));
        assertEquals(2, block.rc(), block.toString());
        assertTrue(block.err().contains("--distractor-block goes with --distractors"), block.err());
    }

    /** Distractors not of unit length, beside a unit-length database: noted (another network's?), still evaluated. */
    @Test
    void distractorsOfAnotherLengthThanTheDatabasesAreNoted() throws IOException {
        Path scaled = dir.resolve("scaled.npy");
        try (MemoryScope scope = MemoryScope.open(); Tensor x = Npy.read(ROOT.resolve("distractors.npy"))) {
            Npy.write(scaled, x.mul(3f));
        }
        List<String> a = new ArrayList<>(commandLine("rparis6k_plain", dir.resolve("s.json")));
        a.set(a.indexOf("--distractors") + 1, scaled.toString());
        a.remove("--quiet");
        Run r = run(a.toArray(String[]::new));
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("distractor 0 has length 3.000") && r.err().contains("same network"), r.err());
    }

    /** A database with repeated descriptors: learn-on-db keeps the components they give variance to, no NaN. */
    @Test
    void aDatabaseWithRepeatsWhitensWithoutNan() throws IOException {
        Path descs = Files.createDirectories(dir.resolve("descs"));
        try (MemoryScope scope = MemoryScope.open(); Tensor db = Npy.read(ROOT.resolve("descs/rparis6k.dbdescs.npy"))) {
            float[] v = db.toFloatArray();
            for (int r = 3; r < 80; r++) {
                System.arraycopy(v, (r % 3) * 8, v, r * 8, 8); // three distinct rows
            }
            Npy.write(descs.resolve("rparis6k.dbdescs.npy"), Tensor.of(v, 80, 8));
            Files.copy(ROOT.resolve("descs/rparis6k.qdescs.npy"), descs.resolve("rparis6k.qdescs.npy"));
        }
        Run r = run("eval", "--dataset", "rparis6k", "--data-root", ROOT.toString(), "--descriptors-dir",
                descs.toString(), "--whiten", "learn-on-db");
        assertEquals(0, r.rc(), r.toString());
        assertTrue(r.err().contains("(3 distinct) of dimension 8: keeping 2 components"), r.err());
        assertTrue(r.out().startsWith(">> rparis6k: mAP E: ") && !r.out().contains("nan"), r.out());
    }

    /** An .ids.txt beside reused descriptors that is not UTF-8 text: named, with what it should hold. */
    @Test
    void idsThatAreNotTextAreNamed() throws IOException {
        Path descs = Files.createDirectories(dir.resolve("d"));
        Files.copy(ROOT.resolve("descs/rparis6k.dbdescs.npy"), descs.resolve("rparis6k.dbdescs.npy"));
        Files.copy(ROOT.resolve("descs/rparis6k.qdescs.npy"), descs.resolve("rparis6k.qdescs.npy"));
        Path ids = Files.write(descs.resolve("rparis6k.dbdescs.ids.txt"), new byte[] {(byte) 0xff, (byte) 0xfe, 'a'});
        Run r = run("eval", "--dataset", "rparis6k", "--data-root", ROOT.toString(), "--descriptors-dir",
                descs.toString(), "--quiet");
        assertEquals(1, r.rc(), r.toString());
        assertTrue(r.err().contains(ids + ": not UTF-8 text"), r.err());
    }
}
