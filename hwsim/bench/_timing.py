"""Rates measured side by side (not a benchmark itself: the leading ``_`` keeps it out of the
registry)."""

from __future__ import annotations

import time

__all__ = ["rate"]


def rate(fn, work: float, min_s: float = 1.0) -> float:
    """``work`` units per second of ``fn()``: one warm-up call, then calls until ``min_s``
    seconds have passed (at least one)."""
    fn()
    reps, t0 = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return reps * work / dt
