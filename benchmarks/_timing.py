"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""
from __future__ import annotations

import time

import numpy as np


def best_of(repeat: int, fn) -> tuple[float, object]:
    """The shortest of ``repeat`` timed calls of ``fn`` and the last result."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
