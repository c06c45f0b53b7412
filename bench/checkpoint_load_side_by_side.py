#!/usr/bin/python3
"""Opening a retrieval checkpoint as a ready network: dir4j beside PyTorch on the same file.

Usage: /usr/bin/python3 bench/checkpoint_load_side_by_side.py [--arch resnet101] [--reps 5] [--threads 2]
Writes a ResNet-101-GeM-FC checkpoint in the reference's layout (torch.save of {'state_dict',
'model_options'}: torchvision's backbone, adpool.p, fc 2048 -> 2048; random weights, seed 0) to a
temporary folder, then times, each repetition on its own:
  torch: torchvision's resnet101() (its initialisation) + torch.load + load_state_dict, the way a
         PyTorch user opens a model (the GeM head's few parameters left out of the construction);
  dir4j: NetworkCheckpoint.load (bench/target/benchmarks.jar, CheckpointLoadTiming), and the
         random initialisation that load no longer performs.
Both single JVM / interpreter, two threads. Build first:
    mvn -B -q -o package -DskipTests -pl kernels,engine,nn,retrieval,bench
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from python_requires import require  # the script's folder is on sys.path

require("torch", "torchvision")

import torch  # noqa: E402
import torchvision  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet101")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    jar = os.path.join(ROOT, "bench", "target", "benchmarks.jar")
    if not os.path.isfile(jar):
        ap.error(f"no {jar}: build the bench module first (see the header)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    make = getattr(torchvision.models, args.arch)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.pt")
        trunk = make()
        sd = {k: v for k, v in trunk.state_dict().items() if not k.startswith("fc.")}
        sd["adpool.p"] = torch.tensor([3.0])
        sd["fc.weight"] = torch.randn(2048, trunk.fc.in_features) * 0.01
        sd["fc.bias"] = torch.zeros(2048)
        torch.save({"state_dict": {"module." + k: v for k, v in sd.items()},
                    "model_options": {"arch": args.arch, "out_dim": 2048, "pooling": "gem", "gemp": 3}}, path)
        print(f"# {args.arch} checkpoint {os.path.getsize(path) / 2**20:.1f} MiB, torch {torch.__version__}, "
              f"{args.threads} threads")
        torch_s = []
        for i in range(args.reps):
            t = time.perf_counter()
            net = make()
            ck = torch.load(path)
            state = {k[len("module."):]: v for k, v in ck["state_dict"].items()
                     if not k.startswith("module.adpool") and not k.startswith("module.fc.")}
            net.load_state_dict(state, strict=False)
            torch_s.append(time.perf_counter() - t)
            print(f"torch {i + 1} {torch_s[-1]:.3f} s")
        java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
        run = subprocess.run([java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                              "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", f"-Ddir4j.threads={args.threads}",
                              "-cp", jar, "dir4j.bench.CheckpointLoadTiming", path, str(args.reps)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"dir4j.bench.CheckpointLoadTiming failed (exit {run.returncode}):\n{run.stderr.strip()[-2000:]}")
        out = run.stdout
        print(out, end="")
        times = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) == 4 and f[3] == "s":
                times.setdefault(f[0], []).append(float(f[2]))
        print()
        print("| what | first s | median of the rest, s |")
        print("| --- | ---: | ---: |")
        for name, ts in [(f"PyTorch: {args.arch}() + torch.load + load_state_dict", torch_s),
                         ("dir4j: NetworkCheckpoint.load", times["load"]),
                         ("dir4j: the random initialisation load no longer does", times["init"])]:
            rest = f"{statistics.median(ts[1:]):.3f}" if len(ts) > 1 else "—"
            print(f"| {name} | {ts[0]:.3f} | {rest} |")


if __name__ == "__main__":
    main()
