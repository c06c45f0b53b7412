package dir4j.retrieval.whiten;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * The eigenvalues and eigenvectors of a symmetric matrix, as a PCA learns them: LAPACK's
 * {@code dsyevd} (divide and conquer, the routine behind numpy's {@code linalg.eigh}) called
 * through Java's FFM where a LAPACK library is installed (OpenBLAS's, or the reference one:
 * about 1 s for 2048 x 2048 on two cores, bench/RESULTS.md), otherwise EJML's symmetric QR
 * algorithm in pure Java (about 10 s). The two agree to rounding: eigenvalues to about 1e-12 of
 * the largest, eigenvectors up to sign (and, for equal eigenvalues, up to a rotation within their
 * space).
 *
 * <p>{@code -Ddir4j.lapack=LIBRARY} names the library to use (a file, or a name the dynamic
 * linker resolves), {@code -Ddir4j.lapack=false} keeps to EJML. By default the dynamic linker is
 * asked for {@code liblapack.so.3}, then {@code libopenblas.so.0}; none found means EJML, without
 * a message ({@code dir4j info} says which is used). A named library that cannot be opened, or
 * lacks {@code dsyevd_}, is an error naming it.
 */
public final class SymmetricEigen {
    /** The system property choosing the LAPACK library (or {@code false}). */
    public static final String LAPACK_PROPERTY = "dir4j.lapack";

    /** What the default search asks the dynamic linker for, in order. */
    static final List<String> DEFAULT_LIBRARIES = List.of("liblapack.so.3", "libopenblas.so.0");

    /**
     * A decomposition: {@code values[i]} with its unit eigenvector at
     * {@code vectors[i * n .. (i + 1) * n)}, in no particular order.
     *
     * @param by what computed it ("LAPACK dsyevd (library)" or "EJML")
     */
    public record Decomposition(double[] values, double[] vectors, String by) {
        /** The size n of the matrix. */
        public int size() {
            return values.length;
        }
    }

    private SymmetricEigen() {}

    /**
     * Decomposes the symmetric n x n matrix {@code a} (row-major; only its lower triangle is read
     * by LAPACK, the whole of it by EJML), which is left unchanged.
     *
     * @throws IllegalStateException if the algorithm does not converge (non-finite entries)
     */
    public static Decomposition of(double[] a, int n) {
        if ((long) n * n != a.length) {
            throw new IllegalArgumentException("a " + n + "x" + n + " matrix needs " + (long) n * n
                    + " entries, got " + a.length);
        }
        for (double v : a) {
            if (!Double.isFinite(v)) {
                throw notConverged(n); // (LAPACK would not say so)
            }
        }
        Optional<Lapack> lapack = Lapack.get();
        return lapack.isPresent() ? lapack.get().dsyevd(a, n) : ejml(a, n);
    }

    /** What {@link #of} uses here: "LAPACK dsyevd (where)" or "EJML (why)", for {@code dir4j info}. */
    public static String backend() {
        try {
            return Lapack.get().map(l -> "LAPACK dsyevd (" + l.location + ")")
                    .orElse("EJML (" + Lapack.absence() + ")");
        } catch (IllegalStateException e) {
            return "none: " + e.getMessage();
        }
    }

    /** EJML's symmetric QR algorithm (the fallback, and the reference in tests). */
    static Decomposition ejml(double[] a, int n) {
        DMatrixRMaj m = new DMatrixRMaj(n, n);
        System.arraycopy(a, 0, m.data, 0, a.length);
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(n, true, true);
        if (!eig.decompose(m)) {
            throw notConverged(n);
        }
        double[] values = new double[n];
        double[] vectors = new double[n * n];
        for (int i = 0; i < n; i++) {
            values[i] = eig.getEigenvalue(i).getReal();
            System.arraycopy(eig.getEigenVector(i).data, 0, vectors, i * n, n);
        }
        return new Decomposition(values, vectors, "EJML");
    }

    private static IllegalStateException notConverged(int n) {
        return new IllegalStateException("the eigendecomposition of the " + n + "x" + n
                + " covariance did not converge (non-finite descriptors?)");
    }

    /** dsyevd_ of a LAPACK library, bound once. */
    static final class Lapack {
        private static volatile Optional<Lapack> instance;
        private static volatile String absence = "";

        final String location;
        private final MethodHandle dsyevd;

        private Lapack(String location, MethodHandle dsyevd) {
            this.location = location;
            this.dsyevd = dsyevd;
        }

        static Optional<Lapack> get() {
            Optional<Lapack> l = instance;
            if (l == null) {
                synchronized (Lapack.class) {
                    if (instance == null) {
                        instance = find(System.getProperty(LAPACK_PROPERTY));
                    }
                    l = instance;
                }
            }
            return l;
        }

        static String absence() {
            return absence;
        }

        /**
         * The library {@code setting} names ({@code null}: the default search; {@code false}:
         * none).
         */
        static Optional<Lapack> find(String setting) {
            if (setting != null && setting.trim().equalsIgnoreCase("false")) {
                absence = "-D" + LAPACK_PROPERTY + "=false";
                return Optional.empty();
            }
            if (setting != null && !setting.isBlank()) {
                Lapack l = open(setting.trim()).orElseThrow(() -> new IllegalStateException("-D" + LAPACK_PROPERTY + "="
                        + setting + ": cannot open it as a native library (a LAPACK .so file, or a name the "
                        + "dynamic linker finds), or it has no dsyevd_; -D" + LAPACK_PROPERTY + "=false uses EJML"));
                return Optional.of(l);
            }
            List<String> tried = new ArrayList<>();
            for (String name : DEFAULT_LIBRARIES) {
                Optional<Lapack> l = open(name);
                if (l.isPresent()) {
                    return l;
                }
                tried.add(name);
            }
            absence = "no LAPACK library: " + String.join(", ", tried) + " not found";
            return Optional.empty();
        }

        private static Optional<Lapack> open(String name) {
            SymbolLookup lib;
            try {
                lib = name.contains("/") ? SymbolLookup.libraryLookup(java.nio.file.Path.of(name), Arena.global())
                        : SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException e) {
                return Optional.empty();
            }
            Optional<MemorySegment> symbol = lib.find("dsyevd_");
            if (symbol.isEmpty()) {
                return Optional.empty();
            }
            ValueLayout.OfLong len = ValueLayout.JAVA_LONG;
            // Fortran: jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info, then the two
            // character arguments' hidden lengths (gfortran's size_t; ignored by compilers without them)
            FunctionDescriptor fd = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, len, len);
            return Optional.of(new Lapack(name, Linker.nativeLinker().downcallHandle(symbol.get(), fd)));
        }

        /**
         * dsyevd with jobz = 'V' on the lower triangle (of the column-major matrix, which for a
         * symmetric one is the row-major one): eigenvalues ascending, eigenvector i in column i,
         * contiguous in memory. Every integer goes in an 8-byte slot written as a 64-bit value and
         * read back from its low 4 bytes (little-endian x86-64 and AArch64): right for the usual
         * 32-bit-integer LAPACK and for a 64-bit-integer build exporting the same name (MKL's
         * ilp64), which would otherwise read past 4-byte arguments.
         */
        Decomposition dsyevd(double[] a, int n) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment m = arena.allocate(ValueLayout.JAVA_DOUBLE, Math.max(1L, (long) n * n));
                MemorySegment.copy(a, 0, m, ValueLayout.JAVA_DOUBLE, 0, a.length);
                MemorySegment jobz = arena.allocateFrom("V");
                MemorySegment uplo = arena.allocateFrom("L");
                MemorySegment nSeg = integer(arena, n);
                MemorySegment lda = integer(arena, Math.max(1, n));
                MemorySegment w = arena.allocate(ValueLayout.JAVA_DOUBLE, Math.max(1, n));
                MemorySegment info = integer(arena, 0);
                // workspace query
                MemorySegment workSize = arena.allocate(ValueLayout.JAVA_DOUBLE);
                MemorySegment iworkSize = integer(arena, 0);
                MemorySegment query = integer(arena, -1);
                call(jobz, uplo, nSeg, m, lda, w, workSize, query, iworkSize, query, info);
                check(info, n, "its workspace query");
                long lwork = (long) Math.ceil(workSize.get(ValueLayout.JAVA_DOUBLE, 0));
                int liwork = iworkSize.get(ValueLayout.JAVA_INT, 0);
                if (lwork > Integer.MAX_VALUE || liwork < 0) {
                    throw new IllegalArgumentException("a " + n + "x" + n + " matrix is too large for LAPACK's "
                            + "32-bit workspace sizes (-D" + LAPACK_PROPERTY + "=false uses EJML)");
                }
                MemorySegment work = arena.allocate(ValueLayout.JAVA_DOUBLE, Math.max(1, lwork));
                MemorySegment iwork = arena.allocate(ValueLayout.JAVA_LONG, Math.max(1, liwork));
                call(jobz, uplo, nSeg, m, lda, w, work, integer(arena, (int) lwork), iwork, integer(arena, liwork),
                        info);
                check(info, n, "it");
                double[] values = w.asSlice(0, (long) n * Double.BYTES).toArray(ValueLayout.JAVA_DOUBLE);
                double[] vectors = m.asSlice(0, (long) n * n * Double.BYTES).toArray(ValueLayout.JAVA_DOUBLE);
                return new Decomposition(values, vectors, "LAPACK dsyevd (" + location + ")");
            }
        }

        /** A LAPACK integer argument in an 8-byte slot (see {@link #dsyevd}). */
        private static MemorySegment integer(Arena arena, int value) {
            return arena.allocateFrom(ValueLayout.JAVA_LONG, value);
        }

        private void call(MemorySegment... args) {
            try {
                dsyevd.invokeExact(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8],
                        args[9], args[10], 1L, 1L);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable e) {
                throw new IllegalStateException(e);
            }
        }

        private static void check(MemorySegment info, int n, String what) {
            int i = info.get(ValueLayout.JAVA_INT, 0);
            if (i > 0) {
                throw notConverged(n);
            }
            if (i < 0) {
                throw new IllegalStateException("LAPACK dsyevd refused its argument " + (-i) + " in " + what
                        + " (a defect of dir4j's binding; -D" + LAPACK_PROPERTY + "=false uses EJML)");
            }
        }
    }
}
