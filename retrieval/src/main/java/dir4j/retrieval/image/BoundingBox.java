package dir4j.retrieval.image;

/**
 * A query region (x1, y1, x2, y2) in pixel coordinates of the upright original image, left/top
 * inclusive and right/bottom exclusive, as the revisited Oxford/Paris ground truth's {@code bbx}.
 * The query image is cropped to it before any resizing.
 */
public record BoundingBox(double x1, double y1, double x2, double y2) {
    public BoundingBox {
        if (!(Double.isFinite(x1) && Double.isFinite(y1) && Double.isFinite(x2) && Double.isFinite(y2))) {
            throw new IllegalArgumentException("bounding box coordinates must be finite: " + list(x1, y1, x2, y2));
        }
        if (x2 < x1 || y2 < y1) {
            throw new IllegalArgumentException("bounding box " + list(x1, y1, x2, y2)
                    + " has its right/bottom edge before its left/top edge");
        }
    }

    /**
     * The image cropped as PIL's {@code Image.crop(bbx)}, which the reference applies to queries:
     * each coordinate rounded half to even (Python's round), and the parts of the box outside the
     * image filled with black.
     *
     * @throws IllegalArgumentException when the rounded box is empty
     */
    public RgbImage crop(RgbImage img) {
        int left = (int) Math.rint(x1);
        int top = (int) Math.rint(y1);
        int right = (int) Math.rint(x2);
        int bottom = (int) Math.rint(y2);
        int w = right - left;
        int h = bottom - top;
        if (w <= 0 || h <= 0) {
            throw new IllegalArgumentException("bounding box " + this + " is empty once rounded to pixels ("
                    + w + "x" + h + ")");
        }
        byte[] in = img.pixels();
        byte[] out = new byte[Math.multiplyExact(Math.multiplyExact(w, h), 3)];
        int x0 = Math.max(left, 0);
        int x1c = Math.min(right, img.width());
        for (int y = Math.max(top, 0); y < Math.min(bottom, img.height()); y++) {
            if (x1c > x0) {
                System.arraycopy(in, (y * img.width() + x0) * 3, out, ((y - top) * w + (x0 - left)) * 3,
                        (x1c - x0) * 3);
            }
        }
        return new RgbImage(w, h, out);
    }

    @Override
    public String toString() {
        return list(x1, y1, x2, y2);
    }

    private static String list(double a, double b, double c, double d) {
        return "(" + a + ", " + b + ", " + c + ", " + d + ")";
    }
}
