package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import dir4j.retrieval.cli.CliRun.Run;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * A user's bad inputs across the commands: each is one line on stderr naming the file and what was
 * expected, with status 1 (bad input) or 2 (bad command line), never a stack trace or a success.
 */
class BadInputTest {
    @TempDir
    Path dir;
    Path good;
    Path nan;
    Path labels;
    Path fileInTheWay;

    @BeforeEach
    void files() throws IOException {
        good = dir.resolve("good.npy");
        nan = dir.resolve("nan.npy");
        labels = dir.resolve("labels.npy");
        float[] rows = SearchCommandTest.unitRows(new Random(3), 8, 4);
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(good, Tensor.of(rows, 8, 4));
            float[] bad = rows.clone();
            bad[3 * 4 + 2] = Float.NaN; // descriptor 3
            Npy.write(nan, Tensor.of(bad, 8, 4));
            Npy.write(labels, Tensor.ofInts(new int[] {0, 0, 1, 1, 2, 2, 3, 3}, 8));
        }
        fileInTheWay = Files.writeString(dir.resolve("notAFolder"), "a file");
    }

    /** One line on stderr, no Java exception or stack frame. */
    static void assertOneLineError(int rc, Run r, String... mustContain) {
        assertEquals(rc, r.rc(), r.toString());
        String first = r.err().lines().findFirst().orElse("");
        for (String s : mustContain) {
            assertTrue(first.contains(s), "'" + s + "' in the first line\n" + r);
        }
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), "no stack trace\n" + r);
    }

    @Test
    void nanInDescriptorsIsRefusedNamingTheFileAndTheRow() throws IOException {
        String[] what = {nan.toString(), "descriptor 3 ", "NaN"};
        assertOneLineError(1, run("index", "--descriptors", nan.toString(), "--out", dir.resolve("i").toString()),
                what);
        assertTrue(Files.notExists(dir.resolve("i")));
        assertEquals(0, run("index", "--descriptors", good.toString(), "--out", dir.resolve("idx").toString(),
                "--quiet").rc());
        assertOneLineError(1, run("search", "--index", dir.resolve("idx").toString(), "--descriptors",
                nan.toString()), what);
        assertOneLineError(1, run("whiten", "--learn", nan.toString(), "--out", dir.resolve("w.safetensors")
                .toString()), what);
        assertOneLineError(1, run("aploss", "--descriptors", nan.toString(), "--labels", labels.toString()), what);
        try (MemoryScope scope = MemoryScope.open()) {
            Tensor x = Tensor.randn(new Random(1), 2, 3, 16, 16);
            float[] v = x.toFloatArray();
            v[3 * 16 * 16 + 5] = Float.POSITIVE_INFINITY; // image 1
            Npy.write(dir.resolve("x.npy"), Tensor.of(v, 2, 3, 16, 16));
        }
        Run describe = run("describe", "--input", dir.resolve("x.npy").toString(), "--out",
                dir.resolve("d.npy").toString(), "--arch", "resnet18", "--random-init", "--base-width", "4",
                "--out-dim", "8");
        assertOneLineError(1, describe, "x.npy", "image 1 ", "infinity");
        assertTrue(Files.notExists(dir.resolve("d.npy")));
    }

    @Test
    void aplossBadInputsAreOneLineErrors() throws IOException {
        Path ints = dir.resolve("ints.npy");
        Path cube = dir.resolve("cube.npy");
        Path floatLabels = dir.resolve("flabels.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(ints, Tensor.ofInts(new int[32], 8, 4));
            Npy.write(cube, Tensor.of(new float[32], 8, 2, 2));
            Npy.write(floatLabels, Tensor.of(new float[] {0, 0, 1, 1, 2, 2, 3, 3.5f}, 8));
        }
        assertOneLineError(1, run("aploss", "--descriptors", ints.toString(), "--labels", labels.toString()),
                "ints.npy", "expected N x D float descriptors, found [8, 4] int32");
        assertOneLineError(1, run("aploss", "--descriptors", cube.toString(), "--labels", labels.toString()),
                "cube.npy", "expected N x D float descriptors, found [8, 2, 2] float32");
        assertOneLineError(1, run("aploss", "--descriptors", good.toString(), "--labels", floatLabels.toString()),
                "flabels.npy", "vector of integers");
        assertOneLineError(1, run("aploss", "--descriptors", dir.resolve("none.npy").toString(), "--labels",
                labels.toString()), "none.npy", "no such file");
        assertOneLineError(2, run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(),
                "--tie-aware", "half"), "--tie-aware");
        assertOneLineError(2, run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(),
                "--nq", "1"), "nq must be in [2, 100], got 1");
        assertOneLineError(2, run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(),
                "--min", "1", "--max", "0"), "max (0.0) must exceed min (1.0)");
        // an infinite bin range (the bin width would be infinite: every weight 0 or NaN, the loss 1)
        assertOneLineError(2, run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(),
                "--max", "Infinity"), "min (0.0) and max (Infinity) must be finite");
        // no descriptors at all: said so, not blamed on the positives
        Path empty = dir.resolve("empty.npy");
        Path noLabels = dir.resolve("nolabels.txt");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(empty, Tensor.of(new float[0], 0, 4));
        }
        Files.writeString(noLabels, "");
        assertOneLineError(1, run("aploss", "--descriptors", empty.toString(), "--labels", noLabels.toString()),
                "descriptors [0, 4] hold no query (N = 0)");
        Run out = run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(), "--out",
                fileInTheWay.resolve("ap").toString());
        assertEquals(1, out.rc(), out.toString());
        assertTrue(out.err().startsWith("dir4j aploss: " + fileInTheWay), out.toString());
        CliRun.assertCudaIsRefused("aploss", "--descriptors", good.toString(), "--labels", labels.toString());
        CliRun.assertHelpDocumentsEveryOption("aploss");
        // the train command's names for the bin range work here too
        Run named = run("aploss", "--descriptors", good.toString(), "--labels", labels.toString(), "--bin-min", "-1",
                "--bin-max", "1", "--show", "0");
        assertEquals(0, named.rc(), named.toString());
        assertTrue(named.out().contains("range [-1.0, 1.0]"), named.out());
    }

    @Test
    void outputsBehindAFileSayTheFileIsNotAFolder() throws IOException {
        assertOneLineError(1, run("whiten", "--learn", good.toString(), "--out",
                fileInTheWay.resolve("w.safetensors").toString()), fileInTheWay.toString(),
                "already exists and is not a folder");
        assertEquals(0, run("whiten", "--learn", good.toString(), "--whitenv", "3", "--out",
                dir.resolve("w.safetensors").toString(), "--quiet").rc());
        assertOneLineError(1, run("convert", dir.resolve("w.safetensors").toString(),
                fileInTheWay.resolve("w.npz").toString()), "dir4j convert: " + fileInTheWay,
                "already exists and is not a folder");
        assertOneLineError(1, run("synth", "--data-root", fileInTheWay.resolve("data").toString(), "--quiet"),
                "dir4j synth: " + fileInTheWay);
        assertOneLineError(2, run("synth", "--data-root", dir.resolve("data").toString(), "--image-size", "8"),
                "sizes out of range");
        assertOneLineError(1, run("demo", "--data-root", fileInTheWay.toString(), "--out",
                dir.resolve("demo").toString(), "--quiet"), "dir4j demo: " + fileInTheWay);
    }

    /** A PyTorch zip checkpoint whose data.pkl is {@code pickle} (protocol 2 bytes from Python). */
    private Path torchZip(String name, int... pickle) throws IOException {
        byte[] b = new byte[pickle.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) pickle[i];
        }
        Path p = dir.resolve(name);
        try (var z = new java.util.zip.ZipOutputStream(Files.newOutputStream(p))) {
            z.putNextEntry(new java.util.zip.ZipEntry("archive/data.pkl"));
            z.write(b);
            z.putNextEntry(new java.util.zip.ZipEntry("archive/version"));
            z.write("3\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        }
        return p;
    }

    @Test
    void convertNamesTheCheckpointThatHoldsNoStateDictAndRefusesAnEmptyOne() throws IOException {
        Path list = torchZip("list.pt", 128, 2, 93, 113, 0, 40, 75, 1, 75, 2, 75, 3, 101, 46); // [1, 2, 3]
        assertOneLineError(1, run("convert", list.toString(), dir.resolve("a.safetensors").toString()),
                "dir4j convert: " + list + ": ", "no state dict");
        Path empty = torchZip("empty.pt", 128, 2, 125, 113, 0, 46); // {}
        assertOneLineError(1, run("convert", empty.toString(), dir.resolve("b.safetensors").toString()),
                "dir4j convert: " + empty + ": holds no tensors");
        assertTrue(Files.notExists(dir.resolve("a.safetensors")) && Files.notExists(dir.resolve("b.safetensors")));
    }

    @Test
    void fileSystemErrorsWithoutAReasonStillSayWhatWentWrong() {
        assertEquals("/x/y: permission denied", ToolCommand.message(new AccessDeniedException("/x/y")));
        assertEquals("/x/y: cannot be read or written (FileSystemException)",
                ToolCommand.message(new FileSystemException("/x/y")));
        assertEquals("/x/y: Not a directory", ToolCommand.message(new FileSystemException("/x/y", null,
                "Not a directory")));
        assertEquals("/x/y: permission denied", ToolCommand.message(new java.io.UncheckedIOException(
                new AccessDeniedException("/x/y"))));
    }

    /** Every command's value placeholders are names (FILE, N, DIR), not picocli's <fieldName>. */
    @Test
    void everyHelpNamesItsValuesAndDocumentsExitStatuses() {
        for (var e : new CommandLine(new Main()).getSubcommands().entrySet()) {
            if (e.getKey().equals("help")) {
                continue;
            }
            Run r = run(e.getKey(), "--help");
            assertEquals(0, r.rc(), r.toString());
            assertFalse(r.out().contains("=<"), e.getKey() + " --help has a <field> placeholder\n" + r.out());
            if (!e.getKey().equals("info")) {
                assertTrue(r.out().contains("Exit status:"), e.getKey() + "\n" + r.out());
            }
        }
    }
}
