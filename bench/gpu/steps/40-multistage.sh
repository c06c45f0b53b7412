#!/usr/bin/env bash
# timeout: 120
# One multistage training step of ResNet-101-GeM-FC at 512x512 on the GPU: N=4096 synthetic images,
# sub-batch 64, AP loss nq=20, TF32, Adam; 1 warm-up step + 1 timed step. Prints per-stage seconds,
# `RESULT multistage resnet101 512 N=4096: <img/s> img/s` and the peak GPU memory.
# Run by bench/gpu/run_gpu_checks.sh with DIR4J_JAVA (java + JVM flags + class path) and OUT_DIR.
# MULTISTAGE_SMALL=1 first runs N=1024, which still gives a figure if 4096 does not fit the limit.
# Arguments and MULTISTAGE_ARGS go to the bench: `--channels-last` runs stage 3 channels-last.
set -uo pipefail
if [ "${MULTISTAGE_SMALL:-0}" = 1 ]; then
  $DIR4J_JAVA -Xmx16g dir4j.bench.gpu.MultistageGpuBench --n 1024 --size 512 --sub-batch 64 --warmup 1 --steps 1 ${MULTISTAGE_ARGS:-} "$@" 2>&1 \
    | tee "${OUT_DIR:-/tmp}/multistage-1024.txt"
fi
$DIR4J_JAVA -Xmx16g dir4j.bench.gpu.MultistageGpuBench --n 4096 --size 512 --sub-batch 64 --warmup 1 --steps 1 ${MULTISTAGE_ARGS:-} "$@" 2>&1 \
  | tee "${OUT_DIR:-/tmp}/multistage-4096.txt"
exit "${PIPESTATUS[0]}"
