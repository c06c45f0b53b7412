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
# Writes to $OUT: report.md (the summary to read first), environment.txt, tests.log, probes.log,
# junit/ (XML reports of step 3).
set -uo pipefail
out=${OUT:-/tmp/dir4j-gpu-checks}
mkdir -p "$out/junit"
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

status=$(timeout ${STATUS_TIMEOUT:-120} java "${jvm[@]}" -cp "$cp" dir4j.engine.cuda.CudaStatus 2>&1 | tail -5)

timeout ${TESTS_TIMEOUT:-360} java "${jvm[@]}" -Ddir4j.cuda.sync=true -jar "$launcher" execute -cp "$cp" \
  --select-package dir4j.engine.cuda --include-tag gpu --exclude-classname '.*ProbeGpuTest' \
  --details=tree --disable-banner --disable-ansi-colors --reports-dir "$out/junit" > "$out/tests.log" 2>&1
tests_rc=$?
tests_found=$(grep -oE '^\[ *[0-9]+ tests found' "$out/tests.log" | grep -oE '[0-9]+' || echo 0)
if [ "${tests_found:-0}" -lt 20 ]; then
  echo "only ${tests_found:-0} tests found: the class path or the tag filter is wrong" >> "$out/tests.log"
  [ $tests_rc = 0 ] && tests_rc=3
fi

timeout ${PROBES_TIMEOUT:-240} java "${jvm[@]}" -jar "$launcher" execute -cp "$cp" \
  --select-class dir4j.engine.cuda.CudaProbeGpuTest --include-tag gpu \
  --details=tree --disable-banner --disable-ansi-colors > "$out/probes.log" 2>&1
probes_rc=$?

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
} > "$report"
cat "$report"
[ $tests_rc = 0 ]
