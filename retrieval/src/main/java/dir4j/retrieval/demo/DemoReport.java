package dir4j.retrieval.demo;

import dir4j.retrieval.data.RetrievalDataset;
import dir4j.retrieval.eval.ProtocolResult;
import dir4j.retrieval.eval.RevisitedGroundTruth;
import dir4j.retrieval.eval.RevisitedResult;
import dir4j.retrieval.image.BoundingBox;
import dir4j.retrieval.image.PngBytes;
import dir4j.retrieval.train.Trainer;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * report.html: a single self-contained page (thumbnails and charts inline) with mAP before and
 * after training, the loss and validation curves, and the top-10 results of a few queries with
 * each result marked correct (green), wrong (red) or junk (grey).
 */
final class DemoReport {
    private static final int QUERIES_SHOWN = 4;
    private static final int TOP = 10;

    private DemoReport() {}

    static Path write(Demo.Settings s, RetrievalDataset test, Demo.Evaluation before, Demo.Evaluation after,
                      Trainer.History h, double seconds) throws IOException {
        StringBuilder b = new StringBuilder();
        b.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dir4j demo report</title>")
                .append("<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}")
                .append("table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 10px;")
                .append("text-align:right}th{background:#f3f3f3}.thumbs img{margin:2px;border:4px solid #fff}")
                .append(".ok{border-color:#2e9d3a!important}.bad{border-color:#d33!important}")
                .append(".junk{border-color:#999!important}.q{border-color:#2a6fd6!important}")
                .append(".row{display:flex;align-items:center;gap:8px}.lbl{width:120px;text-align:right;")
                .append("font-size:13px;color:#555}small{color:#666}</style></head><body>");
        b.append("<h1>dir4j demo: AP-GeM on the synthetic landmarks benchmark</h1>");
        b.append(String.format(Locale.ROOT, "<p>Network %s (width %d), GeM p=%.0f, FC → %d-d; trained %d steps of "
                        + "%d images (%d classes × %d), AP loss (nq=%d, [%s, %s]) with multistage back-propagation "
                        + "(sub-batches of %d), %s lr %s, %s schedule. Test split: %d queries, %d database images. "
                        + "Total time %.0f s.</p>",
                s.net().arch(), s.net().baseWidth(), s.net().gemp(), s.net().outDim(), s.train().steps(),
                s.train().classesPerBatch() * s.train().imagesPerClass(), s.train().classesPerBatch(),
                s.train().imagesPerClass(), s.train().nq(), fmt(s.train().binMin()), fmt(s.train().binMax()),
                s.train().subBatch(), s.train().optimizer(), fmt(s.train().lr()), s.train().schedule(),
                test.queryNames().size(), test.imageNames().size(), seconds));
        b.append("<h2>Mean average precision (revisited protocol)</h2><table><tr><th></th><th>Easy</th><th>Medium</th>")
                .append("<th>Hard</th><th>mP@1 (M)</th><th>mP@5 (M)</th><th>mP@10 (M)</th></tr>");
        row(b, "untrained", before.result());
        row(b, "trained", after.result());
        b.append("</table>");
        b.append("<h2>Training</h2>");
        b.append(chart("loss", h.steps(), h.losses(), "#2a6fd6"));
        if (!h.validation().isEmpty()) {
            b.append(chart("validation mAP (Medium, %)", h.validationSteps(), h.validation(), "#2e9d3a"));
        }
        b.append("<h2>Top-10 results</h2><p><small>Blue: query (its box drawn). Green: correct (easy or hard "
                + "positive), red: wrong, grey: junk (ignored by the protocol).</small></p>");
        List<RevisitedGroundTruth> gt = test.revisitedGroundTruth();
        List<BoundingBox> boxes = test.queryBoxes();
        for (int q = 0; q < Math.min(QUERIES_SHOWN, test.queryNames().size()); q++) {
            b.append("<h3>Query ").append(q).append(" (").append(test.queryNames().get(q)).append(")</h3>");
            b.append("<div class=\"thumbs\">");
            b.append("<div class=\"row\"><span class=\"lbl\">query</span>")
                    .append(img(test.file(test.queryNames().get(q)), boxes.get(q), "q", "query")).append("</div>");
            thumbs(b, "untrained", before.rankings()[q], gt.get(q), test);
            thumbs(b, "trained", after.rankings()[q], gt.get(q), test);
            b.append("</div>");
        }
        b.append("</body></html>\n");
        Path file = s.out().resolve("report.html");
        dir4j.engine.io.AtomicFiles.write(file, b.toString().getBytes(StandardCharsets.UTF_8));
        return file;
    }

    private static void row(StringBuilder b, String name, RevisitedResult r) {
        ProtocolResult m = r.medium();
        b.append(String.format(Locale.ROOT, "<tr><th>%s</th><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>"
                        + "<td>%.2f</td><td>%.2f</td></tr>", name, 100 * r.easy().map(), 100 * m.map(),
                100 * r.hard().map(), 100 * m.meanPrecisionAt(1), 100 * m.meanPrecisionAt(5),
                100 * m.meanPrecisionAt(10)));
    }

    private static void thumbs(StringBuilder b, String label, int[] ranking, RevisitedGroundTruth gt,
                               RetrievalDataset test) throws IOException {
        b.append("<div class=\"row\"><span class=\"lbl\">").append(label).append("</span>");
        for (int r = 0; r < Math.min(TOP, ranking.length); r++) {
            int i = ranking[r];
            String cls = contains(gt.easy(), i) || contains(gt.hard(), i) ? "ok" : contains(gt.junk(), i) ? "junk"
                    : "bad";
            b.append(img(test.file(test.imageNames().get(i)), null, cls, test.imageNames().get(i)));
        }
        b.append("</div>");
    }

    private static boolean contains(int[] xs, int x) {
        for (int v : xs) {
            if (v == x) {
                return true;
            }
        }
        return false;
    }

    private static String img(Path file, BoundingBox box, String cls, String title) throws IOException {
        BufferedImage src = ImageIO.read(file.toFile());
        int size = 72;
        BufferedImage t = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = t.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.drawImage(src, 0, 0, size, size, null);
        if (box != null) {
            double sx = (double) size / src.getWidth();
            double sy = (double) size / src.getHeight();
            g.setColor(new Color(42, 111, 214));
            g.setStroke(new BasicStroke(2));
            g.drawRect((int) (box.x1() * sx), (int) (box.y1() * sy), (int) ((box.x2() - box.x1()) * sx) - 1,
                    (int) ((box.y2() - box.y1()) * sy) - 1);
        }
        g.dispose();
        byte[] png = PngBytes.encode(t);
        return "<img class=\"" + cls + "\" title=\"" + title + "\" width=\"" + size + "\" height=\"" + size
                + "\" alt=\"" + title + "\" src=\"data:image/png;base64,"
                + Base64.getEncoder().encodeToString(png) + "\">";
    }

    /** A small inline SVG line chart. */
    private static String chart(String title, List<Long> xs, List<Double> ys, String colour) {
        int w = 640;
        int hgt = 220;
        int pad = 40;
        if (xs.isEmpty()) {
            return "";
        }
        double x0 = xs.get(0);
        double x1 = Math.max(x0 + 1, xs.get(xs.size() - 1));
        double y0 = ys.stream().mapToDouble(Double::doubleValue).min().orElse(0);
        double y1 = ys.stream().mapToDouble(Double::doubleValue).max().orElse(1);
        if (y1 - y0 < 1e-9) {
            y1 = y0 + 1;
        }
        StringBuilder p = new StringBuilder();
        StringBuilder dots = new StringBuilder();
        for (int i = 0; i < xs.size(); i++) {
            double px = pad + (xs.get(i) - x0) / (x1 - x0) * (w - 2 * pad);
            double py = hgt - pad - (ys.get(i) - y0) / (y1 - y0) * (hgt - 2 * pad);
            p.append(i == 0 ? "M" : "L").append(String.format(Locale.ROOT, "%.1f,%.1f", px, py));
            if (xs.size() <= 40) {
                dots.append(String.format(Locale.ROOT, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\">"
                        + "<title>step %d: %.4g</title></circle>", px, py, colour, xs.get(i), ys.get(i)));
            }
        }
        return String.format(Locale.ROOT, "<figure><figcaption>%s</figcaption><svg width=\"%d\" height=\"%d\" "
                        + "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"%s\">"
                        + "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
                        + "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>%s"
                        + "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text><text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>"
                        + "<text x=\"%d\" y=\"%d\" font-size=\"11\">step %d</text><text x=\"%d\" y=\"%d\" font-size=\"11\" "
                        + "text-anchor=\"end\">step %d</text></svg></figure>",
                title, w, hgt, title, w, hgt, p, colour, dots, 4, pad - 4, fmt(y1), 4, hgt - pad + 12, fmt(y0), pad,
                hgt - 8, (long) x0, w - pad, hgt - 8, (long) x1);
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.3g", v);
    }
}
