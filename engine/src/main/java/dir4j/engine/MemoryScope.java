package dir4j.engine;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Deterministic lifetimes for tensors. Every tensor created on a thread while a scope is open
 * belongs to the innermost open scope; closing the scope closes each of them except those passed
 * to {@link #keep}, which move to the enclosing scope (or to no scope, when this is the
 * outermost: the caller then owns them and closes them itself).
 *
 * <pre>{@code
 * try (var step = MemoryScope.open()) {
 *     Tensor loss = model.forward(x).sub(y).pow(2).mean();
 *     loss.backward();
 *     optimiser.step();
 * } // every intermediate freed here; parameters and their grads live outside
 * }</pre>
 */
public final class MemoryScope implements AutoCloseable {
    private static final ThreadLocal<MemoryScope> CURRENT = new ThreadLocal<>();

    private final MemoryScope parent;
    private final Map<Tensor, Boolean> owned = new IdentityHashMap<>();
    private final Thread thread;
    private boolean closed;

    private MemoryScope(MemoryScope parent) {
        this.parent = parent;
        this.thread = Thread.currentThread();
    }

    /** Opens a scope nested in the current one. */
    public static MemoryScope open() {
        MemoryScope s = new MemoryScope(CURRENT.get());
        CURRENT.set(s);
        return s;
    }

    /**
     * Runs {@code body} with no scope open, so that what it creates is owned by the caller
     * (parameters, gradients of leaves, optimiser state).
     */
    public static <T> T detached(java.util.function.Supplier<T> body) {
        MemoryScope saved = CURRENT.get();
        CURRENT.remove();
        try {
            return body.get();
        } finally {
            if (saved != null) {
                CURRENT.set(saved);
            }
        }
    }

    static void register(Tensor t) {
        MemoryScope s = CURRENT.get();
        if (s != null) {
            s.owned.put(t, Boolean.TRUE);
        }
    }

    /** Number of tensors this scope will close. */
    public int size() {
        return owned.size();
    }

    /** Moves {@code t} out of this scope into the enclosing one; returns t. */
    public Tensor keep(Tensor t) {
        if (owned.remove(t) != null && parent != null) {
            parent.owned.put(t, Boolean.TRUE);
        }
        return t;
    }

    /** Keeps several tensors. */
    public void keep(Tensor... ts) {
        for (Tensor t : ts) {
            keep(t);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (Thread.currentThread() != thread) {
            throw new IllegalStateException("a MemoryScope must be closed by the thread that opened it");
        }
        if (CURRENT.get() != this) {
            throw new IllegalStateException("MemoryScopes must close innermost first");
        }
        closed = true;
        CURRENT.set(parent);
        if (parent == null) {
            CURRENT.remove();
        }
        List<Tensor> ts = new ArrayList<>(owned.keySet());
        owned.clear();
        for (Tensor t : ts) {
            t.closeByScope();
        }
    }
}
