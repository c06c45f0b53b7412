#!/usr/bin/env bash
# The CPU backend's elementwise and reduction kernels (JMH ElementwiseBench) beside the same calls
# in PyTorch 1.13 (bench/torch_cpu_elementwise.py), back to back, on 2 threads (dir4j uses all
# cores; this VM has 2). Build first:
#   mvn -q -B -o package -pl kernels,engine,nn,retrieval,bench -Dmaven.test.skip=true
# Usage: [SHAPE=4x256x56x56] bench/elementwise_side_by_side.sh
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in
  "") ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bench/common.sh"   # java: a JDK 25; jmh_failed
jar="$root/bench/target/benchmarks.jar"
[[ -f "$jar" ]] || { echo "no $jar: build the bench module first (see the header)" >&2; exit 1; }
shape="${SHAPE:-4x256x56x56}"
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== PyTorch (Debian python3-torch, 2 threads; median us per call)"
/usr/bin/python3 "$root/bench/torch_cpu_elementwise.py" --threads 2 --shape "$shape"
echo "== dir4j JMH (us per call)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# JMH holds /tmp/jmh.lock: if another benchmark is running, this fails rather than share the cores.
"$java" -jar "$jar" ElementwiseBench -p shape="$shape" -wi 3 -w 1 -i 5 -r 1 -f 1 >"$out" 2>&1 || true
grep -q '^ElementwiseBench' "$out" || { jmh_failed "$out"; exit 1; }
grep -E '^(Benchmark|ElementwiseBench)' "$out"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
