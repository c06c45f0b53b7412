package dir4j.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dir4j.engine.Backend.AdamStep;
import dir4j.engine.Backend.SgdStep;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Dense layouts (a permutation of a contiguous one, as a channels-last weight [K, C, kh, kw] with
 * strides (kh·kw·C, 1, kw·C, C)): recognition, in-place adds, gradients that land in the leaf's
 * layout, and the fused optimiser steps over parameters, gradients and state of one such layout.
 */
class DenseLayoutTest {
    private static final int[] SHAPE = {5, 3, 2, 4}; // K, C, kh, kw
    private static final long[] KRSC = {2 * 4 * 3, 1, 4 * 3, 3};

    /** The values of a row-major [K, C, kh, kw] array in a channels-last tensor. */
    private static Tensor channelsLast(double[] rowMajor) {
        Tensor t = Tensor.emptyDense(DType.FLOAT32, Device.CPU, SHAPE, KRSC);
        try (Tensor src = Tensor.ofDoubles(rowMajor, SHAPE).to(DType.FLOAT32)) {
            t.backend().copy(src, t);
        }
        return t;
    }

    private static double[] random(long seed, int n) {
        Random rng = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = rng.nextGaussian();
        }
        return v;
    }

    @Test
    void denseLayoutsAreRecognised() {
        assertTrue(Shape.isDense(SHAPE, Shape.contiguousStrides(SHAPE)));
        assertTrue(Shape.isDense(SHAPE, KRSC));
        assertTrue(Shape.isDense(new int[] {4, 1, 3}, new long[] {3, 99, 1}), "size-1 dimensions do not count");
        assertTrue(Shape.isDense(new int[] {0, 3}, new long[] {7, 7}), "empty");
        assertFalse(Shape.isDense(new int[] {4, 3}, new long[] {4, 1}), "a gap after each row");
        assertFalse(Shape.isDense(new int[] {4, 3}, new long[] {1, 1}), "overlapping rows");
        assertFalse(Shape.isDense(new int[] {4, 3}, new long[] {0, 1}), "a broadcast");
        assertFalse(Shape.isDense(new int[] {4, 3}, new long[] {-3, 1}), "a reversed dimension");
        try (MemoryScope s = MemoryScope.open()) {
            Tensor t = channelsLast(random(1, 120));
            assertTrue(t.isDense() && !t.isContiguous());
            assertTrue(Ops.permute(t, 0, 2, 3, 1).isContiguous(), "its [K, kh, kw, C] view is contiguous");
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.emptyDense(DType.FLOAT32, Device.CPU, SHAPE, new long[] {24, 1, 12, 2}));
        }
    }

    @Test
    void inPlaceAddsAndCopiesKeepTheLayout() {
        try (MemoryScope s = MemoryScope.open()) {
            double[] a = random(2, 120);
            double[] b = random(3, 120);
            Tensor ta = channelsLast(a);
            Ops.addInPlace(ta, channelsLast(b)); // same layout: flat
            Ops.addInPlace(ta, Tensor.ofDoubles(b, SHAPE).to(DType.FLOAT32)); // row-major operand: strided
            double[] got = ta.toDoubleArray();
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i] + 2 * b[i], got[i], 1e-5, "a + 2b at " + i);
            }
            Tensor c = Ops.cloneLayoutLike(Tensor.ofDoubles(a, SHAPE).to(DType.FLOAT32), ta);
            assertArrayEquals(ta.strides(), c.strides());
            assertArrayEquals(Tensor.ofDoubles(a, SHAPE).to(DType.FLOAT32).toDoubleArray(), c.toDoubleArray());
            // a target with gaps (PyTorch's x[:, :3] += y) takes the sum through its view; an
            // expanded one (several elements in one place) is refused, as by PyTorch
            Tensor wide = Tensor.zeros(2, 4);
            Ops.addInPlace(Ops.slice(wide, 1, 0, 3), Tensor.ones(2, 3));
            assertArrayEquals(new float[] {1, 1, 1, 0, 1, 1, 1, 0}, wide.toFloatArray());
            Tensor expanded = Ops.expand(Tensor.zeros(1, 3), 4, 3);
            assertThrows(IllegalArgumentException.class, () -> Ops.addInPlace(expanded, Tensor.zeros(4, 3)));
        }
    }

    /**
     * The gradient of a channels-last leaf through its [K, kh, kw, C] view (what the channels-last
     * convolution takes) is stored in the leaf's layout, taken over without a copy, and a second
     * backward adds to it.
     */
    @Test
    void aGradientThroughThePermutedViewLandsInTheLeafsLayout() {
        try (MemoryScope s = MemoryScope.open()) {
            double[] w = random(4, 120);
            double[] up = random(5, 120);
            Tensor leaf = channelsLast(w).requiresGrad(true);
            Tensor view = Ops.permute(leaf, 0, 2, 3, 1);
            Tensor upstream = Tensor.ofDoubles(up, 5, 2, 4, 3).to(DType.FLOAT32);
            Ops.affine(view, 2.0, 0).backward(upstream);
            assertArrayEquals(leaf.strides(), leaf.grad().strides(), "the gradient's strides");
            double[] once = leaf.grad().toDoubleArray();
            double[] want = Ops.permute(upstream, 0, 3, 1, 2).toDoubleArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(2 * want[i], once[i], 1e-6, "dL/dw at " + i);
            }
            Ops.affine(Ops.permute(leaf, 0, 2, 3, 1), 2.0, 0).backward(upstream);
            double[] twice = leaf.grad().toDoubleArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(4 * want[i], twice[i], 1e-6, "accumulated dL/dw at " + i);
            }
        }
    }

    /** SGD (momentum, Nesterov, weight decay) and Adam on a channels-last parameter: the row-major parameter's values. */
    @Test
    void fusedStepsOnAChannelsLastParameterMatchTheRowMajorOne() {
        try (MemoryScope s = MemoryScope.open()) {
            double[] p0 = random(6, 120);
            SgdStep sgd = new SgdStep(0.1, 0.9, 0, 1e-2, true);
            Tensor pr = Tensor.ofDoubles(p0, SHAPE).to(DType.FLOAT32);
            Tensor pc = channelsLast(p0);
            Tensor br = Tensor.zeros(SHAPE);
            Tensor bc = Tensor.emptyLayoutLike(pc, DType.FLOAT32, Device.CPU);
            Tensor mr = Tensor.zeros(SHAPE);
            Tensor vr = Tensor.zeros(SHAPE);
            Tensor mc = Tensor.emptyLayoutLike(pc, DType.FLOAT32, Device.CPU);
            Tensor vc = Tensor.emptyLayoutLike(pc, DType.FLOAT32, Device.CPU);
            for (int t = 1; t <= 3; t++) {
                double[] g = random(10 + t, 120);
                Tensor gr = Tensor.ofDoubles(g, SHAPE).to(DType.FLOAT32);
                pr.backend().sgdStep(pr, gr, br, t == 1, sgd);
                pc.backend().sgdStep(pc, Ops.cloneLayoutLike(gr, pc), bc, t == 1, sgd);
                AdamStep adam = new AdamStep(1e-2, 0.9, 0.999, 1e-8, 1e-2, true, t);
                pr.backend().adamStep(pr, gr, mr, vr, adam);
                pc.backend().adamStep(pc, Ops.cloneLayoutLike(gr, pc), mc, vc, adam);
            }
            assertArrayEquals(pr.toDoubleArray(), pc.toDoubleArray(), "parameters after 3 SGD + Adam steps");
            assertArrayEquals(br.toDoubleArray(), bc.toDoubleArray(), "momentum buffers");
            assertArrayEquals(vr.toDoubleArray(), vc.toDoubleArray(), "Adam's second moments");
            // a gradient in another layout is refused, naming both layouts
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pc.backend().sgdStep(pc,
                    Tensor.zeros(SHAPE), bc, false, sgd));
            assertTrue(e.getMessage().contains("laid out as the parameter"), e.getMessage());
            assertSame(Device.CPU, pc.device());
        }
    }
}
