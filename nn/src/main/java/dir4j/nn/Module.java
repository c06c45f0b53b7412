package dir4j.nn;

import dir4j.engine.Device;
import dir4j.engine.MemoryScope;
import dir4j.engine.Shape;
import dir4j.engine.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A network component with named parameters, buffers and children, named as PyTorch names them
 * (`layer3.4.conv2.weight`, `bn1.running_mean`), so that state dicts move both ways unchanged.
 * Parameters and buffers are created outside any MemoryScope and live until {@link #close()}.
 */
public abstract class Module implements AutoCloseable {
    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private final Set<String> hostBuffers = new HashSet<>();
    private final List<Module> adopted = new ArrayList<>();
    private boolean training = true;

    /** The module's computation. */
    public abstract Tensor forward(Tensor x);

    /** Registers a parameter (a leaf requiring grad); returns it. */
    protected final Tensor parameter(String name, Tensor value) {
        checkName(name);
        value.requiresGrad(true);
        parameters.put(name, value);
        return value;
    }

    /**
     * Replaces this module's own parameter {@code name} by {@code value} (made a leaf requiring
     * grad); the old tensor and its gradient are freed, as by {@link #to}: optimisers made before
     * hold the old one and must be made again.
     */
    protected final void replaceParameter(String name, Tensor value) {
        Tensor old = parameters.get(name);
        if (old == null) {
            throw new IllegalArgumentException(getClass().getSimpleName() + " has no parameter '" + name + "'");
        }
        value.requiresGrad(true);
        parameters.put(name, value);
        if (old != value) {
            old.close();
        }
    }

    /** Registers a buffer (state that is saved but not trained, e.g. running statistics). */
    protected final Tensor buffer(String name, Tensor value) {
        checkName(name);
        buffers.put(name, value);
        return value;
    }

    /**
     * Registers a buffer that stays in host memory when the module moves to another device: a
     * counter the host reads every step (batch norm's `num_batches_tracked`) would otherwise
     * cost a device synchronisation each time.
     */
    protected final Tensor hostBuffer(String name, Tensor value) {
        buffer(name, value);
        hostBuffers.add(name);
        return value;
    }

    /**
     * This module's own parameter or buffer by name (not dotted), as it is now: {@link #to}
     * replaces the tensors, so layers read them through here rather than keeping references.
     */
    protected final Tensor member(String name) {
        Tensor t = parameters.get(name);
        if (t == null) {
            t = buffers.get(name);
        }
        if (t == null) {
            throw new IllegalArgumentException(getClass().getSimpleName() + " has no parameter or buffer '" + name
                    + "'");
        }
        return t;
    }

    /** This module's own parameter or buffer by name, or null when it has none of that name. */
    protected final Tensor memberOrNull(String name) {
        Tensor t = parameters.get(name);
        return t != null ? t : buffers.get(name);
    }

    /**
     * Moves every parameter and buffer (except host buffers) of this module, its descendants and
     * the modules it adopted to {@code device}, like PyTorch's {@code module.to(device)}; returns
     * this. Parameters stay leaves requiring grad; their gradients are dropped. The tensors are
     * replaced, not moved in place: create optimisers after moving, and re-read any tensor
     * obtained before (the old ones are freed). A no-op for tensors already there.
     */
    public final Module to(Device device) {
        IdentityHashMap<Tensor, Tensor> moved = new IdentityHashMap<>();
        moveAll(device, moved, Collections.newSetFromMap(new IdentityHashMap<>()));
        moved.forEach((old, now) -> {
            if (old != now) {
                old.close();
            }
        });
        return this;
    }

    private void moveAll(Device device, IdentityHashMap<Tensor, Tensor> moved, Set<Module> seen) {
        if (!seen.add(this)) {
            return;
        }
        parameters.replaceAll((k, t) -> moved.computeIfAbsent(t, old -> movedCopy(old, device, true)));
        buffers.replaceAll((k, t) -> hostBuffers.contains(k) ? t
                : moved.computeIfAbsent(t, old -> movedCopy(old, device, false)));
        children.values().forEach(c -> c.moveAll(device, moved, seen));
        adopted.forEach(c -> c.moveAll(device, moved, seen));
    }

    private static Tensor movedCopy(Tensor old, Device device, boolean parameter) {
        if (old.device().equals(device)) {
            return old;
        }
        Tensor now = MemoryScope.detached(() -> {
            try (Tensor d = old.detach()) {
                if (d.isContiguous() || !d.isDense()) {
                    return d.to(device);
                }
                // a dense permuted layout (a channels-last weight) moves as its flat span and keeps it
                try (Tensor flat = d.flatDenseView(); Tensor moved = flat.to(device)) {
                    return moved.viewOf(d.shape(), d.strides(), 0);
                }
            }
        });
        return parameter ? now.requiresGrad(true) : now;
    }

    /** Registers a child module; returns it. */
    protected final <M extends Module> M child(String name, M module) {
        checkName(name);
        children.put(name, module);
        return module;
    }

    /**
     * Registers another module's children (and own parameters and buffers) directly under this
     * one, as a Python subclass inherits its base's attributes: a retrieval network built on a
     * ResNet keeps `conv1.weight`, `layer1.0…` at the top level, as the reference's does.
     */
    protected final void adopt(Module base) {
        adopted.add(base);
        base.parameters.forEach((k, v) -> {
            checkName(k);
            parameters.put(k, v);
        });
        base.buffers.forEach((k, v) -> {
            checkName(k);
            buffers.put(k, v);
        });
        hostBuffers.addAll(base.hostBuffers);
        base.children.forEach(this::child);
    }

    private void checkName(String name) {
        if (name.isEmpty() || name.contains(".") || parameters.containsKey(name) || buffers.containsKey(name)
                || children.containsKey(name)) {
            throw new IllegalArgumentException("bad or duplicate member name '" + name + "' in "
                    + getClass().getSimpleName());
        }
    }

    /** This module and all its descendants, depth first. */
    public final List<Module> modules() {
        List<Module> out = new ArrayList<>();
        out.add(this);
        for (Module c : children.values()) {
            out.addAll(c.modules());
        }
        return out;
    }

    /** Direct children in registration order. */
    public final Map<String, Module> children() {
        return Collections.unmodifiableMap(children);
    }

    /** Every parameter of this module and its descendants, by dotted name. */
    public final Map<String, Tensor> namedParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, true, false);
        return out;
    }

    /** Every buffer, by dotted name. */
    public final Map<String, Tensor> namedBuffers() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, false, true);
        return out;
    }

    /** Parameters then buffers of each module in tree order, as PyTorch's state_dict(). */
    public final Map<String, Tensor> stateDict() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect("", out, true, true);
        return out;
    }

    private void collect(String prefix, Map<String, Tensor> out, boolean params, boolean bufs) {
        if (params) {
            parameters.forEach((k, v) -> out.put(prefix + k, v));
        }
        if (bufs) {
            buffers.forEach((k, v) -> out.put(prefix + k, v));
        }
        children.forEach((k, m) -> m.collect(prefix + k + ".", out, params, bufs));
    }

    /** The parameters as a list (for optimisers). */
    public final List<Tensor> parameters() {
        return new ArrayList<>(namedParameters().values());
    }

    /** Number of parameter elements. */
    public final long parameterCount() {
        return namedParameters().values().stream().mapToLong(Tensor::numel).sum();
    }

    /**
     * What {@link #loadStateDict} did: keys the module has but the dict lacks, keys the dict has
     * but the module lacks, and keys whose shapes differ (name: module shape vs dict shape).
     */
    public record LoadReport(List<String> missing, List<String> unexpected, List<String> mismatched) {
        public boolean clean() {
            return missing.isEmpty() && unexpected.isEmpty() && mismatched.isEmpty();
        }

        @Override
        public String toString() {
            return "missing " + missing + ", unexpected " + unexpected + ", shape mismatches " + mismatched;
        }
    }

    /**
     * Copies values from a state dict into this module's parameters and buffers (in place, so
     * references held by optimisers stay valid). Strict: any missing, unexpected or mis-shaped
     * key is an error listing all of them; non-strict: matching keys load and the report says
     * what did not.
     */
    public final LoadReport loadStateDict(Map<String, Tensor> dict, boolean strict) {
        Map<String, Tensor> own = stateDict();
        List<String> missing = new ArrayList<>();
        List<String> unexpected = new ArrayList<>();
        List<String> mismatched = new ArrayList<>();
        for (var e : own.entrySet()) {
            Tensor src = dict.get(e.getKey());
            if (src == null) {
                missing.add(e.getKey());
            } else if (src.numel() != e.getValue().numel()
                    || !(Arrays.equals(src.shape(), e.getValue().shape()) || e.getValue().numel() == 1)) {
                mismatched.add(e.getKey() + ": " + Shape.str(e.getValue().shape()) + " vs " + Shape.str(src.shape()));
            }
        }
        for (String k : dict.keySet()) {
            if (!own.containsKey(k)) {
                unexpected.add(k);
            }
        }
        LoadReport report = new LoadReport(missing, unexpected, mismatched);
        if (strict && !report.clean()) {
            throw new IllegalArgumentException("loadStateDict into " + getClass().getSimpleName() + ": " + report);
        }
        for (var e : own.entrySet()) {
            Tensor src = dict.get(e.getKey());
            if (src != null && src.numel() == e.getValue().numel() && !mismatched.contains(e.getKey())) {
                Tensor dst = e.getValue();
                // to(device) and contiguous() are views when nothing needs moving; copy converts dtypes
                try (Tensor moved = src.to(dst.device()); Tensor c = moved.contiguous();
                     Tensor v = c.viewOf(dst.shape(), Shape.contiguousStrides(dst.shape()), c.offset())) {
                    dst.backend().copy(v, dst);
                }
            }
        }
        return report;
    }

    /** Training mode (batch statistics, dropout) for this module and its children; returns this. */
    public Module train(boolean on) {
        training = on;
        children.values().forEach(m -> m.train(on));
        return this;
    }

    /** Evaluation mode. */
    public final Module eval() {
        return train(false);
    }

    public final boolean isTraining() {
        return training;
    }

    /** Frees the gradients of every parameter. */
    public final void zeroGrad() {
        namedParameters().values().forEach(Tensor::zeroGrad);
    }

    /** The device of the parameters (CPU for a module without any). */
    public final Device device() {
        return stateDict().values().stream().findFirst().map(Tensor::device).orElse(Device.CPU);
    }

    /** Frees every parameter and buffer. */
    @Override
    public void close() {
        parameters.values().forEach(Tensor::close);
        buffers.values().forEach(Tensor::close);
        children.values().forEach(Module::close);
    }
}
