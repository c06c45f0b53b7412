package dir4j.engine.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A native library played by Java: every function is bound with its descriptor's exact Java
 * type, so a call with the wrong arity or argument types fails as it would against the real
 * library, and each call is recorded. Behaviours write outputs and choose results; by default
 * a function returns 0 (success).
 */
final class FakeNativeLibrary {
    /** A call: its arguments, and heap copies of the memory they pointed to (the callers' arenas close). */
    record Call(String name, List<Object> args, List<MemorySegment> copies) {
        Object arg(int i) {
            return args.get(i);
        }

        /** What argument i pointed to at the time of the call. */
        MemorySegment memory(int i) {
            return copies.get(i);
        }
    }

    private static final MethodHandle DISPATCH;

    static {
        try {
            DISPATCH = MethodHandles.lookup().findVirtual(FakeNativeLibrary.class, "dispatch",
                    MethodType.methodType(Object.class, String.class, Class.class, Object[].class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final List<Call> calls = new ArrayList<>();
    private final Map<String, Function<Object[], Object>> behaviours = new HashMap<>();

    FakeNativeLibrary on(String name, Function<Object[], Object> behaviour) {
        behaviours.put(name, behaviour);
        return this;
    }

    NativeFunctions functions(String soname) {
        return new NativeFunctions(soname, "fake " + soname, this::handle);
    }

    private MethodHandle handle(String name, FunctionDescriptor d) {
        MethodType type = d.toMethodType();
        return MethodHandles.insertArguments(DISPATCH.bindTo(this), 0, name, type.returnType())
                .asCollector(Object[].class, type.parameterCount()).asType(type);
    }

    @SuppressWarnings("unused") // called through DISPATCH
    private Object dispatch(String name, Class<?> returns, Object[] args) {
        Function<Object[], Object> b = behaviours.get(name);
        Object result = b != null ? b.apply(args) : null;
        List<MemorySegment> copies = new ArrayList<>();
        for (Object a : args) {
            copies.add(a instanceof MemorySegment m && m.byteSize() > 0
                    ? MemorySegment.ofArray(m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)) : MemorySegment.NULL);
        }
        calls.add(new Call(name, List.of(args), copies));
        if (b != null) {
            return result;
        }
        if (returns == int.class) {
            return 0;
        }
        if (returns == long.class) {
            return 0L;
        }
        return MemorySegment.NULL;
    }

    /** The last call of a function. */
    Call last(String name) {
        for (int i = calls.size() - 1; i >= 0; i--) {
            if (calls.get(i).name().equals(name)) {
                return calls.get(i);
            }
        }
        throw new AssertionError("no call of " + name + " among " + calls.stream().map(Call::name).toList());
    }

    long count(String name) {
        return calls.stream().filter(c -> c.name().equals(name)).count();
    }

    static long address(Object segment) {
        return ((MemorySegment) segment).address();
    }
}
