package dir4j.engine.cpu;

/**
 * The shape of a 2-d convolution without groups, as PyTorch's {@code conv2d} takes it: input
 * x[batch, inChannels, height, width], weight w[outChannels, inChannels, kernelH, kernelW],
 * output y[batch, outChannels, outHeight, outWidth]. The constructor rejects a geometry whose
 * output would be empty.
 */
public record Conv2dGeometry(int batch, int inChannels, int height, int width, int outChannels,
        int kernelH, int kernelW, int strideH, int strideW, int padH, int padW, int dilationH, int dilationW) {

    public Conv2dGeometry {
        // The fields are not yet assigned inside a compact constructor, so messages spell them out.
        String shape = "x[" + batch + "," + inChannels + "," + height + "," + width + "], w[" + outChannels + ","
                + inChannels + "," + kernelH + "," + kernelW + "], stride " + strideH + "x" + strideW + ", pad "
                + padH + "x" + padW + ", dilation " + dilationH + "x" + dilationW;
        if (batch < 0 || inChannels <= 0 || height <= 0 || width <= 0 || outChannels <= 0) {
            throw new IllegalArgumentException("conv2d: sizes must be positive (batch may be 0), got " + shape);
        }
        if (kernelH <= 0 || kernelW <= 0 || strideH <= 0 || strideW <= 0 || dilationH <= 0 || dilationW <= 0) {
            throw new IllegalArgumentException("conv2d: kernel, stride and dilation must be positive, got " + shape);
        }
        if (padH < 0 || padW < 0) {
            throw new IllegalArgumentException("conv2d: padding must not be negative, got " + shape);
        }
        if (outSize(height, kernelH, strideH, padH, dilationH) <= 0
                || outSize(width, kernelW, strideW, padW, dilationW) <= 0) {
            throw new IllegalArgumentException("conv2d: a " + kernelH + "x" + kernelW + " kernel (dilation "
                    + dilationH + "x" + dilationW + ") does not fit the " + height + "x" + width
                    + " input padded by " + padH + "x" + padW + ": the output would be "
                    + outSize(height, kernelH, strideH, padH, dilationH) + "x"
                    + outSize(width, kernelW, strideW, padW, dilationW) + " (" + shape
                    + "); pad more or use a smaller kernel");
        }
    }

    /** Square kernel, stride, padding and dilation. */
    public static Conv2dGeometry of(int batch, int inChannels, int height, int width, int outChannels,
            int kernel, int stride, int pad, int dilation) {
        return new Conv2dGeometry(batch, inChannels, height, width, outChannels, kernel, kernel, stride, stride,
                pad, pad, dilation, dilation);
    }

    /** ⌊(H + 2·padH − dilationH·(kernelH − 1) − 1) / strideH⌋ + 1, PyTorch's formula. */
    public int outHeight() {
        return outSize(height, kernelH, strideH, padH, dilationH);
    }

    /** ⌊(W + 2·padW − dilationW·(kernelW − 1) − 1) / strideW⌋ + 1, PyTorch's formula. */
    public int outWidth() {
        return outSize(width, kernelW, strideW, padW, dilationW);
    }

    /** Floats in x. */
    public long inputSize() {
        return (long) batch * inChannels * height * width;
    }

    /** Floats in w. */
    public long weightSize() {
        return (long) outChannels * inChannels * kernelH * kernelW;
    }

    /** Floats in y. */
    public long outputSize() {
        return (long) batch * outChannels * outHeight() * outWidth();
    }

    /** Multiply-adds of one forward pass (each of backward-data and backward-filter costs the same). */
    public long macs() {
        return outputSize() * inChannels * kernelH * kernelW;
    }

    /** Whether the convolution is a plain per-pixel matrix product: 1×1, stride 1, no padding. */
    public boolean isPointwise() {
        return kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0;
    }

    /**
     * The 1×1, stride-1 convolution over this one's output grid: for an unpadded strided 1×1
     * convolution, the same product on its input subsampled at the stride.
     */
    public Conv2dGeometry pointwiseOnOutputGrid() {
        return of(batch, inChannels, outHeight(), outWidth(), outChannels, 1, 1, 0, 1);
    }

    private static int outSize(int in, int k, int stride, int pad, int dilation) {
        long span = (long) in + 2L * pad - (long) dilation * (k - 1) - 1;
        return span < 0 ? 0 : (int) (span / stride + 1);
    }
}
