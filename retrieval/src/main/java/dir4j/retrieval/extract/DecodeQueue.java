package dir4j.retrieval.extract;

import dir4j.retrieval.data.ImageRef;
import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.image.RgbImage;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Decodes and preprocesses images on a small thread pool ahead of the network, handing them
 * back in list order: at most {@code window} images are decoded or waiting at once (a bounded
 * queue), so memory stays flat while the network works.
 */
final class DecodeQueue implements AutoCloseable {
    /** One image ready for the network: per scale, normalised [3, h, w] floats, or why it failed. */
    record Prepared(int index, float[][] chw, int[][] sizes, IOException failure) {}

    private final List<ImageRef> images;
    private final int[] order;
    private final Preprocessing preprocessing;
    private final double[] scales;
    private final ImageDecoder.Options decode;
    private final ExecutorService pool;
    private final ArrayDeque<Future<Prepared>> pending = new ArrayDeque<>();
    private final int window;
    private int submitted;

    /**
     * @param order indices into {@code images} to prepare, in the order {@link #next()} returns them
     */
    DecodeQueue(List<ImageRef> images, int[] order, Preprocessing preprocessing, double[] scales,
                ImageDecoder.Options decode, int threads, int window) {
        this.images = images;
        this.order = order;
        this.preprocessing = preprocessing;
        this.scales = scales;
        this.decode = decode;
        this.window = Math.max(1, window);
        AtomicInteger n = new AtomicInteger();
        ThreadFactory daemons = r -> {
            Thread t = new Thread(r, "dir4j-decode-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        this.pool = Executors.newFixedThreadPool(threads, daemons);
        fill();
    }

    private void fill() {
        while (submitted < order.length && pending.size() < window) {
            int index = order[submitted++];
            pending.add(pool.submit(() -> prepare(index)));
        }
    }

    /** The next image in order (blocks until it is decoded). */
    Prepared next() throws IOException {
        Future<Prepared> f = pending.poll();
        if (f == null) {
            throw new IllegalStateException("no image left to decode");
        }
        fill();
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for an image to decode", e);
        } catch (ExecutionException | CancellationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IOException("decoding failed: " + cause, cause);
        }
    }

    private Prepared prepare(int index) {
        ImageRef ref = images.get(index);
        try {
            RgbImage img = ImageDecoder.read(ref.path(), decode);
            Prepared p = prepare(img, ref.crop(), preprocessing, scales, ref.path().toString());
            return new Prepared(index, p.chw(), p.sizes(), null);
        } catch (IOException e) {
            return new Prepared(index, null, null, e);
        } catch (RuntimeException e) {
            // a bug or an unforeseen decoder failure: still this image's failure, named by its path
            return new Prepared(index, null, null, new IOException(ref.path() + ": could not be prepared ("
                    + e + ")", e));
        }
    }

    /**
     * One decoded image made ready for the network: cropped to {@code crop} (when not null), then
     * per scale resized and normalised to [3, h, w] floats (index −1 in the result).
     *
     * @param name how errors name the image
     * @throws IOException naming the image when the crop or a scale does not fit it
     */
    static Prepared prepare(RgbImage img, dir4j.retrieval.image.BoundingBox crop, Preprocessing preprocessing,
                            double[] scales, String name) throws IOException {
        if (crop != null) {
            try {
                img = crop.crop(img);
            } catch (IllegalArgumentException e) {
                throw new IOException(name + ": query region " + crop + " of a " + img.width() + "x"
                        + img.height() + " image: " + e.getMessage(), e);
            }
        }
        float[][] chw = new float[scales.length][];
        int[][] sizes = new int[scales.length][];
        for (int s = 0; s < scales.length; s++) {
            RgbImage r;
            try {
                r = preprocessing.resize(img, scales[s]);
            } catch (IllegalArgumentException e) {
                throw new IOException(name + ": " + e.getMessage(), e);
            }
            chw[s] = preprocessing.normalize(r);
            sizes[s] = new int[] {r.height(), r.width()};
        }
        return new Prepared(-1, chw, sizes, null);
    }

    @Override
    public void close() {
        for (Future<Prepared> f : pending) {
            f.cancel(true);
        }
        pending.clear();
        pool.shutdownNow();
    }
}
