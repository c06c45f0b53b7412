#!/usr/bin/env bash
# Runs the AP histogram and max-pool kernels (src/main/cuda/ap_histogram.cu, pool.cu) on the CPU,
# one std::thread per CUDA thread (emu.h: barriers for __syncthreads and the warp shuffles, the
# block's shared memory poisoned before each block), with CudaBackend's launch arithmetic, and
# compares every result with a transcription of the CPU backend's reference
# (ApHistogramKernels, PoolKernels' scan order): partial tiles, column splits, nq 2 … 100, both
# label forms, NaN/±∞ scores and scores at bin centres. A check of index arithmetic and tiling
# for machines without a GPU; it says nothing about timing, occupancy or the driver.
# Not part of the Maven build. Needs g++ with C++20 (std::barrier). About 90 s on two cores.
#
# Usage: kernels/emu/run.sh [OUT_DIR]   (default kernels/target/emu); prints ALL OK or the failures
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../src/main/cuda
out=${1:-$here/../target/emu}
mkdir -p "$out"
shared='s/extern __shared__ ([a-z0-9_ ]+) ([A-Za-z_]+)\[\];/EMU_SHARED(\1, \2);/'
for f in ap_histogram pool; do
  sed -E "$shared; s/#include \"common.cuh\"/#include \"common_emu.cuh\"/" "$src/$f.cu" > "$out/$f.emu.cpp"
done
{ echo '#include "emu.h"'; sed -E "$shared" "$src/common.cuh"; } > "$out/common_emu.cuh"
g++ -std=c++20 -O1 -ffp-contract=off -pthread -w -I"$here" -I"$out" "$here/ap_pool_vs_reference.cpp" \
  -o "$out/ap_pool_vs_reference"
"$out/ap_pool_vs_reference"
