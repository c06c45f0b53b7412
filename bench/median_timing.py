"""Shared by the PyTorch/PIL side-by-side scripts: the median time of repeated calls."""
import time

import numpy as np


def median_time(fn, seconds=1.0, scale=1e3):
    """Median seconds x scale (1e3: ms, 1e6: us) per call of fn: 3 warm-up calls, then calls for
    at least `seconds` and at least 5 of them."""
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * scale)
    return float(np.median(times))
