package dir4j.bench;

import dir4j.engine.*;
import dir4j.retrieval.loss.APLoss;
import java.util.Random;
/** Plain timing loop for GeM and the AP loss (see bench/RESULTS.md); JMH: GemBench, ApLossBench. */
public class MethodTiming {
  public static void main(String[] a) {
    Random rng = new Random(1);
    Tensor x = Tensor.uniform(rng, 0, 1, 8, 2048, 32, 32).requiresGrad(true);
    Tensor p = Tensor.of(new float[]{3f}, 1).requiresGrad(true);
    Tensor up = Tensor.uniform(rng, -1, 1, 8, 2048);
    double bf = 1e9, bfb = 1e9;
    for (int it = 0; it < 12; it++) {
      try (MemoryScope s = MemoryScope.open()) {
        long t0 = System.nanoTime();
        try (var ng = dir4j.engine.autograd.Autograd.noGrad()) { NnOps.gem(x, p, 1e-6); }
        long t1 = System.nanoTime();
        NnOps.gem(x, p, 1e-6).backward(up);
        long t2 = System.nanoTime();
        x.zeroGrad(); p.zeroGrad();
        bf = Math.min(bf, (t1 - t0) / 1e6); bfb = Math.min(bfb, (t2 - t1) / 1e6);
      }
    }
    System.out.printf("GeM 8x2048x32x32 p=3: fwd best %.1f ms, fwd+bwd best %.1f ms (12 runs)%n", bf, bfb);
    for (int n : new int[]{1024, 4096}) {
      Tensor kept; try (MemoryScope s = MemoryScope.open()) { kept = s.keep(NnOps.l2Normalize(Tensor.randn(rng, n, 2048), 1, 1e-12)); }
      Tensor d = kept.detach().requiresGrad(true);
      int[] cls = new int[n]; for (int i = 0; i < n; i++) cls[i] = i / 4;
      double best = 1e18;
      for (int it = 0; it < 4; it++) {
        try (MemoryScope s = MemoryScope.open()) {
          long t0 = System.nanoTime();
          new APLoss(20, -1, 1, false, false).forward(d, cls, null).loss().backward();
          best = Math.min(best, (System.nanoTime() - t0) / 1e6);
          d.zeroGrad();
        }
      }
      System.out.printf("AP loss fwd+bwd incl. S, N=%d D=2048 nq=20: best of 4 %.0f ms%n", n, best);
      d.close(); kept.close();
    }
  }
}
