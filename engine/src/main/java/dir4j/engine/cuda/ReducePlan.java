package dir4j.engine.cuda;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * How a reduction runs on the GPU (kernels/src/main/cuda/reduce.cu). The kept dimensions index
 * the contiguous keep-dim output in row-major order, so they are merged with x's strides alone;
 * the reduced dimensions are walked in any order (ordered by falling stride, so that the
 * innermost walk is the densest) and merged likewise.
 *
 * @param kind    which kernel
 * @param kept    the kept dimensions (x's strides); numel = number of outputs
 * @param reduced the reduced dimensions (x's strides); numel = values per output
 * @param splits  for BLOCKS: how many blocks share one output (then a second pass over partials)
 */
record ReducePlan(Kind kind, StridedGeometry kept, StridedGeometry reduced, int splits) {
    /** The kernels. */
    enum Kind {
        /** reduced values form one unit-stride run per output: a warp or block per output row */
        ROWS,
        /** many outputs, unit stride along the innermost kept dimension: a thread per output */
        COLUMNS,
        /** anything else: a block (or several, with a second pass) per output */
        BLOCKS
    }

    /** Outputs below which a long row is split across blocks rather than given one block. */
    private static final long FEW_OUTPUTS_PER_SM = 2;
    /** Values per output above which a row-or-block reduction is split across blocks when outputs are few. */
    private static final long LONG_REDUCTION = 1 << 16;
    /** Outputs at or above which a thread per output keeps the device busy. */
    private static final long MANY_OUTPUTS = 2048;

    static ReducePlan of(String op, int[] shape, long[] strides, boolean[] reduce, int multiprocessors) {
        List<long[]> keptDims = new ArrayList<>();
        List<long[]> redDims = new ArrayList<>();
        for (int d = 0; d < shape.length; d++) {
            (reduce[d] ? redDims : keptDims).add(new long[] {shape[d], strides[d]});
        }
        redDims.sort(Comparator.comparingLong((long[] e) -> -e[1]));
        StridedGeometry kept = geometry(op, keptDims);
        StridedGeometry red = geometry(op, redDims);
        long outputs = kept.numel;
        long perOutput = red.numel;
        boolean fewOutputs = outputs < FEW_OUTPUTS_PER_SM * multiprocessors;
        if (red.contiguous(0) && !(fewOutputs && perOutput > LONG_REDUCTION)) {
            return new ReducePlan(Kind.ROWS, kept, red, 1);
        }
        if (outputs >= MANY_OUTPUTS && kept.strides[0][kept.rank - 1] == 1) {
            return new ReducePlan(Kind.COLUMNS, kept, red, 1);
        }
        int splits = 1;
        if (fewOutputs && perOutput > LONG_REDUCTION) {
            long wanted = (4L * multiprocessors + outputs - 1) / outputs;
            splits = (int) Math.max(1, Math.min(Math.min(wanted, perOutput / 4096), 65535));
        }
        return new ReducePlan(Kind.BLOCKS, kept, red, splits);
    }

    private static StridedGeometry geometry(String op, List<long[]> dims) {
        long[] s = new long[dims.size()];
        long[] st = new long[dims.size()];
        for (int i = 0; i < s.length; i++) {
            s[i] = dims.get(i)[0];
            st[i] = dims.get(i)[1];
        }
        return StridedGeometry.of(op, s, st);
    }
}
