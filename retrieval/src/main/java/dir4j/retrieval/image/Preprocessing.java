package dir4j.retrieval.image;

import dir4j.retrieval.net.RetrievalNet;
import java.util.Arrays;

/**
 * How an upright decoded image becomes network input: optional query crop, resize to a maximum
 * side, ImageNet normalisation. The resize is the reference's
 * {@code dirtorch.utils.transforms.Scale(size, largest=True)}: the longer side becomes
 * {@code size} and the other {@code int(0.5 + size·short/long)}, resampled as PIL's
 * {@code resize(…, BILINEAR)} ({@link Resampler}).
 *
 * <p>Scale's own rule decides whether to resize at all: only when the shorter side grows and
 * upscaling is allowed, or the shorter side shrinks. With {@code upscale == false} (dir4j's
 * default) pictures smaller than {@code maxSide} stay as they are, as the revisited protocol's
 * {@code imresize} (PIL thumbnail) and the reference's default (no Scale in the transform
 * chain) leave them; {@code upscale == true} is {@code Scale(size, largest=True)} exactly.
 *
 * <p>A scale factor {@code s ≠ 1} (multi-scale extraction) is relative to that single-scale
 * size: the longer side becomes {@code int(0.5 + L·s)} where L is the longer side at scale 1
 * ({@code maxSide} for large images, the original side for small ones), in either direction,
 * resized once from the (cropped) original (cnnimageretrieval-pytorch instead resizes the
 * already resized image again). With {@code maxSide == 0} no size is imposed and both sides
 * become {@code int(0.5 + s·side)}, as the reference's {@code Scale(float)}.
 *
 * @param maxSide  the longer side after resizing (0: keep the size)
 * @param upscale  also enlarge images whose longer side is below maxSide
 * @param filter   interpolation (the reference's Scale uses bilinear)
 * @param means    per-channel means subtracted after dividing bytes by 255
 * @param stds     per-channel standard deviations divided by
 */
public record Preprocessing(int maxSide, boolean upscale, Resampler.Filter filter, float[] means, float[] stds) {
    public Preprocessing {
        if (maxSide < 0) {
            throw new IllegalArgumentException("maxSide must be >= 0 (0 keeps the size), got " + maxSide);
        }
        if (means.length != 3 || stds.length != 3) {
            throw new IllegalArgumentException("means and stds need 3 values (R, G, B)");
        }
        means = means.clone();
        stds = stds.clone();
    }

    /** Longer side at most {@code maxSide}, bilinear, no upscaling, ImageNet mean/std. */
    public static Preprocessing imagenet(int maxSide) {
        return new Preprocessing(maxSide, false, Resampler.Filter.BILINEAR, RetrievalNet.RGB_MEANS,
                RetrievalNet.RGB_STDS);
    }

    public Preprocessing withUpscale(boolean on) {
        return new Preprocessing(maxSide, on, filter, means, stds);
    }

    public Preprocessing withFilter(Resampler.Filter f) {
        return new Preprocessing(maxSide, upscale, f, means, stds);
    }

    @Override
    public float[] means() {
        return means.clone();
    }

    @Override
    public float[] stds() {
        return stds.clone();
    }

    /** {@code Scale(size, largest=True).get_params((w, h))} for an integer size. */
    public static int[] referenceScale(int w, int h, int size) {
        if ((w >= h && w == size) || (h >= w && h == size)) {
            return new int[] {w, h};
        }
        if (w >= h) {
            return new int[] {size, (int) (0.5 + size * (double) h / w)};
        }
        return new int[] {(int) (0.5 + size * (double) w / h), size};
    }

    /** The size the image will have at this scale factor. */
    public int[] outputSize(int width, int height, double scale) {
        int[] base = singleScaleSize(width, height);
        int[] t = scale == 1 ? base
                : maxSide == 0 ? new int[] {(int) (0.5 + scale * width), (int) (0.5 + scale * height)}
                : referenceScale(width, height, (int) (0.5 + Math.max(base[0], base[1]) * scale));
        if (t[0] <= 0 || t[1] <= 0) {
            // a panorama whose short side rounds to nothing (PIL's resize refuses it too)
            throw new IllegalArgumentException("a " + width + "x" + height + " image "
                    + (scale == 1 ? "resized to a longer side of " + maxSide : "at scale " + scale)
                    + " would be " + t[0] + "x" + t[1] + " pixels: too elongated to describe at this size");
        }
        return t;
    }

    /** Scale(maxSide, largest=True) with its resize-or-not rule (and upscaling only when allowed). */
    private int[] singleScaleSize(int width, int height) {
        if (maxSide == 0) {
            return new int[] {width, height};
        }
        int[] t = referenceScale(width, height, maxSide);
        if (t[0] == width && t[1] == height) {
            return t;
        }
        int before = Math.min(width, height);
        int after = Math.min(t[0], t[1]);
        boolean resize = (upscale && before < after) || before > after;
        return resize ? t : new int[] {width, height};
    }

    /** The image resized for scale factor {@code scale} (1 for single-scale extraction). */
    public RgbImage resize(RgbImage img, double scale) {
        int[] s = outputSize(img.width(), img.height(), scale);
        return Resampler.resize(img, s[0], s[1], filter);
    }

    /** Crop (when {@code crop} is not null), resize for {@code scale}: the 8-bit input picture. */
    public RgbImage apply(RgbImage img, BoundingBox crop, double scale) {
        return resize(crop == null ? img : crop.crop(img), scale);
    }

    /** Normalised channel-first floats [3, H, W] of an already resized image. */
    public float[] normalize(RgbImage img) {
        return img.toNormalizedChw(means, stds);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Preprocessing p && p.maxSide == maxSide && p.upscale == upscale && p.filter == filter
                && Arrays.equals(p.means, means) && Arrays.equals(p.stds, stds);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new Object[] {maxSide, upscale, filter, Arrays.hashCode(means), Arrays.hashCode(stds)});
    }

    @Override
    public String toString() {
        return "maxSide=" + maxSide + " upscale=" + upscale + " filter=" + filter + " means=" + Arrays.toString(means)
                + " stds=" + Arrays.toString(stds);
    }
}
