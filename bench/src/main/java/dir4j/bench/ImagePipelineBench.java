package dir4j.bench;

import dir4j.retrieval.image.ImageDecoder;
import dir4j.retrieval.image.Preprocessing;
import dir4j.retrieval.image.RgbImage;
import dir4j.retrieval.image.TurboJpeg;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The extraction's input side for one picture, one thread (the decode queue runs one per
 * worker): JPEG decode (by libjpeg-turbo where libturbojpeg is installed, as {@code dir4j} decodes,
 * else by the JDK's libjpeg through TwelveMonkeys ImageIO, which {@code -jvmArgsAppend
 * -Ddir4j.turbojpeg=false} forces; setup prints which), resize to a longer side of 512 (the
 * reference's {@code Scale}, PIL-compatible bilinear), and ImageNet normalisation to channel-first
 * floats.
 * Input: the JPEG at {@code -p image=PATH} (bench/torch_cpu_image.py writes one with PIL and times
 * PIL + torchvision's ToTensor/Normalize on it; bench/image_side_by_side.sh runs both), or, when
 * empty, a 1024×768 synthetic picture encoded here.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", "-Djava.awt.headless=true"})
public class ImagePipelineBench {
    /** A JPEG file; empty: a 1024x768 synthetic picture. */
    @Param({""})
    public String image;

    /** Longer side after resizing. */
    @Param({"512"})
    public int size;

    byte[] jpeg;
    RgbImage decoded;
    RgbImage resized;
    Preprocessing prep;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        jpeg = image.isEmpty() ? synthetic(1024, 768) : Files.readAllBytes(Path.of(image));
        prep = Preprocessing.imagenet(size);
        decoded = ImageDecoder.decode(jpeg, "bench.jpg", ImageDecoder.Options.defaults());
        resized = prep.resize(decoded, 1);
        System.out.printf("%n%s: %dx%d, %d bytes -> %dx%d; JPEG decoder: %s%n", image.isEmpty() ? "synthetic" : image,
                decoded.width(), decoded.height(), jpeg.length, resized.width(), resized.height(), TurboJpeg.backend());
    }

    /** A smooth colour field with fine stripes (something for the JPEG coder to keep). */
    static byte[] synthetic(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int r = (x * 255) / w;
                int g = (y * 255) / h;
                int b = ((x / 7 + y / 5) & 1) * 120 + 60;
                img.setRGB(x, y, (r << 16) | (g << 8) | b);
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "jpg", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    @Benchmark
    public RgbImage decode() throws IOException {
        return ImageDecoder.decode(jpeg, "bench.jpg", ImageDecoder.Options.defaults());
    }

    @Benchmark
    public RgbImage resize() {
        return prep.resize(decoded, 1);
    }

    @Benchmark
    public float[] normalize() {
        return prep.normalize(resized);
    }

    /** All three, as one picture of an extraction. */
    @Benchmark
    public float[] pipeline() throws IOException {
        return prep.normalize(prep.resize(ImageDecoder.decode(jpeg, "bench.jpg", ImageDecoder.Options.defaults()), 1));
    }
}
