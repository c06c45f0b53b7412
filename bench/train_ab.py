#!/usr/bin/python3
"""Two dir4j builds' CPU training steps in alternating bursts, without PyTorch.

Each jar runs dir4j.bench.TrainPaired (ResNet-50 + GeM + FC 2048, batch 4 at 224x224, batch
statistics, SGD; see bench/train_paired.py) in its own warm JVM; bursts alternate, the order
swapped every round. Prints each round, the medians and the median of the per-round ratios
after/before. Extra arguments are JVM options for both (e.g. -XX:ActiveProcessorCount=1, whose
single-core steps are steadier on a shared machine).

    /usr/bin/python3 bench/train_ab.py BEFORE.jar AFTER.jar [rounds=8] [burst seconds=5] [JVM options...]
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired_jvm import PairedJvm  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    jars = {"before": sys.argv[1], "after": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    burst = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    options = sys.argv[5:]
    for jar in jars.values():
        if not os.path.isfile(jar):
            sys.exit(f"no file {jar}")
    jvms = {k: PairedJvm("TrainPaired", "resnet50", 4, 224, 2048, jar=j, jvm_options=options) for k, j in jars.items()}
    for jvm in jvms.values():
        jvm.ask(f"step {burst * 2}")  # warm-up, not counted
    ms = {k: [] for k in jvms}
    for r in range(rounds):
        for k in (list(jvms) if r % 2 == 0 else list(jvms)[::-1]):
            ms[k].append(float(jvms[k].ask(f"step {burst}")))
        print(f"round {r + 1}: " + "  ".join(f"{k} {v[-1]:.1f}" for k, v in ms.items()), flush=True)
    for jvm in jvms.values():
        jvm.close()
    ratios = [a / b for a, b in zip(ms["after"], ms["before"])]
    print(f"median ms per step: before {statistics.median(ms['before']):.1f}, after {statistics.median(ms['after']):.1f};"
          f" median per-round after/before {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
