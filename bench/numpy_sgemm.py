"""numpy float32 matmul at the sizes SgemmBench uses; prints GFLOP/s (2*n^3 flops per C = A.B).

Run it in the same session as the JMH run, back to back, so both see the same machine load:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/numpy_sgemm.py
(Some environments set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, which forces a slower OpenBLAS kernel.)
"""
import os
import sys
import time

import numpy as np


def blas_info():
    """Which BLAS numpy runs on, and which core kernel it picked (threadpoolctl when installed,
    else asked of numpy's bundled scipy-openblas directly)."""
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(
            f"{i.get('internal_api')} {i.get('version')} core={i.get('architecture')} threads={i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        pass
    import ctypes
    import glob
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                core = getattr(lib, f"{prefix}get_corename{suffix}", None)
                config = getattr(lib, f"{prefix}get_config{suffix}", None)
                if core is not None and config is not None:
                    core.restype = config.restype = ctypes.c_char_p
                    return f"{config().decode().strip()} core={core().decode()} (threadpoolctl not installed)"
    return "BLAS unknown (threadpoolctl not installed, no bundled OpenBLAS found)"


def bench(n, min_seconds=2.0):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)  # warm-up: threads, page faults
    best = float("inf")
    total, reps = 0.0, 0
    while total < min_seconds or reps < 3:
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        dt = time.perf_counter() - t
        best = min(best, dt)
        total += dt
        reps += 1
    flops = 2.0 * n ** 3
    return flops / (total / reps) / 1e9, flops / best / 1e9, reps


def main():
    sizes = [int(s) for s in sys.argv[1:]] or [256, 512, 1024, 2048]
    print(f"numpy {np.__version__}; {blas_info()}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}")
    print(f"{'size':>6} {'mean GFLOP/s':>13} {'best GFLOP/s':>13} {'reps':>5}")
    for n in sizes:
        mean, best, reps = bench(n)
        print(f"{n:>6} {mean:>13.1f} {best:>13.1f} {reps:>5}")


if __name__ == "__main__":
    main()
