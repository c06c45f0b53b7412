package dir4j.nn.io;

import java.util.Set;

/**
 * Which globals a pickle may name. Three answers: {@link Verdict#DANGEROUS} (always refused, in
 * every mode: anything that could run code, start a process, touch files or the network, load
 * another pickle, or walk attributes to reach such a thing), {@link Verdict#ALLOWED} (the short
 * list the {@link Unpickler} understands: containers, PyTorch's tensor rebuilders and storage
 * types, NumPy's array reconstruction) and {@link Verdict#OTHER} (any other class: an inert
 * {@link PickledObject} when the caller allowed it, refused otherwise).
 *
 * <p>The check is by name only; nothing is ever imported. Python 2 module names are mapped to
 * Python 3's first ({@link #normalizeModule}).
 */
final class GlobalPolicy {
    enum Verdict { DANGEROUS, ALLOWED, OTHER }

    private GlobalPolicy() {}

    static final Set<String> ALLOWED = Set.of(
            "collections.OrderedDict",
            "builtins.set", "builtins.frozenset", "builtins.slice", "builtins.complex", "builtins.bytes",
            "builtins.bytearray", "builtins.dict", "builtins.list", "builtins.tuple", "builtins.object",
            "copyreg._reconstructor",
            "_codecs.encode",
            "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
            "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch.nn.parameter.Parameter",
            "torch.Size", "torch.device",
            "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
            "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
            "torch.ByteStorage", "torch.BoolStorage",
            // tensors dir4j recognises in order to refuse them by name (Unpickler.Unreadable);
            // nothing is ever called
            "torch.ComplexHalfStorage", "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage",
            "torch.QInt8Storage", "torch.QUInt8Storage", "torch.QInt32Storage", "torch.QUInt4x2Storage",
            "torch.QUInt2x4Storage", "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
            "torch._utils._rebuild_sparse_csr_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
            "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_nested_tensor",
            "torch._utils._rebuild_device_tensor_from_numpy", "torch.serialization._get_layout",
            "torch.per_tensor_affine", "torch.per_channel_affine", "torch.per_tensor_symmetric",
            "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
            // dtypes, layouts and memory formats as values (a config's {'dtype': torch.float16}),
            // pickled by name as torch's own weights_only loader allows them: names, never called
            "torch.float16", "torch.float32", "torch.float64", "torch.bfloat16", "torch.complex32",
            "torch.complex64", "torch.complex128", "torch.uint8", "torch.int8", "torch.int16", "torch.int32",
            "torch.int64", "torch.bool", "torch.qint8", "torch.quint8", "torch.qint32", "torch.quint4x2",
            "torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.contiguous_format",
            "torch.channels_last", "torch.channels_last_3d", "torch.preserve_format",
            "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
            "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
            "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
            "numpy.ndarray", "numpy.dtype");

    /** Builtins that only build data; every other builtin (eval, exec, getattr, open…) is dangerous. */
    private static final Set<String> DATA_BUILTINS = Set.of(
            "set", "frozenset", "slice", "complex", "bytes", "bytearray", "dict", "list", "tuple", "object",
            "int", "float", "str", "bool", "range");

    /** Module-path components that put a global out of bounds, wherever they appear. */
    private static final Set<String> DANGEROUS_MODULES = Set.of(
            "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "builtins", "__builtin__", "importlib",
            "imp", "runpy", "pickle", "_pickle", "cPickle", "pickletools", "dill", "cloudpickle", "joblib", "shelve",
            "marshal", "shutil", "socket", "ctypes", "_ctypes", "pty", "code", "codeop", "commands", "popen2",
            "platform", "webbrowser", "multiprocessing", "threading", "_thread", "asyncio", "signal", "types",
            "functools", "operator", "_operator", "inspect", "gc", "io", "_io", "tempfile", "pathlib", "glob",
            "urllib", "urllib2", "http", "httplib", "requests", "ftplib", "smtplib", "telnetlib", "timeit", "pdb",
            "bdb", "trace", "profile", "cProfile", "site", "sysconfig", "distutils", "setuptools", "pip",
            "ensurepip", "zipimport", "pkgutil", "yaml");

    /** Module prefixes of PyTorch and NumPy that load, compile or call native code. */
    private static final java.util.List<String> DANGEROUS_PREFIXES = java.util.List.of(
            "torch.hub", "torch.jit", "torch._C", "torch.ops", "torch._ops", "torch.classes", "torch.serialization",
            "torch.package", "torch.utils.cpp_extension", "torch.storage", "numpy.lib.npyio", "numpy.lib.format",
            "numpy.testing", "numpy.f2py", "numpy.ctypeslib", "numpy.distutils");

    /** Name components that call, load or reach code in any module. */
    private static final Set<String> DANGEROUS_NAMES = Set.of(
            "system", "popen", "spawn", "spawnl", "spawnv", "execv", "execve", "execl", "execlp", "execvp", "exec",
            "eval", "execfile", "compile", "__import__", "import_module", "getattr", "setattr", "delattr",
            "open", "load", "loads", "fromfile", "Popen", "call", "check_call", "check_output", "run", "globals",
            "locals", "vars", "input", "breakpoint", "_load_from_bytes");

    /** Maps Python 2 module names as pickle's fix_imports does. */
    static String normalizeModule(String module) {
        return switch (module) {
            case "__builtin__", "exceptions" -> "builtins";
            case "copy_reg" -> "copyreg";
            case "cPickle" -> "pickle";
            default -> module;
        };
    }

    static Verdict judge(String module, String name) {
        String full = module + "." + name;
        if (ALLOWED.contains(full)) {
            return Verdict.ALLOWED;
        }
        if (module.equals("builtins")) {
            return DATA_BUILTINS.contains(name) ? Verdict.OTHER : Verdict.DANGEROUS;
        }
        for (String part : module.split("\\.")) {
            if (DANGEROUS_MODULES.contains(part)) {
                return Verdict.DANGEROUS;
            }
        }
        for (String prefix : DANGEROUS_PREFIXES) {
            if (module.equals(prefix) || module.startsWith(prefix + ".")) {
                return Verdict.DANGEROUS;
            }
        }
        for (String part : name.split("\\.")) {
            if (DANGEROUS_NAMES.contains(part) || DANGEROUS_MODULES.contains(part)
                    || (part.startsWith("__") && part.endsWith("__") && part.length() > 4)) {
                return Verdict.DANGEROUS;
            }
        }
        if (full.equals("torch.load")) {
            return Verdict.DANGEROUS;
        }
        return Verdict.OTHER;
    }

    /** Why a dangerous global is refused, for the error message. */
    static String reason(String module, String name) {
        if (module.equals("torch.storage") && name.equals("_load_from_bytes")) {
            return "which would run torch.load (an unrestricted unpickler) on bytes nested in the checkpoint";
        }
        return "which could run code";
    }
}
