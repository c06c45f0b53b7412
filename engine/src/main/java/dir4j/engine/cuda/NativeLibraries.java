package dir4j.engine.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Finds the native libraries the CUDA backend binds through FFM (cuBLAS, cuDNN) and the driver
 * JCuda needs: first by SONAME through the dynamic linker (LD_LIBRARY_PATH, /etc/ld.so.cache),
 * then as files in the usual CUDA folders. A library that is nowhere is an error naming it and
 * every place searched.
 */
final class NativeLibraries {
    /** The driver library JCuda's natives link against. */
    static final String DRIVER = "libcuda.so.1";

    private NativeLibraries() {}

    /** A library that opened: the name asked for, where it was found, and its symbols. */
    record Found(String soname, String location, SymbolLookup symbols) {}

    /** True when the dynamic linker can open the NVIDIA driver library. */
    static boolean driverPresent() {
        try {
            SymbolLookup.libraryLookup(DRIVER, Arena.global());
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** What the dynamic linker searches, for messages: "the dynamic linker's path (LD_LIBRARY_PATH=…, /etc/ld.so.cache)". */
    static String linkerPath() {
        String ld = System.getenv("LD_LIBRARY_PATH");
        return "the dynamic linker's path (LD_LIBRARY_PATH=" + (ld == null || ld.isBlank() ? "unset" : ld)
                + ", /etc/ld.so.cache)";
    }

    /**
     * The folders searched after the dynamic linker's path, in order: $CUDA_HOME/lib64 and
     * $CUDA_HOME/targets/x86_64-linux/lib when CUDA_HOME is set, /usr/local/cuda/lib64,
     * /usr/local/cuda/targets/x86_64-linux/lib, and /usr/lib/x86_64-linux-gnu (Debian's cuDNN).
     */
    static List<Path> searchFolders(Map<String, String> env) {
        LinkedHashSet<Path> folders = new LinkedHashSet<>();
        String home = env.get("CUDA_HOME");
        if (home != null && !home.isBlank()) {
            folders.add(Path.of(home, "lib64"));
            folders.add(Path.of(home, "targets", "x86_64-linux", "lib"));
        }
        folders.add(Path.of("/usr/local/cuda/lib64"));
        folders.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        folders.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        return List.copyOf(folders);
    }

    /** {@link #open(String, List, List, Function, String)} over {@link #searchFolders} of this process. */
    static Found open(String what, List<String> sonames, Function<String, List<String>> siblings, String advice) {
        return open(what, sonames, searchFolders(System.getenv()), siblings, advice);
    }

    /**
     * Opens the first of {@code sonames} that loads: each by name through the dynamic linker,
     * then each as a file in each folder. Before a file is opened, the libraries
     * {@code siblings.apply(soname)} in the same folder are opened (libcublas.so.13 needs
     * libcublasLt.so.13, which the dynamic linker may not find on its own).
     *
     * @param what   the library in words, for the error ("cuBLAS")
     * @param advice what to do when none is found ("install cuDNN 9 or run with --device cpu")
     * @throws CudaLibraryNotFoundException naming every name and place tried
     */
    static Found open(String what, List<String> sonames, List<Path> folders, Function<String, List<String>> siblings,
                      String advice) {
        for (String soname : sonames) {
            try {
                return new Found(soname, "the dynamic linker's path", SymbolLookup.libraryLookup(soname, Arena.global()));
            } catch (IllegalArgumentException e) {
                // not on the linker's path; try the folders below
            }
        }
        List<String> failures = new ArrayList<>();
        for (Path folder : folders) {
            for (String soname : sonames) {
                Path file = folder.resolve(soname);
                if (!Files.exists(file)) {
                    continue;
                }
                for (String sibling : siblings.apply(soname)) {
                    Path s = folder.resolve(sibling);
                    if (Files.exists(s)) {
                        try {
                            SymbolLookup.libraryLookup(s, Arena.global());
                        } catch (IllegalArgumentException e) {
                            failures.add(s + " (" + e.getMessage() + ")");
                        }
                    }
                }
                try {
                    return new Found(soname, file.toString(), SymbolLookup.libraryLookup(file, Arena.global()));
                } catch (IllegalArgumentException e) {
                    failures.add(file + " exists but did not load (" + e.getMessage() + ")");
                }
            }
        }
        StringBuilder sb = new StringBuilder("cannot open ").append(String.join(" or ", sonames)).append(" (")
                .append(what).append("); searched: ").append(linkerPath());
        for (Path f : folders) {
            sb.append(", ").append(f);
        }
        if (!failures.isEmpty()) {
            sb.append("; failed: ").append(String.join("; ", failures));
        }
        sb.append("; ").append(advice);
        throw new CudaLibraryNotFoundException(sb.toString());
    }

    /** No usable copy of a native library was found. */
    static final class CudaLibraryNotFoundException extends IllegalStateException {
        CudaLibraryNotFoundException(String message) {
            super(message);
        }
    }
}
