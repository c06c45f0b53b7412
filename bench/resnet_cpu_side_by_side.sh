#!/usr/bin/env bash
# ResNet-50/101 feature-trunk forward, batch 1, on the CPU: PyTorch (Debian's 1.13,
# bench/torch_cpu_resnet.py), dir4j (JMH ResNetForwardBench) and ONNX Runtime Java 1.23.2 (JMH
# OnnxResNetBench, on the trunks bench/export_onnx.py exports), in one go. The three run back to
# back for each network and size in turn (not all of one engine, then all of the next), so a
# change in machine load hits the three alike; the 1-minute load is printed before each group
# and at the end, then one table with the ratios. Every engine gets 2 threads.
# Build first:
#   mvn -B -q -DskipTests -pl bench -am package
# Usage: bench/resnet_cpu_side_by_side.sh [sizes, default 224x224,1024x768] [depths, default resnet50,resnet101]
# Sizes are width x height (1024x768 is an input [1, 3, 768, 1024]).
# WAIT_QUIET=600 waits up to 600 s for the 1-minute load to fall below 0.5 before starting.
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes="${1:-224x224,1024x768}"
depths="${2:-resnet50,resnet101}"
. "$root/bench/common.sh"   # java: a JDK 25; jmh_failed
py=/usr/bin/python3   # Debian's torch 1.13 + torchvision (the export needs no more)
jar="$root/bench/target/benchmarks.jar"
onnx="$root/bench/target/onnx"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
load1() { cut -d' ' -f1 /proc/loadavg; }
load() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
# CPU seconds used so far by the whole machine (busy jiffies) and by this script's finished children:
# their difference over a stretch of wall time is what other processes took, in cores.
hz="$(getconf CLK_TCK)"
busy() { awk -v hz="$hz" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
# (times must run in this shell, not in a $(...) subshell, to see the children's usage)
mine() { times >"$work/times"; MINE="$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
                                                      print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times")"; }

[[ -f "$jar" ]] || { echo "no $jar: build the bench module first (see the header)"; exit 1; }
for d in ${depths//,/ }; do
  [[ -f "$onnx/$d.onnx" ]] || { echo "== exporting the ONNX trunks"; "$py" "$root/bench/export_onnx.py" "$onnx"; break; }
done
if [[ -n "${WAIT_QUIET:-}" ]]; then
  end=$((SECONDS + WAIT_QUIET))
  while awk -v l="$(load1)" 'BEGIN { exit !(l >= 0.5) }' && ((SECONDS < end)); do sleep 10; done
fi

# JMH holds /tmp/jmh.lock: if another benchmark is running, a run fails rather than share the cores.
jmh() { "$java" -jar "$jar" "$1" -p depth="$2" -p size="$3" -rf json -rff "$work/$1-$2-$3.json" \
          >"$work/$1.log" 2>&1 || { tail -20 "$work/$1.log"; exit 1; }
        grep -E "^$1" "$work/$1.log" || { jmh_failed "$work/$1.log"; exit 1; }; }

echo "== $(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for s in ${sizes//,/ }; do
  for d in ${depths//,/ }; do
    echo "== $d $s: $(load)"
    l0="$(load1)"; b0="$(busy)"; mine; m0="$MINE"; t0="$SECONDS"
    "$py" "$root/bench/torch_cpu_resnet.py" --threads 2 --depths "$d" --sizes "$s" | grep '^torch' \
      | tee -a "$work/torch.txt"
    jmh ResNetForwardBench "$d" "$s"
    DIR4J_ONNX_DIR="$onnx" jmh OnnxResNetBench "$d" "$s"
    mine
    others="$(awk -v b="$(busy)" -v b0="$b0" -v m="$MINE" -v m0="$m0" -v t="$((SECONDS - t0))" \
      'BEGIN { v = (b - b0 - (m - m0)) / (t > 0 ? t : 1); printf "%.2f", v < 0 ? 0 : v }')"
    echo "   other processes used $others cores on average meanwhile"
    echo "$d $s $l0 $others" >>"$work/loads.txt"
  done
done
echo "== $(load)  (end)"
echo "end end $(load1) -" >>"$work/loads.txt"

"$py" - "$work" <<'EOF'
import glob, json, os, sys
work = sys.argv[1]
ms = {}
for line in open(os.path.join(work, "torch.txt")):
    f = line.split()
    ms[("torch", f[1], f[2])] = float(f[5])
for path in glob.glob(os.path.join(work, "*.json")):
    dir4j = os.path.basename(path).startswith("ResNetForwardBench")
    for r in json.load(open(path)):
        p = r["params"]
        key = ("dir4j-compiled" if r["benchmark"].endswith("Compiled") else "dir4j") if dir4j else "ort"
        ms[(key, p["depth"], p["size"])] = r["primaryMetric"]["score"]
loads = [l.split() for l in open(os.path.join(work, "loads.txt"))]
print("\n| network | input (W×H) | load at start | other processes (cores) | dir4j compiled ms | dir4j module ms "
      "| PyTorch 1.13 ms | ONNX Runtime 1.23.2 ms | compiled / PyTorch | compiled / ONNX Runtime |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for d, s, load, others in loads[:-1]:
    c, j, t, o = (ms.get((k, d, s)) for k in ("dir4j-compiled", "dir4j", "torch", "ort"))
    fmt = lambda v: "—" if v is None else f"{v:.1f}"
    ratio = lambda a, b: "—" if a is None or b is None else f"{a / b:.2f}"
    print(f"| {d} | {s.replace('x', '×')} | {load} | {others} | {fmt(c)} | {fmt(j)} | {fmt(t)} | {fmt(o)} "
          f"| {ratio(c, t)} | {ratio(c, o)} |")
print(f"\n(load at the end {loads[-1][2]}. The 1-minute load counts this script's own 2 threads and decays"
      " slowly; 'other processes' is the CPU time the rest of the machine took while each row ran,"
      " in cores: 0 is a quiet machine. Ratios are time over time: below 1 means dir4j is faster."
      " 'compiled' is ResNetInference, what extraction runs; 'module' is ResNet.forward in eval mode.)")
EOF
