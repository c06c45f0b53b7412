package dir4j.retrieval.train;

import dir4j.engine.Ops;
import dir4j.engine.Tensor;

/**
 * A loss of a researcher's own for the tests of {@link Trainer#withLoss} and {@code train
 * --loss-class}: 1 − the mean similarity of the batch's positive pairs (i ≠ j of one class).
 */
public class PositivePairsLoss implements Trainer.BatchLoss {
    @Override
    public Tensor loss(Tensor d, int[] ids, long step) {
        int n = d.shape(0);
        if (ids.length != n) {
            throw new IllegalArgumentException(n + " descriptors but " + ids.length + " class ids");
        }
        float[] mask = new float[n * n];
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i != j && ids[i] == ids[j]) {
                    mask[i * n + j] = 1;
                    pairs++;
                }
            }
        }
        Tensor s = Ops.matmul(d, Ops.transpose(d, 0, 1));
        return Ops.affine(Ops.sum(Ops.mul(s, Tensor.of(mask, n, n)), new int[] {0, 1}, false), -1.0 / pairs, 1);
    }
}
