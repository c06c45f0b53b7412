#!/usr/bin/python3
"""Where a dir4j CPU workload's time goes, by Backend operation, from a JFR recording.

Each execution sample is charged to the outermost CpuBackend method on its stack (conv2d,
conv2dBackwardData, batchNorm2d, unary, ...), marked [bwd] under Autograd.backward; unary and
binary operations are also named by the Ops method that issued them (relu, mul, add) and by where
that happened (gradient accumulation, a batch-norm module). Record with one active processor so
that the work runs on the calling thread and every stack reaches the caller:

    java -XX:ActiveProcessorCount=1 -XX:FlightRecorderOptions:stackdepth=512 \\
         -XX:StartFlightRecording=filename=rec.jfr,settings=profile --add-modules jdk.incubator.vector \\
         --enable-native-access=ALL-UNNAMED -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 \\
         -cp bench/target/benchmarks.jar dir4j.bench.TrainPaired resnet50 4 224 2048 <<< "step 30"
    /usr/bin/python3 bench/jfr_by_op.py rec.jfr [--under dir4j.bench.TrainPaired.step] [--skip 0.2]

--skip drops the samples of the first fraction of the recording (under --under): the first steps run
partly interpreted or in C1 code, where Vector API calls take their slow Java fallbacks (a max pool
read 3.8 % of 30 steps, almost all of it in the first tenth, ~0.2 % after).
"""
import argparse
import collections
import os
import re
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("--under", default="dir4j.bench.TrainPaired.step",
                    help="count only samples with this frame on the stack")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--skip", type=float, default=0.0,
                    help="drop the samples of this first fraction of the recording's span (JIT warm-up)")
    args = ap.parse_args()
    jfr = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "jfr")
    text = subprocess.run([jfr, "print", "--stack-depth", "512", "--events", "jdk.ExecutionSample", args.recording],
                          check=True, capture_output=True, text=True).stdout
    samples = []
    for event in text.split("jdk.ExecutionSample")[1:]:
        frames = re.findall(r"^\s+([\w.$]+)\.([\w$<>]+)\(", event, re.M)
        names = [c + "." + m for c, m in frames]
        if args.under not in names:
            continue
        t = re.search(r"startTime = (\d+):(\d+):([\d.]+)", event)
        seconds = int(t.group(1)) * 3600 + int(t.group(2)) * 60 + float(t.group(3)) if t else 0.0
        samples.append((seconds, frames, names))
    if samples and args.skip > 0:
        t0 = min(t for t, _, _ in samples)
        t1 = max(t for t, _, _ in samples)
        samples = [x for x in samples if x[0] >= t0 + args.skip * (t1 - t0)]
    counts = collections.Counter()
    n = 0
    for _, frames, names in samples:
        n += 1
        backward = " [bwd]" if "dir4j.engine.autograd.Autograd.backward" in names else ""
        ops = [m for c, m in reversed(frames) if c == "dir4j.engine.cpu.CpuBackend" and "lambda" not in m]
        if not ops:
            first = next((c.split(".")[-1] + "." + m for c, m in frames if c.startswith("dir4j.")), "?")
            counts["(outside the backend) " + first + backward] += 1
            continue
        label = ops[0]
        if label in ("unary", "binary"):
            issuer = next((m for c, m in frames if c == "dir4j.engine.Ops" and m not in ("unary", "binary")), None)
            if issuer:
                label += " via " + re.sub(r"^lambda\$(\w+)\$\d+$", r"\1 backward", issuer)
            if "dir4j.engine.autograd.Autograd.put" in names:
                label += " (gradient accumulation)"
        counts[label + backward] += 1
    print(f"{n} samples under {args.under}" + (f", after the first {args.skip:.0%} of the recording" if args.skip else ""))
    for label, c in counts.most_common(args.top):
        print(f"{100 * c / n:5.1f} %  {label}")


if __name__ == "__main__":
    main()
