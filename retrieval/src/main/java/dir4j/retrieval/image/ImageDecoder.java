package dir4j.retrieval.image;

import com.twelvemonkeys.imageio.plugins.jpeg.JPEGImageReaderSpi;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.MultiPixelPackedSampleModel;
import java.awt.image.Raster;
import java.awt.image.SampleModel;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.spi.IIORegistry;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes JPEG and PNG files to 8-bit RGB the way the reference's
 * {@code PIL.Image.open(f).convert('RGB')} sees them, then turns them upright by their EXIF
 * orientation (which the reference does not do; Oxford and Paris images carry none).
 *
 * <ul>
 *   <li>JPEG (TwelveMonkeys ImageIO): baseline, progressive, greyscale, CMYK and YCCK. CMYK is
 *       converted to RGB by PIL's formula {@code r = (255 - k) - c(255 - k)/255} rather than
 *       through an ICC profile, so colours equal the reference's (both are "inaccurate" for
 *       print profiles); samples are taken as Adobe-inverted, with or without an APP14
 *       segment, as PIL does. An embedded ICC colour profile is ignored, as convert('RGB') ignores
 *       it: the samples are taken as they are stored (TwelveMonkeys alone would convert them
 *       through any RGB profile other than Java's sRGB, a camera's Display P3 or Adobe RGB
 *       included).</li>
 *   <li>PNG (the JDK's reader): 1/2/4/8/16-bit greyscale, RGB, palette, with or without alpha.
 *       16-bit samples keep their high byte (PIL does so for RGB; for 16-bit greyscale PIL's
 *       convert('RGB') clips at 255 instead, a PIL quirk dir4j does not copy). Alpha is dropped,
 *       as convert('RGB') drops it: pixels under full transparency keep whatever colour the file
 *       stores. Palette indices beyond the file's palette show as PIL shows them, index i as the
 *       grey (i, i, i). Colour profiles (iCCP) and gamma are ignored, as by PIL.</li>
 * </ul>
 *
 * <p>Bad input is an {@link IOException} whose message starts with the file name and says what
 * is wrong: missing, empty, not an image, a format other than JPEG or PNG, more pixels than
 * {@link Options#maxPixels()} or than the Java heap can hold (checked from the header, before
 * anything is allocated), truncated or corrupt data. Decoders' runtime exceptions on corrupt data
 * are turned into such errors too, and so is running out of heap while decoding. Decoding is safe
 * from several threads at once (one reader per call).
 */
public final class ImageDecoder {
    /** Pillow's decompression-bomb error threshold (2 × Image.MAX_IMAGE_PIXELS). */
    public static final long DEFAULT_MAX_PIXELS = 2L * 89_478_485L;
    /** Files larger than this are refused before being read (no JPEG or PNG of a sane size is). */
    public static final long MAX_FILE_BYTES = 1L << 30;


    /**
     * How to decode.
     *
     * @param maxPixels       refuse images with more pixels than this (width × height, from the header)
     * @param exifOrientation turn the picture upright by its EXIF Orientation tag
     */
    public record Options(long maxPixels, boolean exifOrientation) {
        public Options {
            if (maxPixels <= 0) {
                // names the option too: dir4j extract passes --max-pixels straight through
                throw new IllegalArgumentException("the image pixel limit (--max-pixels) must be at least 1, got "
                        + maxPixels);
            }
        }

        /** {@link #DEFAULT_MAX_PIXELS}, EXIF orientation applied. */
        public static Options defaults() {
            return new Options(DEFAULT_MAX_PIXELS, true);
        }

        public Options withMaxPixels(long limit) {
            return new Options(limit, exifOrientation);
        }

        public Options withExifOrientation(boolean on) {
            return new Options(maxPixels, on);
        }
    }

    private ImageDecoder() {}

    /** Reads a JPEG or PNG file with {@link Options#defaults()}. */
    public static RgbImage read(Path file) throws IOException {
        return read(file, Options.defaults());
    }

    /** Reads a JPEG or PNG file. */
    public static RgbImage read(Path file, Options options) throws IOException {
        checkFile(file);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (java.nio.file.AccessDeniedException e) {
            throw permissionDenied(file, e);
        }
        return decode(bytes, file.toString(), options);
    }

    /** The JDK names only the file; say what is wrong with it. */
    private static IOException permissionDenied(Path file, java.nio.file.AccessDeniedException e) {
        return new IOException(file + ": permission denied (this user may not read it)", e);
    }

    /**
     * Checks from its first bytes alone that {@link #read} will take the file: that it exists, is
     * not a directory, is neither empty nor over {@link #MAX_FILE_BYTES}, and is a JPEG or PNG.
     * What those bytes cannot tell (truncated or corrupt data, a size over the pixel limit) only a
     * read finds. Cheap enough to run over a whole training list before training starts.
     *
     * @throws IOException the error {@link #read} would give for such a file, starting with its name
     */
    public static void probe(Path file) throws IOException {
        checkFile(file);
        byte[] head = new byte[16];
        int n = 0;
        try (var in = Files.newInputStream(file)) {
            for (int r; n < head.length && (r = in.read(head, n, head.length - n)) > 0;) {
                n += r;
            }
        } catch (java.nio.file.AccessDeniedException e) {
            throw permissionDenied(file, e);
        }
        if (n == 0) { // by what the file holds, as read decides, not by its stated size (0 on some file systems)
            throw new IOException(file + ": " + EMPTY);
        }
        requireSupported(java.util.Arrays.copyOf(head, n), file.toString());
    }

    /** The file's size, after refusing a missing file, a directory and an oversized one. */
    private static long checkFile(Path file) throws IOException {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new IOException(file + ": no such file" + danglingLink(file));
        }
        if (Files.isDirectory(file)) {
            throw new IOException(file + ": is a directory, not an image");
        }
        if (size > MAX_FILE_BYTES) {
            throw new IOException(file + ": " + size + " bytes, over the " + MAX_FILE_BYTES
                    + "-byte limit for one image file");
        }
        return size;
    }

    /** " (a symbolic link to T, which does not exist)" for a dangling link, else "". */
    private static String danglingLink(Path file) {
        try {
            return Files.isSymbolicLink(file) ? " (a symbolic link to " + Files.readSymbolicLink(file)
                    + ", which does not exist)" : "";
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    private static final String EMPTY = "the file is empty (0 bytes)";

    /** The file's format, when it is one dir4j decodes; else the error naming what it is. */
    private static ImageFormat requireSupported(byte[] data, String name) throws IOException {
        ImageFormat format = ImageFormat.sniff(data);
        if (!format.supported) {
            throw new IOException(name + ": " + (format == ImageFormat.UNKNOWN
                    ? "not a JPEG or PNG image (it starts with bytes " + hex(data) + ")"
                    : "a " + format + " image; dir4j reads JPEG and PNG only (convert it first)"));
        }
        return format;
    }

    /**
     * Decodes an encoded JPEG or PNG held in memory.
     *
     * @param name names the image in error messages (its path)
     */
    public static RgbImage decode(byte[] data, String name, Options options) throws IOException {
        if (data.length == 0) {
            throw new IOException(name + ": " + EMPTY);
        }
        ImageFormat format = requireSupported(data, name);
        RgbImage img;
        try {
            img = decodeRaster(data, name, format, options);
        } catch (IOException e) {
            throw e.getMessage() != null && e.getMessage().startsWith(name + ":") ? e
                    : new IOException(name + ": corrupt or truncated " + format + " data: " + describe(e), e);
        } catch (RuntimeException e) {
            throw new IOException(name + ": corrupt " + format + " data (the decoder failed: " + describe(e) + ")", e);
        }
        if (options.exifOrientation()) {
            int orientation = ExifOrientation.read(data, format);
            try {
                img = ExifOrientation.apply(img, orientation);
            } catch (OutOfMemoryError e) { // the turned copy: as large as the decoded image
                throw outOfHeap(name, img.width(), img.height(), e);
            }
        }
        return img;
    }

    private static RgbImage decodeRaster(byte[] data, String name, ImageFormat format, Options options)
            throws IOException {
        if (format == ImageFormat.JPEG) {
            java.util.Optional<TurboJpeg> turbo = TurboJpeg.get();
            if (turbo.isPresent()) {
                RgbImage img = turbo.get().decode(data, name, (w, h) -> {
                    checkPixelLimit(name, w, h, options);
                    requireRoom(name, w, h, 0); // TurboJPEG writes the pixels straight into the image's array
                });
                if (img != null) {
                    return img;
                }
            }
        }
        return decodeWithImageIo(data, name, format, options);
    }

    /** Refuses an image over the pixel limit, from its header. */
    private static void checkPixelLimit(String name, int w, int h, Options options) throws IOException {
        if ((long) w * h > options.maxPixels()) {
            throw new IOException(name + ": " + w + "x" + h + " = " + (long) w * h + " pixels, over the limit of "
                    + options.maxPixels() + " (a guard against decompression bombs; raise it if the image is "
                    + "genuine)");
        }
    }

    /** The JDK's PNG reader, or TwelveMonkeys' JPEG reader (over the JDK's libjpeg). */
    static RgbImage decodeWithImageIo(byte[] data, String name, ImageFormat format, Options options)
            throws IOException {
        ImageReader reader = format == ImageFormat.JPEG ? JpegProvider.SPI.createReaderInstance() : pngReader();
        Set<String> warnings = new LinkedHashSet<>();
        reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
        // PIL's convert('RGB') ignores an embedded colour profile; TwelveMonkeys would convert through
        // any RGB profile but Java's own sRGB (a camera's Display P3 or Adobe RGB: tens of levels off)
        byte[] encoded = format == ImageFormat.JPEG ? withoutIccProfile(data) : data;
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            reader.setInput(in, true, false);
            int w;
            int h;
            try {
                w = reader.getWidth(0);
                h = reader.getHeight(0);
            } catch (IOException e) {
                throw new IOException(name + ": corrupt or truncated " + format + " header: " + describe(e), e);
            }
            if (w <= 0 || h <= 0) {
                throw new IOException(name + ": " + format + " header gives an empty size " + w + "x" + h);
            }
            checkPixelLimit(name, w, h, options);
            ImageReadParam param = reader.getDefaultReadParam();
            if (format == ImageFormat.JPEG) {
                ImageTypeSpecifier cmyk = cmykType(reader);
                if (cmyk != null) {
                    // keep the ink values and convert as PIL does, not through a colour profile
                    param.setDestinationType(cmyk);
                }
            }
            requireRoom(name, w, h, rasterBitsPerPixel(reader, param));
            BufferedImage decoded;
            try {
                decoded = reader.read(0, param);
            } catch (IOException e) {
                for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                    if (c instanceof OutOfMemoryError oom) { // the JDK's PNG reader wraps it
                        throw outOfHeap(name, w, h, oom);
                    }
                }
                throw new IOException(name + ": corrupt or truncated " + format + " data: " + describe(e)
                        + (warnings.isEmpty() ? "" : " (decoder warnings: " + String.join("; ", warnings) + ")"), e);
            } catch (OutOfMemoryError e) {
                throw outOfHeap(name, w, h, e);
            }
            for (String warning : warnings) {
                String lower = warning.toLowerCase(Locale.ROOT);
                if (lower.contains("truncated") || lower.contains("premature end")) {
                    throw new IOException(name + ": truncated " + format + " data (" + warning + ")");
                }
            }
            try {
                return toRgb(decoded, name, format == ImageFormat.PNG ? pngPaletteEntries(data) : Integer.MAX_VALUE);
            } catch (OutOfMemoryError e) {
                throw outOfHeap(name, w, h, e);
            }
        } finally {
            reader.dispose();
        }
    }

    /**
     * The JPEG without its ICC profile (APP2 segments starting {@code ICC_PROFILE\0}, before the
     * first scan), so that the reader hands over the samples as stored; the same array when it
     * has none or its segments cannot be walked (the reader then says what is wrong).
     */
    static byte[] withoutIccProfile(byte[] data) {
        java.io.ByteArrayOutputStream kept = null;
        int copied = 0; // data[0, copied) is in kept, once a segment has been dropped
        int p = 2; // after SOI
        while (p + 4 <= data.length && (data[p] & 0xff) == 0xff) {
            int marker = data[p + 1] & 0xff;
            if (marker == 0xff) { // fill byte
                p++;
                continue;
            }
            if (marker == 0xda || marker == 0xd9 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
                break; // the scan (or a marker without a length, not expected here): no metadata beyond
            }
            int end = p + 2 + ((data[p + 2] & 0xff) << 8 | (data[p + 3] & 0xff));
            if (end <= p + 3 || end > data.length) {
                break;
            }
            if (marker == 0xe2 && end - (p + 4) >= ICC_SIGNATURE.length
                    && java.util.Arrays.equals(data, p + 4, p + 4 + ICC_SIGNATURE.length,
                            ICC_SIGNATURE, 0, ICC_SIGNATURE.length)) {
                if (kept == null) {
                    kept = new java.io.ByteArrayOutputStream(data.length);
                }
                kept.write(data, copied, p - copied);
                copied = end;
            }
            p = end;
        }
        if (kept == null) {
            return data;
        }
        kept.write(data, copied, data.length - copied);
        return kept.toByteArray();
    }

    private static final byte[] ICC_SIGNATURE = "ICC_PROFILE\0".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    /** Bytes a pixel of the RGB copy every decode makes. */
    static final int RGB_BYTES_PER_PIXEL = 3;

    /**
     * Bits a pixel of the raster the decoder will fill: that of the destination type when one is
     * set (CMYK), else of the reader's first image type (what it decodes into by default; one byte
     * for grayscale, three for RGB), 24 when the reader cannot say.
     */
    private static int rasterBitsPerPixel(ImageReader reader, ImageReadParam param) {
        try {
            ImageTypeSpecifier type = param.getDestinationType();
            if (type == null) {
                Iterator<ImageTypeSpecifier> types = reader.getImageTypes(0);
                type = types != null && types.hasNext() ? types.next() : null;
            }
            if (type != null) {
                SampleModel sm = type.getSampleModel(1, 1);
                return sm instanceof MultiPixelPackedSampleModel packed ? packed.getPixelBitStride()
                        : sm.getNumDataElements() * DataBuffer.getDataTypeSize(sm.getDataType());
            }
        } catch (IOException | RuntimeException e) {
            // the read says what is wrong with the header
        }
        return 24;
    }

    /**
     * Refuses, before the decoder allocates anything, an image whose pixels cannot be held: more
     * than one Java array of RGB, or more than this JVM's whole heap ({@code -Xmx}) for the
     * decoder's raster ({@code rasterBits} a pixel) and the RGB copy, at the least. Under the
     * default pixel limit (Pillow's) a small file can claim 179 million pixels: a gigabyte of heap,
     * which would otherwise be an OutOfMemoryError naming nothing (in a service, in whichever thread
     * allocated next).
     */
    private static void requireRoom(String name, int w, int h, int rasterBits) throws IOException {
        long pixels = (long) w * h;
        if (pixels * RGB_BYTES_PER_PIXEL > Integer.MAX_VALUE - 8) {
            throw new IOException(name + ": " + w + "x" + h + " = " + pixels + " pixels, more than one RGB image can "
                    + "hold (" + (Integer.MAX_VALUE - 8) / RGB_BYTES_PER_PIXEL + " pixels)");
        }
        long heap = Runtime.getRuntime().maxMemory();
        long needed = pixels * RGB_BYTES_PER_PIXEL + ((long) w * rasterBits + 7) / 8 * h;
        if (needed > heap) {
            throw new IOException(name + ": " + w + "x" + h + " pixels need at least "
                    + needed / (1 << 20) + " MiB of Java heap to decode, more than this JVM's "
                    + heap / (1 << 20) + " MiB (-Xmx); give it more heap or lower the pixel limit (dir4j extract "
                    + "--max-pixels; Options.maxPixels in Java)");
        }
    }

    /** The error for an image whose decoding ran out of heap (several decoding at once, say). */
    static IOException outOfHeap(String name, int w, int h, OutOfMemoryError e) {
        return new IOException(name + ": " + w + "x" + h + " pixels did not fit in the free Java heap ("
                + Runtime.getRuntime().maxMemory() / (1 << 20) + " MiB at most, -Xmx): " + e.getMessage()
                + "; give it more heap, decode fewer images at once or lower the pixel limit (dir4j extract --max-pixels; "
                + "Options.maxPixels in Java)",
                e);
    }

    /**
     * TwelveMonkeys' JPEG reader as registered with ImageIO (it finds the JDK's reader, which it
     * delegates baseline decoding to, when registered), looked up once.
     */
    private static final class JpegProvider {
        static final JPEGImageReaderSpi SPI = find();

        private static JPEGImageReaderSpi find() {
            IIORegistry registry = IIORegistry.getDefaultInstance();
            JPEGImageReaderSpi spi = registry.getServiceProviderByClass(JPEGImageReaderSpi.class);
            if (spi == null) {
                // not seen by the registry's class loader (an application server, a plugin host)
                ImageIO.scanForPlugins();
                spi = registry.getServiceProviderByClass(JPEGImageReaderSpi.class);
            }
            if (spi == null) {
                registry.registerServiceProvider(new JPEGImageReaderSpi());
                spi = registry.getServiceProviderByClass(JPEGImageReaderSpi.class);
            }
            if (spi == null) {
                throw new IllegalStateException("TwelveMonkeys' JPEG reader could not be registered with ImageIO");
            }
            return spi;
        }
    }

    private static ImageReader pngReader() throws IOException {
        Iterator<ImageReader> it = ImageIO.getImageReadersByFormatName("png");
        if (!it.hasNext()) {
            throw new IOException("no PNG reader in this Java runtime (javax.imageio is incomplete)");
        }
        return it.next();
    }

    private static ImageTypeSpecifier cmykType(ImageReader reader) throws IOException {
        for (Iterator<ImageTypeSpecifier> it = reader.getImageTypes(0); it.hasNext();) {
            ImageTypeSpecifier t = it.next();
            if (t.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_CMYK) {
                return t;
            }
        }
        return null;
    }

    /**
     * Entries of a palette PNG's PLTE chunk (0 when it has none or its chunks cannot be walked: a
     * palette image without PLTE is an error the reader reports); {@link Integer#MAX_VALUE} for
     * other colour types (the JDK's reader gives 1, 2 and 4-bit greyscale a palette of its own).
     */
    static int pngPaletteEntries(byte[] png) {
        if (png.length < 26 || png[25] != 3) { // IHDR's colour type: 3 is palette
            return Integer.MAX_VALUE;
        }
        long at = 8; // after the signature (a long: a chunk length near 2^32 must not wrap the position)
        while (at + 8 <= png.length) {
            int p = (int) at;
            long len = ((long) (png[p] & 0xff) << 24) | (png[p + 1] & 0xff) << 16 | (png[p + 2] & 0xff) << 8
                    | (png[p + 3] & 0xff);
            if (png[p + 4] == 'P' && png[p + 5] == 'L' && png[p + 6] == 'T' && png[p + 7] == 'E') {
                return (int) (len / 3);
            }
            if (png[p + 4] == 'I' && (png[p + 5] == 'D' || png[p + 5] == 'E')) { // IDAT or IEND: no PLTE before
                return 0;
            }
            at += 12 + len;
        }
        return 0;
    }

    /** 8-bit RGB from a decoded image's raster (no colour management, alpha dropped). */
    static RgbImage toRgb(BufferedImage img, String name) throws IOException {
        return toRgb(img, name, Integer.MAX_VALUE);
    }

    /**
     * As {@link #toRgb(BufferedImage, String)}; a palette index at or beyond {@code paletteEntries}
     * (the file's own palette, which the JDK's PNG reader pads with its last colour) is the grey
     * {@code (i, i, i)}, as PIL, whose palette starts as that ramp, shows it.
     */
    static RgbImage toRgb(BufferedImage img, String name, int paletteEntries) throws IOException {
        int w = img.getWidth();
        int h = img.getHeight();
        Raster r = img.getRaster();
        ColorModel cm = img.getColorModel();
        byte[] out = new byte[Math.multiplyExact(Math.multiplyExact(w, h), 3)];
        int[] a = new int[w];
        int[] b = new int[w];
        int[] c = new int[w];
        int[] k = new int[w];
        if (cm instanceof IndexColorModel icm) {
            int n = icm.getMapSize();
            byte[] reds = new byte[n];
            byte[] greens = new byte[n];
            byte[] blues = new byte[n];
            icm.getReds(reds);
            icm.getGreens(greens);
            icm.getBlues(blues);
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, a);
                for (int x = 0; x < w; x++) {
                    int i = a[x];
                    int o = (y * w + x) * 3;
                    if (i >= paletteEntries || i >= n) {
                        out[o] = (byte) i;
                        out[o + 1] = (byte) i;
                        out[o + 2] = (byte) i;
                    } else {
                        out[o] = reds[i];
                        out[o + 1] = greens[i];
                        out[o + 2] = blues[i];
                    }
                }
            }
            return new RgbImage(w, h, out);
        }
        int space = cm.getColorSpace().getType();
        int colours = cm.getNumColorComponents();
        int[] bits = cm.getComponentSize();
        if (space == ColorSpace.TYPE_GRAY && colours == 1) {
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, a);
                for (int x = 0; x < w; x++) {
                    byte v = (byte) to8(a[x], bits[0]);
                    int o = (y * w + x) * 3;
                    out[o] = v;
                    out[o + 1] = v;
                    out[o + 2] = v;
                }
            }
        } else if (space == ColorSpace.TYPE_RGB && colours == 3) {
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, a);
                r.getSamples(0, y, w, 1, 1, b);
                r.getSamples(0, y, w, 1, 2, c);
                for (int x = 0; x < w; x++) {
                    int o = (y * w + x) * 3;
                    out[o] = (byte) to8(a[x], bits[0]);
                    out[o + 1] = (byte) to8(b[x], bits[1]);
                    out[o + 2] = (byte) to8(c[x], bits[2]);
                }
            }
        } else if (space == ColorSpace.TYPE_CMYK && colours == 4) {
            for (int y = 0; y < h; y++) {
                r.getSamples(0, y, w, 1, 0, a);
                r.getSamples(0, y, w, 1, 1, b);
                r.getSamples(0, y, w, 1, 2, c);
                r.getSamples(0, y, w, 1, 3, k);
                for (int x = 0; x < w; x++) {
                    // TwelveMonkeys' CMYK samples are 255 - ink (the Adobe convention), with or
                    // without an APP14 segment, as PIL assumes too: nk = 255 - ink = sample
                    int nk = to8(k[x], bits[3]);
                    int o = (y * w + x) * 3;
                    out[o] = (byte) (nk - mulDiv255(255 - to8(a[x], bits[0]), nk));
                    out[o + 1] = (byte) (nk - mulDiv255(255 - to8(b[x], bits[1]), nk));
                    out[o + 2] = (byte) (nk - mulDiv255(255 - to8(c[x], bits[2]), nk));
                }
            }
        } else {
            throw new IOException(name + ": unsupported colour layout (" + colours + " components in colour space type "
                    + space + ")");
        }
        return new RgbImage(w, h, out);
    }

    /** A sample of {@code bits} bits as 8 bits: the high byte of 16, exact multiples for 1, 2 and 4. */
    private static int to8(int v, int bits) {
        if (bits == 8) {
            return v;
        }
        if (bits > 8) {
            return v >>> (bits - 8);
        }
        return v * 255 / ((1 << bits) - 1);
    }

    /** PIL's MULDIV255: a·b/255 rounded, in integers. */
    private static int mulDiv255(int a, int b) {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static String hex(byte[] data) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(4, data.length); i++) {
            s.append(String.format("%02x ", data[i] & 0xff));
        }
        return s.toString().strip();
    }

    private static String describe(Throwable e) {
        List<String> parts = new ArrayList<>();
        for (Throwable t = e; t != null && parts.size() < 3; t = t.getCause()) {
            parts.add(t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage());
        }
        return String.join(": ", parts);
    }
}
