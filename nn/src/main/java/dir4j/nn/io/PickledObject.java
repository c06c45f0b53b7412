package dir4j.nn.io;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An object of a class outside the {@link Unpickler}'s allow-list, kept inert: the class's name,
 * the arguments the pickle would have passed to it, and the state it would have set, with no code
 * of the class ever run. The reference's retrieval checkpoints pickle an sklearn {@code PCA} this
 * way; its fitted arrays are then {@code pca.attribute("components_")} (a tensor).
 *
 * <p>Only made when the caller allowed inert objects ({@link Unpickler.Options#inertObjects()}).
 * Equality is identity, as in Python for objects without {@code __eq__}.
 */
public final class PickledObject {
    private final PickleGlobal type;
    private final List<Object> args;
    private final Map<String, Object> kwargs;
    private Object state;
    private final Map<String, Object> attributes = new LinkedHashMap<>();
    private final List<Object> listItems = new ArrayList<>();
    private final Map<Object, Object> dictItems = new LinkedHashMap<>();

    PickledObject(PickleGlobal type, List<Object> args, Map<String, Object> kwargs) {
        this.type = type;
        this.args = args;
        this.kwargs = kwargs;
    }

    /** The class, as the pickle named it ("sklearn.decomposition.pca" / "PCA"). */
    public PickleGlobal type() {
        return type;
    }

    /** "module.name" of the class. */
    public String className() {
        return type.qualified();
    }

    /** Positional arguments of the (never made) call that would have created the object. */
    public List<Object> args() {
        return args;
    }

    /** Keyword arguments (protocol 4's NEWOBJ_EX), or an empty map. */
    public Map<String, Object> kwargs() {
        return kwargs;
    }

    /** The state as BUILD gave it (usually the instance {@code __dict__}), or null. */
    public Object state() {
        return state;
    }

    /**
     * The attributes the state would set: the state itself when it is a dict, merged with the
     * slot dict of a {@code (dict, slots)} state; empty otherwise.
     */
    public Map<String, Object> attributes() {
        return Collections.unmodifiableMap(attributes);
    }

    /** One attribute, or null when absent. */
    public Object attribute(String name) {
        return attributes.get(name);
    }

    /** Items appended to the object (a list subclass), in order. */
    public List<Object> listItems() {
        return Collections.unmodifiableList(listItems);
    }

    /** Items set on the object (a dict subclass), in order. */
    public Map<Object, Object> dictItems() {
        return Collections.unmodifiableMap(dictItems);
    }

    void setState(Object newState) {
        state = newState;
        if (newState instanceof Map<?, ?> m) {
            addAttributes(m);
        } else if (newState instanceof List<?> pair && pair.size() == 2
                && (pair.get(0) == null || pair.get(0) instanceof Map) && (pair.get(1) == null || pair.get(1) instanceof Map)) {
            if (pair.get(0) instanceof Map<?, ?> dict) {
                addAttributes(dict);
            }
            if (pair.get(1) instanceof Map<?, ?> slots) {
                addAttributes(slots);
            }
        }
    }

    private void addAttributes(Map<?, ?> m) {
        for (Map.Entry<?, ?> e : m.entrySet()) {
            attributes.put(String.valueOf(e.getKey()), e.getValue());
        }
    }

    void append(Object item) {
        listItems.add(item);
    }

    void setItem(Object key, Object value) {
        dictItems.put(key, value);
    }

    @Override
    public String toString() {
        return className() + (attributes.isEmpty() ? "(inert)" : "(inert; attributes " + attributes.keySet() + ")");
    }
}
