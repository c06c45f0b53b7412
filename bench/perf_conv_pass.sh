#!/bin/bash
# A perf profile of one convolution pass in its steady state, by symbol (JIT-compiled methods
# named through -XX:+DumpPerfMapAtExit): runs dir4j.bench.ConvPassLoop for 15 s on two
# processors, records the whole machine for 8 s after a 5 s warm-up, and prints the top symbols.
#   mvn -B -q -o package -Dmaven.test.skip=true -pl kernels,engine,nn,retrieval,bench
#   bench/perf_conv_pass.sh [JAR] PASS BATCH CIN SIZE COUT KERNEL STRIDE PAD
# e.g. bench/perf_conv_pass.sh bwd-data 4 512 7 512 3 1 1   (ResNet-50's layer4 3x3 at batch 4, 224²)
# Needs perf (linux-perf) and permission to record the whole system (root, or perf_event_paranoid <= 0).
set -euo pipefail
JAR=bench/target/benchmarks.jar
if [[ "${1:-}" == *.jar ]]; then JAR=$1; shift; fi
[ $# -eq 8 ] || { sed -n '2,8p' "$0"; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/bench/common.sh"   # java: a JDK 25
JAVA=$java
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$JAVA" -XX:ActiveProcessorCount=2 -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit \
    --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 -cp "$JAR" dir4j.bench.ConvPassLoop "$@" 15 \
    > "$OUT/loop.txt" 2>&1 &
PID=$!
sleep 5
perf record -e cpu-clock -F 2000 -a -o "$OUT/perf.data" -- sleep 8 > "$OUT/perf.txt" 2>&1 || {
  tail -3 "$OUT/perf.txt" >&2; echo "perf record failed (see the header's needs)" >&2; kill $PID; exit 1; }
wait $PID
grep second "$OUT/loop.txt" | tail -4
# head closes the pipe early (SIGPIPE upstream): not a failure
perf report -i "$OUT/perf.data" --no-children --sort symbol 2>/dev/null | grep -v '^#' | grep -v '^$' \
    | head -"${TOP:-12}" | cut -c1-150 || true
