package dir4j.retrieval.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

/** PNG plots of a training run: loss.png (per step, and a moving average) and validation.png. */
final class Plots {
    private Plots() {}

    static void write(Trainer.History h, Path dir) throws IOException {
        if (!h.steps().isEmpty()) {
            XYChart c = new XYChartBuilder().width(720).height(360).title("Training loss").xAxisTitle("step")
                    .yAxisTitle("loss").build();
            c.getStyler().setMarkerSize(0);
            c.addSeries("loss", toDoubles(h.steps()), h.losses());
            c.addSeries("moving average", toDoubles(h.steps()), movingAverage(h.losses(), 10));
            save(c, dir.resolve("loss.png"));
        }
        if (!h.validationSteps().isEmpty()) {
            XYChart c = new XYChartBuilder().width(720).height(360).title("Validation mAP (Medium)")
                    .xAxisTitle("step").yAxisTitle("mAP %").build();
            c.addSeries("mAP", toDoubles(h.validationSteps()), h.validation());
            save(c, dir.resolve("validation.png"));
        }
    }

    private static void save(XYChart c, Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp.png");
        BitmapEncoder.saveBitmap(c, tmp.toString(), BitmapEncoder.BitmapFormat.PNG);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
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
