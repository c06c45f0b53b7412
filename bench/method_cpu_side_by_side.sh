#!/usr/bin/env bash
# GeM pooling and the AP loss on the CPU: dir4j (JMH GemBench, ApLossBench) and PyTorch 1.13
# (bench/torch_cpu_method.py, the reference's formulation) back to back. Build first:
#   mvn -q -B -DskipTests -pl bench -am package
# Usage: bench/method_cpu_side_by_side.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
java="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java"
echo "== $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== PyTorch (Debian python3-torch, 2 threads)"
/usr/bin/python3 "$root/bench/torch_cpu_method.py" --threads 2
echo "== dir4j JMH (ms/op)"
"$java" -jar "$root/bench/target/benchmarks.jar" 'GemBench|ApLossBench' -p p=3.0 -wi 2 -w 2 -i 3 -r 3 -f 1 2>&1 \
  | grep -E '^(Benchmark|GemBench|ApLossBench)'
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
