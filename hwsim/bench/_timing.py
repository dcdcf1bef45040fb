"""Rates measured side by side (not a benchmark itself: the leading ``_`` keeps it out of the
registry)."""

from __future__ import annotations

import time

__all__ = ["best_rates", "rate"]


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


def best_rates(fns: dict, work: float, rounds: int = 3) -> dict:
    """``work`` units per second of each ``fns[name]()``, measured side by side: one warm-up
    call each, then ``rounds`` rounds that time one call of every function in turn; each rate
    is from its fastest call (the machine's drift and noise fall on all of them alike)."""
    best = dict.fromkeys(fns, float("inf"))
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: work / dt for name, dt in best.items()}
