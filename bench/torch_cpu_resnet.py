#!/usr/bin/python3
"""PyTorch (Debian's 1.13, CPU) on the workload of ResNetForwardBench and OnnxResNetBench.

The ResNet-50/101 feature trunk (torchvision, random init, no avgpool/fc: output [1, 2048, H/32,
W/32]) forward, batch 1, eval mode under torch.no_grad(), at 224x224 and 1024x768 (width x
height: an input [1, 3, 768, 1024]). Prints the median of --reps timed runs after --warmup
untimed ones, in JMH's result-line format so the side-by-side script can read all three alike:

  Benchmark                  (depth)     (size)  Mode  Cnt    Score   Error  Units
  torch.forward             resnet50    224x224  avgt    9   50.123   0.456  ms/op

(Error here is the half inter-quartile range, not JMH's 99.9% interval.)
Usage: /usr/bin/python3 bench/torch_cpu_resnet.py [--threads 2] [--reps 20] [--sizes 224x224,1024x768]
"""
import argparse
import time

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch", "torchvision")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402


def trunk(depth):
    model = getattr(torchvision.models, depth)(weights=None)
    return torch.nn.Sequential(*list(model.children())[:-2]).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20, help="timed runs at 224x224 (a quarter, at least 3, at larger sizes)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--depths", default="resnet50,resnet101")
    ap.add_argument("--sizes", default="224x224,1024x768")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("# torch", torch.__version__, "threads", torch.get_num_threads(), "mkldnn",
          torch.backends.mkldnn.is_available())
    print("%-26s %10s %10s  Mode  Cnt %10s %8s  Units" % ("Benchmark", "(depth)", "(size)", "Score", "Error"))
    for depth in args.depths.split(","):
        net = trunk(depth)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            x = torch.rand(1, 3, h, w) * 4 - 2
            reps = args.reps if w * h <= 224 * 224 else max(3, args.reps // 4)
            times = []
            with torch.no_grad():
                for i in range(args.warmup + reps):
                    t = time.perf_counter()
                    net(x)
                    if i >= args.warmup:
                        times.append((time.perf_counter() - t) * 1e3)
            q1, med, q3 = np.percentile(times, [25, 50, 75])
            print("%-26s %10s %10s  avgt %4d %10.3f %8.3f  ms/op" % ("torch.forward", depth, size, reps, med,
                                                                      (q3 - q1) / 2), flush=True)


if __name__ == "__main__":
    main()
