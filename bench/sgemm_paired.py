"""dir4j's SGEMM and numpy's, alternated in short bursts so both see the same machine load.

On a shared machine the load moves within seconds, so two whole benchmark runs one after the
other can see different machines. This runs numpy for a burst, then dir4j (bench/target/
benchmarks.jar, class dir4j.bench.SgemmPaired, kept warm in one JVM) for a burst, and so on, and
reports each side's median and the median of the per-pair ratios, per second of wall time and
per second of process CPU time (which discounts time other processes hold the cores; with
threads > 1 OpenBLAS's spin-waiting counts against numpy there, so read the CPU figures at 1).

    mvn -q -pl bench -am package -Dmaven.test.skip=true
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/sgemm_paired.py [size] [pairs] [seconds] [threads]
"""
import os
import statistics
import subprocess
import sys
import time

THREADS = sys.argv[4] if len(sys.argv) > 4 else None
if THREADS:  # must precede numpy's import: OpenBLAS sizes its pool when loaded
    os.environ["OPENBLAS_NUM_THREADS"] = THREADS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_sgemm import blas_info  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    burst = float(sys.argv[3]) if len(sys.argv) > 3 else 1.5
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
    jar = os.path.join(root, "bench", "target", "benchmarks.jar")
    if not os.path.isfile(jar):
        sys.exit(f"no {jar}: build the bench module first (see the header)")
    jvm = subprocess.Popen(
        [java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
         "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"] + ([f"-Ddir4j.threads={THREADS}"] if THREADS else []) + ["-cp",
         jar, "dir4j.bench.SgemmPaired"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def dir4j(seconds):
        jvm.stdin.write(f"{n} {seconds}\n")
        jvm.stdin.flush()
        wall, cpu = jvm.stdout.readline().split()
        return float(wall), float(cpu)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)

    def numpy(seconds):
        start, cpu, reps = time.perf_counter(), time.process_time(), 0
        while True:
            np.matmul(a, b, out=c)
            reps += 1
            if time.perf_counter() - start >= seconds:
                flops = 2.0 * n ** 3 * reps / 1e9
                return flops / (time.perf_counter() - start), flops / (time.process_time() - cpu)

    print(f"numpy {np.__version__}; {blas_info()}; threads {THREADS or 'all'}")
    print(f"size {n}, {pairs} pairs of {burst} s bursts; load {os.getloadavg()[0]:.2f} at start")
    numpy(burst)
    dir4j(3 * burst)  # warm-up: JIT
    ours, theirs = [], []
    for i in range(pairs):
        theirs.append(numpy(burst))
        ours.append(dir4j(burst))
        print(f"pair {i + 1:2d}: GFLOP/s wall numpy {theirs[-1][0]:6.1f} dir4j {ours[-1][0]:6.1f} "
              f"(ratio {ours[-1][0] / theirs[-1][0]:.2f});  per CPU-s numpy {theirs[-1][1]:6.1f} "
              f"dir4j {ours[-1][1]:6.1f} (ratio {ours[-1][1] / theirs[-1][1]:.2f})")
    jvm.stdin.close()
    jvm.wait()
    for k, what in ((0, "wall"), (1, "per CPU-second")):
        ratios = [o[k] / t[k] for o, t in zip(ours, theirs)]
        print(f"median GFLOP/s {what}: numpy {statistics.median(t[k] for t in theirs):.1f}, "
              f"dir4j {statistics.median(o[k] for o in ours):.1f}; median ratio dir4j/numpy "
              f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"load {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
