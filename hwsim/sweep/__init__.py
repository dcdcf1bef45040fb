"""Accuracy-versus-bit-width sweeps: resumable parallel evaluation, Pareto fronts, plots."""

from .engine import SweepStore, point_key, run_sweep
from .pareto import pareto_front

__all__ = ["SweepStore", "pareto_front", "point_key", "run_sweep"]
