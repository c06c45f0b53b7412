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

    /** Most bytes of one crop: the longest Java array. */
    static final long MAX_CROP_BYTES = Integer.MAX_VALUE - 8;

    /**
     * The image cropped as PIL's {@code Image.crop(bbx)}, which the reference applies to queries:
     * each coordinate rounded half to even (Python's round), and the parts of the box outside the
     * image filled with black. Coordinates of any size are handled exactly (in double precision,
     * never wrapped around int's range).
     *
     * @throws IllegalArgumentException when the rounded box is empty, or larger than one image can
     *     be ({@value #MAX_CROP_BYTES} bytes of RGB) or than this JVM's heap ({@code -Xmx}) can hold
     */
    public RgbImage crop(RgbImage img) {
        return crop(img, Runtime.getRuntime().maxMemory());
    }

    /** {@link #crop(RgbImage)} in a JVM whose heap can hold {@code heapBytes} at most. */
    RgbImage crop(RgbImage img, long heapBytes) {
        // rounded coordinates are whole doubles: their differences and clamps below are exact for any
        // box whose size passes the checks, however far from the image it lies
        double left = Math.rint(x1);
        double top = Math.rint(y1);
        double right = Math.rint(x2);
        double bottom = Math.rint(y2);
        double w = right - left;
        double h = bottom - top;
        if (w <= 0 || h <= 0) {
            throw new IllegalArgumentException("bounding box " + this + " is empty once rounded to pixels ("
                    + whole(w) + "x" + whole(h) + ")");
        }
        if (w * h * 3 > MAX_CROP_BYTES) {
            throw new IllegalArgumentException("bounding box " + this + " crops to " + whole(w) + "x" + whole(h)
                    + " pixels, more than one image can hold (" + MAX_CROP_BYTES / 3 + " RGB pixels); check the "
                    + "coordinates (pixels of the original image: x1, y1, x2, y2)");
        }
        if (w * h * 3 > heapBytes) { // a box far beyond the image: black pixels, but all of them allocated
            throw new IllegalArgumentException("bounding box " + this + " crops to " + whole(w) + "x" + whole(h)
                    + " pixels, " + (long) (w * h * 3) / (1 << 20) + " MiB, more than this JVM's heap ("
                    + heapBytes / (1 << 20) + " MiB, -Xmx) can hold; check the coordinates (pixels of the original "
                    + "image: x1, y1, x2, y2)");
        }
        int cw = (int) w;
        int ch = (int) h;
        byte[] in = img.pixels();
        byte[] out = new byte[cw * ch * 3];
        // the part of the box inside the image, in image pixels
        double xa = Math.clamp(left, 0, img.width());
        double xb = Math.clamp(right, 0, img.width());
        double ya = Math.clamp(top, 0, img.height());
        double yb = Math.clamp(bottom, 0, img.height());
        if (xb > xa) {
            int x0 = (int) xa;
            int run = (int) (xb - xa);
            int dx = (int) (xa - left);
            for (int y = (int) ya; y < (int) yb; y++) {
                System.arraycopy(in, (y * img.width() + x0) * 3, out, ((int) (y - top) * cw + dx) * 3, run * 3);
            }
        }
        return new RgbImage(cw, ch, out);
    }

    /** A whole number of pixels as written in messages: digits while exact, else Java's exponent form. */
    private static String whole(double v) {
        return Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v);
    }

    @Override
    public String toString() {
        return list(x1, y1, x2, y2);
    }

    private static String list(double a, double b, double c, double d) {
        return "(" + a + ", " + b + ", " + c + ", " + d + ")";
    }
}
