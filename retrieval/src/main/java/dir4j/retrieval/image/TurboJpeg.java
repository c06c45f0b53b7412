package dir4j.retrieval.image;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * JPEG decoding by libjpeg-turbo's TurboJPEG API, called through Java's FFM where the library is
 * installed ({@code libturbojpeg.so.0}; Debian and Ubuntu: {@code apt install libturbojpeg0}): the
 * decoder PIL itself uses, about 2.5 times as fast as the JDK's libjpeg 6b behind TwelveMonkeys
 * (bench/RESULTS.md), with the same pixels (the accurate integer IDCT and fancy upsampling, both
 * libraries' defaults). It takes baseline and progressive JPEGs whose samples are YCbCr, RGB or
 * grey; CMYK and YCCK files, and anything its header reader refuses (12-bit samples, say), go to
 * the JDK path, which converts and reports them as before. A colour profile is ignored, as PIL
 * ignores it.
 *
 * <p>{@code -Ddir4j.turbojpeg=LIBRARY} names the library (a file, or a name the dynamic linker
 * resolves), {@code -Ddir4j.turbojpeg=false} keeps to the JDK path. By default the dynamic linker
 * is asked for {@code libturbojpeg.so.0}; none found means the JDK path, without a message
 * ({@code dir4j info} says which decodes). A named library that cannot be opened is an error.
 *
 * <p>Each decode makes its own TurboJPEG handle and frees it before returning (handles are not
 * thread-safe, and nothing native outlives a call); the library reads the JPEG from the Java
 * array and writes the pixels into the image's array directly (critical downcalls) where the
 * decode is bounded to a few milliseconds ({@link #inPlace}), through native copies otherwise.
 */
public final class TurboJpeg {
    /** The system property choosing the library (or {@code false}). */
    public static final String TURBOJPEG_PROPERTY = "dir4j.turbojpeg";

    /** What the default search asks the dynamic linker for. */
    static final List<String> DEFAULT_LIBRARIES = List.of("libturbojpeg.so.0");

    private static final int TJPF_RGB = 0;
    private static final int TJCS_RGB = 0;
    private static final int TJCS_YCBCR = 1;
    private static final int TJCS_GRAY = 2;
    private static final int TJERR_WARNING = 0;

    private static volatile Optional<TurboJpeg> instance;
    private static volatile String absence = "";

    final String location;
    private final MethodHandle init;
    private final MethodHandle header;
    private final MethodHandle decompress;
    private final MethodHandle decompressOutside;
    private final MethodHandle destroy;
    private final MethodHandle errorText;
    private final MethodHandle errorCode;

    private TurboJpeg(String location, SymbolLookup lib) {
        this.location = location;
        Linker linker = Linker.nativeLinker();
        ValueLayout p = ValueLayout.ADDRESS;
        ValueLayout i = ValueLayout.JAVA_INT;
        ValueLayout size = ValueLayout.JAVA_LONG; // unsigned long
        init = linker.downcallHandle(symbol(lib, "tjInitDecompress"), FunctionDescriptor.of(p));
        // critical: the JPEG's bytes and the pixels are read and written where they lie in the Java heap
        // (no native copies). The thread does not reach a safepoint until the call returns, so every
        // collection, on every thread, waits for it: only decodes bounded to a few milliseconds are made so
        // (inPlace); a larger image, or a progressive file with many scans, goes through native copies
        Linker.Option heap = Linker.Option.critical(true);
        header = linker.downcallHandle(symbol(lib, "tjDecompressHeader3"),
                FunctionDescriptor.of(i, p, p, size, p, p, p, p), heap);
        decompress = linker.downcallHandle(symbol(lib, "tjDecompress2"),
                FunctionDescriptor.of(i, p, p, size, p, i, i, i, i, i), heap);
        decompressOutside = linker.downcallHandle(symbol(lib, "tjDecompress2"),
                FunctionDescriptor.of(i, p, p, size, p, i, i, i, i, i));
        destroy = linker.downcallHandle(symbol(lib, "tjDestroy"), FunctionDescriptor.of(i, p));
        errorText = linker.downcallHandle(symbol(lib, "tjGetErrorStr2"), FunctionDescriptor.of(p, p));
        errorCode = linker.downcallHandle(symbol(lib, "tjGetErrorCode"), FunctionDescriptor.of(i, p));
    }

    private static MemorySegment symbol(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new IllegalArgumentException("no " + name));
    }

    /** The library in use, or empty (JDK decoding). */
    static Optional<TurboJpeg> get() {
        Optional<TurboJpeg> t = instance;
        if (t == null) {
            synchronized (TurboJpeg.class) {
                if (instance == null) {
                    instance = find(System.getProperty(TURBOJPEG_PROPERTY));
                }
                t = instance;
            }
        }
        return t;
    }

    /** What decodes JPEGs here, for {@code dir4j info}. */
    public static String backend() {
        try {
            return get().map(t -> "libjpeg-turbo (" + t.location + ")")
                    .orElse("the JDK's libjpeg through TwelveMonkeys (" + absence + ")");
        } catch (IllegalStateException e) {
            return "none: " + e.getMessage();
        }
    }

    /** The library {@code setting} names ({@code null}: the default search; {@code false}: none). */
    static Optional<TurboJpeg> find(String setting) {
        if (setting != null && setting.trim().equalsIgnoreCase("false")) {
            absence = "-D" + TURBOJPEG_PROPERTY + "=false";
            return Optional.empty();
        }
        if (setting != null && !setting.isBlank()) {
            return Optional.of(open(setting.trim()).orElseThrow(() -> new IllegalStateException("-D"
                    + TURBOJPEG_PROPERTY + "=" + setting + ": cannot open it as libjpeg-turbo's TurboJPEG library (a "
                    + "libturbojpeg .so file, or a name the dynamic linker finds); -D" + TURBOJPEG_PROPERTY
                    + "=false decodes with the JDK")));
        }
        for (String name : DEFAULT_LIBRARIES) {
            Optional<TurboJpeg> t = open(name);
            if (t.isPresent()) {
                return t;
            }
        }
        absence = "no " + String.join(", ", DEFAULT_LIBRARIES) + " found";
        return Optional.empty();
    }

    private static Optional<TurboJpeg> open(String name) {
        try {
            SymbolLookup lib = name.contains("/") ? SymbolLookup.libraryLookup(java.nio.file.Path.of(name), Arena.global())
                    : SymbolLookup.libraryLookup(name, Arena.global());
            return Optional.of(new TurboJpeg(name, lib));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** A JPEG's header, as TurboJPEG reads it. */
    record Header(int width, int height, int colorspace) {
        /** Whether TurboJPEG decodes it here (else the JDK path does). */
        boolean decodable() {
            return colorspace == TJCS_YCBCR || colorspace == TJCS_GRAY || colorspace == TJCS_RGB;
        }
    }

    /**
     * The most pixels decoded in place, by a critical call: a few milliseconds (about 3.4 ms for
     * 0.8 million, bench/RESULTS.md). A 30-million-pixel progressive JPEG decoded so held every
     * collection in the JVM back for the whole 0.9 s of its decode.
     */
    static final long IN_PLACE_MAX_PIXELS = 1L << 21;

    /**
     * The most scans (SOS markers) a JPEG decoded in place may have: a progressive JPEG's scans
     * each pass over the whole image (libjpeg's own progressive files have up to 10), and a
     * crafted file can hold thousands.
     */
    static final int IN_PLACE_MAX_SCANS = 16;

    /**
     * Whether a {@code width}x{@code height} JPEG decodes in a critical call, in place in the Java
     * heap: only when its decode is bounded to a few milliseconds (no more than {@link
     * #IN_PLACE_MAX_PIXELS} pixels and {@link #IN_PLACE_MAX_SCANS} scans), since no collection
     * can run anywhere in the JVM until it returns.
     */
    static boolean inPlace(byte[] jpeg, int width, int height) {
        if ((long) width * height > IN_PLACE_MAX_PIXELS) {
            return false;
        }
        // 0xFF 0xDA is a start of scan wherever it appears: entropy-coded data stuffs every 0xFF with a 0x00
        // (a marker segment's payload could hold the pair too, which only counts one scan too many)
        int scans = 0;
        for (int k = 0; k < jpeg.length - 1; k++) {
            if (jpeg[k] == (byte) 0xFF && jpeg[k + 1] == (byte) 0xDA && ++scans > IN_PLACE_MAX_SCANS) {
                return false;
            }
        }
        return true;
    }

    /** What {@link #decode} was given to check before decoding. */
    interface SizeCheck {
        void check(int width, int height) throws IOException;
    }

    /**
     * Decodes {@code jpeg} to RGB, or returns null when TurboJPEG leaves it to the JDK path (a
     * header it cannot read, CMYK or YCCK samples, data that decodes with a warning other than a
     * premature end). {@code sizeCheck} sees the size before any pixel is allocated (the pixel
     * limit, the heap).
     *
     * @throws IOException for data that fails to decode (truncated: "truncated JPEG data (…)",
     *     corrupt: "corrupt or truncated JPEG data: …"), starting with {@code name}
     */
    RgbImage decode(byte[] jpeg, String name, SizeCheck sizeCheck) throws IOException {
        try {
            MemorySegment handle = (MemorySegment) init.invokeExact();
            if (handle.equals(MemorySegment.NULL)) {
                throw new IOException(name + ": libjpeg-turbo could not make a decoder (" + location + ")");
            }
            try {
                MemorySegment src = MemorySegment.ofArray(jpeg);
                int[] fields = new int[4]; // width, height, subsampling, colour space
                MemorySegment f = MemorySegment.ofArray(fields);
                MemorySegment w = f.asSlice(0, 4);
                MemorySegment h = f.asSlice(4, 4);
                MemorySegment subsampling = f.asSlice(8, 4);
                MemorySegment colorspace = f.asSlice(12, 4);
                int rc = (int) header.invokeExact(handle, src, (long) jpeg.length, w, h, subsampling, colorspace);
                if (rc != 0) {
                    return null; // the JDK path reads it, or says what is wrong with it
                }
                Header hd = new Header(fields[0], fields[1], fields[3]);
                if (!hd.decodable() || hd.width() <= 0 || hd.height() <= 0) {
                    return null;
                }
                sizeCheck.check(hd.width(), hd.height());
                long bytes = (long) hd.width() * hd.height() * ImageDecoder.RGB_BYTES_PER_PIXEL;
                byte[] pixels;
                try {
                    pixels = new byte[(int) bytes];
                } catch (OutOfMemoryError e) {
                    throw ImageDecoder.outOfHeap(name, hd.width(), hd.height(), e);
                }
                int pitch = hd.width() * ImageDecoder.RGB_BYTES_PER_PIXEL;
                if (inPlace(jpeg, hd.width(), hd.height())) {
                    rc = (int) decompress.invokeExact(handle, src, (long) jpeg.length, MemorySegment.ofArray(pixels),
                            hd.width(), pitch, hd.height(), TJPF_RGB, 0);
                } else {
                    try (Arena arena = Arena.ofConfined()) { // freed on every path, the pixels copied out first
                        MemorySegment in = arena.allocate(Math.max(1, jpeg.length));
                        MemorySegment.copy(jpeg, 0, in, ValueLayout.JAVA_BYTE, 0, jpeg.length);
                        MemorySegment out = arena.allocate(bytes);
                        rc = (int) decompressOutside.invokeExact(handle, in, (long) jpeg.length, out, hd.width(),
                                pitch, hd.height(), TJPF_RGB, 0);
                        MemorySegment.copy(out, ValueLayout.JAVA_BYTE, 0, pixels, 0, pixels.length);
                    } catch (OutOfMemoryError e) { // the native copies
                        throw new IOException(name + ": " + hd.width() + "x" + hd.height() + " pixels: no native "
                                + "memory for libjpeg-turbo's copy of them (" + e.getMessage() + "); decode fewer "
                                + "images at once or lower the pixel limit", e);
                    }
                }
                if (rc != 0) {
                    String message = errorText(handle);
                    boolean warning = (int) errorCode.invokeExact(handle) == TJERR_WARNING;
                    String lower = message.toLowerCase(Locale.ROOT);
                    if (warning && (lower.contains("premature end") || lower.contains("truncated"))) {
                        throw new IOException(name + ": truncated JPEG data (" + message + ")");
                    }
                    if (!warning) {
                        throw new IOException(name + ": corrupt or truncated JPEG data: " + message);
                    }
                    // another warning (extraneous bytes before a marker, say): TurboJPEG keeps only the first
                    // warning's text, so a later "premature end" (a file cut after junk before a restart marker)
                    // would pass unseen; the JDK path hears every warning and decides, as for any other JPEG
                    return null;
                }
                return new RgbImage(hd.width(), hd.height(), pixels);
            } finally {
                int ignored = (int) destroy.invokeExact(handle);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private String errorText(MemorySegment handle) throws Throwable {
        MemorySegment s = (MemorySegment) errorText.invokeExact(handle);
        return s.equals(MemorySegment.NULL) ? "unknown error" : s.reinterpret(1024).getString(0);
    }
}
