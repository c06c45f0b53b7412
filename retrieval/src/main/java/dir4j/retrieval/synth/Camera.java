package dir4j.retrieval.synth;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.util.Random;

/**
 * Photographs a scene: a random homography (scale, rotation, translation, perspective tilt)
 * maps the scene into the view, then lighting (brightness, contrast, gamma), blur, occlusion by
 * foreground blobs and clutter. The difficulty sets how far each draw may go; the result also
 * carries the landmark's bounding box in the view (the query crop of the revisited protocol).
 */
final class Camera {
    /** How strong the changes are. */
    enum Difficulty {
        EASY(0.8, 1.05, 6, 0.05, 0.0, 0.15, 0),
        HARD(0.45, 1.3, 25, 0.18, 0.25, 0.35, 1),
        JUNK(0.2, 0.32, 35, 0.25, 0.55, 0.4, 2);

        final double minScale;
        final double maxScale;
        final double maxRotationDeg;
        final double perspective;
        final double occlusion;
        final double lighting;
        final int blur;

        Difficulty(double minScale, double maxScale, double maxRotationDeg, double perspective, double occlusion,
                   double lighting, int blur) {
            this.minScale = minScale;
            this.maxScale = maxScale;
            this.maxRotationDeg = maxRotationDeg;
            this.perspective = perspective;
            this.occlusion = occlusion;
            this.lighting = lighting;
            this.blur = blur;
        }
    }

    /** A photograph and the landmark's box in it (x1, y1, x2, y2, clipped to the image). */
    record Shot(BufferedImage image, double[] bbox) {}

    private Camera() {}

    static Shot shoot(BufferedImage scene, int size, Difficulty d, Random r) {
        int n = scene.getWidth();
        double scale = d.minScale + (d.maxScale - d.minScale) * r.nextDouble();
        double rot = Math.toRadians((r.nextDouble() * 2 - 1) * d.maxRotationDeg);
        // where the scene's corners land in the view: a rotated, scaled square, jittered (tilt)
        double half = size * scale / 2;
        double cx = size / 2.0 + (r.nextDouble() - 0.5) * size * (1 - Math.min(1, scale)) * 0.9;
        double cy = size / 2.0 + (r.nextDouble() - 0.5) * size * (1 - Math.min(1, scale)) * 0.9;
        if (d == Difficulty.JUNK) {
            // a junk view shows a small, off-centre part of the landmark: zoom far in instead
            half = size / (2 * scale) ;
            cx = size / 2.0 + (r.nextDouble() - 0.5) * 2 * half * 0.8;
            cy = size / 2.0 + (r.nextDouble() - 0.5) * 2 * half * 0.8;
        }
        double[][] corners = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
        double[] dst = new double[8];
        double[] src = {0, 0, n, 0, n, n, 0, n};
        for (int i = 0; i < 4; i++) {
            double x = corners[i][0] * half * (1 + (r.nextDouble() * 2 - 1) * d.perspective);
            double y = corners[i][1] * half * (1 + (r.nextDouble() * 2 - 1) * d.perspective);
            dst[2 * i] = cx + x * Math.cos(rot) - y * Math.sin(rot);
            dst[2 * i + 1] = cy + x * Math.sin(rot) + y * Math.cos(rot);
        }
        Homography h = Homography.fromCorners(dst, src); // view → scene, for inverse mapping
        BufferedImage view = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Color bg = Scene.hsb(r, 0f, 1f, 0f, 0.4f, 0.2f, 0.8f);
        int bgRgb = bg.getRGB();
        int[] row = new int[size];
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                double[] p = h.apply(x + 0.5, y + 0.5);
                row[x] = p[0] >= 0 && p[0] < n - 1 && p[1] >= 0 && p[1] < n - 1
                        ? bilinear(scene, p[0], p[1]) : bgRgb;
            }
            view.setRGB(0, y, size, 1, row, 0, size);
        }
        double[] bbox = bbox(dst, size);
        Graphics2D g = view.createGraphics();
        // clutter: small shapes anywhere
        int clutter = r.nextInt(3 + (int) (d.occlusion * 10));
        for (int i = 0; i < clutter; i++) {
            g.setColor(Scene.hsb(r, 0f, 1f, 0.2f, 1f, 0.2f, 1f));
            int w = 2 + r.nextInt(Math.max(3, size / 10));
            g.fillOval(r.nextInt(size), r.nextInt(size), w, w);
        }
        // occlusion: foreground blobs covering up to the difficulty's fraction of the box
        if (d.occlusion > 0) {
            double area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) * d.occlusion * r.nextDouble();
            while (area > 4) {
                int w = 4 + r.nextInt(Math.max(5, size / 3));
                int hh = 4 + r.nextInt(Math.max(5, size / 3));
                g.setColor(Scene.hsb(r, 0f, 1f, 0f, 0.6f, 0.05f, 0.5f));
                g.fillRect((int) (bbox[0] + r.nextDouble() * (bbox[2] - bbox[0])) - w / 2,
                        (int) (bbox[1] + r.nextDouble() * (bbox[3] - bbox[1])) - hh / 2, w, hh);
                area -= w * hh;
            }
        }
        g.dispose();
        light(view, d.lighting, r);
        for (int i = 0; i < d.blur + (r.nextDouble() < 0.3 ? 1 : 0); i++) {
            blur(view);
        }
        return new Shot(view, bbox);
    }

    private static double[] bbox(double[] pts, int size) {
        double x1 = Double.MAX_VALUE;
        double y1 = Double.MAX_VALUE;
        double x2 = -Double.MAX_VALUE;
        double y2 = -Double.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            x1 = Math.min(x1, pts[2 * i]);
            x2 = Math.max(x2, pts[2 * i]);
            y1 = Math.min(y1, pts[2 * i + 1]);
            y2 = Math.max(y2, pts[2 * i + 1]);
        }
        return new double[] {Math.max(0, x1), Math.max(0, y1), Math.min(size, x2), Math.min(size, y2)};
    }

    private static int bilinear(BufferedImage img, double x, double y) {
        int x0 = (int) x;
        int y0 = (int) y;
        double fx = x - x0;
        double fy = y - y0;
        int a = img.getRGB(x0, y0);
        int b = img.getRGB(x0 + 1, y0);
        int c = img.getRGB(x0, y0 + 1);
        int e = img.getRGB(x0 + 1, y0 + 1);
        int out = 0;
        for (int shift = 0; shift <= 16; shift += 8) {
            double v = ((a >> shift) & 255) * (1 - fx) * (1 - fy) + ((b >> shift) & 255) * fx * (1 - fy)
                    + ((c >> shift) & 255) * (1 - fx) * fy + ((e >> shift) & 255) * fx * fy;
            out |= ((int) Math.round(v) & 255) << shift;
        }
        return out;
    }

    private static void light(BufferedImage img, double strength, Random r) {
        double gain = 1 + (r.nextDouble() * 2 - 1) * strength;
        double offset = (r.nextDouble() * 2 - 1) * strength * 60;
        double gamma = Math.exp((r.nextDouble() * 2 - 1) * strength);
        int[] lut = new int[256];
        for (int i = 0; i < 256; i++) {
            double v = 255 * Math.pow(i / 255.0, gamma) * gain + offset;
            lut[i] = (int) Math.max(0, Math.min(255, Math.round(v)));
        }
        int w = img.getWidth();
        int[] row = new int[w];
        for (int y = 0; y < img.getHeight(); y++) {
            img.getRGB(0, y, w, 1, row, 0, w);
            for (int x = 0; x < w; x++) {
                int p = row[x];
                row[x] = (lut[(p >> 16) & 255] << 16) | (lut[(p >> 8) & 255] << 8) | lut[p & 255];
            }
            img.setRGB(0, y, w, 1, row, 0, w);
        }
    }

    /** One 3×3 box blur pass. */
    private static void blur(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        int[] src = img.getRGB(0, 0, w, h, null, 0, w);
        int[] dst = new int[src.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int[] acc = new int[3];
                int cnt = 0;
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        int xx = x + dx;
                        int yy = y + dy;
                        if (xx >= 0 && xx < w && yy >= 0 && yy < h) {
                            int p = src[yy * w + xx];
                            acc[0] += (p >> 16) & 255;
                            acc[1] += (p >> 8) & 255;
                            acc[2] += p & 255;
                            cnt++;
                        }
                    }
                }
                dst[y * w + x] = ((acc[0] / cnt) << 16) | ((acc[1] / cnt) << 8) | (acc[2] / cnt);
            }
        }
        img.setRGB(0, 0, w, h, dst, 0, w);
    }
}
