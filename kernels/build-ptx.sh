#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu to PTX for compute capability 9.0 (Hopper: the H200) as class-path
# resources dir4j/kernels/<name>.ptx, assembles each with ptxas for sm_90 (registers, spills and
# shared memory per kernel land in REPORT_DIR/<name>.log) and packs the sm_90 code with its PTX
# into dir4j/kernels/<name>.fatbin, which cuModuleLoadData takes as it is: a Hopper GPU runs
# the sm_90 code with no JIT (seconds per process for elementwise.ptx), and any later GPU
# JIT-compiles the PTX inside. Writes dir4j/kernels/kernels.properties (the nvcc that built
# them, the targets, the module list).
#
# Called by the Maven build (kernels/pom.xml, profile "nvcc", active when
# /usr/local/cuda/bin/nvcc exists); where nvcc is absent nothing runs and the CUDA backend
# reports that the kernels were not built. A kernel that fails to compile fails the build.
# Up-to-date PTX (newer than its .cu, every .cuh and this script) is not rebuilt.
#
# Usage: build-ptx.sh NVCC SRC_DIR CLASSES_DIR REPORT_DIR
set -euo pipefail
nvcc=$1 src=$2 classes=$3 report=$4
out=$classes/dir4j/kernels
mkdir -p "$out" "$report"
ptxas=$(dirname "$nvcc")/ptxas
fatbinary=$(dirname "$nvcc")/fatbinary
arch=compute_90
sass=sm_90

# Per-file flags. None uses --use_fast_math: the elementwise and reduction kernels are
# bandwidth-bound (approximate math buys no time), and GeM and the AP histogram must agree with
# the CPU backend. The AP histogram also forbids FMA contraction (ties at bin centres); so does
# the batch norm, whose scale/shift and momentum updates kernels/emu checks against the CPU's
# formulas to the bit (contracted, they may differ by an ulp; the kernels are bandwidth-bound).
flags_for() {
  case $1 in
    ap_histogram|batchnorm) echo "--fmad=false" ;;
    *) echo "" ;;
  esac
}

compile() { # name
  local name=$1 cu=$src/$1.cu ptx=$out/$1.ptx
  # shellcheck disable=SC2046
  "$nvcc" -ptx -arch=$arch -std=c++17 -O3 -lineinfo -I"$src" $(flags_for "$name") -o "$ptx.tmp" "$cu"
  mv "$ptx.tmp" "$ptx"
  "$ptxas" -arch=$sass -v -o "$report/$name.cubin" "$ptx" > "$report/$name.log" 2>&1
  "$fatbinary" --create="$out/$name.fatbin.tmp" --64 \
    --image3=kind=elf,sm=${sass#sm_},file="$report/$name.cubin" \
    --image3=kind=ptx,sm=${arch#compute_},file="$ptx"
  mv "$out/$name.fatbin.tmp" "$out/$name.fatbin"
}

names=()
pids=()
built=()
for cu in "$src"/*.cu; do
  name=$(basename "$cu" .cu)
  names+=("$name")
  ptx=$out/$name.ptx
  if [ -f "$ptx" ] && [ -f "$out/$name.fatbin" ] && [ "$ptx" -nt "$0" ] \
     && [ -z "$(find "$src" \( -name "$name.cu" -o -name '*.cuh' \) -newer "$ptx" -print -quit)" ]; then
    continue
  fi
  compile "$name" &
  pids+=($!)
  built+=("$name")
done

failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${built[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "build-ptx: nvcc failed for: ${failed[*]}" >&2
  exit 1
fi

version=$("$nvcc" --version | grep -i 'release' | head -1)
{
  echo "# written by kernels/build-ptx.sh"
  echo "nvcc=$version"
  echo "arch=$arch"
  echo "sass=$sass"
  echo "modules=$(IFS=,; echo "${names[*]}")"
} > "$out/kernels.properties"

if [ ${#built[@]} -gt 0 ]; then
  for name in "${built[@]}"; do
    kernels=$(grep -c '^\.visible \.entry\|^\.entry' "$out/$name.ptx" || true)
    spills=$(grep -o '[0-9]* bytes spill stores' "$report/$name.log" | awk '{s+=$1} END {print s+0}')
    echo "build-ptx: $name.ptx ($kernels kernels, $spills bytes of spill stores on $sass)"
  done
else
  echo "build-ptx: PTX up to date (${names[*]})"
fi
