package dir4j.retrieval.cli;

import static dir4j.retrieval.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.MemoryScope;
import dir4j.engine.Tensor;
import dir4j.engine.autograd.Autograd;
import dir4j.engine.io.Npy;
import dir4j.nn.io.Safetensors;
import dir4j.retrieval.cli.CliRun.Run;
import dir4j.retrieval.net.RetrievalNet;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `dir4j describe`: the network on a preprocessed tensor, as the library runs it. */
class DescribeCommandTest {
    @TempDir
    Path dir;

    @Test
    void descriptorsEqualTheNetworksForwardPassWhateverTheBatchSize() throws IOException {
        RetrievalNet.Options o = new RetrievalNet.Options("resnet18", 8, "gem", 3, false, false, 4);
        Path ckpt = dir.resolve("net.safetensors");
        Path input = dir.resolve("x.npy");
        float[] want;
        try (RetrievalNet net = new RetrievalNet(o, new Random(2)); MemoryScope scope = MemoryScope.open();
             Autograd.NoGrad ng = Autograd.noGrad()) {
            Safetensors.write(ckpt, net.stateDict(), Map.of("model_options", "{\"pooling\": \"gem\"}"));
            Tensor x = Tensor.randn(new Random(7), 5, 3, 40, 28);
            Npy.write(input, x);
            net.eval();
            want = net.forward(x).toFloatArray();
        }
        for (String batch : new String[] {"1", "2", "8"}) {
            Path out = dir.resolve("d" + batch + ".npy");
            Run r = run("describe", "--checkpoint", ckpt.toString(), "--input", input.toString(), "--out",
                    out.toString(), "--batch-size", batch);
            assertEquals(0, r.rc(), r.toString());
            assertTrue(r.out().startsWith("wrote " + out + " (5x8 float32) from " + input + " ([5, 3, 40, 28])"),
                    r.out());
            try (Tensor got = Npy.read(out)) {
                assertArrayEquals(new int[] {5, 8}, got.shape());
                assertArrayEquals(want, got.toFloatArray(), 1e-5f, "batch " + batch);
            }
        }
    }

    @Test
    void badCommandLinesExitWithTwoAndBadInputsWithOne() throws IOException {
        Path input = dir.resolve("x.npy");
        Path flat = dir.resolve("flat.npy");
        try (MemoryScope scope = MemoryScope.open()) {
            Npy.write(input, Tensor.randn(new Random(1), 1, 3, 16, 16));
            Npy.write(flat, Tensor.randn(new Random(1), 4, 16));
        }
        String[] net = {"--arch", "resnet18", "--random-init", "--base-width", "4", "--out-dim", "8"};
        String out = dir.resolve("d.npy").toString();
        assertEquals(2, run("describe", "--input", input.toString(), "--out", out).rc(), "a network is needed");
        assertEquals(2, run(EvalCommandTest.concat(new String[] {"describe", "--input", input.toString(), "--out",
            dir.resolve("d.txt").toString()}, net)).rc());
        assertEquals(2, run(EvalCommandTest.concat(new String[] {"describe", "--input", input.toString(), "--out", out,
            "--batch-size", "0"}, net)).rc());
        assertEquals(2, run(EvalCommandTest.concat(new String[] {"describe", "--input", input.toString(), "--out", out,
            "--checkpoint", "x.pt"}, net)).rc(), "two networks");
        Run overInput = run(EvalCommandTest.concat(new String[] {"describe", "--input", input.toString(), "--out",
            input.toString()}, net));
        assertEquals(2, overInput.rc(), overInput.toString());
        assertTrue(overInput.err().startsWith("dir4j describe: --out " + input + " is --input " + input
                + ": writing it would replace an input"), overInput.err());
        try (Tensor still = Npy.read(input)) {
            assertArrayEquals(new int[] {1, 3, 16, 16}, still.shape());
        }
        Run wrongShape = run(EvalCommandTest.concat(new String[] {"describe", "--input", flat.toString(), "--out", out},
                net));
        assertEquals(1, wrongShape.rc());
        assertTrue(wrongShape.err().contains("expected an N x 3 x H x W float tensor, found [4, 16]"), wrongShape.err());
        Run noCheckpoint = run("describe", "--checkpoint", dir.resolve("none.pt").toString(), "--input",
                input.toString(), "--out", out);
        assertEquals(1, noCheckpoint.rc());
        assertTrue(noCheckpoint.err().contains("none.pt"), noCheckpoint.err());
        assertTrue(Files.notExists(Path.of(out)));
        CliRun.assertCudaIsRefused(EvalCommandTest.concat(new String[] {"describe", "--input", input.toString(), "--out",
            out}, net));
        CliRun.assertHelpDocumentsEveryOption("describe");
    }
}
