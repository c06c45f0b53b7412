#!/usr/bin/env bash
# Runs dir4j's CUDA kernels (src/main/cuda/*.cu) on the CPU, one std::thread per CUDA thread
# (emu.h: barriers for __syncthreads, the warp shuffles and ballots; the block's shared memory,
# static and dynamic, poisoned before each block), with CudaBackend's launch arithmetic, and
# compares every result with a transcription of the CPU backend's reference:
#   ap_pool_vs_reference: AP histogram (private and per-warp bins, finalize, row and tiled
#     symmetric backward, loss from histograms; partial tiles, column splits, nq 2 … 100, both
#     label forms, NaN/±∞ scores and scores at bin centres) and max pooling, NHWC and NCHW;
#   topk_vs_reference: top-k (ties across the k-th place, NaN, ±0, ±∞, subnormals, keys equal in
#     their top bytes, k = 1 … n and TOPK_MAX, strided rows, 100,003-column rows);
#   elementwise_vs_reference: the elementwise and reduction launches of the channels-last paths
#     (conv2dNhwc's bias-row / residual / ReLU epilogue in every repeat mode and the strided
#     fallback, the stem's NCHW -> zero-padded NHWC input, the training stem's concat, NHWC ->
#     NCHW, the composed eval batch-norm backward (CUDA's NCHW path; NHWC layouts too) through every
#     ReducePlan kind), NCHW bias adds;
#   batchnorm_vs_reference: the channels-last batch norm (partial sums over row chunks, the
#     per-channel finalize, the apply pass with residual and ReLU, and their backward) in training
#     and eval, against the CPU backend's formulas; odd channel counts, partial tiles, one row, a
#     mean far from zero; and the NCHW inference batch norm's scale/shift and apply, to the bit;
#   optim_vs_reference: the multi-tensor SGD step (a block per chunk of a table of parameters)
#     against the per-tensor step, to the bit, over empty to multi-chunk parameters.
# A check of index arithmetic, tiling and ordering for machines without a GPU; it says nothing
# about timing, occupancy, memory-model races the barriers hide, or the driver.
# Not part of the Maven build (.ci/run runs it when g++ is there). Needs g++ with C++20
# (std::barrier).
#
# Usage: kernels/emu/run.sh [OUT_DIR]   (default kernels/target/emu); prints ALL OK per test and
# exits non-zero on any mismatch, crash (a kernel's wild index may crash its emulation) or build
# failure
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../src/main/cuda
out=${1:-$here/../target/emu}
mkdir -p "$out"
# extern __shared__ T name[];  ->  the block's dynamic shared memory
# __shared__ T name[N]; / __shared__ T name;  ->  a slot of the block's static shared memory
shared='s/extern __shared__ ([a-z0-9_ ]+) ([A-Za-z_]+)\[\];/EMU_SHARED(\1, \2);/;
  s/^([[:space:]]*)__shared__ ([a-z0-9_ ]+) ([A-Za-z_]+)\[([^]]+)\];/\1EMU_STATIC_SHARED_ARRAY(\2, \3, \4);/;
  s/^([[:space:]]*)__shared__ ([a-z0-9_ ]+) ([A-Za-z_]+);/\1EMU_STATIC_SHARED(\2, \3);/'
for f in ap_histogram pool topk elementwise reduce batchnorm optim; do
  sed -E "$shared; s/#include \"common.cuh\"/#include \"common_emu.cuh\"/; /#include <cuda_(bf16|fp16)\.h>/d" \
    "$src/$f.cu" > "$out/$f.emu.cpp"
done
{ echo '#include "emu.h"'; sed -E "$shared" "$src/common.cuh"; } > "$out/common_emu.cuh"
status=0
for t in ap_pool_vs_reference topk_vs_reference elementwise_vs_reference batchnorm_vs_reference optim_vs_reference; do
  g++ -std=c++20 -O1 -ffp-contract=off -pthread -w -I"$here" -I"$out" "$here/$t.cpp" -o "$out/$t"
  echo "== $t"
  # a kernel that deadlocks (a __syncthreads or shuffle some threads skip) hangs its emulation
  rc=0
  if command -v timeout >/dev/null; then
    timeout 600 "$out/$t" || rc=$?
  else
    "$out/$t" || rc=$?
  fi
  if [ $rc -ne 0 ]; then
    status=1
    if [ $rc -eq 124 ]; then echo "FAIL: $t ran past 600 s (a deadlock?)"; fi
    if [ $rc -gt 128 ] && [ $rc -ne 124 ]; then echo "FAIL: $t crashed (signal $((rc - 128)))"; fi
  fi
done
if [ $status -ne 0 ]; then
  echo "kernels/emu: MISMATCHES (see FAIL lines above)"
fi
exit $status
