#!/usr/bin/python3
"""PyTorch (Debian's 1.13, CPU) on ElementwiseBench's calls, outputs preallocated (out=).

Usage: /usr/bin/python3 bench/torch_cpu_elementwise.py [--threads 2] [--shape 4x256x56x56]
Prints the median microseconds per call of each workload, named as ElementwiseBench's methods.
"""
import argparse
import os
import sys

from python_requires import require  # the script's folder is on sys.path

require("torch")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from median_timing import median_time  # noqa: E402


def timeit(fn):
    return median_time(fn, 1.0, 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="4x256x56x56")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, c, h, w = (int(v) for v in args.shape.split("x"))
    g = torch.Generator().manual_seed(1)
    a = torch.rand(n, c, h, w, generator=g) * 4 - 2
    b = torch.rand(n, c, h, w, generator=g) * 4 - 2
    out = torch.empty(n, c, h, w)
    bias = torch.rand(1, c, 1, 1, generator=g) * 2 - 1
    per_channel = torch.empty(c)
    scalar = torch.empty(())
    descriptors = torch.rand(4096, 2048, generator=g) * 2 - 1
    columns = torch.empty(2048)
    table = torch.rand(100_000, 256, generator=g) * 2 - 1
    row_ids = torch.randint(0, 100_000, (5000,), generator=g)
    picked = torch.rand(5000, 256, generator=g) * 2 - 1
    table_grad = torch.zeros(100_000, 256)
    transposed = torch.empty(2048, 4096)
    transposed_other = torch.rand(2048, 4096, generator=g) * 2 - 1
    print("torch", torch.__version__, "threads", torch.get_num_threads(), "shape", args.shape)
    work = {
        "copy": lambda: out.copy_(a),
        "add": lambda: torch.add(a, b, out=out),
        "addChannelBias": lambda: torch.add(a, bias, out=out),
        "relu": lambda: torch.clamp(a, min=0, out=out),
        "reluBackward": lambda: torch.ops.aten.threshold_backward.grad_input(b, a, 0, grad_input=out),
        "exp": lambda: torch.exp(a, out=out),
        "sumPerChannel": lambda: torch.sum(a, dim=(0, 2, 3), out=per_channel),
        "sumAll": lambda: torch.sum(a, dim=(0, 1, 2, 3), out=scalar),
        "columnSum": lambda: torch.sum(descriptors, dim=0, out=columns),
        "indexSelectRows": lambda: torch.index_select(table, 0, row_ids, out=picked),
        "indexAddRows": lambda: table_grad.index_add_(0, row_ids, picked),
        "transposeCopy": lambda: transposed.copy_(descriptors.t()),
        "expTransposed": lambda: torch.exp(descriptors.t(), out=transposed),
        "addTransposed": lambda: torch.add(descriptors.t(), transposed_other, out=transposed),
    }
    for name, fn in work.items():
        print("%-16s %10.1f us" % (name, timeit(fn)))


if __name__ == "__main__":
    main()
