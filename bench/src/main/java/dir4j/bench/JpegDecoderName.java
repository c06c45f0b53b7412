package dir4j.bench;

import dir4j.retrieval.image.TurboJpeg;

/** Prints which decoder reads JPEGs in this JVM (for bench/image_side_by_side.sh's headings). */
public final class JpegDecoderName {
    private JpegDecoderName() {}

    public static void main(String[] args) {
        System.out.println(TurboJpeg.backend());
    }
}
