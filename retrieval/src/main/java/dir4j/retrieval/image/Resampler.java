package dir4j.retrieval.image;

/**
 * Resizing as PIL's {@code Image.resize(size, BILINEAR | BICUBIC)} does it (Pillow's
 * Resample.c), so that dir4j's inputs equal the reference's pixel for pixel: a separable
 * convolution, horizontal pass then vertical, each output pixel a weighted sum over the input
 * pixels under a filter centred at {@code (x + 0.5)·scale}; when shrinking, the filter is
 * stretched by the scale factor (support × scale), so every input pixel contributes, which is
 * the antialiasing the reference relies on. Weights are normalised to sum to 1, held as 22-bit
 * fixed point, and each pass rounds and clips to 8 bits, exactly as Pillow's 8-bit path.
 *
 * <p>Java2D's bilinear and bicubic scaling sample only the 2×2 or 4×4 nearest pixels (no
 * antialiasing when shrinking) and its area-average scaling is a box filter; neither equals
 * PIL, hence this small re-implementation.
 */
public final class Resampler {
    private static final int PRECISION_BITS = 32 - 8 - 2;

    /** The interpolation filter. */
    public enum Filter {
        /** PIL's BILINEAR: triangle kernel, support 1 (the reference's {@code Scale} default). */
        BILINEAR(1.0),
        /** PIL's BICUBIC: Keys cubic with a = -0.5, support 2. */
        BICUBIC(2.0);

        final double support;

        Filter(double support) {
            this.support = support;
        }

        double weight(double x) {
            x = Math.abs(x);
            if (this == BILINEAR) {
                return x < 1.0 ? 1.0 - x : 0.0;
            }
            final double a = -0.5;
            if (x < 1.0) {
                return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
            }
            if (x < 2.0) {
                return (((x - 5) * x + 8) * x - 4) * a;
            }
            return 0.0;
        }

        /** Parses "bilinear" or "bicubic". */
        public static Filter parse(String s) {
            return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "bilinear" -> BILINEAR;
                case "bicubic" -> BICUBIC;
                default -> throw new IllegalArgumentException("unknown filter '" + s + "': use bilinear or bicubic");
            };
        }
    }

    private Resampler() {}

    /** The image resized to {@code width × height} (the same object when the size is unchanged). */
    public static RgbImage resize(RgbImage src, int width, int height, Filter filter) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("resize to " + width + "x" + height + ": sizes must be positive");
        }
        if (width == src.width() && height == src.height()) {
            return src;
        }
        RgbImage img = src;
        if (width != img.width()) {
            img = horizontal(img, width, coefficients(img.width(), width, filter));
        }
        if (height != img.height()) {
            img = vertical(img, height, coefficients(img.height(), height, filter));
        }
        return img;
    }

    /** Per output pixel: first input index, count, and fixed-point weights (ksize apart). */
    record Coefficients(int[] bounds, int[] weights, int ksize) {}

    /** Pillow's precompute_coeffs and normalize_coeffs_8bpc for a box covering the whole input. */
    static Coefficients coefficients(int inSize, int outSize, Filter filter) {
        double scale = (double) inSize / outSize;
        double filterscale = Math.max(scale, 1.0);
        double support = filter.support * filterscale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[outSize * 2];
        int[] weights = new int[outSize * ksize];
        double[] k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ww = 0.0;
            double ss = 1.0 / filterscale;
            int xmin = (int) (center - support + 0.5);
            if (xmin < 0) {
                xmin = 0;
            }
            int xmax = (int) (center + support + 0.5);
            if (xmax > inSize) {
                xmax = inSize;
            }
            xmax -= xmin;
            for (int x = 0; x < xmax; x++) {
                double w = filter.weight((x + xmin - center + 0.5) * ss);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++) {
                if (ww != 0.0) {
                    k[x] /= ww;
                }
                double v = k[x] * (1 << PRECISION_BITS);
                weights[xx * ksize + x] = (int) (v < 0 ? -0.5 + v : 0.5 + v);
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Coefficients(bounds, weights, ksize);
    }

    private static RgbImage horizontal(RgbImage src, int outW, Coefficients co) {
        int inW = src.width();
        int h = src.height();
        byte[] in = src.pixels();
        byte[] out = new byte[outW * h * 3];
        int stride = inW * 3;
        int outStride = outW * 3;
        int y = 0;
        // two rows at a time: each weight, loaded once, serves both (about a tenth off the pass)
        for (; y + 1 < h; y += 2) {
            int r0 = y * stride;
            int r1 = r0 + stride;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = co.bounds[xx * 2];
                int xmax = co.bounds[xx * 2 + 1];
                int kb = xx * co.ksize;
                int a0 = 1 << (PRECISION_BITS - 1);
                int a1 = a0;
                int a2 = a0;
                int b0 = a0;
                int b1 = a0;
                int b2 = a0;
                for (int x = 0, p = xmin * 3; x < xmax; x++, p += 3) {
                    int w = co.weights[kb + x];
                    a0 += (in[r0 + p] & 0xff) * w;
                    a1 += (in[r0 + p + 1] & 0xff) * w;
                    a2 += (in[r0 + p + 2] & 0xff) * w;
                    b0 += (in[r1 + p] & 0xff) * w;
                    b1 += (in[r1 + p + 1] & 0xff) * w;
                    b2 += (in[r1 + p + 2] & 0xff) * w;
                }
                int o = y * outStride + xx * 3;
                out[o] = clip8(a0);
                out[o + 1] = clip8(a1);
                out[o + 2] = clip8(a2);
                out[o + outStride] = clip8(b0);
                out[o + outStride + 1] = clip8(b1);
                out[o + outStride + 2] = clip8(b2);
            }
        }
        for (; y < h; y++) {
            int row = y * stride;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = co.bounds[xx * 2];
                int xmax = co.bounds[xx * 2 + 1];
                int kb = xx * co.ksize;
                int s0 = 1 << (PRECISION_BITS - 1);
                int s1 = s0;
                int s2 = s0;
                for (int x = 0, p = row + xmin * 3; x < xmax; x++, p += 3) {
                    int w = co.weights[kb + x];
                    s0 += (in[p] & 0xff) * w;
                    s1 += (in[p + 1] & 0xff) * w;
                    s2 += (in[p + 2] & 0xff) * w;
                }
                int o = (y * outW + xx) * 3;
                out[o] = clip8(s0);
                out[o + 1] = clip8(s1);
                out[o + 2] = clip8(s2);
            }
        }
        return new RgbImage(outW, h, out);
    }

    private static RgbImage vertical(RgbImage src, int outH, Coefficients co) {
        int w = src.width();
        byte[] in = src.pixels();
        byte[] out = new byte[w * outH * 3];
        int stride = w * 3;
        int[] acc = new int[stride];
        for (int yy = 0; yy < outH; yy++) {
            int ymin = co.bounds[yy * 2];
            int ymax = co.bounds[yy * 2 + 1];
            int kb = yy * co.ksize;
            java.util.Arrays.fill(acc, 1 << (PRECISION_BITS - 1));
            // tap by tap over whole rows: the same sums as Pillow's, read in memory order
            for (int y = 0; y < ymax; y++) {
                int weight = co.weights[kb + y];
                int row = (y + ymin) * stride;
                for (int xc = 0; xc < stride; xc++) {
                    acc[xc] += (in[row + xc] & 0xff) * weight;
                }
            }
            int o = yy * stride;
            for (int xc = 0; xc < stride; xc++) {
                out[o + xc] = clip8(acc[xc]);
            }
        }
        return new RgbImage(w, outH, out);
    }

    private static byte clip8(int v) {
        if (v >= (1 << PRECISION_BITS << 8)) {
            return (byte) 255;
        }
        if (v <= 0) {
            return 0;
        }
        return (byte) (v >> PRECISION_BITS);
    }
}
