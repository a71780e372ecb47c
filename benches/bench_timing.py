"""Timing shared by the benches (standard library only, so that a SAELens-only interpreter runs it)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def rows_per_second(fn: Callable[[], Any], rows: int, repeats: int) -> float:
    """Median rows/s of ``repeats`` timed calls of ``fn`` (``rows`` rows each) after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return rows / statistics.median(times)
