package dir4j.nn.optim;

/**
 * A learning rate as a function of the step (0-based). Combine with {@link #withWarmup}.
 */
@FunctionalInterface
public interface LrSchedule {
    double lr(long step);

    /** A constant rate. */
    static LrSchedule constant(double lr) {
        return s -> lr;
    }

    /** lr·γ^⌊step/stepSize⌋ (torch StepLR). */
    static LrSchedule step(double lr, long stepSize, double gamma) {
        if (stepSize <= 0) {
            throw new IllegalArgumentException("step schedule: stepSize must be positive, got " + stepSize);
        }
        return s -> lr * Math.pow(gamma, Math.floorDiv(s, stepSize));
    }

    /** lr·γ^step (torch ExponentialLR). */
    static LrSchedule exponential(double lr, double gamma) {
        return s -> lr * Math.pow(gamma, s);
    }

    /**
     * min + (lr − min)·(1 + cos(π·step/total))/2 (torch CosineAnnealingLR's closed form: past
     * {@code total} it rises again, as PyTorch's does; size {@code total} to the run).
     */
    static LrSchedule cosine(double lr, long total, double min) {
        if (total <= 0) {
            throw new IllegalArgumentException("cosine schedule: total steps must be positive, got " + total);
        }
        return s -> min + (lr - min) * (1 + Math.cos(Math.PI * s / total)) / 2;
    }

    /** Linear warm-up: lr(step)·(step + 1)/warmup over the first {@code warmup} steps, then this schedule. */
    default LrSchedule withWarmup(long warmup) {
        if (warmup <= 0) {
            return this;
        }
        return s -> s < warmup ? lr(s) * (s + 1) / warmup : lr(s);
    }
}
