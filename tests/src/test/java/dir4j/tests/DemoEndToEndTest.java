package dir4j.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.retrieval.demo.Demo;
import dir4j.retrieval.net.RetrievalNet;
import dir4j.retrieval.synth.SyntheticLandmarks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo end to end at toy size: benchmark generated, untrained and trained evaluations,
 * training log and checkpoint, and a report with the mAP table, both curves and the top-10
 * strips; a second run resumes from the final checkpoint and reproduces the trained result.
 */
class DemoEndToEndTest {
    @TempDir
    Path tmp;

    private Demo.Settings tiny() {
        Demo.Settings d = Demo.Settings.defaults(tmp.resolve("data"), tmp.resolve("out"));
        var synth = new SyntheticLandmarks.Config(5, 64, 6, 4, 2, 4, 2, 1, 1, 4);
        var net = new RetrievalNet.Options("resnet18", 16, "gem", 3, false, false, 4);
        var train = d.train().with(Map.of("steps", "6", "classesPerBatch", "3", "imagesPerClass", "2",
                "subBatch", "4", "cropSize", "48", "minSize", "48", "maxSize", "56", "validateEvery", "3",
                "checkpointEvery", "3"));
        return new Demo.Settings(d.dataRoot(), d.out(), synth, net, train, 64, true);
    }

    @Test
    void demoWritesAReportAndResumesToTheSameResult() throws Exception {
        Demo.Outcome first = Demo.run(tiny(), line -> { });
        Path out = tmp.resolve("out");
        assertTrue(Files.isRegularFile(tmp.resolve("data/synth/gnd_synth.pkl")));
        assertTrue(Files.isRegularFile(out.resolve("checkpoint.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("loss.png")));
        List<String> log = Files.readAllLines(out.resolve("log.csv"));
        assertEquals("step,loss,lr,images_per_second,validation_map", log.get(0));
        assertEquals(6 + 2, log.size() - 1, "six steps and two validations");
        assertEquals(List.of(3L, 6L), first.history().validationSteps());

        String html = Files.readString(first.report());
        assertTrue(html.contains("Mean average precision"));
        assertTrue(html.contains("<th>untrained</th>") && html.contains("<th>trained</th>"));
        assertEquals(2, count(html, "<svg "), "loss and validation curves");
        assertEquals(4, count(html, "<h3>Query "), "four queries shown");
        // per query: the query, then 10 results untrained and 10 trained (database has 20 images)
        assertEquals(4 * (1 + 10 + 10), count(html, "<img "));
        assertEquals(4, count(html, "class=\"q\""));
        String table = html.substring(html.indexOf("<th>trained</th>"), html.indexOf("</table>"));
        Matcher m = Pattern.compile("<td>([0-9.]+)</td>").matcher(table);
        assertTrue(m.find());
        assertEquals(100 * first.after().easy().map(), Double.parseDouble(m.group(1)), 0.006);

        Demo.Outcome again = Demo.run(tiny(), line -> { });
        assertEquals(first.after().medium().map(), again.after().medium().map(), 0.0,
                "resumed at the final checkpoint: the same trained network");
        assertEquals(first.before().medium().map(), again.before().medium().map(), 0.0);
    }

    private static int count(String s, String needle) {
        int n = 0;
        for (int i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }
}
