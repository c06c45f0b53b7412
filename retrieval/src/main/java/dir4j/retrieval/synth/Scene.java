package dir4j.retrieval.synth;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.GradientPaint;
import java.awt.Graphics2D;
import java.awt.Polygon;
import java.awt.RenderingHints;
import java.awt.geom.Ellipse2D;
import java.awt.image.BufferedImage;
import java.util.Random;

/**
 * A procedurally built "landmark": a facade with a window grid, a roof, a door, emblems and
 * textured bands in front of a sky, all parameters drawn from one seed. Different seeds give
 * visually distinct buildings with shared structure (as real landmarks share windows and
 * columns), so retrieval has to learn what tells them apart.
 */
final class Scene {
    private Scene() {}

    /** Renders the landmark of {@code seed} as a size×size RGB image. */
    static BufferedImage render(long seed, int size) {
        Random r = new Random(seed);
        BufferedImage img = new BufferedImage(size, size, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        float s = size;
        // sky
        g.setPaint(new GradientPaint(0, 0, hsb(r, 0.55f, 0.65f, 0.3f, 0.6f, 0.8f, 1f), 0, s,
                hsb(r, 0.5f, 0.7f, 0.1f, 0.3f, 0.9f, 1f)));
        g.fillRect(0, 0, size, size);
        // ground band with a texture
        int groundY = (int) (s * (0.78f + 0.1f * r.nextFloat()));
        g.setColor(hsb(r, 0.05f, 0.15f, 0.2f, 0.5f, 0.3f, 0.6f));
        g.fillRect(0, groundY, size, size - groundY);
        stripes(g, r, 0, groundY, size, size - groundY);
        // facade
        int fx = (int) (s * (0.1f + 0.15f * r.nextFloat()));
        int fw = (int) (s * (0.55f + 0.25f * r.nextFloat()));
        fw = Math.min(fw, size - fx - 4);
        int fy = (int) (s * (0.25f + 0.15f * r.nextFloat()));
        Color wall = hsb(r, 0f, 1f, 0.1f, 0.6f, 0.45f, 0.95f);
        g.setColor(wall);
        g.fillRect(fx, fy, fw, groundY - fy);
        // roof: triangle, flat cornice or dome
        Color roof = hsb(r, 0f, 1f, 0.3f, 0.9f, 0.2f, 0.7f);
        g.setColor(roof);
        switch (r.nextInt(3)) {
            case 0 -> g.fillPolygon(new Polygon(new int[] {fx - 6, fx + fw / 2, fx + fw + 6},
                    new int[] {fy, (int) (fy - s * (0.08f + 0.12f * r.nextFloat())), fy}, 3));
            case 1 -> g.fillRect(fx - 6, fy - (int) (s * 0.04f), fw + 12, (int) (s * 0.04f));
            default -> {
                int dw = (int) (fw * (0.3f + 0.3f * r.nextFloat()));
                g.fill(new Ellipse2D.Float(fx + (fw - dw) / 2f, fy - dw / 2f, dw, dw));
            }
        }
        // window grid
        int rows = 2 + r.nextInt(4);
        int cols = 2 + r.nextInt(5);
        Color glass = hsb(r, 0f, 1f, 0.2f, 0.8f, 0.1f, 0.5f);
        Color frame = hsb(r, 0f, 1f, 0f, 0.3f, 0.7f, 1f);
        boolean arched = r.nextBoolean();
        float cellW = fw / (float) cols;
        float cellH = (groundY - fy) * 0.75f / rows;
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                float wx = fx + j * cellW + cellW * 0.22f;
                float wy = fy + i * cellH + cellH * 0.2f;
                float ww = cellW * 0.56f;
                float wh = cellH * 0.6f;
                g.setColor(glass);
                if (arched) {
                    g.fillRoundRect((int) wx, (int) wy, (int) ww, (int) wh, (int) ww, (int) ww);
                } else {
                    g.fillRect((int) wx, (int) wy, (int) ww, (int) wh);
                }
                g.setColor(frame);
                g.setStroke(new BasicStroke(Math.max(1f, s / 200f)));
                g.drawRect((int) wx, (int) wy, (int) ww, (int) wh);
            }
        }
        // door
        g.setColor(hsb(r, 0f, 1f, 0.3f, 0.8f, 0.15f, 0.5f));
        int dw = (int) (fw * (0.12f + 0.1f * r.nextFloat()));
        int dh = (int) ((groundY - fy) * 0.22f);
        int dx = fx + (int) ((fw - dw) * r.nextFloat());
        g.fillRoundRect(dx, groundY - dh, dw, dh, dw / 2, dw / 2);
        // emblems: circles, stars and diamonds in strong colours
        int emblems = 1 + r.nextInt(3);
        for (int e = 0; e < emblems; e++) {
            g.setColor(hsb(r, 0f, 1f, 0.6f, 1f, 0.6f, 1f));
            int ex = fx + (int) (fw * r.nextFloat() * 0.8f);
            int ey = fy + (int) ((groundY - fy) * (0.78f + 0.1f * r.nextFloat()));
            int es = (int) (s * (0.04f + 0.05f * r.nextFloat()));
            switch (r.nextInt(3)) {
                case 0 -> g.fillOval(ex, ey - es, es, es);
                case 1 -> g.fillPolygon(star(ex + es / 2, ey - es / 2, es / 2, 5 + r.nextInt(3)));
                default -> g.fillPolygon(new Polygon(new int[] {ex + es / 2, ex + es, ex + es / 2, ex},
                        new int[] {ey - es, ey - es / 2, ey, ey - es / 2}, 4));
            }
        }
        // columns
        if (r.nextBoolean()) {
            int n = 2 + r.nextInt(4);
            g.setColor(frame);
            for (int c = 0; c < n; c++) {
                int cx = fx + (int) (fw * (c + 0.5f) / n);
                g.fillRect(cx - (int) (s * 0.008f), fy, (int) (s * 0.016f) + 1, groundY - fy);
            }
        }
        // a neighbouring building or tree for context
        g.setColor(hsb(r, 0.2f, 0.4f, 0.3f, 0.8f, 0.2f, 0.6f));
        int tx = r.nextBoolean() ? (int) (s * 0.02f) : (int) (s * 0.82f);
        int tw = (int) (s * (0.08f + 0.08f * r.nextFloat()));
        g.fillOval(tx, groundY - (int) (s * 0.35f), tw, (int) (s * 0.3f));
        g.dispose();
        return img;
    }

    private static Polygon star(int cx, int cy, int radius, int points) {
        Polygon p = new Polygon();
        for (int i = 0; i < points * 2; i++) {
            double a = Math.PI * i / points - Math.PI / 2;
            double rr = i % 2 == 0 ? radius : radius * 0.45;
            p.addPoint((int) (cx + rr * Math.cos(a)), (int) (cy + rr * Math.sin(a)));
        }
        return p;
    }

    private static void stripes(Graphics2D g, Random r, int x, int y, int w, int h) {
        g.setColor(hsb(r, 0f, 1f, 0.1f, 0.4f, 0.2f, 0.5f));
        int step = 4 + r.nextInt(8);
        for (int i = 0; i < w + h; i += step) {
            g.drawLine(x + i, y, x + i - h, y + h);
        }
    }

    /** A random colour with hue in [h0, h1), saturation in [s0, s1), brightness in [b0, b1). */
    static Color hsb(Random r, float h0, float h1, float s0, float s1, float b0, float b1) {
        return Color.getHSBColor(h0 + (h1 - h0) * r.nextFloat(), s0 + (s1 - s0) * r.nextFloat(),
                b0 + (b1 - b0) * r.nextFloat());
    }
}
