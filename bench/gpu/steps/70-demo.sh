#!/usr/bin/env bash
# timeout: 180
# The README's main job on the GPU (issue #7: at most 10 minutes on 2 CPU cores, "and faster on a
# GPU"): `dir4j demo --device cuda` with its defaults, from the synthetic benchmark's generation
# (into $OUT_DIR/demo-data) to the report (in $OUT_DIR/demo), as on a fresh machine. The 2-core CPU
# of the build machine takes 73 s for the same (bench/RESULTS.md, session 15). Prints
# `RESULT demo --device cuda: <s> s` (the demo's own count, JVM start excluded) and its mAP line.
# DEMO_DEVICE=cpu runs it on the CPU instead (to check this script without a GPU).
set -uo pipefail
out=${OUT_DIR:-/tmp}
device=${DEMO_DEVICE:-cuda}
mkdir -p "$out"
# shellcheck disable=SC2086 # DIR4J_JAVA is a command line
# not --quiet: its progress lines (every 10 s, with images per second) show where a run that hits
# the step's limit was; through tee, so that they reach the step's log as they come
$DIR4J_JAVA dir4j.retrieval.cli.Main demo --device "$device" --data-root "$out/demo-data" \
  --out "$out/demo" 2>&1 | tee "$out/demo.txt"
rc=${PIPESTATUS[0]}
seconds=$(grep -oE 'report: .* \(([0-9.]+) s\)' "$out/demo.txt" | grep -oE '\(([0-9.]+) s\)' | tr -d '( s)')
[ -n "$seconds" ] && echo "RESULT demo --device $device: $seconds s"
grep -E '^mAP \(Medium\)' "$out/demo.txt" | sed "s/^/RESULT demo --device $device /"
exit $rc
