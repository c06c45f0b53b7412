#!/usr/bin/python3
"""A training step of the retrieval network on the CPU: PyTorch and dir4j in alternating bursts.

The network is the method's: a ResNet trunk (torchvision's topology), GeM pooling with a learnable
p (3), a fully connected projection to --out-dim and L2 normalisation; training mode (batch
statistics, or with --frozen-bn the running ones as the method's recipe), loss = sum of the descriptors, backward, SGD (momentum 0.9, weight decay 1e-4). A step
is zero_grad + forward + loss + backward + step, on one batch of random images, 2 threads each.
PyTorch (Debian's torch 1.13, denormals flushed to zero unless --torch-denormals) runs in this process, dir4j in one JVM (dir4j.bench.TrainPaired);
bursts alternate for --rounds rounds so that both see the same machine (this VM's speed moves
within tens of seconds). Prints each round, then per engine the median step time and the median of
the per-round ratios to PyTorch.

    mvn -B -q -o package -DskipTests -pl kernels,engine,nn,retrieval,bench
    /usr/bin/python3 bench/train_paired.py --arch resnet50 --batch 4 --size 224 [--rounds 8] [--burst 6]
        [--also NAME="-Dsome.option=value"] [--also-jar NAME=/path/to/another/benchmarks.jar]
"""
import argparse
import os
import statistics
import time

from python_requires import require  # the script's folder is on sys.path

require("torch", "torchvision")

import torch  # noqa: E402
import torchvision  # noqa: E402

from paired_jvm import PairedJvm  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out-dim", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--burst", type=float, default=6.0, help="seconds per engine per round")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=JVM_OPTIONS",
                    help="another dir4j JVM with these options (space-separated), reported as NAME; e.g. "
                         "gemm=-Ddir4j.cpu.directConv=false")
    ap.add_argument("--also-jar", action="append", default=[], metavar="NAME=PATH",
                    help="another dir4j JVM running this benchmarks.jar instead, reported as NAME: before/after a "
                         "change in one run, e.g. a copy of bench/target/benchmarks.jar built at the commit before")
    ap.add_argument("--frozen-bn", action="store_true",
                    help="batch norms normalise by their running statistics (the method's training recipe; "
                         "gamma and beta still train) instead of the batch's")
    ap.add_argument("--torch-denormals", action="store_true",
                    help="leave PyTorch's denormal handling as it is (by default it flushes them to zero: this "
                         "step produces denormals, on which PyTorch 1.13 ran ~15x slower here; Java cannot flush)")
    args = ap.parse_args()
    extra = ["frozen-bn"] if args.frozen_bn else []
    jvms = {"dir4j": PairedJvm("TrainPaired", args.arch, args.batch, args.size, args.out_dim, *extra)}
    for spec in args.also:
        name, _, options = spec.partition("=")
        jvms[name] = PairedJvm("TrainPaired", args.arch, args.batch, args.size, args.out_dim, *extra,
                               jvm_options=options.split())
    for spec in args.also_jar:
        name, _, jar = spec.partition("=")
        if not os.path.isfile(jar):
            ap.error(f"--also-jar {spec}: no file {jar}")
        jvms[name] = PairedJvm("TrainPaired", args.arch, args.batch, args.size, args.out_dim, *extra, jar=jar)

    def java_burst(name, seconds):
        return jvms[name].ask(f"step {seconds}")

    torch.set_num_threads(2)
    torch.set_flush_denormal(not args.torch_denormals)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)(weights=None)
    trunk = torch.nn.Sequential(*list(model.children())[:-2]).train()
    if args.frozen_bn:
        for m in trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    p = torch.nn.Parameter(torch.tensor(3.0))
    fc = torch.nn.Linear(model.fc.in_features, args.out_dim)
    params = list(trunk.parameters()) + [p] + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    x = torch.rand(args.batch, 3, args.size, args.size) * 4 - 2

    def step():
        opt.zero_grad()
        f = trunk(x).clamp(min=1e-6).pow(p).mean((2, 3)).pow(1.0 / p)
        torch.nn.functional.normalize(fc(f), dim=1).sum().backward()
        opt.step()

    def torch_burst(seconds):
        times = []
        start = time.perf_counter()
        while not times or time.perf_counter() - start < seconds:
            t = time.perf_counter()
            step()
            times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)

    torch_burst(args.burst)  # warm-up round, not counted
    for name in jvms:
        java_burst(name, args.burst * 2)
    rows = {"torch": [], **{name: [] for name in jvms}}
    print(f"# {args.arch} batch {args.batch} at {args.size}x{args.size}, GeM + FC {args.out_dim}, training step; "
          f"{'frozen batch norms, ' if args.frozen_bn else ''}{args.rounds} rounds of {args.burst} s bursts, torch {torch.__version__} (denormals "
          f"{'kept' if args.torch_denormals else 'flushed to zero'}), 2 threads each; ms per step")
    for r in range(args.rounds):
        rows["torch"].append(torch_burst(args.burst))
        for name in jvms:
            rows[name].append(java_burst(name, args.burst))
        print(f"round {r + 1:2d}: " + "  ".join(f"{e} {v[-1]:.1f}" for e, v in rows.items()), flush=True)
    for jvm in jvms.values():
        jvm.close()
    print("\n| engine | median ms per step | images/s | median of per-round ratios to PyTorch |")
    print("| --- | ---: | ---: | ---: |")
    for e, v in rows.items():
        ratios = [a / b for a, b in zip(v, rows["torch"])]
        print(f"| {e} | {statistics.median(v):.1f} | {1000 * args.batch / statistics.median(v):.1f} | "
              f"{statistics.median(ratios):.2f} |")


if __name__ == "__main__":
    main()
