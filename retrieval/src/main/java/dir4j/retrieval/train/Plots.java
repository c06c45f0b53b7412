package dir4j.retrieval.train;

import dir4j.engine.io.AtomicFiles;
import dir4j.retrieval.image.PngBytes;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

/**
 * PNG plots of a training run: loss.png (per step, and a moving average) and validation.png.
 * Rendering needs Java2D fonts; where the machine has none (a container without fontconfig or any
 * font: "Fontconfig head is null"), the plots are skipped with the reason, and training goes on
 * (log.csv holds the same numbers).
 */
final class Plots {
    /** Renders a chart as the bytes of a PNG file; replaceable in tests. */
    interface Renderer {
        byte[] render(XYChart chart) throws IOException;
    }

    /** Encoded in memory, without ImageIO's disk cache and without switching it off for the whole JVM. */
    static final Renderer PNG = chart -> PngBytes.encode(BitmapEncoder.getBufferedImage(chart));

    private Plots() {}

    /** Writes the plots; returns null, or why they could not be drawn (nothing is then written). */
    static String write(Trainer.History h, Path dir) throws IOException {
        return write(h, dir, PNG);
    }

    static String write(Trainer.History h, Path dir, Renderer renderer) throws IOException {
        try {
            draw(h, dir, renderer);
            return null;
        } catch (RuntimeException | InternalError | UnsatisfiedLinkError | NoClassDefFoundError e) {
            // Java2D without fonts or native libraries; the chart library wraps some of these
            return "plots skipped, Java2D cannot draw here (" + e + "); install fontconfig and a font "
                    + "(e.g. fonts-dejavu-core) for loss.png and validation.png";
        }
    }

    private static void draw(Trainer.History h, Path dir, Renderer renderer) throws IOException {
        if (!h.steps().isEmpty()) {
            XYChart c = new XYChartBuilder().width(720).height(360).title("Training loss").xAxisTitle("step")
                    .yAxisTitle("loss").build();
            c.getStyler().setMarkerSize(0);
            c.addSeries("loss", toDoubles(h.steps()), h.losses());
            c.addSeries("moving average", toDoubles(h.steps()), movingAverage(h.losses(), 10));
            save(c, dir.resolve("loss.png"), renderer);
        }
        if (!h.validationSteps().isEmpty()) {
            XYChart c = new XYChartBuilder().width(720).height(360).title("Validation mAP (Medium)")
                    .xAxisTitle("step").yAxisTitle("mAP %").build();
            c.addSeries("mAP", toDoubles(h.validationSteps()), h.validation());
            save(c, dir.resolve("validation.png"), renderer);
        }
    }

    /** Rendered whole in memory, then written atomically (a kill or a full disk leaves the previous plot). */
    private static void save(XYChart c, Path file, Renderer renderer) throws IOException {
        byte[] png = renderer.render(c);
        try {
            AtomicFiles.write(file, png);
        } catch (IOException e) {
            throw new IOException(file + ": cannot be written (" + e.getMessage() + ")", e);
        }
    }

    static List<Double> toDoubles(List<Long> xs) {
        return xs.stream().map(Long::doubleValue).toList();
    }

    static List<Double> movingAverage(List<Double> v, int w) {
        double[] out = new double[v.size()];
        double sum = 0;
        for (int i = 0; i < v.size(); i++) {
            sum += v.get(i);
            if (i >= w) {
                sum -= v.get(i - w);
            }
            out[i] = sum / Math.min(i + 1, w);
        }
        return java.util.Arrays.stream(out).boxed().toList();
    }
}
