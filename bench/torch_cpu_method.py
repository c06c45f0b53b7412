#!/usr/bin/python3
"""PyTorch (Debian's 1.13, CPU) on the same workloads as GemBench and ApLossBench.

Usage: /usr/bin/python3 bench/torch_cpu_method.py [--threads 2] [--p 3.0] [--only gem|aploss]
Prints median milliseconds per call for GeM forward and forward+backward (8x2048x32x32, p=3 or
--p; a learned p such as 2.7 is the general case, where pow cannot use repeated multiplication)
and the AP loss forward+backward including S = D D^T (N=1024 and 4096, D=2048, nq=20), in the
reference's formulation (conv1d quantiser over the N x 2nq x M tensor).
"""
import argparse
import time

from python_requires import require  # the script's folder is on sys.path

require("numpy", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def timeit(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def quantizer(nq, vmin, vmax):
    q = torch.nn.Conv1d(1, 2 * nq, kernel_size=1, bias=True)
    a = (nq - 1) / (vmax - vmin)
    with torch.no_grad():
        q.weight[:nq] = -a
        q.bias[:nq] = torch.from_numpy(a * vmin + np.arange(nq, 0, -1)).float()
        q.weight[nq:] = a
        q.bias[nq:] = torch.from_numpy(np.arange(2 - nq, 2, 1) - a * vmin).float()
        q.weight[0] = q.weight[-1] = 0
        q.bias[0] = q.bias[-1] = 1
    q.requires_grad_(False)
    return q


def ap_loss(x, label, q, nq):
    N, M = x.shape
    qq = q(x.unsqueeze(1))
    qq = torch.min(qq[:, :nq], qq[:, nq:]).clamp(min=0)
    nbs = qq.sum(dim=-1)
    rec = (qq * label.view(N, 1, M).float()).sum(dim=-1)
    prec = rec.cumsum(dim=-1) / (1e-16 + nbs.cumsum(dim=-1))
    rec = rec / rec.sum(dim=-1).unsqueeze(1)
    return 1 - (prec * rec).sum(dim=-1).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--p", type=float, default=3.0, help="GeM exponent (default 3.0)")
    ap.add_argument("--only", choices=("gem", "aploss"), help="run one of the two workloads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("torch", torch.__version__, "threads", torch.get_num_threads())
    x = torch.rand(8, 2048, 32, 32, requires_grad=True)
    p = torch.tensor([args.p], requires_grad=True)
    g = torch.rand(8, 2048)

    def gem():
        return F.adaptive_avg_pool2d(x.clamp(min=1e-6).pow(p), 1).pow(1.0 / p).flatten(1)

    if args.only != "aploss":
        with torch.no_grad():
            print("GeM fwd 8x2048x32x32 p=%g: %.1f ms" % (args.p, timeit(gem, 5)))
        print("GeM fwd+bwd 8x2048x32x32 p=%g: %.1f ms" % (args.p, timeit(lambda: gem().backward(g), 5)))
    if args.only == "gem":
        return
    nq = 20
    q = quantizer(nq, -1.0, 1.0)
    for n in (1024, 4096):
        d = F.normalize(torch.randn(n, 2048), dim=1).requires_grad_(True)
        cls = torch.arange(n) // 4
        label = (cls.unsqueeze(0) == cls.unsqueeze(1))

        def step():
            s = d @ d.t()
            ap_loss(s, label, q, nq).backward()
            d.grad = None
        print("AP loss fwd+bwd incl. S, N=%d D=2048 nq=20: %.1f ms" % (n, timeit(step, 3 if n > 2000 else 5)))


if __name__ == "__main__":
    main()
