#!/usr/bin/env bash
# Prepares .device/ for bench/gpu/run_gpu_checks.sh: run HERE (the build machine), from anywhere
# in the checkout, before calling the device tool. Builds the kernels (nvcc) and the engine, and
# puts in .device/lib everything the GPU machine needs, which builds nothing:
#   dir4j-kernels.jar, dir4j-engine.jar          the code under test (PTX/fatbins inside)
#   dir4j-engine-gpu-tests.jar                   the gpu-tagged tests (dir4j.engine.cuda)
#   jcuda-12.6.0.jar, jcuda-driver-natives.jar   JCuda, with only libJCudaDriver (1 of its 26 MB)
#   junit-platform-console-standalone.jar       the JUnit console launcher
# plus the Java runtime of ../shared/tools/device-kit.sh (.device/jre.tar.xz, .device/setup.sh).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
junit=1.14.4
jcuda=12.6.0
[ -x /usr/local/cuda/bin/nvcc ] || { echo "prepare: no nvcc at /usr/local/cuda/bin/nvcc: the kernels would not be built" >&2; exit 1; }
../shared/tools/device-kit.sh
mvn -B -q -pl kernels,engine -am package -DskipTests
m2=${M2_REPO:-$HOME/.m2/repository}
for a in org.jcuda:jcuda:$jcuda org.jcuda:jcuda-natives:$jcuda:jar:linux-x86_64 \
         org.junit.platform:junit-platform-console-standalone:$junit; do
  mvn -B -q dependency:get -Dartifact=$a -Dtransitive=false >/dev/null
done
lib=.device/lib
rm -rf "$lib" && mkdir -p "$lib"
cp kernels/target/dir4j-kernels-*.jar "$lib/dir4j-kernels.jar"
cp engine/target/dir4j-engine-*.jar "$lib/dir4j-engine.jar"
"$JAVA_HOME/bin/jar" cf "$lib/dir4j-engine-gpu-tests.jar" -C engine/target/test-classes dir4j/engine/cuda
cp "$m2/org/jcuda/jcuda/$jcuda/jcuda-$jcuda.jar" "$lib/"
tmp=$(mktemp -d)
(cd "$tmp" && unzip -q "$m2/org/jcuda/jcuda-natives/$jcuda/jcuda-natives-$jcuda-linux-x86_64.jar" \
  "lib/libJCudaDriver-$jcuda-linux-x86_64.so")
"$JAVA_HOME/bin/jar" cf "$lib/jcuda-driver-natives.jar" -C "$tmp" lib
rm -rf "$tmp"
cp "$m2/org/junit/platform/junit-platform-console-standalone/$junit/junit-platform-console-standalone-$junit.jar" \
  "$lib/junit-platform-console-standalone.jar"
"$JAVA_HOME/bin/jar" tf "$lib/dir4j-kernels.jar" | grep -q 'dir4j/kernels/elementwise.fatbin' \
  || { echo "prepare: dir4j-kernels.jar holds no kernels" >&2; exit 1; }
ls -la "$lib"
du -sh .device | cut -f1 | xargs echo "prepare: .device is"
echo "prepare: now call the device tool: command 'bash bench/gpu/run_gpu_checks.sh', carry ['.device'], timeout_s 480"
