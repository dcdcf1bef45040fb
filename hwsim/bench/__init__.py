"""Benchmarks: ``hwsim bench NAME [--json]`` measures figures and prints them side by side.

Each benchmark is a module here with ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> dict`` (the JSON object), plus ``table(result) -> str`` for the terminal; it is
listed in :data:`BENCHES`. Figures are measured in the run, never copied from elsewhere, and
speed is reported as ratios or rates measured side by side in one run.
"""

from __future__ import annotations

import importlib

__all__ = ["BENCHES", "load"]

#: benchmark name → module under hwsim.bench
BENCHES = {
    "ternary-mvu": "ternary_mvu",
    "attention": "attention",
    "airfm": "airfm",
}


def load(name: str):
    return importlib.import_module(f"hwsim.bench.{BENCHES[name]}")
