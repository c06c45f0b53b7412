package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.autograd.Autograd;
import dir4j.engine.cpu.NativeMemory;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.Timeout;

/**
 * Hand-derived cases for views and storage sharing, autograd's bookkeeping (accumulation,
 * upstream gradients, no-grad, detach), the errors users meet, memory scopes, and native memory
 * staying flat over a long training loop.
 */
class TensorAndAutogradTest {

    private static float[] range(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i;
        }
        return v;
    }

    private static <T extends Throwable> String messageOf(Class<T> type, Runnable body) {
        return assertThrows(type, body::run).getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "message \"" + message + "\" should mention \"" + p + "\"");
        }
    }

    // ================================================================ views

    @Test
    void reshapeOfATransposedViewReadsInLogicalOrderAndRoutesGradientsBack() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(range(6), 2, 3).requiresGrad(true);
            Tensor t = x.t();
            assertFalse(t.isContiguous());
            Tensor r = t.reshape(6);
            assertArrayEquals(new float[] {0, 3, 1, 4, 2, 5}, r.toFloatArray());
            r.backward(Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 6));
            // r[2i + j] = x[j][i], so x.grad[j][i] = upstream[2i + j]
            assertArrayEquals(new float[] {1, 3, 5, 2, 4, 6}, x.grad().toFloatArray());
        }
    }

    @Test
    void permuteIsAViewAndContiguousLaysItOutRowMajor() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(range(24), 2, 3, 4);
            Tensor p = x.permute(2, 0, 1);
            assertSame(x.storage(), p.storage());
            assertArrayEquals(new int[] {4, 2, 3}, p.shape());
            assertArrayEquals(new long[] {1, 12, 4}, p.strides());
            assertFalse(p.isContiguous());
            Tensor c = p.contiguous();
            assertNotSame(x.storage(), c.storage());
            assertTrue(c.isContiguous());
            assertArrayEquals(new long[] {6, 3, 1}, c.strides());
            float[] v = c.toFloatArray();
            // c[k][i][j] = x[i][j][k] = 12i + 4j + k
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < 2; i++) {
                    for (int j = 0; j < 3; j++) {
                        assertEquals(12 * i + 4 * j + k, v[k * 6 + i * 3 + j]);
                    }
                }
            }
            assertSame(c.storage(), c.contiguous().storage(), "contiguous of a contiguous tensor is a view");
        }
    }

    @Test
    void sliceIsAViewAndWritesThroughItShowInTheBase() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(range(12), 4, 3);
            Tensor s = x.slice(0, 1, 3);
            assertSame(x.storage(), s.storage());
            assertEquals(3, s.offset());
            assertArrayEquals(new int[] {2, 3}, s.shape());
            Ops.addInPlace(s, Tensor.full(100, 3));
            assertArrayEquals(new float[] {0, 1, 2, 103, 104, 105, 106, 107, 108, 9, 10, 11}, x.toFloatArray());
            Tensor columns = x.slice(1, 1, 3);
            assertSame(x.storage(), columns.storage());
            assertArrayEquals(new float[] {1, 2, 104, 105, 107, 108, 10, 11}, columns.toFloatArray());
        }
    }

    @Test
    void selectAlongTheFirstAxisIsAView() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(range(12), 4, 3);
            Tensor row = x.select(0, 2);
            assertSame(x.storage(), row.storage());
            assertEquals(6, row.offset());
            assertArrayEquals(new float[] {6, 7, 8}, row.toFloatArray());
        }
    }

    /** PyTorch's select, squeeze and unsqueeze are views for any strides; Ops documents select as a view. */
    @Test
    void selectAlongALaterAxisIsAViewToo() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(range(12), 4, 3);
            Tensor column = x.select(1, 2);
            assertArrayEquals(new float[] {2, 5, 8, 11}, column.toFloatArray());
            assertSame(x.storage(), column.storage(), "select(1, 2) of a [4, 3] tensor copied instead of viewing");
            assertArrayEquals(new long[] {3}, column.strides());
        }
    }

    @Test
    void expandIsAStrideZeroViewAndItsGradientSumsOverTheCopies() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, 2, 3}, 3, 1).requiresGrad(true);
            Tensor e = x.expand(2, 3, 4);
            assertSame(x.storage(), e.storage());
            assertArrayEquals(new long[] {0, 1, 0}, e.strides());
            assertEquals(2 * 1 * 4 + 2 * 2 * 4 + 2 * 3 * 4, e.sum().item(), 0);
            e.sum().backward();
            assertArrayEquals(new float[] {8, 8, 8}, x.grad().toFloatArray());
        }
    }

    // ================================================================ autograd

    @Test
    void gradientsAccumulateOverBackwardCallsUntilZeroed() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, -2, 3}, 3).requiresGrad(true);
            assertNull(x.grad());
            x.mul(3).sum().backward();
            assertArrayEquals(new float[] {3, 3, 3}, x.grad().toFloatArray());
            x.mul(x).sum().backward();
            assertArrayEquals(new float[] {5, -1, 9}, x.grad().toFloatArray(), "3 + 2x");
            x.zeroGrad();
            assertNull(x.grad());
            x.mul(x).sum().backward();
            assertArrayEquals(new float[] {2, -4, 6}, x.grad().toFloatArray());
        }
    }

    @Test
    void backwardWithAnUpstreamGradientEqualsBackwardOfTheWeightedSum() {
        try (var scope = MemoryScope.open()) {
            Random rng = new Random(7);
            Tensor data = Tensor.randn(rng, 3, 4);
            Tensor w = Tensor.randn(rng, 4, 2);
            Tensor upstream = Tensor.randn(rng, 3, 2);
            Function<Tensor, Tensor> f = x -> x.exp().mul(x).matmul(w).relu();
            Tensor x1 = Ops.cloneDetached(data).requiresGrad(true);
            f.apply(x1).backward(upstream);
            Tensor x2 = Ops.cloneDetached(data).requiresGrad(true);
            f.apply(x2).mul(upstream).sum().backward();
            assertArrayEquals(x2.grad().toFloatArray(), x1.grad().toFloatArray());
            assertFalse(upstream.isClosed(), "backward must not free the caller's upstream gradient");
        }
    }

    @Test
    void noGradRecordsNothing() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, 2}, 2).requiresGrad(true);
            Tensor y;
            try (var ng = Autograd.noGrad()) {
                try (var inner = Autograd.noGrad()) {
                    assertFalse(Autograd.isGradEnabled());
                }
                assertFalse(Autograd.isGradEnabled(), "nested no-grad scopes count");
                y = x.mul(2).exp();
            }
            assertTrue(Autograd.isGradEnabled());
            assertFalse(y.requiresGrad());
            assertTrue(y.isLeaf());
            assertNull(y.gradFn());
            assertTrue(x.mul(2).requiresGrad(), "recording resumes after the scope");
            String m = messageOf(IllegalStateException.class, () -> y.sum().backward());
            assertMentions(m, "does not require grad");
        }
    }

    @Test
    void detachSharesStorageAndCutsTheGraph() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, 2, 3}, 3).requiresGrad(true);
            Tensor d = x.detach();
            assertSame(x.storage(), d.storage());
            assertFalse(d.requiresGrad());
            assertTrue(d.isLeaf());
            // d(x · detach(x))/dx = detach(x), not 2x
            x.mul(d).sum().backward();
            assertArrayEquals(new float[] {1, 2, 3}, x.grad().toFloatArray());
        }
    }

    @Test
    void aLeafUsedByTwoOpsGetsBothGradients() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {0.5f, -1}, 2).requiresGrad(true);
            Tensor y = Tensor.of(new float[] {2, 3}, 2).requiresGrad(true);
            // L = Σ x·y + x² + y  → dL/dx = y + 2x, dL/dy = x + 1
            x.mul(y).add(x.pow(2)).add(y).sum().backward();
            assertArrayEquals(new float[] {3, 1}, x.grad().toFloatArray());
            assertArrayEquals(new float[] {1.5f, 0}, y.grad().toFloatArray());
        }
    }

    @Test
    void gradientsOfFloat64LeavesAreFloat64() {
        try (var scope = MemoryScope.open()) {
            Tensor x = Tensor.ofDoubles(new double[] {1, 2}, 2).requiresGrad(true);
            x.mul(x).sum().backward();
            assertEquals(DType.FLOAT64, x.grad().dtype());
            assertArrayEquals(new double[] {2, 4}, x.grad().toDoubleArray());
        }
    }

    // ================================================================ errors

    @Test
    void shapeMismatchNamesTheOpAndBothShapes() {
        try (var scope = MemoryScope.open()) {
            Tensor a = Tensor.zeros(2, 3);
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.add(a, Tensor.zeros(4))),
                    "add", "[2, 3]", "[4]");
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.mul(a, Tensor.zeros(3, 3))),
                    "mul", "[2, 3]", "[3, 3]");
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.matmul(a, Tensor.zeros(4, 5))),
                    "matmul", "[2, 3]", "[4, 5]");
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.reshape(a, 4, 2)),
                    "reshape", "[2, 3]", "[4, 2]");
            assertMentions(messageOf(IllegalArgumentException.class, () -> NnOps.linear(a, Tensor.zeros(5, 4), null)),
                    "linear", "[2, 3]", "[5, 4]");
            assertMentions(messageOf(IllegalArgumentException.class,
                            () -> NnOps.conv2d(Tensor.zeros(1, 3, 8, 8), Tensor.zeros(4, 2, 3, 3), null, 1, 1, 1)),
                    "conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]");
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.concat(0, a, Tensor.zeros(2, 4))),
                    "concat", "[2, 3]", "[2, 4]");
        }
    }

    @Test
    void dtypeMismatchNamesBothDtypes() {
        try (var scope = MemoryScope.open()) {
            Tensor f = Tensor.zeros(2);
            Tensor d = Tensor.ofDoubles(new double[] {1, 2}, 2);
            assertMentions(messageOf(IllegalArgumentException.class, () -> Ops.add(f, d)), "add", "float32", "float64");
            assertMentions(messageOf(IllegalArgumentException.class,
                    () -> Ops.exp(Tensor.ofInts(new int[] {1}, 1))), "exp", "int32");
            assertMentions(messageOf(IllegalArgumentException.class,
                    () -> Tensor.ofInts(new int[] {1}, 1).requiresGrad(true)), "int32");
        }
    }

    @Test
    void usingATensorAfterItsScopeClosedNamesTheOp() {
        Tensor t;
        try (var scope = MemoryScope.open()) {
            t = Tensor.ones(2, 2);
        }
        assertTrue(t.isClosed());
        assertMentions(messageOf(IllegalStateException.class, () -> Ops.exp(t)), "exp", "freed", "[2, 2]");
        assertMentions(messageOf(IllegalStateException.class, t::toFloatArray), "freed");
    }

    @Test
    void backwardRefusesATensorThatDoesNotRequireGrad() {
        try (var scope = MemoryScope.open()) {
            assertMentions(messageOf(IllegalStateException.class, () -> Tensor.ones(1).backward()),
                    "does not require grad");
            Tensor x = Tensor.of(new float[] {1, -1}, 2).requiresGrad(true);
            Tensor mask = Ops.greater(x, Tensor.zeros(2));
            assertFalse(mask.requiresGrad(), "a comparison is not differentiable");
            assertMentions(messageOf(IllegalStateException.class, () -> mask.backward(Tensor.ones(2))),
                    "does not require grad", "greater");
        }
    }

    @Test
    void backwardChecksTheUpstreamGradient() {
        try (var scope = MemoryScope.open()) {
            Tensor y = Tensor.zeros(2, 3).requiresGrad(true).exp();
            assertMentions(messageOf(IllegalArgumentException.class, y::backward), "[2, 3]", "upstream");
            assertMentions(messageOf(IllegalArgumentException.class, () -> y.backward(Tensor.zeros(3, 2))),
                    "[3, 2]", "[2, 3]");
            Tensor z = Tensor.ofDoubles(new double[] {1, 2}, 2).requiresGrad(true).mul(2);
            assertMentions(messageOf(IllegalArgumentException.class, () -> z.backward(Tensor.ones(2))),
                    "float32", "float64");
        }
    }

    @Test
    void backwardThroughATensorFreedEarlyNamesTheOp() {
        try (var outer = MemoryScope.open()) {
            Tensor x = Tensor.of(new float[] {1, 2}, 2).requiresGrad(true);
            Tensor loss;
            try (var inner = MemoryScope.open()) {
                loss = inner.keep(x.exp().sum()); // the exp result stays in the inner scope and is freed
            }
            assertMentions(messageOf(IllegalStateException.class, loss::backward), "backward", "sum", "freed");
        }
    }

    // ================================================================ memory scopes

    @Test
    void closingAScopeFreesWhatItMadeExceptWhatItKeeps() {
        long blocks = NativeMemory.liveBlocks();
        Tensor kept;
        Tensor dropped;
        try (var outer = MemoryScope.open()) {
            try (var inner = MemoryScope.open()) {
                kept = Tensor.ones(3);
                dropped = Tensor.ones(3);
                assertEquals(2, inner.size());
                assertSame(kept, inner.keep(kept));
                assertEquals(1, inner.size());
            }
            assertTrue(dropped.isClosed());
            assertFalse(kept.isClosed(), "a kept tensor moves to the enclosing scope");
            assertEquals(3, kept.sum().item(), 0);
        }
        assertTrue(kept.isClosed(), "the enclosing scope closes what was kept into it");
        assertEquals(blocks, NativeMemory.liveBlocks());
    }

    @Test
    void aTensorKeptFromTheOutermostScopeBelongsToTheCaller() {
        long blocks = NativeMemory.liveBlocks();
        Tensor t;
        try (var scope = MemoryScope.open()) {
            t = scope.keep(Tensor.ones(4));
        }
        assertFalse(t.isClosed());
        assertEquals(blocks + 1, NativeMemory.liveBlocks());
        t.close();
        assertEquals(blocks, NativeMemory.liveBlocks());
    }

    @Test
    void aViewKeepsItsStorageAliveAfterTheBaseCloses() {
        long blocks = NativeMemory.liveBlocks();
        Tensor base = MemoryScope.detached(() -> Tensor.of(range(6), 2, 3));
        Tensor view = MemoryScope.detached(() -> base.slice(0, 1, 2));
        base.close();
        assertFalse(view.storage().isFreed());
        assertEquals(1, view.storage().refCount(), "only the view holds the storage");
        view.close();
        assertTrue(view.storage().isFreed());
        assertEquals(blocks, NativeMemory.liveBlocks());
    }

    @Test
    void scopesMustCloseInnermostFirst() {
        var outer = MemoryScope.open();
        var inner = MemoryScope.open();
        assertMentions(messageOf(IllegalStateException.class, outer::close), "innermost first");
        inner.close();
        outer.close();
    }

    @Test
    void detachedCodeCreatesTensorsOwnedByTheCaller() {
        Tensor t;
        try (var scope = MemoryScope.open()) {
            t = MemoryScope.detached(() -> Tensor.ones(2));
            assertEquals(0, scope.size());
        }
        assertFalse(t.isClosed());
        t.close();
    }

    // ================================================================ leaks outside scopes

    /**
     * Outside any scope the caller owns what it creates and closes it; nothing else may stay
     * allocated once the inputs and the output are closed (DESIGN: lifetimes are deterministic,
     * never left to the GC).
     */
    @TestFactory
    Stream<DynamicTest> anOpOutsideAnyScopeLeavesNothingAllocatedOnceItsTensorsClose() {
        record Leak(String name, Function<Tensor, Tensor> op) {}
        return Stream.of(
                new Leak("toFloatArray", x -> {
                    x.toFloatArray();
                    return null;
                }),
                new Leak("item", x -> {
                    Tensor s = x.sum();
                    s.item();
                    return s;
                }),
                new Leak("exp", Ops::exp),
                new Leak("matmul", x -> {
                    try (Tensor xt = x.t()) {
                        return x.matmul(xt);
                    }
                }),
                new Leak("mean", x -> x.mean()),
                new Leak("indexSelect", x -> {
                    try (Tensor idx = Tensor.ofInts(new int[] {1, 0}, 2)) {
                        return Ops.indexSelect(x, 0, idx);
                    }
                }),
                new Leak("l2Normalize", x -> NnOps.l2Normalize(x, 1, 1e-12)),
                new Leak("maxPool2d", x -> {
                    try (Tensor x4 = x.reshape(1, 1, 2, 3)) {
                        return NnOps.maxPool2d(x4, 2, 1, 0);
                    }
                }),
                new Leak("batchNorm2d in eval", x -> {
                    try (Tensor x4 = x.reshape(1, 1, 2, 3); Tensor rm = Tensor.zeros(1); Tensor rv = Tensor.ones(1)) {
                        return NnOps.batchNorm2d(x4, null, null, rm, rv, false, 0.1, 1e-5);
                    }
                }),
                new Leak("batchNorm2dInference with a strided residual", x -> {
                    try (Tensor x4 = x.reshape(1, 1, 2, 3); Tensor rm = Tensor.zeros(1); Tensor rv = Tensor.ones(1);
                         Tensor xt = x.t(); Tensor r = xt.reshape(1, 1, 3, 2); Tensor rt = r.transpose(2, 3)) {
                        return NnOps.batchNorm2dInference(x4, null, null, rm, rv, 1e-5, rt, true, false);
                    }
                }),
                new Leak("maxPool2d under no-grad", x -> {
                    try (Tensor x4 = x.reshape(1, 1, 2, 3); var ng = Autograd.noGrad()) {
                        return NnOps.maxPool2d(x4, 2, 1, 0);
                    }
                })).map(l -> DynamicTest.dynamicTest(l.name(), () -> {
                    long blocks = NativeMemory.liveBlocks();
                    Tensor x = Tensor.of(range(6), 2, 3);
                    Tensor y = l.op().apply(x);
                    if (y != null) {
                        y.close();
                    }
                    x.close();
                    assertEquals(0, NativeMemory.liveBlocks() - blocks,
                            l.name() + " outside a scope left native blocks allocated after its tensors were closed");
                }));
    }

    // ================================================================ a long training loop

    /**
     * A linear model trained for 10,000 SGD steps, each in its own scope (forward, loss, backward,
     * in-place update under no-grad, zeroGrad): native memory after step 100 and after the last
     * step is identical, block for block and byte for byte, and the model has learnt the target.
     */
    @Test
    @Timeout(60)
    void aTenThousandStepTrainingLoopKeepsNativeMemoryFlat() {
        Random rng = new Random(3);
        float[] trueW = {0.5f, -1.25f, 2f};
        float trueB = 0.75f;
        int n = 32;
        float[] xs = new float[n * 3];
        float[] ys = new float[n];
        for (int i = 0; i < n; i++) {
            float y = trueB;
            for (int j = 0; j < 3; j++) {
                xs[i * 3 + j] = (float) rng.nextGaussian();
                y += trueW[j] * xs[i * 3 + j];
            }
            ys[i] = y;
        }
        long blocksBefore = NativeMemory.liveBlocks();
        Tensor x = Tensor.of(xs, n, 3);
        Tensor target = Tensor.of(ys, n, 1);
        Tensor w = Tensor.zeros(1, 3).requiresGrad(true);
        Tensor b = Tensor.zeros(1).requiresGrad(true);
        double lr = 0.05;
        long bytesAt100 = -1;
        long blocksAt100 = -1;
        double firstLoss = Double.NaN;
        double lastLoss = Double.NaN;
        for (int step = 1; step <= 10_000; step++) {
            try (var scope = MemoryScope.open()) {
                Tensor loss = NnOps.linear(x, w, b).sub(target).pow(2).mean();
                loss.backward();
                try (var ng = Autograd.noGrad()) {
                    Ops.addInPlace(w, w.grad().mul(-lr));
                    Ops.addInPlace(b, b.grad().mul(-lr));
                }
                w.zeroGrad();
                b.zeroGrad();
                if (step == 1) {
                    firstLoss = loss.item();
                }
                if (step == 10_000) {
                    lastLoss = loss.item();
                }
            }
            if (step == 100) {
                bytesAt100 = NativeMemory.liveBytes();
                blocksAt100 = NativeMemory.liveBlocks();
            }
        }
        assertEquals(blocksAt100, NativeMemory.liveBlocks(), "live native blocks, step 100 vs step 10,000");
        assertEquals(bytesAt100, NativeMemory.liveBytes(), "live native bytes, step 100 vs step 10,000");
        assertEquals(blocksBefore + 4, NativeMemory.liveBlocks(), "only x, target, w and b stay allocated");
        assertTrue(firstLoss > 1, "initial loss " + firstLoss);
        assertTrue(lastLoss < 1e-8, "final loss " + lastLoss);
        assertArrayEquals(trueW, w.toFloatArray(), 1e-4f);
        assertEquals(trueB, b.toFloatArray()[0], 1e-4f);
        for (Tensor t : List.of(x, target, w, b)) {
            t.close();
        }
    }

    /** item() reads the element a one-element view points at, in every dtype, and refuses a freed tensor. */
    @Test
    void itemReadsTheViewsElementInEveryDtype() {
        try (MemoryScope scope = MemoryScope.open()) {
            double[] v = {1.5, -2.25, 7, 11};
            for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.INT32}) {
                Tensor x = Tensor.ofDoubles(v, 2, 2).to(t);
                Tensor one = Ops.slice(Ops.slice(x, 0, 1, 2), 1, 1, 2); // element [1, 1], offset 3
                assertEquals(t == DType.INT32 ? 11 : 11.0, one.item(), 0, t + " [1, 1]");
                assertEquals(t == DType.INT32 ? -2 : -2.25, Ops.slice(Ops.slice(x, 0, 0, 1), 1, 1, 2).item(), 0,
                        t + " [0, 1]");
                one.close();
                assertThrows(IllegalStateException.class, one::item, t + ": freed");
            }
            assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(2).item(), "two elements");
        }
    }
}
