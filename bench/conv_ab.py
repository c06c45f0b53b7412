#!/usr/bin/python3
"""Two builds' convolution passes side by side: dir4j.bench.ConvPassTable from each jar, alternating.

Runs `pairs` pairs of ConvPassTable processes (one active processor each unless told otherwise, order swapped every pair
so neither build always runs first) on the convolutions whose name contains FILTER, then prints per
pass the median milliseconds of each build and the median of the per-pair ratios after/before.
On a VM whose speed moves within seconds, a change is real only where that ratio stands clear of
what unchanged passes show in the same run (include some as a control).

    mvn -B -q -o package -Dmaven.test.skip=true -pl kernels,engine,nn,retrieval,bench
    /usr/bin/python3 bench/conv_ab.py BEFORE.jar AFTER.jar FILTER [pairs=6] [seconds per pass=0.4] [processors=1]
e.g. FILTER "/2 " picks the stem, the strided 3x3s and the downsampling 1x1s. A jar may carry JVM
options after "::" (one build, two settings), e.g.
    bench/conv_ab.py "bench/target/benchmarks.jar::-Ddir4j.winograd=false" bench/target/benchmarks.jar "3x3/1" 
"""
import collections
import os
import re
import statistics
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    jars = sys.argv[1:3]
    filt = sys.argv[3]
    pairs = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    seconds = sys.argv[5] if len(sys.argv) > 5 else "0.4"
    processors = sys.argv[6] if len(sys.argv) > 6 else "1"
    java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
    times = {j: collections.defaultdict(list) for j in jars}
    for p in range(pairs):
        for jar in (jars if p % 2 == 0 else jars[::-1]):
            path, _, options = jar.partition("::")
            out = subprocess.run([java, f"-XX:ActiveProcessorCount={processors}", "--add-modules", "jdk.incubator.vector",
                                  "--enable-native-access=ALL-UNNAMED", "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0",
                                  *options.split(), "-cp", path, "dir4j.bench.ConvPassTable", "4", "224", seconds, filt],
                                 capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                m = re.match(r"(.+?)\s+\d+\s+(forward|bwd-data|bwd-filter)\s+([\d.]+)", line)
                if m:
                    times[jar][(m.group(1).strip(), m.group(2))].append(float(m.group(3)))
    print(f"| convolution | pass | before ms (median of {pairs}) | after ms | median after/before per pair |")
    print("| --- | --- | ---: | ---: | ---: |")
    for key, before in times[jars[0]].items():
        after = times[jars[1]][key]
        ratio = statistics.median(b / a for a, b in zip(before, after))
        print(f"| {key[0]} | {key[1]} | {statistics.median(before):.2f} | {statistics.median(after):.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
