#!/usr/bin/env bash
# SGEMM: dir4j (JMH SgemmBench) and numpy at the same sizes, back to back, numpy before and after
# so a change in machine load between the two shows up. Build first:
#   mvn -q -pl bench -am package -Dmaven.test.skip=true
# Usage: bench/sgemm_vs_numpy.sh [sizes, comma-separated; default 256,512,1024,2048]
set -euo pipefail
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[[ "${1:-256}" =~ ^[0-9]+(,[0-9]+)*$ ]] || { usage >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes="${1:-256,512,1024,2048}"
. "$root/bench/common.sh"   # java: a JDK 25; jmh_failed
jar="$root/bench/target/benchmarks.jar"
[[ -f "$jar" ]] || { echo "no $jar: build the bench module first (see the header)" >&2; exit 1; }
numpy() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$root/bench/numpy_sgemm.py" ${sizes//,/ }; }
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== numpy (before)"; numpy
echo "== dir4j SgemmBench (ops/s; GFLOP/s = ops/s * 2*size^3 / 1e9)"
out="$(mktemp)"
# JMH holds /tmp/jmh.lock: if another benchmark is running, this fails rather than share the cores.
"$java" -jar "$jar" SgemmBench -p size="$sizes" -wi 3 -w 2 -i 5 -r 2 -f 1 >"$out" 2>&1 || true
if ! grep -q '^SgemmBench' "$out"; then jmh_failed "$out"; rm -f "$out"; exit 1; fi
grep -E '^(Benchmark|SgemmBench)' "$out" \
  | awk '/^SgemmBench/ { n = $2; printf "%s   = %.1f GFLOP/s\n", $0, $5 * 2 * n * n * n / 1e9; next } { print }'
rm -f "$out"
echo "== numpy (after)"; numpy
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
