#!/usr/bin/env bash
# timeout: 90
# The AP loss from descriptors on the GPU (blocked path: no N×N matrix), forward + backward with
# the GEMMs, D = 2048, nq = 20: N = 4096 and 8192 in strict float32 and TF32, N = 65,536 in TF32.
# N = 4096 runs again with dL/dD at the backward (APLoss.withEagerGradient(false)), then its parts.
# Prints: RESULT aploss N=<n> <strict|tf32>[ (dL/dD at the backward)]: <ms> ms, peak <GiB> GiB beyond inputs
set -euo pipefail
$DIR4J_JAVA dir4j.bench.gpu.ApLossGpuBench | tee "${OUT_DIR:-.}/aploss.txt"
