package dir4j.nn.io;

import dir4j.engine.io.AtomicFiles;
import dir4j.engine.Tensor;
import dir4j.engine.io.Npy;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * NumPy's .npz: a zip archive of .npy files, one per array, stored or deflated
 * ({@code numpy.savez} / {@code savez_compressed}). Each entry goes through the engine's
 * {@link Npy}, so the dtypes and checks are the same as for a lone .npy.
 */
public final class Npz {
    /** Largest entry read (a Java array's reach). */
    private static final long MAX_ENTRY_BYTES = Integer.MAX_VALUE - 16;

    private Npz() {}

    /** Reads every array, keyed by entry name without ".npy", in archive order; the caller owns the tensors. */
    public static Map<String, Tensor> read(Path file) throws IOException {
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException | java.io.EOFException e) {
            throw new IOException(file + ": not a readable .npz (zip) archive (truncated or corrupt?): "
                    + TorchCheckpoint.describe(e), e);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (zip) {
            long fileSize = Files.size(file);
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements();) {
                ZipEntry e = en.nextElement();
                if (e.isDirectory()) {
                    continue;
                }
                String name = e.getName();
                if (!name.endsWith(".npy")) {
                    throw new IOException(file + ": entry '" + name + "' is not a .npy array");
                }
                long bound = e.getMethod() == ZipEntry.STORED ? fileSize : Math.max(1 << 20, e.getCompressedSize() * 1100);
                if (e.getSize() < 0 || e.getSize() > Math.min(bound, MAX_ENTRY_BYTES)) {
                    throw new IOException(file + ": entry '" + name + "' claims " + e.getSize() + " bytes, more than "
                            + "this archive can hold or a .npz entry may have");
                }
                byte[] bytes;
                try (InputStream in = zip.getInputStream(e)) {
                    bytes = in.readNBytes((int) e.getSize());
                } catch (ZipException | java.io.EOFException ze) {
                    throw new IOException(file + ": entry '" + name + "' is corrupt: " + TorchCheckpoint.describe(ze), ze);
                }
                if (bytes.length != e.getSize()) {
                    throw new IOException(file + ": entry '" + name + "' is truncated: " + bytes.length + " of "
                            + e.getSize() + " bytes");
                }
                String key = name.substring(0, name.length() - ".npy".length());
                try {
                    out.put(key, Npy.parse(bytes));
                } catch (IllegalArgumentException iae) {
                    throw new IOException(file + ": entry '" + name + "': " + iae.getMessage(), iae);
                }
            }
            return out;
        } catch (IOException | RuntimeException ex) {
            out.values().forEach(Tensor::close);
            throw ex;
        }
    }

    /**
     * Writes arrays (float32, float64 or int32) as {@code <name>.npy} entries, deflated when
     * {@code compressed}, replacing the file atomically.
     */
    public static void write(Path file, Map<String, Tensor> arrays, boolean compressed) throws IOException {
        Path tmp = AtomicFiles.temporaryBeside(file);
        Path npy = AtomicFiles.temporaryBeside(file.resolveSibling(file.getFileName() + ".npy"));
        try {
            try (OutputStream os = Files.newOutputStream(tmp); ZipOutputStream zip = new ZipOutputStream(os)) {
                for (Map.Entry<String, Tensor> a : arrays.entrySet()) {
                    if (a.getKey().isEmpty()) {
                        throw new IllegalArgumentException("Npz.write: empty array name");
                    }
                    Npy.write(npy, a.getValue());
                    byte[] bytes = Files.readAllBytes(npy);
                    ZipEntry e = new ZipEntry(a.getKey() + ".npy");
                    e.setTime(315532800000L); // 1980-01-01, zip's epoch: identical arrays give identical files
                    if (compressed) {
                        e.setMethod(ZipEntry.DEFLATED);
                    } else {
                        CRC32 crc = new CRC32();
                        crc.update(bytes);
                        e.setMethod(ZipEntry.STORED);
                        e.setSize(bytes.length);
                        e.setCompressedSize(bytes.length);
                        e.setCrc(crc.getValue());
                    }
                    zip.putNextEntry(e);
                    zip.write(bytes);
                    zip.closeEntry();
                }
            }
            AtomicFiles.replace(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
            Files.deleteIfExists(npy);
        }
    }
}
