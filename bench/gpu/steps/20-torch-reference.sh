#!/usr/bin/env bash
# timeout: 150
# PyTorch's figures on the GPU side-by-side workloads (issues #3, #4, #5, #7): one line per figure,
# `REF <workload>: <value> <unit>`, and all of them in $OUT_DIR/torch_gpu_reference.json.
# Needs only python3 with torch (2.11 on the GPU machine); builds nothing, no Java. PyTorch brings
# its own cuDNN, so LD_LIBRARY_PATH (which may point at the system's) is dropped for it.
# The script keeps to --budget-s: the torch.compile figures (a child process, at most 40 s) and the
# second timed multistage step are dropped when time runs short; the JSON is rewritten after every
# figure, so a run cut short keeps what it measured. Extra arguments go to the script (--only ...).
set -uo pipefail
cd "$(dirname "$0")/../../.."
out=${OUT_DIR:-/tmp}
mkdir -p "$out"
# within the step's own limit (STEP_LIMIT, set by run_gpu_checks.sh from STEP_TIMEOUTS or the header);
# --foreground: the inner timeout stays in the step's process group, so the step's limit reaches
# PyTorch too (without it PyTorch ran on, on the GPU, while the next steps timed themselves)
limit=${STEP_LIMIT:-150}
timeout --foreground -k 3 $((limit - 4)) env -u LD_LIBRARY_PATH python3 bench/gpu/torch_gpu_reference.py \
  --out-dir "$out" --budget-s $((limit > 30 ? limit - 14 : limit / 2)) ${TORCH_REF_ARGS:-} "$@"
