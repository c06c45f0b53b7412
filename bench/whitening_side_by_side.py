#!/usr/bin/python3
"""Learning a PCA whitening: dir4j beside scikit-learn and numpy on the same descriptors.

Usage: /usr/bin/python3 bench/whitening_side_by_side.py [--rows 5000] [--dim 2048] [--reps 3] [--threads 2]
Draws N x D float32 descriptors (seed 0) whose axes' scales fall over three decades and whose rows
are L2-normalised, as retrieval descriptors are, writes them to a temporary .npy, then times each
repetition of:
  sklearn: PCA(whiten=True).fit (the reference's whitening; an SVD of the centred rows);
  numpy:   the covariance (float64 product of the centred rows) and numpy.linalg.eigh (LAPACK dsyevd);
  dir4j:   PcaWhitening.learn (bench/target/benchmarks.jar, WhiteningLearnTiming): the covariance's
           products and SymmetricEigen, once with the default (LAPACK dsyevd through FFM where a
           LAPACK library is installed) and once with -Ddir4j.lapack=false (EJML);
and compares each dir4j run's explained variances with sklearn's (largest relative difference over
the components above 1e-6 of the largest). numpy and dir4j's LAPACK run use the same library here
(the system's liblapack.so.3). Build first:
    mvn -B -q -o package -DskipTests -pl kernels,engine,nn,retrieval,bench
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.reps < 1 or args.rows < 2 or args.dim < 1:
        ap.error("--reps >= 1, --rows >= 2 and --dim >= 1")
    jar = os.path.join(ROOT, "bench", "target", "benchmarks.jar")
    if not os.path.isfile(jar):
        ap.error(f"no {jar}: build the bench module first (see the header)")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    from python_requires import require  # the script's folder is on sys.path
    require("numpy", "sklearn")  # after the thread settings
    import numpy as np
    import sklearn
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    x *= np.logspace(0, -3, args.dim, dtype=np.float32)[rng.permutation(args.dim)]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    print(f"# {args.rows} x {args.dim} descriptors, numpy {np.__version__}, sklearn {sklearn.__version__}, "
          f"{args.threads} threads")
    times = {}
    ref = None
    for i in range(args.reps):
        t = time.perf_counter()
        pca = PCA(whiten=True).fit(x)
        times.setdefault("sklearn PCA(whiten=True).fit", []).append(time.perf_counter() - t)
        ref = pca.explained_variance_
        t = time.perf_counter()
        c = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
        cov = c.T @ c / (args.rows - 1)
        np.linalg.eigh(cov)
        times.setdefault("numpy covariance + eigh", []).append(time.perf_counter() - t)
    diffs = {}
    with tempfile.TemporaryDirectory() as tmp:
        descs = os.path.join(tmp, "descs.npy")
        np.save(descs, x)
        java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"), "bin", "java")
        for label, flags in (("dir4j learn, default", []), ("dir4j learn, -Ddir4j.lapack=false", ["-Ddir4j.lapack=false"])):
            out_var = os.path.join(tmp, "var.npy")
            run = subprocess.run([java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                                  "-Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0", f"-Ddir4j.threads={args.threads}",
                                  *flags, "-cp", jar, "dir4j.bench.WhiteningLearnTiming", descs, out_var,
                                  str(args.reps)], capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"dir4j.bench.WhiteningLearnTiming failed (exit {run.returncode}):\n"
                         f"{run.stderr.strip()[-2000:]}")
            backend = ""
            for line in run.stdout.splitlines():
                f = line.split()
                if line.startswith("# eigensolver:"):
                    backend = line[len("# eigensolver: "):]
                elif len(f) == 4 and f[0] == "learn" and f[3] == "s":
                    times.setdefault(f"{label} ({backend})", []).append(float(f[2]))
            got = np.load(out_var)
            keep = ref > 1e-6 * ref[0]
            diffs[f"{label} ({backend})"] = float(np.max(np.abs(got[keep] - ref[keep]) / ref[keep]))
    print()
    print("| what | first s | median s | explained variances vs sklearn (max rel. diff) |")
    print("| --- | ---: | ---: | ---: |")
    for what, t in times.items():
        d = diffs.get(what)
        print(f"| {what} | {t[0]:.2f} | {statistics.median(t):.2f} | {'' if d is None else f'{d:.1e}'} |")


if __name__ == "__main__":
    main()
