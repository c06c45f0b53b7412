package dir4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PythonScriptRequirementsTest {
    /** The side-by-side scripts that need PyTorch, numpy, PIL or scikit-learn (bench/python_requires.py). */
    private static final List<String> SCRIPTS = List.of("checkpoint_load_side_by_side.py", "conv_vs_torch.py",
            "export_onnx.py", "resnet_paired.py", "torch_cpu_elementwise.py", "torch_cpu_image.py",
            "torch_cpu_method.py", "torch_cpu_resnet.py", "train_paired.py", "dirtorch_side_by_side.py",
            "dirtorch_eval_side_by_side.py", "dirtorch_loss_side_by_side.py");

    private static final List<String> MODULES = List.of("numpy", "torch", "torchvision", "PIL", "sklearn");

    /** bench/ whether the tests run in the module (Maven) or the repository root. */
    private static Path benchDir() {
        Path here = Path.of("").toAbsolutePath();
        return Files.isRegularFile(here.resolve("RESULTS.md")) ? here : here.resolve("bench");
    }

    private static String python() {
        for (String p : new String[] {"/usr/bin/python3", "/usr/local/bin/python3"}) {
            if (Files.isExecutable(Path.of(p))) {
                return p;
            }
        }
        return null;
    }

    /**
     * Run by a Python without PyTorch and friends (here: packages of those names that refuse to
     * import, put first on PYTHONPATH), each script stops at once with status 2 and one message
     * naming what it cannot import and which Python to use, not a traceback.
     */
    @Test
    void eachScriptNamesTheMissingModulesAndThePythonToUse(@TempDir Path blocked) throws Exception {
        String python = python();
        assumeTrue(python != null, "no python3 here");
        for (String m : MODULES) {
            Path pkg = Files.createDirectories(blocked.resolve(m));
            Files.writeString(pkg.resolve("__init__.py"), "raise ImportError('" + m + " withheld by the test')\n");
        }
        List<String> failures = new ArrayList<>();
        for (String script : SCRIPTS) {
            ProcessBuilder pb = new ProcessBuilder(python, benchDir().resolve(script).toString())
                    .directory(benchDir().getParent().toFile()).redirectErrorStream(true);
            pb.environment().put("PYTHONPATH", blocked.toString());
            Process p = pb.start();
            p.getOutputStream().close();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                failures.add(script + ": still running after 60 s");
                continue;
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.exitValue() != 2 || out.contains("Traceback") || !out.contains("cannot import")
                    || !out.contains("withheld by the test") || !out.contains("apt install python3-")) {
                failures.add(script + " (exit " + p.exitValue() + "):\n" + out);
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /** Every bench script that imports torch checks for it first (a new script that forgets is caught). */
    @Test
    void everyScriptImportingTorchIsChecked() throws IOException {
        List<String> unchecked = new ArrayList<>();
        try (var files = Files.list(benchDir())) {
            for (Path f : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".py"))::iterator) {
                String text = Files.readString(f);
                boolean torch = text.contains("\nimport torch") || text.contains("\n    import torch");
                if (torch && !text.contains("require(") && !f.getFileName().toString().equals("dirtorch_common.py")) {
                    unchecked.add(f.getFileName().toString());
                }
            }
        }
        assertEquals(List.of(), unchecked);
    }
}
