package dir4j.retrieval.extract;

import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import java.util.Arrays;

/**
 * How {@link FeatureExtractor} works.
 *
 * @param preprocessing  crop/resize/normalisation of each image (maximum side, interpolation, mean/std)
 * @param scales         scale factors; each image is described at every one and the descriptors
 *                       combined by {@link ScalePooling}
 * @param scalePoolingP  the generalized-mean exponent across scales (the reference's
 *                       {@code --gemp}, default 3); NaN takes the network's learned GeM p
 * @param batchSize      most images of one size sent through the network together
 * @param threads        decoding threads
 * @param chunkSize      images per part file of a resumable extraction
 * @param resume         reuse finished parts of an interrupted extraction with the same inputs
 * @param quiet          no progress bar
 * @param onError        an unreadable image stops the run, or is skipped and reported
 * @param decode         decoder settings (pixel limit, EXIF orientation)
 * @param remedies       what the caller offers its user when extraction stops, named in the error
 *                       messages (nothing by default)
 */
public record ExtractionOptions(Preprocessing preprocessing, double[] scales, double scalePoolingP, int batchSize,
                                int threads, int chunkSize, boolean resume, boolean quiet, OnError onError,
                                ImageDecoder.Options decode, Remedies remedies) {

    /** What to do with an image that cannot be read. */
    public enum OnError {
        /** Stop with an error naming the image (finished parts are kept for a resume). */
        FAIL,
        /** Leave the image out (no row, no id) and list it in the result and the .skipped.txt file. */
        SKIP;

        /** The policy a command line's {@code --on-error fail|skip} names. */
        public static OnError parse(String s) {
            return switch (s.toLowerCase(java.util.Locale.ROOT)) {
                case "fail" -> FAIL;
                case "skip" -> SKIP;
                default -> throw new IllegalArgumentException("--on-error must be fail or skip, got " + s);
            };
        }
    }

    /**
     * The ways out that the caller (a command) offers, which the error messages of an extraction
     * then name; null for one it does not offer, and the message leaves it out. Library callers
     * without options of their own keep {@link #NONE}.
     *
     * @param skipUnreadable how to leave unreadable images out, named after an image failed under
     *                       {@link OnError#FAIL} (dir4j extract: {@code --on-error skip})
     * @param startOver      how to discard the parts of a different extraction instead of
     *                       resuming, named as the alternative to deleting the parts folder (dir4j
     *                       extract: {@code --no-resume})
     */
    public record Remedies(String skipUnreadable, String startOver) {
        /** No option to name: messages say what is wrong and what to delete, nothing more. */
        public static final Remedies NONE = new Remedies(null, null);
    }

    /** The reference's test setting: longer side at most 1024 (see {@link Preprocessing}). */
    public static final int DEFAULT_IMAGE_SIZE = 1024;
    /** The reference's {@code --gemp} default. */
    public static final double DEFAULT_SCALE_POOLING_P = 3;
    public static final int DEFAULT_CHUNK_SIZE = 256;

    public ExtractionOptions {
        if (scales.length == 0) {
            throw new IllegalArgumentException("at least one scale is needed");
        }
        for (double s : scales) {
            if (!(s > 0) || Double.isInfinite(s)) {
                throw new IllegalArgumentException("scales must be positive, got " + s);
            }
        }
        scales = scales.clone();
        remedies = remedies == null ? Remedies.NONE : remedies;
        if (batchSize < 1 || threads < 1 || chunkSize < 1) {
            throw new IllegalArgumentException("batch size, threads and chunk size must be >= 1, got " + batchSize
                    + ", " + threads + ", " + chunkSize);
        }
        if (!Double.isNaN(scalePoolingP) && !(scalePoolingP > 0)) {
            throw new IllegalArgumentException("the scale-pooling exponent must be positive, got " + scalePoolingP);
        }
    }

    /**
     * Single scale, longer side at most 1024, bilinear, ImageNet normalisation, batches of 8,
     * up to 4 decoding threads, parts of 256 images, resume on, progress shown, failing on a bad
     * image, no remedies named in messages.
     */
    public static ExtractionOptions defaults() {
        return new ExtractionOptions(Preprocessing.imagenet(DEFAULT_IMAGE_SIZE), new double[] {1},
                DEFAULT_SCALE_POOLING_P, 8, Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors())),
                DEFAULT_CHUNK_SIZE, true, false, OnError.FAIL, ImageDecoder.Options.defaults(), Remedies.NONE);
    }

    @Override
    public double[] scales() {
        return scales.clone();
    }

    public ExtractionOptions withPreprocessing(Preprocessing p) {
        return new ExtractionOptions(p, scales, scalePoolingP, batchSize, threads, chunkSize, resume, quiet,
                onError, decode, remedies);
    }

    public ExtractionOptions withScales(double... s) {
        return new ExtractionOptions(preprocessing, s, scalePoolingP, batchSize, threads, chunkSize, resume,
                quiet, onError, decode, remedies);
    }

    public ExtractionOptions withScalePoolingP(double p) {
        return new ExtractionOptions(preprocessing, scales, p, batchSize, threads, chunkSize, resume, quiet,
                onError, decode, remedies);
    }

    public ExtractionOptions withBatchSize(int n) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, n, threads, chunkSize, resume,
                quiet, onError, decode, remedies);
    }

    public ExtractionOptions withThreads(int n) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, n, chunkSize, resume,
                quiet, onError, decode, remedies);
    }

    public ExtractionOptions withChunkSize(int n) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, n, resume,
                quiet, onError, decode, remedies);
    }

    public ExtractionOptions withResume(boolean on) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, chunkSize, on,
                quiet, onError, decode, remedies);
    }

    public ExtractionOptions withQuiet(boolean on) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, chunkSize,
                resume, on, onError, decode, remedies);
    }

    public ExtractionOptions withOnError(OnError e) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, chunkSize,
                resume, quiet, e, decode, remedies);
    }

    /** What messages name as the ways out (see {@link Remedies}). */
    public ExtractionOptions withRemedies(Remedies r) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, chunkSize, resume, quiet,
                onError, decode, r);
    }

    public ExtractionOptions withDecode(ImageDecoder.Options d) {
        return new ExtractionOptions(preprocessing, scales, scalePoolingP, batchSize, threads, chunkSize, resume, quiet,
                onError, d, remedies);
    }

    /** What changes the descriptors (not batching, threads, chunking or display). */
    String fingerprint() {
        return "preprocessing=" + preprocessing + "; scales=" + Arrays.toString(scales) + "; scalePoolingP="
                + scalePoolingP + "; decode=" + decode;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ExtractionOptions x && x.preprocessing.equals(preprocessing) && Arrays.equals(x.scales, scales)
                && Double.compare(x.scalePoolingP, scalePoolingP) == 0 && x.batchSize == batchSize
                && x.threads == threads && x.chunkSize == chunkSize && x.resume == resume && x.quiet == quiet
                && x.onError == onError && x.decode.equals(decode) && x.remedies.equals(remedies);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(scales) * 31 + preprocessing.hashCode();
    }

    @Override
    public String toString() {
        return fingerprint() + "; batchSize=" + batchSize + "; threads=" + threads + "; chunkSize=" + chunkSize
                + "; resume=" + resume + "; quiet=" + quiet + "; onError=" + onError;
    }
}
