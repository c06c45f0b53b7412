package dir4j.engine.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * Downcall handles of one native library, bound by name. A symbol the library lacks does not
 * stop the others from binding: it is listed by {@link #missing()} (reported by
 * {@code dir4j info}) and calling it is an error naming the symbol and the library.
 */
final class NativeFunctions {
    /** Makes the handle of one function (null when the library lacks it). */
    interface Binder {
        MethodHandle bind(String name, FunctionDescriptor descriptor);
    }

    private final String soname;
    private final String location;
    private final Binder binder;
    private final List<String> missing = new ArrayList<>();

    /** The functions of a library that opened. */
    NativeFunctions(NativeLibraries.Found library) {
        this(library.soname(), library.location(), (name, descriptor) -> library.symbols().find(name)
                .map(s -> Linker.nativeLinker().downcallHandle(s, descriptor)).orElse(null));
    }

    /** Functions from any binder (tests bind Java fakes with the descriptors' exact types). */
    NativeFunctions(String soname, String location, Binder binder) {
        this.soname = soname;
        this.location = location;
        this.binder = binder;
    }

    /** A bound function. */
    final class Function {
        private final String name;
        private final MethodHandle handle;

        private Function(String name, MethodHandle handle) {
            this.name = name;
            this.handle = handle;
        }

        boolean present() {
            return handle != null;
        }

        /** Calls the function; its result (an int status for cuBLAS and cuDNN, else as declared). */
        Object call(Object... args) {
            if (handle == null) {
                throw new UnsupportedOperationException(name + " is not exported by " + soname + " (" + location + ")");
            }
            try {
                return handle.invokeWithArguments(args);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new CudaException(name + " failed: " + t, t);
            }
        }

        /** Calls a function that returns an int status. */
        int status(Object... args) {
            return (Integer) call(args);
        }
    }

    Function bind(String name, FunctionDescriptor descriptor) {
        MethodHandle h = binder.bind(name, descriptor);
        if (h == null) {
            missing.add(name);
        }
        return new Function(name, h);
    }

    List<String> missing() {
        return List.copyOf(missing);
    }

    /** Where the library was found ("/usr/lib/x86_64-linux-gnu/libcudnn.so.9"). */
    String location() {
        return location;
    }
}
