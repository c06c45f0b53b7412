package dir4j.retrieval.image;

import java.nio.charset.StandardCharsets;

/**
 * The EXIF Orientation tag (0x0112 in IFD0) of a JPEG (APP1 "Exif" segment) or PNG (eXIf chunk),
 * and the transposition that shows the picture upright, as PIL's {@code ImageOps.exif_transpose}:
 * 1 as stored, 2 mirrored left-right, 3 rotated 180°, 4 mirrored top-bottom, 5 transposed
 * (mirror along the main diagonal), 6 rotated 90° clockwise, 7 transversed (mirror along the
 * anti-diagonal), 8 rotated 90° counter-clockwise.
 *
 * <p>Only the few bytes needed are parsed, every offset bounds-checked; malformed or missing
 * metadata, or a value outside 1..8, reads as 1 (no change), as viewers do.
 */
final class ExifOrientation {
    private static final int TAG_ORIENTATION = 0x0112;
    private static final int TYPE_SHORT = 3;

    private ExifOrientation() {}

    /** The orientation of an encoded JPEG or PNG file, 1..8 (1 when absent). */
    static int read(byte[] file, ImageFormat format) {
        try {
            return switch (format) {
                case JPEG -> fromJpeg(file);
                case PNG -> fromPng(file);
                default -> 1;
            };
        } catch (IndexOutOfBoundsException e) {
            return 1;
        }
    }

    private static int fromJpeg(byte[] b) {
        int p = 2; // after SOI
        while (p + 4 <= b.length) {
            if ((b[p] & 0xff) != 0xff) {
                return 1;
            }
            int marker = b[p + 1] & 0xff;
            if (marker == 0xff) { // fill byte
                p++;
                continue;
            }
            if (marker == 0xda || marker == 0xd9) { // start of scan or end of image: no metadata beyond
                return 1;
            }
            if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { // markers without a length
                p += 2;
                continue;
            }
            int len = u16(b, p + 2, false);
            if (len < 2) {
                return 1;
            }
            int payload = p + 4;
            if (marker == 0xe1 && len >= 8 && payload + 6 <= b.length
                    && new String(b, payload, 6, StandardCharsets.ISO_8859_1).equals("Exif\0\0")) {
                return fromTiff(b, payload + 6, Math.min(b.length, p + 2 + len));
            }
            p += 2 + len;
        }
        return 1;
    }

    private static int fromPng(byte[] b) {
        int p = 8; // after the signature
        while (p + 8 <= b.length) {
            long len = u32(b, p, false);
            String type = new String(b, p + 4, 4, StandardCharsets.ISO_8859_1);
            long dataEnd = p + 8L + len;
            if (len < 0 || dataEnd > b.length) {
                return 1;
            }
            if (type.equals("eXIf")) {
                int start = p + 8;
                // some writers keep the JPEG-style "Exif\0\0" prefix in the chunk
                if (len >= 6 && new String(b, start, 6, StandardCharsets.ISO_8859_1).equals("Exif\0\0")) {
                    start += 6;
                }
                return fromTiff(b, start, (int) dataEnd);
            }
            if (type.equals("IEND")) {
                return 1;
            }
            p = (int) (dataEnd + 4); // skip the CRC
        }
        return 1;
    }

    /** Orientation from a TIFF structure at b[start, end): header, then IFD0's entries. */
    private static int fromTiff(byte[] b, int start, int end) {
        if (start + 8 > end) {
            return 1;
        }
        boolean little;
        if (b[start] == 'I' && b[start + 1] == 'I') {
            little = true;
        } else if (b[start] == 'M' && b[start + 1] == 'M') {
            little = false;
        } else {
            return 1;
        }
        if (u16(b, start + 2, little) != 42) {
            return 1;
        }
        long ifd = u32(b, start + 4, little);
        if (ifd < 8 || start + ifd + 2 > end) {
            return 1;
        }
        int at = (int) (start + ifd);
        int count = u16(b, at, little);
        for (int i = 0; i < count; i++) {
            int e = at + 2 + 12 * i;
            if (e + 12 > end) {
                return 1;
            }
            if (u16(b, e, little) == TAG_ORIENTATION) {
                int type = u16(b, e + 2, little);
                int v = type == TYPE_SHORT ? u16(b, e + 8, little) : (int) u32(b, e + 8, little);
                return v >= 1 && v <= 8 ? v : 1;
            }
        }
        return 1;
    }

    private static int u16(byte[] b, int p, boolean little) {
        int a = b[p] & 0xff;
        int c = b[p + 1] & 0xff;
        return little ? a | c << 8 : a << 8 | c;
    }

    private static long u32(byte[] b, int p, boolean little) {
        long v = 0;
        for (int i = 0; i < 4; i++) {
            long byteVal = b[p + (little ? 3 - i : i)] & 0xff;
            v = v << 8 | byteVal;
        }
        return v;
    }

    /** The image as it should be shown for this orientation (the same object for 1). */
    static RgbImage apply(RgbImage img, int orientation) {
        if (orientation <= 1 || orientation > 8) {
            return img;
        }
        int w = img.width();
        int h = img.height();
        boolean swap = orientation >= 5;
        int ow = swap ? h : w;
        int oh = swap ? w : h;
        byte[] in = img.pixels();
        byte[] out = new byte[in.length];
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                // (sx, sy): the stored pixel that shows at (x, y)
                int sx;
                int sy;
                switch (orientation) {
                    case 2 -> { sx = w - 1 - x; sy = y; }
                    case 3 -> { sx = w - 1 - x; sy = h - 1 - y; }
                    case 4 -> { sx = x; sy = h - 1 - y; }
                    case 5 -> { sx = y; sy = x; }
                    case 6 -> { sx = y; sy = h - 1 - x; }
                    case 7 -> { sx = w - 1 - y; sy = h - 1 - x; }
                    default -> { sx = w - 1 - y; sy = x; } // 8
                }
                int s = (sy * w + sx) * 3;
                int d = (y * ow + x) * 3;
                out[d] = in[s];
                out[d + 1] = in[s + 1];
                out[d + 2] = in[s + 2];
            }
        }
        return new RgbImage(ow, oh, out);
    }
}
