#!/usr/bin/env bash
# GeM pooling and the AP loss on the CPU: dir4j (JMH GemBench, ApLossBench) and PyTorch 1.13
# (bench/torch_cpu_method.py, the reference's formulation) back to back. Build first:
#   mvn -q -B -DskipTests -pl bench -am package
# Usage: [P=2.7] [ONLY=gem|aploss] bench/method_cpu_side_by_side.sh
#   P     GeM's exponent on both sides (default 3.0; 2.7 stands for a learned p)
#   ONLY  one workload: gem (GemBench) or aploss (ApLossBench); both by default
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
p="${P:-3.0}"
only="${ONLY:-}"
case "$only" in
  "") jmh='GemBench|ApLossBench'; torch_only=() ;;
  gem) jmh='GemBench'; torch_only=(--only gem) ;;
  aploss) jmh='ApLossBench'; torch_only=(--only aploss) ;;
  *) echo "ONLY must be gem or aploss, not '$only'" >&2; exit 2 ;;
esac
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== PyTorch (Debian python3-torch, 2 threads)"
/usr/bin/python3 "$root/bench/torch_cpu_method.py" --threads 2 --p "$p" "${torch_only[@]}"
echo "== dir4j JMH (ms/op)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# JMH holds /tmp/jmh.lock: if another benchmark is running, this fails rather than share the cores.
"$java" -jar "$jar" "$jmh" -p p="$p" -wi 2 -w 2 -i 3 -r 3 -f 1 >"$out" 2>&1 || true
grep -qE '^(GemBench|ApLossBench)' "$out" || { jmh_failed "$out"; exit 1; }
grep -E '^(Benchmark|GemBench|ApLossBench)' "$out"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
