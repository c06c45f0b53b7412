package dir4j.retrieval.train;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.util.Random;

/**
 * The reference's training augmentations on a decoded image, seeded: random scale (longer side
 * in [minSize, maxSize]), random tilt (rotation up to ±tiltDegrees), random crop of cropSize ×
 * cropSize, colour jitter (brightness, contrast, saturation by up to ±jitter).
 *
 * @param minSize     smallest longer side after scaling
 * @param maxSize     largest longer side after scaling
 * @param cropSize    side of the square crop fed to the network
 * @param tiltDegrees largest rotation
 * @param jitter      largest relative brightness/contrast/saturation change
 */
public record Augmentation(int minSize, int maxSize, int cropSize, double tiltDegrees, double jitter) {
    public Augmentation {
        if (cropSize < 1 || minSize < cropSize || maxSize < minSize) {
            throw new IllegalArgumentException("augmentation: need 1 ≤ cropSize ≤ minSize ≤ maxSize, got "
                    + cropSize + ", " + minSize + ", " + maxSize);
        }
        if (!(tiltDegrees >= 0) || Double.isInfinite(tiltDegrees) || !(jitter >= 0 && jitter <= 1)) {
            throw new IllegalArgumentException("augmentation: need a finite tilt ≥ 0 and jitter in [0, 1], got "
                    + tiltDegrees + ", " + jitter);
        }
    }

    /** No augmentation: the image resized so that its longer side is cropSize, centre crop. */
    public static Augmentation none(int size) {
        return new Augmentation(size, size, size, 0, 0);
    }

    /** The augmented, cropSize × cropSize version of a decoded image. */
    public dir4j.retrieval.image.RgbImage apply(dir4j.retrieval.image.RgbImage img, Random r) {
        int w = img.width();
        int h = img.height();
        byte[] px = img.pixels();
        BufferedImage bi = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                row[x] = ((px[i] & 255) << 16) | ((px[i + 1] & 255) << 8) | (px[i + 2] & 255);
            }
            bi.setRGB(0, y, w, 1, row, 0, w);
        }
        BufferedImage out = apply(bi, r);
        byte[] o = new byte[cropSize * cropSize * 3];
        int[] all = out.getRGB(0, 0, cropSize, cropSize, null, 0, cropSize);
        for (int i = 0; i < all.length; i++) {
            o[3 * i] = (byte) (all[i] >> 16);
            o[3 * i + 1] = (byte) (all[i] >> 8);
            o[3 * i + 2] = (byte) all[i];
        }
        return new dir4j.retrieval.image.RgbImage(cropSize, cropSize, o);
    }

    /** A new image: the augmented, cropSize × cropSize version of {@code img}. */
    public BufferedImage apply(BufferedImage img, Random r) {
        int target = minSize + (maxSize > minSize ? r.nextInt(maxSize - minSize + 1) : 0);
        double scale = (double) target / Math.max(img.getWidth(), img.getHeight());
        // the scaled image must cover the crop in both directions
        scale = Math.max(scale, (double) cropSize / Math.min(img.getWidth(), img.getHeight()));
        double angle = Math.toRadians((r.nextDouble() * 2 - 1) * tiltDegrees);
        double sw = img.getWidth() * scale;
        double sh = img.getHeight() * scale;
        double ox = (sw - cropSize) * r.nextDouble();
        double oy = (sh - cropSize) * r.nextDouble();
        BufferedImage out = new BufferedImage(cropSize, cropSize, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
        AffineTransform t = new AffineTransform();
        t.translate(cropSize / 2.0, cropSize / 2.0);
        t.rotate(angle);
        t.translate(-cropSize / 2.0 - ox, -cropSize / 2.0 - oy);
        t.scale(scale, scale);
        g.drawImage(img, t, null);
        g.dispose();
        if (jitter > 0) {
            colourJitter(out, r);
        }
        return out;
    }

    private void colourJitter(BufferedImage img, Random r) {
        double brightness = 1 + (r.nextDouble() * 2 - 1) * jitter;
        double contrast = 1 + (r.nextDouble() * 2 - 1) * jitter;
        double saturation = 1 + (r.nextDouble() * 2 - 1) * jitter;
        int w = img.getWidth();
        int h = img.getHeight();
        int[] px = img.getRGB(0, 0, w, h, null, 0, w);
        double mean = 0;
        for (int p : px) {
            mean += 0.299 * ((p >> 16) & 255) + 0.587 * ((p >> 8) & 255) + 0.114 * (p & 255);
        }
        mean /= px.length;
        for (int i = 0; i < px.length; i++) {
            int p = px[i];
            double rr = (p >> 16) & 255;
            double gg = (p >> 8) & 255;
            double bb = p & 255;
            double grey = 0.299 * rr + 0.587 * gg + 0.114 * bb;
            rr = ((grey + (rr - grey) * saturation - mean) * contrast + mean) * brightness;
            gg = ((grey + (gg - grey) * saturation - mean) * contrast + mean) * brightness;
            bb = ((grey + (bb - grey) * saturation - mean) * contrast + mean) * brightness;
            px[i] = (clamp(rr) << 16) | (clamp(gg) << 8) | clamp(bb);
        }
        img.setRGB(0, 0, w, h, px, 0, w);
    }

    private static int clamp(double v) {
        return (int) Math.max(0, Math.min(255, Math.round(v)));
    }
}
