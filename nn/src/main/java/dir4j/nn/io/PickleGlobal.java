package dir4j.nn.io;

/**
 * A class or function a pickle names (its GLOBAL), kept as a name and never imported or called:
 * what the {@link Unpickler} leaves where a pickle stores a class itself as a value (a storage
 * type, {@code numpy.ndarray}), and the module and name of every {@link PickledObject}.
 *
 * @param module the Python module ("collections")
 * @param name the qualified name in the module ("OrderedDict")
 */
public record PickleGlobal(String module, String name) {

    /** "module.name", as Python prints it. */
    public String qualified() {
        return module + "." + name;
    }

    @Override
    public String toString() {
        return qualified();
    }
}
