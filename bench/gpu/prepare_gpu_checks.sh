#!/usr/bin/env bash
# Prepares .device/ for bench/gpu/run_gpu_checks.sh: run HERE (the build machine), from anywhere in
# the checkout, before calling the device tool. Needs nvcc (kernels) but no GPU. The GPU machine
# builds nothing, so .device/lib gets everything it runs:
#   dir4j-{kernels,engine,nn,retrieval,bench}.jar  the code (kernels: PTX/fatbins), built from this tree
#   third-party runtime jars of those modules        mvn dependency:copy-dependencies, runtime scope,
#                                                    offline first; without JMH/ONNX Runtime (bench's JMH
#                                                    side only) and without jcuda-natives, replaced by
#   jcuda-driver-natives.jar                         only libJCudaDriver from jcuda-natives
#   dir4j-gpu-tests.jar                              the packages of engine, nn and retrieval test
#                                                    classes holding a @Tag("gpu") class, with their
#                                                    resources (fixtures) under those packages and
#                                                    any listed in GPU_TEST_RESOURCES
#   junit-platform-console-standalone.jar           the JUnit console launcher
# plus the Java runtime of ../shared/tools/device-kit.sh (.device/jre.tar.xz, .device/setup.sh).
# Fails when .device would exceed DEVICE_MAX_MIB (default 60).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
jar=$JAVA_HOME/bin/jar
junit=1.14.4
jcuda=12.6.0
modules=(kernels engine nn retrieval bench)
test_modules=(engine nn retrieval)
# test classes and resources (relative to a module's target/test-classes) the gpu tests use outside
# their packages: the shared GPU precondition of retrieval's tests, and the fixtures naver's dirtorch
# made for DirtorchParityGpuTest, and the engine fixtures CudaOpsFixtureGpuTest runs on the GPU
GPU_TEST_RESOURCES=${GPU_TEST_RESOURCES:-dir4j/retrieval/Gpu.class fixtures/dirtorch fixtures/engine}
[ -x /usr/local/cuda/bin/nvcc ] || { echo "prepare: no nvcc at /usr/local/cuda/bin/nvcc: the kernels would not be built" >&2; exit 1; }
kit=$root/../shared/tools/device-kit.sh
if [ -d .git ]; then
  "$kit"
else
  # a git worktree (.git is a file): the kit writes .git/info/exclude, so run it in a scratch repository,
  # with the runtime already made here so that it is not made again
  scratch=$(mktemp -d)
  git -C "$scratch" init -q
  mkdir -p "$scratch/.device" .device
  cp .device/jre.tar.xz .device/jre.stamp "$scratch/.device/" 2>/dev/null || true
  (cd "$scratch" && "$kit")
  cp "$scratch/.device/jre.tar.xz" "$scratch/.device/jre.stamp" "$scratch/.device/setup.sh" .device/
  rm -rf "$scratch"
fi

lib=.device/lib
rm -rf "$lib" && mkdir -p "$lib"
# test-compile, not package: no shaded benchmarks.jar (ONNX Runtime alone is 75 MB), and no jar of
# another module resolved from ~/.m2 instead of this tree; the jars are made below from target/
# offline first; a fresh machine lacks some plugins and artifacts: then once more, online
mvn_offline_first() {
  mvn -B -q -o "$@" || { echo "prepare: offline Maven failed; resolving online" >&2; mvn -B -q "$@"; }
}
mvn_offline_first -pl "$(IFS=,; echo "${modules[*]}")" -am test-compile dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$root/$lib" -DexcludeGroupIds=io.github.dir4j \
  -DexcludeArtifactIds=onnxruntime,jmh-core,jopt-simple,commons-math3,jcuda-natives
# the launch signatures (Kernel's letters) against the PTX just built: a mismatch fails every launch
# of that kernel on the device, and costs a device call to find (2026-11-30, call 3)
sig_log=$(mktemp)
mvn_offline_first test -pl kernels,engine -Dtest='KernelSignatureTest,PtxTest' -Dsurefire.failIfNoSpecifiedTests=false \
  > "$sig_log" 2>&1 || { tail -20 "$sig_log" >&2; echo "prepare: KernelSignatureTest/PtxTest" \
  "failed (above; kernels/target and engine/target/surefire-reports): Kernel's letters and the PTX disagree?" >&2; exit 1; }
rm -f "$sig_log"
for m in "${modules[@]}"; do
  [ -d "$m/target/classes" ] || { echo "prepare: $m/target/classes is missing after the build" >&2; exit 1; }
  "$jar" cf "$lib/dir4j-$m.jar" -C "$m/target/classes" .
done

# the gpu tests: every test package holding a @Tag("gpu") class, classes and resources
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tests"
for m in "${test_modules[@]}"; do
  for pkg in $(grep -rl --include='*.java' '@Tag("gpu")' "$m/src/test/java" | xargs -r -n1 dirname \
               | sed "s#^$m/src/test/java/##" | sort -u); do
    mkdir -p "$tmp/tests/$pkg"
    # the package's own files, not its sub-packages (their gpu tests add them themselves)
    find "$m/target/test-classes/$pkg" -maxdepth 1 -type f -exec cp {} "$tmp/tests/$pkg/" \;
    echo "prepare: gpu tests from $m: $pkg ($(ls "$tmp/tests/$pkg" | grep -c '\.class$') classes)"
  done
  for r in $GPU_TEST_RESOURCES; do
    if [ -e "$m/target/test-classes/$r" ]; then
      mkdir -p "$tmp/tests/$(dirname "$r")" && cp -r "$m/target/test-classes/$r" "$tmp/tests/$(dirname "$r")/"
    fi
  done
done
"$jar" cf "$lib/dir4j-gpu-tests.jar" -C "$tmp/tests" .

m2=${M2_REPO:-$HOME/.m2/repository}
for a in org.jcuda:jcuda-natives:$jcuda:jar:linux-x86_64 org.junit.platform:junit-platform-console-standalone:$junit; do
  mvn_offline_first dependency:get -Dartifact=$a -Dtransitive=false >/dev/null
done
(cd "$tmp" && unzip -q "$m2/org/jcuda/jcuda-natives/$jcuda/jcuda-natives-$jcuda-linux-x86_64.jar" \
  "lib/libJCudaDriver-$jcuda-linux-x86_64.so")
"$jar" cf "$lib/jcuda-driver-natives.jar" -C "$tmp" lib
cp "$m2/org/junit/platform/junit-platform-console-standalone/$junit/junit-platform-console-standalone-$junit.jar" \
  "$lib/junit-platform-console-standalone.jar"

# checks: kernels inside, the bench main, the gpu tests of each module, the size
"$jar" tf "$lib/dir4j-kernels.jar" | grep -q 'dir4j/kernels/elementwise.fatbin' \
  || { echo "prepare: dir4j-kernels.jar holds no kernels" >&2; exit 1; }
"$jar" tf "$lib/dir4j-bench.jar" | grep -q 'dir4j/bench/gpu/ResNetGpuBench.class' \
  || { echo "prepare: dir4j-bench.jar lacks dir4j.bench.gpu.ResNetGpuBench" >&2; exit 1; }
for p in dir4j/engine/cuda/ dir4j/nn/ dir4j/retrieval/; do
  "$jar" tf "$lib/dir4j-gpu-tests.jar" | grep -q "^$p.*GpuTest.class\|^$p.*GpuParityTest.class" \
    || { echo "prepare: dir4j-gpu-tests.jar has no gpu test under $p" >&2; exit 1; }
done
[ -e "$lib/jcuda-$jcuda.jar" ] || { echo "prepare: jcuda-$jcuda.jar was not copied" >&2; exit 1; }
ls -la "$lib"
kib=$(du -sk .device | cut -f1)
echo "prepare: .device is $((kib / 1024)) MiB"
[ "$kib" -le $(( ${DEVICE_MAX_MIB:-60} * 1024 )) ] \
  || { echo "prepare: .device exceeds ${DEVICE_MAX_MIB:-60} MiB" >&2; exit 1; }
echo "prepare: now call the device tool: command 'bash bench/gpu/run_gpu_checks.sh', carry ['.device'], timeout_s 480"
