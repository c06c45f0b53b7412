package dir4j.retrieval.image;

import dir4j.engine.Tensor;

/**
 * An 8-bit RGB picture, row-major with interleaved channels ({@code r g b r g b …}), as PIL's
 * {@code Image.convert('RGB')} holds it: every step of the reference's preprocessing (crop,
 * resize) works on such 8-bit images, so dir4j does too, and turns them into floats only at the
 * end ({@link #toTensor()}, {@link #toNormalizedChw(float[], float[])}).
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] pixels;

    /**
     * @param pixels {@code width * height * 3} bytes, row-major RGB (kept, not copied)
     */
    public RgbImage(int width, int height, byte[] pixels) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size must be positive, got " + width + "x" + height);
        }
        if ((long) width * height * 3 != pixels.length) {
            throw new IllegalArgumentException(pixels.length + " bytes do not hold a " + width + "x" + height
                    + " RGB image (" + (long) width * height * 3 + " needed)");
        }
        this.width = width;
        this.height = height;
        this.pixels = pixels;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** The interleaved RGB bytes (the image's own array, not a copy). */
    public byte[] pixels() {
        return pixels;
    }

    /** Channel {@code c} (0 red, 1 green, 2 blue) of pixel (x, y), 0..255. */
    public int get(int x, int y, int c) {
        return pixels[(y * width + x) * 3 + c] & 0xff;
    }

    /** A float32 tensor [3, H, W] with values in [0, 1] (byte / 255), as torchvision's ToTensor. */
    public Tensor toTensor() {
        return Tensor.of(toNormalizedChw(new float[] {0, 0, 0}, new float[] {1, 1, 1}), 3, height, width);
    }

    /**
     * Channel-first floats {@code (byte / 255 - mean[c]) / std[c]}, as torchvision's ToTensor then
     * Normalize(mean, std): the network's input layout [3, H, W], flattened.
     */
    public float[] toNormalizedChw(float[] means, float[] stds) {
        int plane = width * height;
        float[] out = new float[3 * plane];
        for (int c = 0; c < 3; c++) {
            // ToTensor divides by 255 first, Normalize then subtracts and divides: same order here
            float mean = means[c];
            float std = stds[c];
            int base = c * plane;
            for (int i = 0; i < plane; i++) {
                float v = (pixels[i * 3 + c] & 0xff) / 255f;
                out[base + i] = (v - mean) / std;
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "RgbImage " + width + "x" + height;
    }
}
