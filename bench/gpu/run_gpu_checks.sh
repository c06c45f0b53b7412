#!/usr/bin/env bash
# The CUDA backend's checks on the GPU machine. Builds nothing: run bench/gpu/prepare_gpu_checks.sh
# on the build machine first, then through the device tool, from the project root:
#   command: bash bench/gpu/run_gpu_checks.sh      carry: [".device"]      timeout_s: 480
# Steps (each bounded; a failing step does not stop the later ones):
#   1. environment: GPU, driver, where libcuda / libcublas / libcudnn are
#   2. the status line (dir4j.engine.cuda.CudaStatus): driver, cuBLAS, cuDNN, kernels, missing symbols
#   3. the gpu-tagged tests except the probes, synchronising after every launch (-Ddir4j.cuda.sync=true)
#      so that a failing kernel is named; -Ddir4j.gpu.required=true turns "no GPU" into a failure
#   4. the probes (CudaProbeGpuTest: bandwidth, launch overhead, SGEMM, GeM, AP) without per-launch sync
#   5. each executable bench/gpu/steps/NN-name.sh in name order (the benchmarks beside PyTorch), bounded
#      by its header line `# timeout: SECONDS` (default 60), with DIR4J_JAVA (java, the JVM flags and
#      the class path of every .device/lib jar) and OUT_DIR ($OUT/steps) exported; lines starting with
#      `RESULT ` or `REF ` go into the report. ONLY_STEPS=20,30 runs only those step numbers (none: NONE);
#      STEP_TIMEOUTS=30=80,50=40 overrides their limits; SKIP_TESTS=1 skips steps 3 and 4, SKIP_PROBES=1
#      step 4.
# Writes to $OUT: report.md (the summary to read first, with each step's output and JSON inside, since
# the device tool brings back only a handful of files), environment.txt, tests.log, probes.log,
# steps.txt, steps/NAME.log and whatever the steps write to steps/. report.md is rewritten after every
# phase and step, so a run killed at the device tool's limit still leaves what it had measured;
# REPORT_COPY=PATH writes each version there too (the device tool's $OUT, when $OUT here is a scratch
# directory: the tool brings back at most eight files). Each step sees its limit as STEP_LIMIT.
set -uo pipefail
out=${OUT:-/tmp/dir4j-gpu-checks}
mkdir -p "$out"
report=$out/report.md
cd "$(dirname "$0")/../.."
[ -f .device/setup.sh ] && [ -d .device/lib ] || { echo "no .device/ (run bench/gpu/prepare_gpu_checks.sh and carry .device)" | tee "$report"; exit 2; }
# shellcheck disable=SC1091
source .device/setup.sh > "$out/setup.txt" 2>&1

# the driver library may sit outside the linker cache in a container
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib64 /usr/local/cuda/compat; do
    if [ -e "$d/libcuda.so.1" ]; then export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; break; fi
  done
fi
if [ -z "${CUDA_HOME:-}" ]; then
  for d in /usr/local/cuda /usr/local/cuda-13.0; do [ -d "$d" ] && { export CUDA_HOME=$d; break; }; done
fi

{
  echo "## nvidia-smi"; nvidia-smi 2>&1 | head -20
  echo "## libraries (ldconfig)"; ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas(Lt)?\.so|libcudnn\.so' || echo none
  echo "## LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset} CUDA_HOME=${CUDA_HOME:-unset}"
  ls -la "${CUDA_HOME:-/usr/local/cuda}"/targets/x86_64-linux/lib/libcublas* /usr/lib/x86_64-linux-gnu/libcudnn.so* 2>&1 | head
  echo "## java"; java -version 2>&1
} > "$out/environment.txt" 2>&1

# an explicit list: the JUnit launcher's --class-path does not expand "lib/*" as java -cp does
cp=$(ls .device/lib/*.jar | grep -v junit-platform-console | tr '\n' ':')
jvm=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED
     -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0 -Xmx12g -Ddir4j.gpu.required=true)
launcher=.device/lib/junit-platform-console-standalone.jar

# the report of what has run so far (rewritten after every phase and step)
tests_rc=pending probes_rc=pending status=pending
mkdir -p "$out/steps"
: > "$out/steps.txt"; : > "$out/tests.log"; : > "$out/probes.log"
write_report() {
{
  echo "# dir4j CUDA checks ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
  echo
  echo "## status"
  echo '```'; echo "$status"; echo '```'
  echo
  echo "## gpu-tagged tests (exit $tests_rc$([ $tests_rc = 124 ] && echo ', TIMED OUT')$([ $tests_rc = 3 ] && echo ', TOO FEW TESTS FOUND'))"
  echo '```'
  grep -E '^\[ *[0-9]+ (tests|containers) (found|successful|failed|aborted|skipped)' "$out/tests.log"
  echo '```'
  echo "### failures"
  echo '```'
  grep -E '✘|=> ' "$out/tests.log" | head -60
  echo '```'
  echo "### printed by the tests"
  echo '```'
  grep -E '^(cudaStatus|kernel load times|cuDNN choices)' -A3 "$out/tests.log" | head -40
  echo '```'
  echo
  echo "## probes (exit $probes_rc)"
  echo '```'
  grep -E '^PROBE' "$out/probes.log"
  grep -E '✘|=> ' "$out/probes.log" | head -20
  echo '```'
  echo
  echo "## benchmark steps"
  echo '```'
  cat "$out/steps.txt"
  for f in "$out"/steps/*.log; do
    [ -e "$f" ] || continue
    echo "--- $(basename "$f" .log)"
    grep -E '^(RESULT|REF) ' "$f"
    grep -iE 'exception|error' "$f" | head -5
  done
  echo '```'
  # the device tool returns only a few files: the steps' own output travels inside this report
  echo
  echo "## step output (last 40 lines each)"
  for f in "$out"/steps/*.log; do
    [ -e "$f" ] || continue
    echo "### $(basename "$f" .log)"
    echo '```'
    # without the cuDNN choices' Key[...] lines, which would fill the 40 (ResNetGpuBench ends with them)
    grep -v '^WARNING\|^Key\[' "$f" | tail -40
    echo '```'
  done
  for f in "$out"/steps/*.json; do
    [ -e "$f" ] || continue
    echo "### $(basename "$f")"
    echo '```'
    head -c 20000 "$f"
    echo
    echo '```'
  done
} > "$report.tmp"
  mv "$report.tmp" "$report"
  if [ -n "${REPORT_COPY:-}" ]; then cp "$report" "$REPORT_COPY" 2>/dev/null || true; fi
}

status=$(timeout ${STATUS_TIMEOUT:-120} java "${jvm[@]}" -cp "$cp" dir4j.engine.cuda.CudaStatus 2>&1 | tail -5)
write_report

if [ "${SKIP_TESTS:-0}" != 1 ]; then
timeout ${TESTS_TIMEOUT:-360} java "${jvm[@]}" -Ddir4j.cuda.sync=true -jar "$launcher" execute -cp "$cp" \
  --select-package dir4j --include-tag gpu --exclude-classname '.*ProbeGpuTest' \
  --details=tree --disable-banner --disable-ansi-colors > "$out/tests.log" 2>&1
tests_rc=$?
tests_found=$(grep -oE '^\[ *[0-9]+ tests found' "$out/tests.log" | grep -oE '[0-9]+' || echo 0)
if [ "${SKIP_TESTS:-0}" != 1 ] && [ "${tests_found:-0}" -lt 20 ]; then
  echo "only ${tests_found:-0} tests found: the class path or the tag filter is wrong" >> "$out/tests.log"
  [ "$tests_rc" = 0 ] && tests_rc=3
fi
write_report

if [ "${SKIP_PROBES:-0}" != 1 ]; then
timeout ${PROBES_TIMEOUT:-240} java "${jvm[@]}" -jar "$launcher" execute -cp "$cp" \
  --select-class dir4j.engine.cuda.CudaProbeGpuTest --include-tag gpu \
  --details=tree --disable-banner --disable-ansi-colors > "$out/probes.log" 2>&1
probes_rc=$?
else
  probes_rc=skipped; : > "$out/probes.log"
fi
write_report
else
  tests_rc=skipped probes_rc=skipped
  : > "$out/tests.log"; : > "$out/probes.log"
fi

# the benchmark steps
export OUT_DIR=$out/steps
export DIR4J_JAVA="java ${jvm[*]} -cp $cp"
for step in bench/gpu/steps/*.sh; do
  [ -e "$step" ] || continue
  name=$(basename "$step" .sh)
  num=${name%%-*}
  if [ -n "${ONLY_STEPS:-}" ] && [[ ",$ONLY_STEPS," != *",$num,"* ]]; then continue; fi
  limit=$(grep -m1 -oE '^# timeout: *[0-9]+' "$step" | grep -oE '[0-9]+' || echo 60)
  # STEP_TIMEOUTS=30=80,50=40 overrides the header's limit of those steps
  override=$(tr ',' '\n' <<< "${STEP_TIMEOUTS:-}" | grep -E "^$num=" | cut -d= -f2 || true)
  [ -n "$override" ] && limit=$override
  start=$(date +%s)
  STEP_LIMIT=$limit timeout "$limit" bash "$step" > "$out/steps/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc$([ $rc = 124 ] && echo ' (TIMED OUT)') in $(( $(date +%s) - start )) s (limit $limit)" >> "$out/steps.txt"
  write_report
done

cat "$report"
[ "$tests_rc" = 0 ] || [ "$tests_rc" = skipped ]
