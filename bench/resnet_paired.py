#!/usr/bin/python3
"""ResNet trunk forward, batch 1 (or --batch N), CPU: PyTorch and dir4j (and ONNX Runtime) in alternating bursts.

On the shared development VM the machine's speed moves within tens of seconds, so whole benchmark
runs one after the other (bench/resnet_cpu_side_by_side.sh) can compare different machines. This
keeps every engine warm and alternates short bursts: PyTorch (this process, Debian's torch 1.13,
2 threads), then dir4j compiled, dir4j module and ONNX Runtime (one JVM, dir4j.bench.ResNetPaired,
2 threads each), for --rounds rounds; each burst reports the median forward time. It prints, per
engine, the median over rounds and the median of the per-round ratios to PyTorch (the fair
comparison: each ratio compares bursts a few seconds apart).

    mvn -q -o package -pl kernels,engine,nn,retrieval,bench -Dmaven.test.skip=true
    /usr/bin/python3 bench/export_onnx.py bench/target/onnx     # once, for ONNX Runtime (optional)
    /usr/bin/python3 bench/resnet_paired.py --depth resnet101 --size 224x224 [--rounds 12] [--burst 2] [--batch 1]
        [--also NAME="-Dsome.option=value"]    (dir4j compiled in another JVM with those options)
        [--also-jar NAME=/path/to/benchmarks.jar]  (dir4j compiled from another build, e.g. the commit before)
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
    ap.add_argument("--depth", default="resnet101")
    ap.add_argument("--size", default="224x224", help="width x height")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--burst", type=float, default=2.0, help="seconds per engine per round")
    ap.add_argument("--batch", type=int, default=1, help="images per forward, the same for every engine (figures "
                    "stay per forward of the whole batch)")
    ap.add_argument("--engines", default="compiled,module,ort")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=JVM_OPTIONS",
                    help="another JVM running dir4j's compiled engine with these options (space-separated), "
                         "reported as NAME; e.g. direct3x3=-Ddir4j.winograd=false")
    ap.add_argument("--also-jar", action="append", default=[], metavar="NAME=PATH",
                    help="another JVM running the compiled engine of this benchmarks.jar instead, reported as NAME: "
                         "before/after a change in one run, e.g. a copy of bench/target/benchmarks.jar built at the "
                         "commit before")
    args = ap.parse_args()
    jvm = PairedJvm("ResNetPaired", args.depth, args.size, args.batch)
    others = {}
    for spec in args.also:
        name, _, options = spec.partition("=")
        others[name] = PairedJvm("ResNetPaired", args.depth, args.size, args.batch, jvm_options=options.split())
    for spec in args.also_jar:
        name, _, jar = spec.partition("=")
        if not os.path.isfile(jar):
            ap.error(f"--also-jar {spec}: no file {jar}")
        others[name] = PairedJvm("ResNetPaired", args.depth, args.size, args.batch, jar=jar)

    def java_burst(engine, seconds):
        if engine in others:
            return others[engine].ask(f"compiled {seconds}")
        return jvm.ask(f"{engine} {seconds}")

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.depth)(weights=None)
    net = torch.nn.Sequential(*list(model.children())[:-2]).eval()
    w, h = (int(v) for v in args.size.split("x"))
    x = torch.rand(args.batch, 3, h, w) * 4 - 2

    def torch_burst(seconds):
        times = []
        start = time.perf_counter()
        with torch.no_grad():
            while not times or time.perf_counter() - start < seconds:
                t = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)

    engines = args.engines.split(",") + list(others)
    # warm-up round, not counted
    torch_burst(args.burst)
    for e in engines:
        if java_burst(e, args.burst * 2) is None:
            print(f"# {e}: not run ({(others.get(e) or jvm).stderr_tail(1) or 'the JVM has no such engine'})")
    rows = {e: [] for e in ["torch"] + engines}
    print(f"# {args.depth} {args.size}, batch {args.batch}, {args.rounds} rounds of {args.burst} s bursts, "
          f"torch {torch.__version__}, 2 threads each; ms per forward of the batch (median of each burst)")
    for r in range(args.rounds):
        rows["torch"].append(torch_burst(args.burst))
        for e in engines:
            rows[e].append(java_burst(e, args.burst))
        print(f"round {r + 1:2d}: " + "  ".join(
            f"{e} {v[-1]:.1f}" for e, v in rows.items() if v[-1] is not None), flush=True)
    jvm.close()
    for other in others.values():
        other.close()
    print("\n| engine | median ms | median of per-round ratios to PyTorch | rounds faster than PyTorch |")
    print("| --- | ---: | ---: | ---: |")
    for e, v in rows.items():
        if any(t is None for t in v):
            continue
        ratios = [a / b for a, b in zip(v, rows["torch"])]
        faster = sum(1 for q in ratios if q < 1)
        print(f"| {e} | {statistics.median(v):.1f} | {statistics.median(ratios):.2f} | {faster}/{len(v)} |")
    for name in others:
        if "compiled" in rows and all(t is not None for t in rows[name] + rows["compiled"]):
            ratios = [a / b for a, b in zip(rows["compiled"], rows[name])]
            print(f"\ncompiled / {name}: median of per-round ratios {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f}); compiled faster in "
                  f"{sum(1 for q in ratios if q < 1)}/{len(ratios)} rounds")


if __name__ == "__main__":
    main()
