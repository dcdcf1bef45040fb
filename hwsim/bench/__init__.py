"""Benchmarks: ``hwsim bench NAME [--json]`` measures figures and prints them side by side.

Each benchmark is a module here with ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> dict`` (the JSON object), plus ``table(result) -> str`` for the terminal. A module
registers by existing: its name with ``_`` → ``-`` is the benchmark's name (or ``NAME`` if it
sets one). Figures are measured in the run, never copied from elsewhere, and speed is reported
as ratios or rates measured side by side in one run.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["BENCHES", "load"]


def _discover() -> dict[str, str]:
    """benchmark name → module name, for every module of this package."""
    out = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            out[info.name.replace("_", "-")] = info.name
    return out


#: benchmark name → module under hwsim.bench
BENCHES = _discover()


def load(name: str):
    module = importlib.import_module(f"hwsim.bench.{BENCHES[name]}")
    if getattr(module, "NAME", None) not in (None, name):
        raise AssertionError(f"hwsim.bench.{BENCHES[name]} names itself {module.NAME!r}")
    return module
