#!/usr/bin/python3
"""ResNet-50's convolution passes, dir4j beside PyTorch, in alternating rounds.

Each round runs dir4j.bench.ConvPassTable (--threads active processors) and then the same
convolutions in PyTorch in this process (--threads threads): every distinct convolution of ResNet-50's trunk at batch
4, 224x224, each pass (forward, backward-data, backward-filter) timed as the median of repeated
calls over SECONDS after a warm-up, the way ConvPassTable times them. PyTorch's passes are
aten::convolution_backward with one output selected (what autograd calls). Two threads by
default, as the training step runs: with one thread and a batch under 16, PyTorch 1.13 sends 1x1
convolutions to its slow_conv2d fallback instead of oneDNN, which with Debian's BLAS runs at a few
GFLOP/s, so one-thread figures would flatter dir4j. Prints per pass the
median milliseconds of both and the median of the per-round ratios dir4j / PyTorch, then the
totals weighted by how often the trunk runs each convolution, by category.

    mvn -B -q -o package -Dmaven.test.skip=true -pl kernels,engine,nn,retrieval,bench
    /usr/bin/python3 bench/conv_vs_torch.py [--rounds 4] [--seconds 0.4] [--threads 2] [--filter TEXT] [--jar JAR::-Dopts]
"""
import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import time

from python_requires import require  # the script's folder is on sys.path

require("torch")

import torch  # noqa: E402


def resnet50(n, size):
    """(name, (n, cin, h, w, cout, k, stride, pad), count), as ConvPassTable.resnet50 lists them."""
    s = [("stem 7x7/2 3-64", (n, 3, size, size, 64, 7, 2, 3), 1)]
    hw, inc = size // 4, 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        mid = 64 << stage
        out = mid * 4
        stride = 1 if stage == 0 else 2
        ohw = hw // stride
        l = f"layer{stage + 1} "
        s.append((l + f"1x1 {inc}-{mid} (first)", (n, inc, hw, hw, mid, 1, 1, 0), 1))
        s.append((l + f"3x3/{stride} {mid} (first)", (n, mid, hw, hw, mid, 3, stride, 1), 1))
        s.append((l + f"downsample 1x1/{stride} {inc}-{out}", (n, inc, hw, hw, out, 1, stride, 0), 1))
        s.append((l + f"1x1 {mid}-{out}", (n, mid, ohw, ohw, out, 1, 1, 0), blocks))
        if blocks > 1:
            s.append((l + f"1x1 {out}-{mid}", (n, out, ohw, ohw, mid, 1, 1, 0), blocks - 1))
            s.append((l + f"3x3 {mid}", (n, mid, ohw, ohw, mid, 3, 1, 1), blocks - 1))
        inc, hw = out, ohw
    return s


def median_ms(fn, seconds):
    warm = time.perf_counter() + seconds / 3
    while time.perf_counter() < warm:
        fn()
    t, end = [], time.perf_counter() + seconds
    while (time.perf_counter() < end or len(t) < 3) and len(t) < 1000:
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def torch_passes(shapes, seconds):
    times = {}
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, (n, cin, h, w, cout, k, stride, pad), _ in shapes:
            x = torch.randn(n, cin, h, w, generator=g)
            wt = torch.randn(cout, cin, k, k, generator=g)
            y = torch.nn.functional.conv2d(x, wt, None, stride, pad)
            dy = torch.randn(y.shape, generator=g)

            def bwd(mask):
                return lambda: torch.ops.aten.convolution_backward(
                    dy, x, wt, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, mask)
            times[(name, "forward")] = median_ms(lambda: torch.nn.functional.conv2d(x, wt, None, stride, pad), seconds)
            if not name.startswith("stem"):
                times[(name, "bwd-data")] = median_ms(bwd([True, False, False]), seconds)
            times[(name, "bwd-filter")] = median_ms(bwd([False, True, False]), seconds)
    return times


def dir4j_passes(jar, seconds, filt, threads):
    java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
    path, _, options = jar.partition("::")
    run = subprocess.run([java, f"-XX:ActiveProcessorCount={threads}", "--add-modules", "jdk.incubator.vector",
                          "--enable-native-access=ALL-UNNAMED", "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0",
                          *options.split(), "-cp", path, "dir4j.bench.ConvPassTable", "4", "224", str(seconds), filt],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"dir4j.bench.ConvPassTable failed (exit {run.returncode}):\n{run.stderr.strip()[-2000:]}")
    out = run.stdout
    times = {}
    for line in out.splitlines():
        m = re.match(r"(.+?)\s+\d+\s+(forward|bwd-data|bwd-filter)\s+([\d.]+)", line)
        if m:
            times[(m.group(1).strip(), m.group(2))] = float(m.group(3))
    return times


def category(name):
    if name.startswith("stem"):
        return "stem"
    if "3x3/1" in name or ("3x3 " in name and "/" not in name):
        return "3x3 stride 1"
    if "/2" in name:
        return "strided"
    return "1x1 stride 1"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=0.4, help="seconds of timed calls per pass")
    ap.add_argument("--threads", type=int, default=2, help="threads (active processors) of both engines")
    ap.add_argument("--filter", default="", help="only convolutions whose name contains this")
    ap.add_argument("--jar", default="bench/target/benchmarks.jar", help="JAR, optionally JAR::-Dsome.option=value")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    shapes = [s for s in resnet50(4, 224) if args.filter in s[0]]
    if not shapes:
        ap.error(f"--filter {args.filter!r} matches no convolution")
    if not os.path.isfile(args.jar.partition("::")[0]):
        ap.error(f"no {args.jar.partition('::')[0]}: build the bench module first (see the header), "
                 "and run from the project root")
    counts = {s[0]: s[2] for s in shapes}
    ours, theirs = collections.defaultdict(list), collections.defaultdict(list)
    for r in range(args.rounds):
        a = dir4j_passes(args.jar, args.seconds, args.filter, args.threads)
        b = torch_passes(shapes, args.seconds)
        for key, v in a.items():
            ours[key].append(v)
        for key, v in b.items():
            theirs[key].append(v)
        print(f"round {r + 1}: dir4j {sum(v * counts[k[0]] for k, v in a.items()):.1f} ms, "
              f"PyTorch {sum(v * counts[k[0]] for k, v in b.items()):.1f} ms of convolutions per step", flush=True)
    print(f"\n| convolution | count | pass | dir4j ms | PyTorch ms | dir4j / PyTorch (median per round) |"
          f" difference x count, ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    cat = collections.defaultdict(lambda: [0.0, 0.0])
    for key in theirs:
        if key not in ours:
            continue
        a, b = statistics.median(ours[key]), statistics.median(theirs[key])
        ratio = statistics.median(x / y for x, y in zip(ours[key], theirs[key]))
        c = counts[key[0]]
        cat[(category(key[0]), key[1])][0] += a * c
        cat[(category(key[0]), key[1])][1] += b * c
        print(f"| {key[0]} | {c} | {key[1]} | {a:.2f} | {b:.2f} | {ratio:.2f} | {(a - b) * c:+.1f} |")
    print("\n| category | pass | dir4j ms per step | PyTorch ms per step | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for key in sorted(cat):
        a, b = cat[key]
        print(f"| {key[0]} | {key[1]} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    ta, tb = sum(v[0] for v in cat.values()), sum(v[1] for v in cat.values())
    print(f"| all | | {ta:.1f} | {tb:.1f} | {ta / tb:.2f} |")


if __name__ == "__main__":
    main()
